"""Numbers as each report language writes them."""

from __future__ import annotations


def number(value: float, decimals: int, lang: str) -> str:
    """A number as the language writes it: 1.234,5 in Spanish, 1,234.5 in English."""
    text = f"{value:,.{decimals}f}"
    if lang == "es":
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


def percent(share: float, lang: str, decimals: int = 2) -> str:
    """A share as a percentage."""
    return f"{number(100 * share, decimals, lang)} %" if lang == "es" else \
        f"{number(100 * share, decimals, lang)}%"


def relative(value: float | None) -> str:
    """A difference as a signed percentage, n/a without a baseline."""
    return "n/a" if value is None else f"{value:+.1%}"


def with_range(mean: float, span: tuple[float, float]) -> str:
    """A mean, and the min-max of the runs behind it when they differ."""
    if span[0] == span[1]:
        return f"{mean:,.1f}"
    return f"{mean:,.1f} ({span[0]:,.1f}-{span[1]:,.1f})"
