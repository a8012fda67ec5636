"""What the HTML page inlines: uPlot (vendored, see uplot/README.md), its stylesheet, and the
script that draws the report's charts with it.

These are the package's own files, not a run's: the renderers stay free of file reading (a run
reaches them as a RunReport), and this is the one place that reads package data.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

UPLOT_VERSION = "1.6.32"


def _text(*parts: str) -> str:
    return resources.files(__name__).joinpath(*parts).read_text(encoding="utf-8")


@cache
def page_script() -> str:
    """uPlot, then the charts' script."""
    return _text("uplot", "uPlot.iife.min.js") + "\n" + _text("charts.js")


@cache
def page_style() -> str:
    """uPlot's stylesheet."""
    return _text("uplot", "uPlot.min.css")
