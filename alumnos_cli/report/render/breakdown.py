"""The breakdown's tables (per endpoint, per status, errors by type) as rows of text, in each
report language: terminal, markdown and HTML format the same rows."""

from __future__ import annotations

from dataclasses import dataclass

from alumnos_cli.report.breakdown import (
    NO_PROMETHEUS,
    NOT_RECORDED,
    Breakdown,
    ErrorType,
    coarser,
)
from alumnos_cli.report.model import RunReport
from alumnos_cli.report.render.numbers import number, percent

TEXT = {
    "en": {"title": "Breakdown", "endpoints": "Per endpoint (k6's name tag)",
           "statuses": "Per status", "errors": "Errors by type",
           "no_response": "0 (no response)", "no_errors": "no errors: every request got a 200",
           "histogram": "Percentiles per endpoint come from k6's native histogram in "
                        "Prometheus: within one bucket (9%) of k6's exact figures.",
           "distribution": "Latency distribution (whole run)"},
    "es": {"title": "Desglose", "endpoints": "Por endpoint (etiqueta name de k6)",
           "statuses": "Por estado", "errors": "Errores por tipo",
           "no_response": "0 (sin respuesta)",
           "no_errors": "sin errores: todas las peticiones recibieron un 200",
           "histogram": "Los percentiles por endpoint salen del histograma nativo de k6 en "
                        "Prometheus: a menos de un intervalo (9 %) de las cifras exactas de k6.",
           "distribution": "Distribución de la latencia (toda la corrida)"},
}
COLUMNS = {
    "en": {"endpoints": ("endpoint", "requests", "failed", "p50 ms", "p95 ms", "p99 ms",
                         "p99.9 ms"),
           "statuses": ("status", "requests", "share"),
           "errors": ("type", "value", "count", "first seen (s after the start)"),
           "distribution": ("latency ms", "requests", "share", "up to here", "")},
    "es": {"endpoints": ("endpoint", "peticiones", "fallidas", "p50 ms", "p95 ms", "p99 ms",
                         "p99,9 ms"),
           "statuses": ("estado", "peticiones", "fracción"),
           "errors": ("tipo", "valor", "cuántos", "primera vez (s desde el inicio)"),
           "distribution": ("latencia ms", "peticiones", "fracción", "acumulada", "")},
}
# The reasons alumnos itself gives, in Spanish; Prometheus's own errors stay as they were said.
MISSING_ES = {
    NOT_RECORDED: "sin desglose: la ejecución es anterior a que se guardara (por endpoint, "
                  "estado, tipo de error)",
    NO_PROMETHEUS: "sin desglose: k6 no escribió en ningún Prometheus (--prometheus off, o "
                   "no había ninguno)",
}
# The histogram as text: k6's buckets merged until at most this many rows remain, each drawn
# as a bar of up to BAR_WIDTH blocks.
TEXT_BUCKETS = 12
BAR_WIDTH = 20
THIN_BAR = "▏"
KINDS = {
    "en": {"status": "status", "error_code": "k6 error code", "check": "check failed"},
    "es": {"status": "estado", "error_code": "código de error de k6",
           "check": "chequeo fallido"},
}


@dataclass(frozen=True)
class BreakdownTable:
    """One table of the breakdown: its title, column names and rows, all text."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    text_columns: tuple[int, ...] = (0,)  # aligned left; the rest are figures

def breakdown_title(lang: str = "en") -> str:
    """The section's title."""
    return TEXT[lang]["title"]


def breakdown_tables(breakdown: Breakdown, lang: str = "en", *,
                     distribution: bool = True) -> list[BreakdownTable]:
    """Per endpoint and per status; errors by type when there were any; the latency
    distribution as text, unless the page draws it (`distribution=False`)."""
    t, columns = TEXT[lang], COLUMNS[lang]
    total = breakdown.requests or 1
    tables = [
        BreakdownTable(t["endpoints"], columns["endpoints"], tuple(
            (row.name, number(row.requests, 0, lang), number(row.failed, 0, lang),
             *(_ms(value, lang) for value in (row.p50_ms, row.p95_ms, row.p99_ms,
                                              row.p999_ms)))
            for row in breakdown.endpoints)),
        BreakdownTable(t["statuses"], columns["statuses"], tuple(
            (_status(row.status, lang), number(row.requests, 0, lang),
             percent(row.requests / total, lang))
            for row in breakdown.statuses)),
    ]
    if breakdown.errors:
        tables.append(BreakdownTable(t["errors"], columns["errors"], tuple(
            _error_row(error, lang) for error in breakdown.errors)))
    if distribution and breakdown.histogram:
        tables.append(BreakdownTable(t["distribution"], columns["distribution"],
                                     _distribution_rows(breakdown, lang), text_columns=(0, 4)))
    return tables


def _distribution_rows(breakdown: Breakdown, lang: str) -> tuple[tuple[str, ...], ...]:
    """The histogram in a few rows, each a bucket's range, its requests, its share, the share
    up to it, and a bar as long as its share of the fullest bucket's."""
    buckets = coarser(breakdown.histogram, TEXT_BUCKETS)
    total = sum(b.requests for b in buckets) or 1
    fullest = max(b.requests for b in buckets) or 1
    rows, below = [], 0
    for bucket in buckets:
        below += bucket.requests
        span = f"{bound_text(bucket.lower_ms, lang)} - {bound_text(bucket.upper_ms, lang)}"
        rows.append((span,
                     number(bucket.requests, 0, lang), percent(bucket.requests / total, lang),
                     percent(below / total, lang),
                     _bar(bucket.requests / fullest)))
    return tuple(rows)


def _bar(fraction: float) -> str:
    """Whole blocks; a thin one where a few requests would otherwise draw nothing (a tail)."""
    blocks = round(BAR_WIDTH * fraction)
    return "█" * blocks if blocks or not fraction else THIN_BAR


def bound_text(ms: float, lang: str) -> str:
    """A histogram bucket's bound with enough digits to tell it from its neighbours (at
    least 9% apart): 12, 3.4, 0.59."""
    return number(ms, 0 if ms >= 10 else 1 if ms >= 1 else 2, lang)


def breakdown_notes(report: RunReport, lang: str = "en") -> list[str]:
    """The lines under the tables: why there is no breakdown, or how to read it."""
    t = TEXT[lang]
    if report.breakdown is None:
        missing = report.breakdown_missing
        if missing and lang == "es":
            missing = MISSING_ES.get(missing, missing)
        return [missing] if missing else []
    notes = [] if report.breakdown.errors else [t["no_errors"]]
    return [*notes, t["histogram"]]


def _error_row(error: ErrorType, lang: str) -> tuple[str, ...]:
    kinds = KINDS[lang]
    key = _status(error.key, lang) if error.kind == "status" else error.key
    first = "-" if error.first_s is None else number(error.first_s, 0, lang)
    return (kinds.get(error.kind, error.kind), key, number(error.count, 0, lang), first)


def _status(status: str, lang: str) -> str:
    return TEXT[lang]["no_response"] if status == "0" else status


def _ms(value: float | None, lang: str) -> str:
    return "-" if value is None else number(value, 1, lang)
