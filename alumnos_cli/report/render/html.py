"""One self-contained HTML page for a run (or a comparison): tables and interactive charts.

No network access is needed to open it: the data is embedded as JSON and a small inline
script draws SVG charts (throughput, latency percentiles, errors and VUs over time, the
latency distribution, the comparison) with a hover read-out. When it has drawn them it sets
`data-charts` on <body>; a script error is recorded in `data-errors` (the browser test reads
both).
"""

from __future__ import annotations

import html
import itertools
import json
from dataclasses import asdict
from typing import Any

from alumnos_cli.report.compare import Comparison
from alumnos_cli.report.model import Proof, RunReport
from alumnos_cli.report.render.attribution import (
    cost_notes,
    cost_rows,
    cross_check_text,
    placement_text,
    verification_rows,
)
from alumnos_cli.report.render.balancer import balancer_rows
from alumnos_cli.report.render.conclusion import conclusion_sentences
from alumnos_cli.report.render.numbers import relative, with_range
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
figure{margin:0;border:1px solid #e3e6ee;border-radius:6px;padding:.5rem}
figcaption{font-weight:600;font-size:.9rem;margin-bottom:.25rem}
svg{width:100%;height:auto;display:block}.tip{font-size:.8rem;color:#444;min-height:1.2em}
.legend{font-size:.8rem}td.n{white-space:nowrap}td.t{max-width:760px}
"""

SCRIPT = r"""
(function () {
  const COLORS = ['#1a73e8', '#e8710a', '#d01884', '#188038', '#9334e6'];
  const data = JSON.parse(document.getElementById('alumnos-data').textContent);
  const W = 520, H = 230, L = 56, R = 12, T = 12, B = 30;
  const NS = 'http://www.w3.org/2000/svg';
  const el = (name, attrs, parent) => {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  };
  const fmt = (v) => v === null || v === undefined ? '-' :
    Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en') : (+v).toFixed(2);
  function frame(figure, title) {
    const cap = document.createElement('figcaption'); cap.textContent = title;
    figure.appendChild(cap);
    const svg = el('svg', {viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title}, figure);
    const tip = document.createElement('div'); tip.className = 'tip'; figure.appendChild(tip);
    return [svg, tip];
  }
  function axes(svg, xmax, ymax, xlabel) {
    el('line', {x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: '#999'}, svg);
    el('line', {x1: L, y1: T, x2: L, y2: H - B, stroke: '#999'}, svg);
    for (let i = 0; i <= 4; i++) {
      const y = H - B - (H - B - T) * i / 4;
      el('line', {x1: L, y1: y, x2: W - R, y2: y, stroke: '#eee'}, svg);
      el('text', {x: L - 6, y: y + 4, 'text-anchor': 'end', 'font-size': 10},
         svg).textContent = fmt(ymax * i / 4);
    }
    el('text', {x: W - R, y: H - 6, 'text-anchor': 'end', 'font-size': 10},
       svg).textContent = `${fmt(xmax)} ${xlabel}`;
  }
  function lineChart(figure, title, xs, series, unit) {
    const [svg, tip] = frame(figure, title);
    const values = series.flatMap((s) => s.values.filter((v) => v !== null));
    const xmax = Math.max(1, ...xs), ymax = (Math.max(0, ...values) || 1) * 1.05;
    axes(svg, xmax, ymax, 's');
    const px = (x) => L + (W - L - R) * Math.min(x, xmax) / xmax;
    const py = (y) => H - B - (H - B - T) * y / ymax;
    // Replicas the circuit breaker took out, as shaded spans of the timeline.
    for (const out of data.ejections || []) {
      const x0 = px(out.start_s), x1 = px(out.end_s === null ? xmax : out.end_s);
      const band = el('rect', {x: x0, y: T, width: Math.max(1, x1 - x0), height: H - B - T,
                               fill: '#b3261e', 'fill-opacity': 0.12, class: 'ejection'}, svg);
      el('title', {}, band).textContent = `${out.replica} out`;
    }
    series.forEach((s, i) => {
      let d = '';
      s.values.forEach((v, j) => {
        if (v === null) return;
        d += `${d ? 'L' : 'M'}${px(xs[j]).toFixed(1)},${py(v).toFixed(1)}`;
      });
      el('path', {d, fill: 'none', stroke: COLORS[i % COLORS.length], 'stroke-width': 1.8,
                  class: 'series', 'data-name': s.name,
                  'data-points': s.values.filter((v) => v !== null).length}, svg);
    });
    const cursor = el('line', {y1: T, y2: H - B, stroke: '#555', 'stroke-dasharray': '3,3',
                               visibility: 'hidden'}, svg);
    svg.addEventListener('mousemove', (event) => {
      const box = svg.getBoundingClientRect();
      const x = (event.clientX - box.left) / box.width * W;
      let j = 0;
      xs.forEach((v, k) => { if (Math.abs(px(v) - x) < Math.abs(px(xs[j]) - x)) j = k; });
      cursor.setAttribute('x1', px(xs[j])); cursor.setAttribute('x2', px(xs[j]));
      cursor.setAttribute('visibility', 'visible');
      tip.textContent = `${fmt(xs[j])} s: ` + series.map(
        (s) => `${s.name} ${fmt(s.values[j])}${unit}`).join(', ');
    });
    svg.addEventListener('mouseleave', () => cursor.setAttribute('visibility', 'hidden'));
    legend(figure, series.map((s) => s.name));
    tip.textContent = 'hover for values';
  }
  function legend(figure, names) {
    const box = document.createElement('div'); box.className = 'legend';
    names.forEach((name, i) => {
      const item = document.createElement('span');
      item.style.color = COLORS[i % COLORS.length];
      item.textContent = `\u25A0 ${name}  `;
      box.appendChild(item);
    });
    figure.insertBefore(box, figure.children[1]);
  }
  function barChart(figure, title, labels, groups, unit) {
    const [svg, tip] = frame(figure, title);
    const ymax = (Math.max(0, ...groups.flatMap((g) => g.values)) || 1) * 1.1;
    axes(svg, 0, ymax, '');
    const slot = (W - L - R) / labels.length, bar = slot * 0.7 / groups.length;
    labels.forEach((label, i) => {
      groups.forEach((g, k) => {
        const v = g.values[i], h = (H - B - T) * v / ymax;
        const rect = el('rect', {x: L + slot * i + slot * 0.15 + bar * k, y: H - B - h,
                                 width: bar, height: h, fill: COLORS[k % COLORS.length],
                                 class: 'bar', 'data-value': v}, svg);
        rect.addEventListener('mouseenter', () => {
          tip.textContent = `${label} (${g.name}): ${fmt(v)}${unit}`;
        });
      });
      el('text', {x: L + slot * (i + 0.5), y: H - B + 14, 'text-anchor': 'middle',
                  'font-size': 10}, svg).textContent = label;
    });
    legend(figure, groups.map((g) => g.name));
    tip.textContent = 'hover for values';
  }
  let drawn = 0;
  const charts = document.getElementById('charts');
  const add = () => { const f = document.createElement('figure'); charts.appendChild(f);
    drawn += 1; return f; };
  const ts = data.timeseries;
  if (ts && ts.seconds.length) {
    lineChart(add(), 'Throughput (req/s)', ts.seconds,
              [{name: 'req/s', values: ts.requests_per_s}], '');
    lineChart(add(), 'Latency percentiles (ms)', ts.seconds,
              [{name: 'p50', values: ts.p50_ms}, {name: 'p95', values: ts.p95_ms},
               {name: 'p99', values: ts.p99_ms}], ' ms');
    lineChart(add(), 'Errors (% of requests)', ts.seconds,
              [{name: 'errors', values: ts.errors.map((e) => 100 * e)}], '%');
    lineChart(add(), 'Virtual users', ts.seconds, [{name: 'VUs', values: ts.vus}], '');
  }
  const balancer = data.balancer_per_s;
  if (balancer && balancer.seconds.length) {
    lineChart(add(), 'At the balancer (req/s): served by a replica, refused', balancer.seconds,
              [{name: 'served', values: balancer.served},
               {name: 'refused', values: balancer.refused}], '');
  }
  for (const dist of data.distributions || []) {
    barChart(add(), dist.title, dist.labels, dist.groups, dist.unit);
  }
  document.body.dataset.charts = String(drawn);
})();
"""

ERROR_HOOK = ("window.addEventListener('error',function(e){document.body.dataset.errors="
              "(document.body.dataset.errors||'')+e.message+';'});")


def _page(title: str, body: str, data: dict[str, Any]) -> str:
    # No "<", ">" or "&" at all inside the script element: neither "</script>" nor "<!--"
    # from a run's text can change how the page is parsed (JSON reads the escapes back).
    payload = (json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
               .replace(">", "\\u003e").replace("&", "\\u0026"))
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style>"
            f"<script>{ERROR_HOOK}</script></head>\n<body>\n{body}\n"
            f"<div id=\"charts\" class=\"charts\"></div>\n"
            f"<script type=\"application/json\" id=\"alumnos-data\">{payload}</script>\n"
            f"<script>{SCRIPT}</script>\n</body></html>\n")


def _table(rows: list[tuple[str, str]], header: tuple[str, ...] | None = None,
           *, numeric: bool = True) -> str:
    head = ("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
            if header else "")
    css = "n" if numeric else "t"
    cells = "".join(f"<tr><td>{html.escape(a)}</td><td class=\"{css}\">{b}</td></tr>"
                    for a, b in rows)
    return f"<table>{head}{cells}</table>"


def run_html(report: RunReport, lang: str = "es") -> str:
    """The page of one run (its conclusion in `lang`)."""
    meta, figures, ceiling = report.meta, report.figures, report.ceiling
    lat = figures.latency
    config = [("scenario", html.escape(f"{meta.scenario} ({meta.script})")),
              ("load", html.escape(describe_load(meta))), ("target", html.escape(meta.url)),
              ("rows", f"{meta.rows or 0:,}"),
              ("stack", html.escape(describe_stack(meta.stack)) if meta.stack else "-"),
              *([("CPUs", html.escape(placement_text(meta.placement)))] if meta.placement
                else []),
              ("started", html.escape(meta.started_at)),
              ("command", f"<code>{html.escape(meta.command)}</code>")]
    results = [("total requests", f"{figures.requests:,}"),
               ("error rate", f"{figures.error_rate:.2%}"),
               ("throughput", f"{figures.requests_per_second:,.1f} req/s"),
               ("latency avg / p50 / p90", f"{lat.avg:,.1f} / {lat.p50:,.1f} / {lat.p90:,.1f} ms"),
               ("latency p95 / p99 / max", f"{lat.p95:,.1f} / {lat.p99:,.1f} / {lat.max:,.1f} ms"),
               ("peak VUs", f"{figures.max_vus:,}")]
    if figures.dropped_iterations:
        results.append(("dropped iterations", f"{figures.dropped_iterations:,}"))
    if ceiling is not None and ceiling.requests_per_second:
        results.append(("share of the ceiling (ping)",
                        f"{figures.requests_per_second / ceiling.requests_per_second:.2f}"))
    thresholds = [(f"{t.metric} {t.expression}", "<span class=pass>pass</span>" if t.ok
                   else "<span class=fail>FAIL</span>") for t in figures.thresholds]
    checks = []
    if report.little is not None:
        checks.append(("Little's law", html.escape(littles_law_text(report.little))))
    if report.generator is not None:
        css = "warn" if report.generator.limited else "pass"
        checks.append(("load generator",
                       f"<span class={css}>{html.escape(report.generator.text)}</span>"))
    if meta.cross_check is not None:
        checks.append(("cross-check",
                       html.escape(cross_check_text(meta.cross_check, report.figures))))
    conclusion = " ".join(conclusion_sentences(report, lang))
    body = (f"<h1>Load test: {html.escape(meta.scenario)} "
            f"<small>({html.escape(report.name)})</small></h1>"
            f"<h2>Configuration</h2>{_table(config, numeric=False)}"
            f"<h2>Results</h2>{_table(results)}{_attribution(report)}"
            + (f"<h2>Server side</h2>{_table(_escaped(server_side_rows(report)), numeric=False)}"
               if server_side_rows(report) else "")
            + (f"<h2>Balancer and circuit breaker</h2>"
               f"{_table(_escaped(balancer_rows(meta.balancer)), numeric=False)}"
               if meta.balancer else "")
            + (f"<h2>Thresholds</h2>{_table(thresholds)}" if thresholds else "")
            + (f"<h2>Patterns (alumnos patterns)</h2>{_patterns(report.proof)}"
               if report.proof else "")
            + (f"<h2>Consistency</h2>{_table(checks, numeric=False)}" if checks else "")
            + f"<h2>Conclusion</h2><p>{_inline_code(conclusion)}</p><h2>Charts</h2>")
    data = {"run": report.name, "figures": asdict(figures),
            "timeseries": asdict(report.timeseries) if report.timeseries else None,
            "distributions": _distributions(report),
            "ejections": [{"replica": e.replica, "start_s": e.start_s, "end_s": e.end_s}
                          for e in meta.balancer.ejections] if meta.balancer else [],
            "balancer_per_s": _balancer_per_second(report)}
    return _page(f"alumnos {report.name}", body, data)


def _balancer_per_second(report: RunReport) -> dict[str, list[float]] | None:
    """Each second at the balancer: requests the replicas served and requests it refused,
    from the server-side samples (HAProxy's counters: unlike k6's per-second figures, they
    keep their pace when the machine is saturated)."""
    samples = [s for s in report.server.samples if s.refused is not None] if report.server \
        else []
    if len(samples) < 2:
        return None
    seconds, served, refused = [], [], []
    for before, after in itertools.pairwise(samples):
        elapsed = max(after.t - before.t, 1e-3)
        seconds.append(after.t)
        served.append(max(0, sum(after.requests.values()) - sum(before.requests.values()))
                      / elapsed)
        refused.append(max(0, (after.refused or 0) - (before.refused or 0)) / elapsed)
    return {"seconds": seconds, "served": served, "refused": refused}


def _attribution(report: RunReport) -> str:
    """How the answers were verified, and what each part spent per 1,000 requests."""
    verification, costs = report.meta.verification, report.meta.costs
    parts = ""
    if verification is not None:
        rows = verification_rows(verification, report.figures.requests)
        parts += f"<h2>Answers verified</h2>{_table(_escaped(rows), numeric=False)}"
    if costs is not None:
        head = "<tr><th>part</th><th>CPU s</th><th>CPU ms per 1,000 requests</th></tr>"
        cells = "".join(f"<tr><td>{html.escape(part)}</td><td class=n>{cpu}</td>"
                        f"<td class=n>{per_1000}</td></tr>"
                        for part, cpu, per_1000 in cost_rows(costs))
        notes = "".join(f"<p>{html.escape(note)}</p>" for note in cost_notes(costs))
        parts += f"<h2>CPU per 1,000 requests</h2><table>{head}{cells}</table>{notes}"
    return parts


def _distributions(report: RunReport) -> list[dict[str, Any]]:
    lat = report.figures.latency
    distributions: list[dict[str, Any]] = [
        {"title": "Latency distribution (ms)",
         "labels": ["avg", "p50", "p90", "p95", "p99", "max"], "unit": " ms",
         "groups": [{"name": report.name, "values": [lat.avg, lat.p50, lat.p90, lat.p95,
                                                     lat.p99, lat.max]}]}]
    by_replica = report.server.summary.requests_by_replica if report.server else {}
    if by_replica:
        distributions.append({"title": "Requests per replica (HAProxy)",
                              "labels": list(by_replica), "unit": "",
                              "groups": [{"name": report.name,
                                          "values": list(by_replica.values())}]})
    return distributions


def comparison_html(result: Comparison) -> str:
    """The page of a comparison: the table and the metrics side by side."""
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
    latency = [r for r in result.rows if r.metric.startswith("latency")]
    throughput = [r for r in result.rows if r.metric == "throughput"]
    distributions = [
        {"title": "Latency (ms)", "labels": [r.metric.replace("latency ", "") for r in latency],
         "unit": " ms", "groups": [{"name": a, "values": [r.baseline for r in latency]},
                                   {"name": b, "values": [r.candidate for r in latency]}]},
        {"title": "Throughput (req/s)", "labels": ["req/s"], "unit": " req/s",
         "groups": [{"name": a, "values": [r.baseline for r in throughput]},
                    {"name": b, "values": [r.candidate for r in throughput]}]},
    ]
    return _page(f"alumnos: {b} against {a}", body,
                 {"timeseries": None, "distributions": distributions})


def _inline_code(text: str) -> str:
    """The conclusion's `code` spans (written for markdown) as <code>."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts))


def _patterns(proof: Proof) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(r.pattern)}</td><td>{html.escape(r.observed)}</td>"
        f"<td class={'pass' if r.verdict == 'pass' else 'fail'}>{html.escape(r.verdict)}"
        "</td></tr>" for r in proof.results)
    return f"<table><tr><th>pattern</th><th>observed</th><th>verdict</th></tr>{rows}</table>"


def _escaped(rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(label, html.escape(value)) for label, value in rows]

