"""The technical-report section of a run in Markdown, in Spanish (default) or English.

The structure follows the reference report ("Prueba de carga ...", Configuración, Resultados,
Conclusión); every sentence of the conclusion is derived from the figures and thresholds.
"""

from __future__ import annotations

import re

from alumnos_cli.report.compare import Comparison
from alumnos_cli.report.model import GeneratorUsage, RunFigures, RunMeta, RunReport
from alumnos_cli.report.render.attribution import (
    cost_notes,
    cost_rows,
    placement_text,
    verification_rows,
)
from alumnos_cli.report.render.balancer import balancer_rows
from alumnos_cli.report.render.breakdown import (
    BreakdownTable,
    breakdown_notes,
    breakdown_tables,
    breakdown_title,
)
from alumnos_cli.report.render.conclusion import conclusion_sentences
from alumnos_cli.report.render.generators import generators_notes, generators_table
from alumnos_cli.report.render.numbers import number, percent, relative, with_range
from alumnos_cli.report.render.text import describe_load, describe_stack, server_side_rows
from alumnos_cli.report.render.words import WORDS

TEXT = {
    "es": {
        **WORDS["es"],
        "part": "Parte",
        "pattern": "Patrón", "observed": "Observado",
        "endpoint": "Endpoint",
        "load": "Carga", "rows": "Filas en la tabla", "stack": "Pila", "machine": "Máquina",
        "tool": "Herramienta", "date": "Fecha", "command": "Comando",
        "metric": "Métrica", "value": "Valor", "threshold": "Umbral", "verdict": "Resultado",
        "requests": "Total de peticiones", "share_200": "Respuestas 200",
        "errors": "Tasa de error", "throughput": "Throughput", "avg": "Latencia promedio",
        "p50": "Latencia p50", "p90": "Latencia p90", "p95": "Latencia p95",
        "p99": "Latencia p99", "p999": "Latencia p99,9", "max": "Latencia máxima",
        "vus": "VUs máximos",
        "dropped": "Iteraciones descartadas (modelo abierto)", "ceiling": "Techo (ping, misma "
        "carga)", "share": "Fracción del techo", "cpus": "{count} CPU, {model}",
        "checks": "Chequeos cumplidos (estado, filas)",
        "placement": "CPU asignadas",
    },
    "en": {
        **WORDS["en"],
        "part": "Part",
        "pattern": "Pattern",
        "observed": "Observed",
        "endpoint": "Endpoint",
        "load": "Load", "rows": "Rows in the table", "stack": "Stack", "machine": "Machine",
        "tool": "Tool", "date": "Date", "command": "Command",
        "metric": "Metric", "value": "Value", "threshold": "Threshold", "verdict": "Verdict",
        "requests": "Total requests", "share_200": "200 responses",
        "errors": "Error rate", "throughput": "Throughput", "avg": "Average latency",
        "p50": "p50 latency", "p90": "p90 latency", "p95": "p95 latency",
        "p99": "p99 latency", "p999": "p99.9 latency", "max": "Maximum latency",
        "vus": "Peak VUs",
        "dropped": "Dropped iterations (open model)", "ceiling": "Ceiling (ping, same load)",
        "share": "Share of the ceiling", "cpus": "{count} CPUs, {model}",
        "checks": "Checks passed (status, rows)",
        "placement": "CPUs given",
    },
}


def run_markdown(report: RunReport, lang: str = "es") -> str:
    """The whole section."""
    t = TEXT[lang]
    lines = [f"## {t['title'].format(scenario=report.meta.scenario)}", "",
             f"### {t['configuration']}", ""]
    lines += _configuration(report.meta, t, lang)
    lines += ["", f"### {t['results']}", "", f"| {t['metric']} | {t['value']} |", "|---|---|"]
    lines += [f"| {label} | {value} |"
              for label, value in _results(report.figures, report.ceiling, t, lang)]
    lines += _breakdown(report, lang)
    if report.meta.generator and report.meta.generator.hosts:
        lines += _generators(report.meta.generator, lang)
    lines += _attribution(report, t, lang)
    if server := server_side_rows(report, lang):
        lines += ["", f"### {t['server']}", ""]
        lines += [f"- **{label}:** {value}" for label, value in server]
    if report.meta.balancer:
        lines += ["", f"### {t['balancer']}", ""]
        lines += [f"- **{label}:** {value}"
                  for label, value in balancer_rows(report.meta.balancer, lang)]
    if report.figures.thresholds:
        lines += ["", f"### {t['thresholds']}", "",
                  f"| {t['metric']} | {t['threshold']} | {t['verdict']} |", "|---|---|---|"]
        lines += [f"| `{th.metric}` | `{th.expression}` | "
                  f"{t['pass'] if th.ok else t['fail']} |" for th in report.figures.thresholds]
    if report.proof:
        lines += ["", f"### {t['patterns']}", "",
                  f"| {t['pattern']} | {t['observed']} | {t['verdict']} |", "|---|---|---|"]
        lines += [f"| {md_text(r.pattern)} | {md_text(r.observed)} | {md_text(r.verdict)} |"
                  for r in report.proof.results]
    lines += ["", f"### {t['conclusion']}", ""]
    lines += [" ".join(conclusion_sentences(report, lang)), ""]
    # "--" would end the comment early: a run's name never closes it.
    lines.append(f"<!-- alumnos run {report.name.replace('--', '- -')} -->")
    return "\n".join(lines) + "\n"


def md_text(text: str) -> str:
    """Text from a run (a URL, a name, a proof's words) as literal Markdown: no markup, no
    HTML, no table cell break, on one line."""
    text = " ".join(text.split()).replace("\\", "\\\\")
    return re.sub(r"([`*_\[\]<>|#!])", r"\\\1", text)


def md_code(text: str) -> str:
    """Text as a code span that its own backticks cannot close (CommonMark: a longer fence),
    with `|` escaped so a table cell holds it."""
    text = " ".join(text.split()).replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _configuration(meta: RunMeta, t: dict[str, str], lang: str) -> list[str]:
    machine = meta.machine
    items = [
        (t["endpoint"], f"{md_code(f'GET {meta.requests}')} ({md_text(meta.url)})"),
        (t["load"], describe_load(meta, lang)),
        (t["rows"], "?" if meta.rows is None else number(meta.rows, 0, lang)),
    ]
    if meta.stack:
        items.append((t["stack"], describe_stack(meta.stack, lang)))
    if meta.placement:
        items.append((t["placement"], placement_text(meta.placement, lang)))
    items += [
        (t["machine"], t["cpus"].format(count=machine.cpu_count, model=machine.cpu_model)),
        (t["tool"], f"k6 {md_text(meta.versions.get('k6', '?'))}, {md_code(meta.script)}"),
        (t["date"], md_text(meta.started_at)),
        (t["command"], md_code(meta.command)),
    ]
    return [f"- **{label}:** {value}" for label, value in items]


def _results(figures: RunFigures, ceiling: RunFigures | None, t: dict[str, str],
             lang: str) -> list[tuple[str, str]]:
    lat = figures.latency
    ms = " ms"
    rows = [
        (t["requests"], number(figures.requests, 0, lang)),
        (t["share_200"], "n/a" if figures.share_200 is None else percent(figures.share_200, lang)),
        (t["errors"], percent(figures.error_rate, lang)),
        *([(t["checks"], percent(figures.checks_rate, lang))]
          if figures.checks_rate is not None else []),
        (t["throughput"], number(figures.requests_per_second, 1, lang) + " req/s"),
        (t["avg"], number(lat.avg, 1, lang) + ms), (t["p50"], number(lat.p50, 1, lang) + ms),
        (t["p90"], number(lat.p90, 1, lang) + ms), (t["p95"], number(lat.p95, 1, lang) + ms),
        (t["p99"], number(lat.p99, 1, lang) + ms),
        (t["p999"], "-" if lat.p999 is None else number(lat.p999, 1, lang) + ms),
        (t["max"], number(lat.max, 1, lang) + ms),
        (t["vus"], number(figures.max_vus, 0, lang)),
    ]
    if figures.dropped_iterations:
        rows.append((t["dropped"], number(figures.dropped_iterations, 0, lang)))
    if ceiling is not None and ceiling.requests_per_second:
        rows.append((t["ceiling"], number(ceiling.requests_per_second, 1, lang) + " req/s"))
        rows.append((t["share"], number(figures.requests_per_second
                                        / ceiling.requests_per_second, 2, lang)))
    return rows


def _breakdown(report: RunReport, lang: str) -> list[str]:
    """Per endpoint, per status, errors by type; or the line that says why there are none."""
    lines = ["", f"### {breakdown_title(lang)}"]
    for table in breakdown_tables(report.breakdown, lang) if report.breakdown else []:
        lines += ["", f"**{table.title}**", "", *_table_lines(table)]
    return [*lines, "", *(f"_{md_text(note)}_" for note in breakdown_notes(report, lang))]


def _generators(usage: GeneratorUsage, lang: str) -> list[str]:
    """A split run's generators, one row each, and how to read them."""
    table = generators_table(usage, lang)
    return ["", f"### {table.title}", "", *_table_lines(table), "",
            *(f"_{md_text(note)}_" for note in generators_notes(usage, lang))]


def _table_lines(table: BreakdownTable) -> list[str]:
    return [f"| {' | '.join(table.columns)} |", "|" + "---|" * len(table.columns),
            *(f"| {' | '.join(md_text(cell) for cell in row)} |" for row in table.rows)]


def _attribution(report: RunReport, t: dict[str, str], lang: str) -> list[str]:
    """How the answers were verified, and what each part spent per 1,000 requests."""
    lines: list[str] = []
    verification, costs = report.meta.verification, report.meta.costs
    if verification:
        lines += ["", f"### {t['verification']}", ""]
        lines += [f"- **{label}:** {value}" for label, value
                  in verification_rows(verification, report.figures.requests, lang)]
    if costs:
        lines += ["", f"### {t['costs']}", "", f"| {t['part']} | {t['cpu_s']} | {t['cpu_ms']} |",
        "|---|---|---|"]
        lines += [f"| {part} | {cpu} | {per_1000} |" for part, cpu, per_1000
                  in cost_rows(costs, lang)]
        lines += ["", *(f"_{note}_" for note in cost_notes(costs, lang))] \
            if cost_notes(costs, lang) else []
    return lines


def comparison_markdown(result: Comparison) -> str:
    """The comparison as a Markdown table (means, and min-max over repeats), its verdict and
    the notes on how to read it."""
    lines = [f"| metric | {md_text(result.baseline.label)} | {md_text(result.candidate.label)} | "
        "difference | verdict |", "|---|---|---|---|---|"]
    lines += [f"| {row.metric} ({row.unit}) | {with_range(row.baseline, row.baseline_range)} | "
              f"{with_range(row.candidate, row.candidate_range)} | {relative(row.relative)} | "
              f"{row.verdict} |" for row in result.rows]
    lines += ["", f"**Verdict:** {result.overall}", ""]
    lines += [f"- **{md_text(note.label)}:** {md_text(note.text)}" if note.label
              else f"- {md_text(note.text)}" for note in result.notes]
    return "\n".join(lines) + "\n"
