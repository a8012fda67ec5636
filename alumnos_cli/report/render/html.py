"""One self-contained HTML page for a run (or a comparison): tables and interactive charts.

No network access is needed to open it: uPlot (vendored, assets/uplot/) and the script that
draws the charts with it are inlined, and the data is embedded as JSON. The charts have time
axes with rounded ticks, zoom (drag across; double-click resets) and a hover read-out in their
legends. A page is in one language, its `lang` attribute too. When the charts are drawn the
script sets `data-charts` on <body>; a script error is recorded in `data-errors` (the browser
test reads both).
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict
from typing import Any

from alumnos_cli.report.compare import Comparison
from alumnos_cli.report.model import GeneratorUsage, Proof, RunReport
from alumnos_cli.report.render.assets import page_script, page_style
from alumnos_cli.report.render.attribution import (
    cost_notes,
    cost_rows,
    cross_check_text,
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
from alumnos_cli.report.render.charts import chart_figures, comparison_charts, run_charts
from alumnos_cli.report.render.conclusion import conclusion_sentences
from alumnos_cli.report.render.generators import generators_notes, generators_table
from alumnos_cli.report.render.numbers import number, percent, relative, with_range
from alumnos_cli.report.render.page_text import TEXT, generator_text
from alumnos_cli.report.render.text import (
    describe_load,
    describe_stack,
    littles_law_text,
    server_side_rows,
)

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#1d2330;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #dde}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .8rem;text-align:left;
border-bottom:1px solid #eef}td.n{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#137333;font-weight:600}.fail{color:#b3261e;font-weight:600}
.warn{color:#8a5a00}.charts{display:grid;grid-template-columns:1fr 1fr;gap:1rem}
figure{margin:0;border:1px solid #e3e6ee;border-radius:6px;padding:.5rem;min-width:0}
figcaption{font-weight:600;font-size:.9rem;margin-bottom:.25rem}
.note{font-size:.8rem;color:#555;margin:0 0 .25rem}.plot{width:100%}
.uplot .u-legend{font-size:.8rem}.ejection{position:absolute;top:0;height:100%;
background:rgba(179,38,30,.12)}td.n{white-space:nowrap}td.t{max-width:760px}
"""

ERROR_HOOK = ("window.addEventListener('error',function(e){document.body.dataset.errors="
              "(document.body.dataset.errors||'')+e.message+';'});")


def page(title: str, body: str, data: dict[str, Any], lang: str = "en") -> str:
    """The page: `body`, then one figure per chart in `data["charts"]`, drawn by the script."""
    # No "<", ">" or "&" at all inside the script element: neither "</script>" nor "<!--"
    # from a run's text can change how the page is parsed (JSON reads the escapes back).
    payload = (json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
               .replace(">", "\\u003e").replace("&", "\\u0026"))
    figures = chart_figures(data.get("charts", []))
    return (f"<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{page_style()}{STYLE}</style>"
            f"<script>{ERROR_HOOK}</script></head>\n<body>\n{body}\n"
            f"<div id=\"charts\" class=\"charts\">{figures}</div>\n"
            f"<script type=\"application/json\" id=\"alumnos-data\">{payload}</script>\n"
            f"<script>{page_script()}</script>\n</body></html>\n")


def _table(rows: list[tuple[str, str]], header: tuple[str, ...] | None = None,
           *, numeric: bool = True) -> str:
    head = ("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
            if header else "")
    css = "n" if numeric else "t"
    cells = "".join(f"<tr><td>{html.escape(a)}</td><td class=\"{css}\">{b}</td></tr>"
                    for a, b in rows)
    return f"<table>{head}{cells}</table>"


def run_html(report: RunReport, lang: str = "es") -> str:
    """The page of one run, all its words in `lang` (its <html lang> too)."""
    t, meta = TEXT[lang], report.meta
    conclusion = " ".join(conclusion_sentences(report, lang))
    server, thresholds, checks = server_side_rows(report, lang), _thresholds(report, t), \
        _checks(report, t, lang)
    body = (f"<h1>{html.escape(t['title'].format(scenario=meta.scenario))} "
            f"<small>({html.escape(report.name)})</small></h1>"
            f"<h2>{t['configuration']}</h2>{_table(_configuration(report, t, lang), numeric=False)}"
            f"<h2>{t['results']}</h2>{_table(_results(report, t, lang))}"
            f"{_breakdown(report, lang)}{_generators(meta.generator, lang)}"
            f"{_attribution(report, t, lang)}"
            + (f"<h2>{t['server']}</h2>{_table(_escaped(server), numeric=False)}"
               if server else "")
            + (f"<h2>{t['balancer']}</h2>"
               f"{_table(_escaped(balancer_rows(meta.balancer, lang)), numeric=False)}"
               if meta.balancer else "")
            + (f"<h2>{t['thresholds']}</h2>{_table(thresholds)}" if thresholds else "")
            + (f"<h2>{t['patterns']}</h2>{_patterns(report.proof, t)}" if report.proof else "")
            + (f"<h2>{t['consistency']}</h2>{_table(checks, numeric=False)}" if checks else "")
            + f"<h2>{t['conclusion']}</h2><p>{_inline_code(conclusion)}</p>"
              f"<h2>{t['charts']}</h2>")
    data = {"run": report.name, "figures": asdict(report.figures),
            "charts": run_charts(report, lang)}
    return page(f"alumnos {report.name}", body, data, lang)


def _breakdown(report: RunReport, lang: str) -> str:
    """Per endpoint, per status and errors by type (or one line saying why there is none);
    the latency distribution is among the charts."""
    parts = f"<h2>{html.escape(breakdown_title(lang))}</h2>"
    tables = breakdown_tables(report.breakdown, lang, distribution=False) \
        if report.breakdown else []
    for table in tables:
        parts += f"<h3>{html.escape(table.title)}</h3>{html_table(table)}"
    return parts + _notes(breakdown_notes(report, lang))


def _generators(usage: GeneratorUsage | None, lang: str) -> str:
    """A split run's generators, one row each, and how to read them."""
    if usage is None or not usage.hosts:
        return ""
    table = generators_table(usage, lang)
    return (f"<h2>{html.escape(table.title)}</h2>{html_table(table)}"
            f"{_notes(generators_notes(usage, lang))}")


def html_table(table: BreakdownTable) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    rows = "".join("<tr>" + "".join(
        f"<td class=\"{'t' if i in table.text_columns else 'n'}\">{html.escape(cell)}</td>"
        for i, cell in enumerate(row)) + "</tr>" for row in table.rows)
    return f"<table><tr>{head}</tr>{rows}</table>"


def _notes(notes: list[str]) -> str:
    return "".join(f"<p class=\"note\">{html.escape(n)}</p>" for n in notes)


def _configuration(report: RunReport, t: dict[str, str], lang: str) -> list[tuple[str, str]]:
    meta = report.meta
    return [(t["scenario"], html.escape(f"{meta.scenario} ({meta.script})")),
            (t["load"], html.escape(describe_load(meta, lang))),
            (t["target"], html.escape(meta.url)),
            (t["rows"], number(meta.rows or 0, 0, lang)),
            (t["stack"], html.escape(describe_stack(meta.stack, lang)) if meta.stack else "-"),
            *([(t["cpus"], html.escape(placement_text(meta.placement, lang)))]
              if meta.placement else []),
            (t["started"], html.escape(meta.started_at)),
            (t["command"], f"<code>{html.escape(meta.command)}</code>")]


def _results(report: RunReport, t: dict[str, str], lang: str) -> list[tuple[str, str]]:
    figures, ceiling = report.figures, report.ceiling
    lat = figures.latency

    def ms(*values: float) -> str:
        return " / ".join(number(v, 1, lang) for v in values) + " ms"

    results = [(t["requests"], number(figures.requests, 0, lang)),
               (t["error_rate"], percent(figures.error_rate, lang)),
               (t["throughput"], number(figures.requests_per_second, 1, lang) + " req/s"),
               (t["latency_low"], ms(lat.avg, lat.p50, lat.p90)),
               (t["latency_high"], ms(lat.p95, lat.p99, lat.max)),
               (t["peak_vus"], number(figures.max_vus, 0, lang))]
    if figures.dropped_iterations:
        results.append((t["dropped"], number(figures.dropped_iterations, 0, lang)))
    if ceiling is not None and ceiling.requests_per_second:
        results.append((t["ceiling"], number(
            figures.requests_per_second / ceiling.requests_per_second, 2, lang)))
    return results


def _thresholds(report: RunReport, t: dict[str, str]) -> list[tuple[str, str]]:
    return [(f"{th.metric} {th.expression}", f"<span class=pass>{t['pass']}</span>" if th.ok
             else f"<span class=fail>{t['fail']}</span>") for th in report.figures.thresholds]


def _checks(report: RunReport, t: dict[str, str], lang: str) -> list[tuple[str, str]]:
    """Whether the figures hold together: Little's law, the load generator, a cross-check."""
    checks = []
    if report.little is not None:
        checks.append((t["little"], html.escape(littles_law_text(report.little, lang))))
    if report.generator is not None:
        css = "warn" if report.generator.limited else "pass"
        text = html.escape(generator_text(report.generator, lang))
        checks.append((t["generator"], f"<span class={css}>{text}</span>"))
    if report.meta.cross_check is not None:
        checks.append((t["cross"], html.escape(
            cross_check_text(report.meta.cross_check, report.figures, lang))))
    return checks


def _attribution(report: RunReport, t: dict[str, str], lang: str) -> str:
    """How the answers were verified, and what each part spent per 1,000 requests."""
    verification, costs = report.meta.verification, report.meta.costs
    parts = ""
    if verification is not None:
        rows = verification_rows(verification, report.figures.requests, lang)
        parts += f"<h2>{t['verification']}</h2>{_table(_escaped(rows), numeric=False)}"
    if costs is not None:
        head = f"<tr><th>{t['part']}</th><th>{t['cpu_s']}</th><th>{t['cpu_ms']}</th></tr>"
        cells = "".join(f"<tr><td>{html.escape(part)}</td><td class=n>{cpu}</td>"
                        f"<td class=n>{per_1000}</td></tr>"
                        for part, cpu, per_1000 in cost_rows(costs, lang))
        notes = "".join(f"<p>{html.escape(note)}</p>" for note in cost_notes(costs, lang))
        parts += f"<h2>{t['costs']}</h2><table>{head}{cells}</table>{notes}"
    return parts


def comparison_html(result: Comparison) -> str:
    """The page of a comparison: the table and the metrics side by side (in English, the
    language of the comparison's verdict and notes)."""
    a, b = result.baseline.label, result.candidate.label
    rows = "".join(
        f"<tr><td>{html.escape(r.metric)} ({r.unit})</td>"
        f"<td class=n>{with_range(r.baseline, r.baseline_range)}</td>"
        f"<td class=n>{with_range(r.candidate, r.candidate_range)}</td>"
        f"<td class=n>{relative(r.relative)}</td>"
        f"<td>{html.escape(r.verdict)}</td></tr>" for r in result.rows)
    notes = "".join(f"<li><b>{html.escape(n.label)}:</b> {html.escape(n.text)}</li>" if n.label
                    else f"<li>{html.escape(n.text)}</li>" for n in result.notes)
    body = (f"<h1>{html.escape(b)} against {html.escape(a)}</h1><table><tr><th>metric</th>"
            f"<th>{html.escape(a)}</th><th>{html.escape(b)}</th><th>difference</th>"
            f"<th>verdict</th></tr>{rows}</table><p><b>verdict:</b> "
            f"{html.escape(result.overall)}</p><ul>{notes}</ul><h2>Charts</h2>")
    return page(f"alumnos: {b} against {a}", body, {"charts": comparison_charts(result)},
                 "en")


def _inline_code(text: str) -> str:
    """The conclusion's `code` spans (written for markdown) as <code>."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts))


def _patterns(proof: Proof, t: dict[str, str]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(r.pattern)}</td><td>{html.escape(r.observed)}</td>"
        f"<td class={'pass' if r.verdict == 'pass' else 'fail'}>{html.escape(r.verdict)}"
        "</td></tr>" for r in proof.results)
    return (f"<table><tr><th>{t['pattern']}</th><th>{t['observed']}</th>"
            f"<th>{t['verdict']}</th></tr>{rows}</table>")


def _escaped(rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(label, html.escape(value)) for label, value in rows]
