"""alumnos report."""

from __future__ import annotations

from typing import Annotated

import typer

from alumnos_cli.commands.common import ResultsDir, console, handle_errors, resolve_settings
from alumnos_cli.render.terminal import run_report
from alumnos_cli.results import ceiling_figures, figures
from alumnos_cli.runs import load_run, resolve_run


@handle_errors
def report(
    run: Annotated[str | None, typer.Argument(
        help="Run folder name or path [default: the newest run].", show_default=False)] = None,
    results_dir: ResultsDir = None,
) -> None:
    """Show a benchmark run as tables: configuration, results, thresholds.

    Example: alumnos report            (the newest run)
             alumnos report 20261127T101500Z-spike
    """
    settings = resolve_settings(results_dir=results_dir)
    stored = load_run(resolve_run(settings.results_dir, run))
    console.print(run_report(stored, figures(stored), ceiling_figures(stored)))
