"""A sweep in every format: its levels, what each component used of its limit, the fit, the
knee, and charts of throughput and latency against the load (in the page's language)."""

from __future__ import annotations

import html
import json
from dataclasses import asdict
from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.text import Text

from alumnos_cli.report.capacity import (
    BALANCER_QUEUE,
    BALANCER_SLOTS,
    MACHINE,
    PG_CONNECTIONS,
    STACK_CPUS,
    Sweep,
    SweepLevel,
    Usage,
)
from alumnos_cli.report.render.breakdown import BreakdownTable
from alumnos_cli.report.render.numbers import number, percent
from alumnos_cli.report.render.text import waits_text

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Capacity sweep {name}", "levels": "Levels",
        "closed": "VUs", "open": "req/s offered", "rps": "req/s", "usl": "USL req/s",
        "errors": "errors", "k6": "k6 limit", "busiest": "busiest",
        "queries": "queries/req",
        "yes": "yes", "no": "no", "knee_mark": "{level} ← knee", "usage": "Use of each limit",
        "load": "{scenario}, {model}, {seconds} s per level; {ran} of {planned} levels ran",
        "model_closed": "closed model (VUs)", "model_open": "open model (requests/s offered)",
        "fit": "USL fit on {count} levels ({levels}): λ = {lam} req/s per client, σ = {sigma} "
               "(contention), κ = {kappa} (coherency), R² = {r2}",
        "peak": "predicted peak: {x} req/s at a concurrency of {n}",
        "peak_far": "no peak within range: the fit puts it at a concurrency of {n} ({x} req/s), "
                    "beyond twice the highest level measured",
        "no_peak": "no peak: κ is about 0, throughput levels off towards {x} req/s",
        "best": "best measured: {x} req/s at {level}; the fit's ceiling is {share} of it",
        "knee": "knee: past {level}, latency grew faster than throughput",
        "no_knee": "no knee: throughput kept pace with latency up to {level}",
        "no_knee_k6": "no knee: k6 was the limit at every level, so latency and throughput "
                      "were k6's",
        "limit": "nearest its limit at {where}: {component}, {used} of {limit} {unit} ({share})",
        "machine": "the machine: {used} of {limit} cores busy ({share}), k6 and the stack together",
        "limited": "k6 was the limit at {levels}: left out of the fit",
        "waits": "PostgreSQL's active backends there, by what they waited on: {waits}",
        "missing": "not run: {levels}",
        "x_closed": "concurrency (average VUs)", "x_open": "in flight (Little's law)",
        "throughput_chart": "Throughput against the load", "latency_chart": "Latency against "
        "the load", "measured": "measured", "fitted": "USL", "past_knee": "past the knee",
        "the_knee": "the knee", "the_last": "the last level",
    },
    "es": {
        "title": "Barrido de capacidad {name}", "levels": "Niveles",
        "closed": "VUs", "open": "req/s ofrecidas", "rps": "req/s", "usl": "USL req/s",
        "errors": "errores", "k6": "k6 límite", "busiest": "más ocupado",
        "queries": "consultas/pet.",
        "yes": "sí", "no": "no", "knee_mark": "{level} ← codo", "usage": "Uso de cada límite",
        "load": "{scenario}, {model}, {seconds} s por nivel; {ran} de {planned} niveles hechos",
        "model_closed": "modelo cerrado (VUs)", "model_open": "modelo abierto (req/s ofrecidas)",
        "fit": "Ajuste USL con {count} niveles ({levels}): λ = {lam} req/s por cliente, "
               "σ = {sigma} (contención), κ = {kappa} (coherencia), R² = {r2}",
        "peak": "pico previsto: {x} req/s con una concurrencia de {n}",
        "peak_far": "sin pico dentro del rango: el ajuste lo sitúa en una concurrencia de {n} "
                    "({x} req/s), más del doble del nivel más alto medido",
        "no_peak": "sin pico: κ es casi 0, el rendimiento se estabiliza hacia {x} req/s",
        "best": "mejor medido: {x} req/s con {level}; el techo del ajuste es el {share} de ese "
                "valor",
        "knee": "codo: pasado {level}, la latencia creció más rápido que el rendimiento",
        "no_knee": "sin codo: el rendimiento siguió el ritmo de la latencia hasta {level}",
        "no_knee_k6": "sin codo: k6 fue el límite en todos los niveles, así que latencia y "
                      "rendimiento fueron los de k6",
        "limit": "más cerca de su límite en {where}: {component}, {used} de {limit} {unit} "
                 "({share})",
        "machine": "la máquina: {used} de {limit} núcleos ocupados ({share}), k6 y la pila "
                   "juntos",
        "limited": "k6 fue el límite en {levels}: fuera del ajuste",
        "waits": "procesos activos de PostgreSQL allí, por lo que esperaban: {waits}",
        "missing": "sin hacer: {levels}",
        "x_closed": "concurrencia (VUs medios)", "x_open": "en curso (ley de Little)",
        "throughput_chart": "Rendimiento según la carga", "latency_chart": "Latencia según la "
        "carga", "measured": "medido", "fitted": "USL", "past_knee": "pasado el codo",
        "the_knee": "el codo", "the_last": "el último nivel",
    },
}
# Component names in Spanish (the others are program names, the same in both).
NAMES_ES = {"replicas": "réplicas", STACK_CPUS: "CPUs de la pila", MACHINE: "máquina",
            BALANCER_SLOTS: "plazas del balanceador", BALANCER_QUEUE: "cola del balanceador",
            PG_CONNECTIONS: "conexiones a PostgreSQL"}
UNITS = {"en": {"cores": "cores", "connections": "connections", "requests": "requests"},
         "es": {"cores": "núcleos", "connections": "conexiones", "requests": "peticiones"}}


def _name(component: str, lang: str) -> str:
    return NAMES_ES.get(component, component) if lang == "es" else component


# Components shown in the table of limits, in this order; others only count for the busiest.
SHOWN = ("replicas", "haproxy", "traefik", "postgres", "redis", STACK_CPUS, BALANCER_SLOTS,
         BALANCER_QUEUE, PG_CONNECTIONS, "k6", MACHINE)


def _level_text(sweep: Sweep, level: int, lang: str) -> str:
    unit = WORDS[lang][sweep.model]
    return f"{number(level, 0, lang)} {'VU' if unit == 'VUs' and level == 1 else unit}"


def sweep_tables(sweep: Sweep, lang: str = "en") -> list[BreakdownTable]:
    """The levels, and what each component used of its limit at each."""
    w = WORDS[lang]
    rows = tuple((
        w["knee_mark"].format(level=number(lv.level, 0, lang)) if lv.level == sweep.knee
        else number(lv.level, 0, lang),
        number(lv.requests_per_second, 0, lang),
        number(sweep.fit.throughput(lv.concurrency), 0, lang) if sweep.fit else "-",
        number(lv.p50_ms, 1, lang), number(lv.p95_ms, 1, lang), number(lv.p99_ms, 1, lang),
        percent(lv.error_rate, lang), w["yes"] if lv.generator_limited else w["no"],
        _busiest(lv.busiest, lang)) for lv in sweep.levels)
    levels = BreakdownTable(w["levels"], (w[sweep.model], w["rps"], w["usl"], "p50 ms",
                                          "p95 ms", "p99 ms", w["errors"], w["k6"],
                                          w["busiest"]), rows, text_columns=(0, 7, 8))
    if any(lv.queries_per_request is not None for lv in sweep.levels):
        levels = BreakdownTable(levels.title, (*levels.columns, w["queries"]), tuple(
            (*row, "-" if lv.queries_per_request is None else
             number(lv.queries_per_request, 3, lang))
            for row, lv in zip(levels.rows, sweep.levels, strict=True)), levels.text_columns)
    shown = [name for name in SHOWN if any(_find(lv, name) for lv in sweep.levels)]
    usage = BreakdownTable(w["usage"], (w[sweep.model], *(_name(n, lang) for n in shown)), tuple(
        (number(lv.level, 0, lang), *(_usage_cell(_find(lv, name), lang) for name in shown))
        for lv in sweep.levels))
    return [levels, usage] if shown else [levels]


def _find(level: SweepLevel, component: str) -> Usage | None:
    return next((u for u in level.usage if u.component == component), None)


def _usage_cell(usage: Usage | None, lang: str) -> str:
    if usage is None:
        return "-"
    decimals = 2 if usage.unit == "cores" else 0
    return f"{number(usage.used, decimals, lang)}/{number(usage.limit, 0, lang)} " \
           f"({percent(usage.share, lang, 0)})"


def _busiest(usage: Usage | None, lang: str) -> str:
    return "-" if usage is None else \
        f"{_name(usage.component, lang)} {percent(usage.share, lang, 0)}"


def sweep_lines(sweep: Sweep, lang: str = "en") -> list[str]:
    """The sentences: the load, the fit and its peak, the knee, what reached its limit."""
    w = WORDS[lang]
    lines = [w["load"].format(scenario=sweep.scenario, model=w[f"model_{sweep.model}"],
                              seconds=sweep.duration_seconds, ran=len(sweep.levels),
                              planned=len(sweep.planned))]
    lines += _fit_lines(sweep, lang)
    if sweep.levels:
        lines.append(_knee_line(sweep, lang))
        lines += _limit_lines(sweep, lang)
    limited = [lv.level for lv in sweep.levels if lv.generator_limited]
    if limited:
        lines.append(w["limited"].format(levels=", ".join(number(v, 0, lang) for v in limited)))
    missing = [v for v in sweep.planned
               if v not in {lv.level for lv in sweep.levels} and v not in sweep.problems]
    if missing:
        lines.append(w["missing"].format(levels=", ".join(number(v, 0, lang) for v in missing)))
    return lines + list(sweep.problems.values())


def _knee_line(sweep: Sweep, lang: str) -> str:
    w = WORDS[lang]
    if sweep.knee is not None:
        return w["knee"].format(level=_level_text(sweep, sweep.knee, lang))
    measured = [lv for lv in sweep.levels if not lv.generator_limited]
    if not measured:
        return w["no_knee_k6"]
    return w["no_knee"].format(level=_level_text(sweep, measured[-1].level, lang))


def _fit_lines(sweep: Sweep, lang: str) -> list[str]:
    w, fit = WORDS[lang], sweep.fit
    if fit is None:
        return [sweep.fit_note] if sweep.fit_note else []
    lines = [w["fit"].format(count=len(fit.levels_used), levels=", ".join(
        number(v, 0, lang) for v in fit.levels_used), lam=number(fit.lam, 1, lang),
        sigma=number(fit.sigma, 4, lang), kappa=f"{fit.kappa:.2e}",
        r2=number(fit.r_squared, 3, lang))]
    if fit.peak_concurrency is None or fit.peak_throughput is None:
        lines.append(w["no_peak"].format(x=number(fit.lam / fit.sigma, 0, lang))
                     if fit.sigma > 0 else w["no_peak"].format(x="∞"))
    else:
        key = "peak" if fit.peak_in_range else "peak_far"
        lines.append(w[key].format(x=number(fit.peak_throughput, 0, lang),
                                   n=number(fit.peak_concurrency, 0, lang)))
    best, ceiling = sweep.best, fit.ceiling
    if best is not None and best.requests_per_second and ceiling is not None:
        lines.append(w["best"].format(
            x=number(best.requests_per_second, 0, lang),
            level=_level_text(sweep, best.level, lang),
            share=percent(ceiling / best.requests_per_second, lang, 0)))
    return lines + ([sweep.fit_note] if sweep.fit_note else [])


def _limit_lines(sweep: Sweep, lang: str) -> list[str]:
    w, at = WORDS[lang], sweep.at_knee
    if at is None:
        return []
    where = f"{w['the_knee'] if sweep.knee is not None else w['the_last']} " \
            f"({_level_text(sweep, at.level, lang)})"
    lines = []
    if (first := sweep.first_limit) is not None:
        lines.append(w["limit"].format(where=where, component=_name(first.component, lang),
                                       used=number(first.used,
                                                   2 if first.unit == "cores" else 0, lang),
                                       limit=number(first.limit, 0, lang),
                                       unit=UNITS[lang].get(first.unit, first.unit),
                                       share=percent(first.share, lang, 0)))
    if at.pg_waits:
        lines.append(w["waits"].format(waits=waits_text(at.pg_waits, lang)))
    if (machine := _find(at, MACHINE)) is not None:
        lines.append(w["machine"].format(used=number(machine.used, 2, lang),
                                         limit=number(machine.limit, 0, lang),
                                         share=percent(machine.share, lang, 0)))
    return lines


# --- formats --------------------------------------------------------------------------------

def sweep_terminal(sweep: Sweep) -> Group:
    """Tables and sentences for the terminal (in English, as the run's tables)."""
    from alumnos_cli.report.render.terminal import text_table

    parts: list[RenderableType] = [Text(WORDS["en"]["title"].format(name=sweep.name),
                                        style="bold")]
    parts += [text_table(table) for table in sweep_tables(sweep)]
    parts += [Text.from_markup(f"• {escape(line)}") for line in sweep_lines(sweep)]
    return Group(*parts)


def sweep_markdown(sweep: Sweep, lang: str = "es") -> str:
    """The technical report's section on capacity."""
    from alumnos_cli.report.render.markdown import md_text

    out = [f"## {WORDS[lang]['title'].format(name=sweep.name)}", ""]
    out += [f"- {md_text(line)}" for line in sweep_lines(sweep, lang)]
    for table in sweep_tables(sweep, lang):
        out += ["", f"### {table.title}", "", f"| {' | '.join(table.columns)} |",
                "|" + "---|" * len(table.columns),
                *(f"| {' | '.join(md_text(cell) for cell in row)} |" for row in table.rows)]
    return "\n".join(out) + "\n"


def sweep_json(sweep: Sweep) -> str:
    """The sweep for machines: the levels with their usage, the fit, the knee, the limit."""
    return json.dumps({"schema_version": 1, "kind": "sweep", **asdict(sweep),
                       "best_level": sweep.best.level if sweep.best else None,
                       "first_limit": asdict(sweep.first_limit) if sweep.first_limit else None},
                      indent=2) + "\n"


def sweep_html(sweep: Sweep, lang: str = "es") -> str:
    """One page: the sentences, the tables, and the charts against the load."""
    from alumnos_cli.report.render.html import html_table, page

    w = WORDS[lang]
    body = f"<h1>{html.escape(w['title'].format(name=sweep.name))}</h1><ul>" + "".join(
        f"<li>{html.escape(line)}</li>" for line in sweep_lines(sweep, lang)) + "</ul>"
    body += "".join(f"<h2>{html.escape(t.title)}</h2>{html_table(t)}"
                    for t in sweep_tables(sweep, lang))
    return page(w["title"].format(name=sweep.name), body, {"charts": sweep_charts(sweep, lang)},
                lang)


def sweep_charts(sweep: Sweep, lang: str) -> list[dict[str, Any]]:
    """Throughput (measured, and the fitted law) and latency against the concurrency each
    level ran at, on a log scale; the span past the knee shaded."""
    w = WORDS[lang]
    # A log scale needs x above 0 and in order (an open level's in-flight requests need not
    # grow with the rate offered).
    levels = sorted((lv for lv in sweep.levels if lv.concurrency > 0),
                    key=lambda lv: lv.concurrency)
    x = [lv.concurrency for lv in levels]
    knee = next((lv.concurrency for lv in levels if lv.level == sweep.knee), None)
    bands = [{"label": w["past_knee"], "start": knee, "end": None}] if knee is not None else []

    def chart(title: str, series: list[tuple[str, list[float | None]]], unit: str) -> dict[
            str, Any]:
        return {"kind": "levels", "title": title, "note": "", "x": x,
                "x_label": w[f"x_{sweep.model}"], "x_legend": w[f"x_{sweep.model}"],
                "whole": False, "bands": bands,
                "series": [{"label": label, "values": values, "unit": unit}
                           for label, values in series]}

    throughput: list[tuple[str, list[float | None]]] = [
        (w["measured"], [lv.requests_per_second for lv in levels])]
    if sweep.fit is not None:
        throughput.append((w["fitted"], [sweep.fit.throughput(n) for n in x]))
    return [chart(w["throughput_chart"], throughput, " req/s"),
            chart(w["latency_chart"], [("p50", [lv.p50_ms for lv in levels]),
                                       ("p95", [lv.p95_ms for lv in levels]),
                                       ("p99", [lv.p99_ms for lv in levels])], " ms")]
