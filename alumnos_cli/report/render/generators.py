"""A split run's generators as a table (one row per host) and the lines under it, in each
report language: terminal, markdown and HTML format the same rows."""

from __future__ import annotations

from alumnos_cli.report.generators import GeneratorHost
from alumnos_cli.report.model import GeneratorUsage
from alumnos_cli.report.render.breakdown import BreakdownTable
from alumnos_cli.report.render.numbers import number, percent

TEXT: dict[str, dict[str, str]] = {
    "en": {"title": "Load generators (the run split over them)",
           "saturated": "SATURATED", "ok": "had room",
           "percentiles": "Merged percentiles: {source}.",
           "limit": "A saturated generator sent what it could, not what the scenario asked: "
                    "the run's figures are a lower bound; add a generator, or give it more "
                    "cores."},
    "es": {"title": "Generadores de carga (la corrida repartida entre ellos)",
           "saturated": "SATURADO", "ok": "con margen",
           "percentiles": "Percentiles combinados: {source}.",
           "limit": "Un generador saturado envió lo que pudo, no lo que pedía el escenario: las "
                    "cifras de la corrida son una cota inferior; agregue un generador o dele "
                    "más núcleos."},
}
COLUMNS = {
    "en": ("generator", "segment", "requests", "req/s", "own p95 ms", "k6 CPU s", "k6 cores",
           "machine busy", "verdict"),
    "es": ("generador", "segmento", "peticiones", "pet/s", "p95 propio ms", "CPU de k6 s",
           "núcleos de k6", "máquina ocupada", "veredicto"),
}
# bench's own words for where the merged percentiles came from (bench/generators/merge.py).
SOURCES_ES = {
    "merged distribution": "la distribución combinada (histogramas nativos de k6 en "
                           "Prometheus)",
    "the highest of": "el más alto de los de cada generador (sin Prometheus no se combinan "
                      "las distribuciones: el percentil combinado es a lo sumo ese)",
}


def generators_table(usage: GeneratorUsage, lang: str = "en") -> BreakdownTable:
    """One row per generator host."""
    t = TEXT[lang]
    return BreakdownTable(t["title"], COLUMNS[lang],
                          tuple(_row(host, t, lang) for host in usage.hosts),
                          text_columns=(0, 1, 8))


def generators_notes(usage: GeneratorUsage, lang: str = "en") -> list[str]:
    """Where the merged percentiles came from; what a saturated generator means."""
    t = TEXT[lang]
    source = usage.percentiles or "?"
    if lang == "es":
        source = next((es for en, es in SOURCES_ES.items() if source.startswith(en)), source)
    notes = [t["percentiles"].format(source=source)]
    if any(host.saturated for host in usage.hosts):
        notes.append(t["limit"])
    return notes


def _row(host: GeneratorHost, t: dict[str, str], lang: str) -> tuple[str, ...]:
    return (host.name, host.segment, number(host.requests, 0, lang),
            number(host.requests_per_s, 0, lang), _maybe(host.p95_ms, 1, lang),
            _maybe(host.cpu_seconds, 1, lang), _maybe(host.cores_used, 2, lang),
            "-" if host.machine_busy is None else percent(host.machine_busy, lang),
            t["saturated"] if host.saturated else t["ok"])


def _maybe(value: float | None, decimals: int, lang: str) -> str:
    return "-" if value is None else number(value, decimals, lang)
