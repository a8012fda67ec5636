"""What the HTML page charts, from which of the report's figures, in the page's language.

Each chart is a specification (kind, title, note, x values, series) that the page embeds as
JSON and assets/charts.js draws with uPlot: "time" charts over the run's seconds, "bars" charts
over labels. The titles and notes are rendered as HTML here, so they read without a script.
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Sequence
from typing import Any

from alumnos_cli.report.breakdown import coarser
from alumnos_cli.report.compare import Comparison
from alumnos_cli.report.model import RunReport, TimeSeries
from alumnos_cli.report.render.breakdown import bound_text
from alumnos_cli.report.render.numbers import number
from alumnos_cli.report.render.page_text import TEXT

Chart = dict[str, Any]
# Bars of the latency histogram: k6's buckets merged until at most this many remain.
HISTOGRAM_BARS = 40
Series = tuple[str, Sequence[float | None]]


def run_charts(report: RunReport, lang: str) -> list[Chart]:
    """The run's charts: its time series, the balancer's, the latency, requests per replica."""
    t = TEXT[lang]
    bands = [{"label": t["ejection"].format(replica=e.replica), "start": e.start_s,
              "end": e.end_s} for e in report.meta.balancer.ejections] \
        if report.meta.balancer else []
    charts = _over_time(report, report.timeseries, t, bands, lang) if report.timeseries else []
    balancer = _balancer_per_second(report)
    if balancer is not None:
        seconds, served, refused = balancer
        charts.append(_time(t, t["balancer_chart"], seconds,
                            [(t["served"], served), (t["refused"], refused)],
                            unit=t["requests_unit"], bands=bands))
    charts.append(latency_distribution(report, lang))
    by_replica = report.server.summary.requests_by_replica if report.server else {}
    if by_replica:
        charts.append(_bars(t, t["replicas_chart"], list(by_replica),
                            [(t["requests_series"], list(by_replica.values()))], whole=True))
    return charts


def latency_distribution(report: RunReport, lang: str) -> Chart:
    """The run's latency histogram (k6's native histogram, read from Prometheus into the
    breakdown), in at most HISTOGRAM_BARS bars; without one, the summary's percentiles, titled
    as what they are."""
    t = TEXT[lang]
    histogram = coarser(report.breakdown.histogram, HISTOGRAM_BARS) if report.breakdown else ()
    if histogram:
        return _bars(t, t["histogram_chart"],
                     [f"≤ {bound_text(bucket.upper_ms, lang)}" for bucket in histogram],
                     [(t["requests_series"], [bucket.requests for bucket in histogram])],
                     whole=True, note=t["histogram_note"])
    lat = report.figures.latency
    return _bars(t, t["summary_chart"], [t["avg"], "p50", "p90", "p95", "p99", t["max"]],
                 [(report.name, [lat.avg, lat.p50, lat.p90, lat.p95, lat.p99, lat.max])],
                 unit=" ms", note=t["summary_note"])


def comparison_charts(result: Comparison) -> list[Chart]:
    """The two sides' latency percentiles and throughput, bar beside bar (in English, as the
    comparison's verdict and notes are)."""
    t = TEXT["en"]
    a, b = result.baseline.label, result.candidate.label
    latency = [r for r in result.rows if r.metric.startswith("latency")]
    throughput = [r for r in result.rows if r.metric == "throughput"]
    return [
        _bars(t, "Latency (ms)", [r.metric.replace("latency ", "") for r in latency],
              [(a, [r.baseline for r in latency]), (b, [r.candidate for r in latency])],
              unit=" ms"),
        _bars(t, "Throughput (req/s)", ["req/s"],
              [(a, [r.baseline for r in throughput]), (b, [r.candidate for r in throughput])],
              unit=" req/s"),
    ]


def chart_figures(charts: list[Chart]) -> str:
    """One <figure> per chart, its title and note, for the script to draw into."""
    return "".join(
        f"<figure data-chart=\"{i}\" data-kind=\"{chart['kind']}\">"
        f"<figcaption>{html.escape(chart['title'])}</figcaption>"
        + (f"<p class=\"note\">{html.escape(chart['note'])}</p>" if chart["note"] else "")
        + "<div class=\"plot\"></div></figure>" for i, chart in enumerate(charts))


def _over_time(report: RunReport, series: TimeSeries, t: dict[str, str],
               bands: list[dict[str, Any]], lang: str) -> list[Chart]:
    seconds = series.seconds
    percent_unit = " %" if lang == "es" else "%"
    return [
        _time(t, t["throughput_chart"], seconds, [("req/s", series.requests_per_s)],
              unit=t["requests_unit"], bands=bands),
        _time(t, t["latency_chart"], seconds, [("p50", series.p50_ms), ("p95", series.p95_ms),
                                                ("p99", series.p99_ms)],
              unit=" ms", bands=bands, note=_latency_note(report, t)),
        _time(t, t["errors_chart"], seconds,
              [(t["errors"], [100 * share for share in series.errors])],
              unit=percent_unit, bands=bands),
        _vus(report, series, t, bands, lang),
    ]


def _latency_note(report: RunReport, t: dict[str, str]) -> str:
    """What the per-second percentiles are: each second's; with several generators, the
    highest of theirs; and where the whole run's distribution is, if it has one."""
    if report.meta.generator and report.meta.generator.hosts:
        return t["latency_note_split"]
    if report.breakdown and report.breakdown.histogram:
        return t["latency_note_histogram"]
    return t["latency_note"]


def _vus(report: RunReport, series: TimeSeries, t: dict[str, str],
         bands: list[dict[str, Any]], lang: str) -> Chart:
    """k6's active VUs; in the open model also the VUs it allocated, which the peak counts
    (a run at 300 requests/s of 1 ms each keeps 1 of its 20 VUs active)."""
    allocated = any(v is not None for v in series.vus_max)
    if report.meta.open_model and allocated:
        return _time(t, t["vus_chart"], series.seconds,
                     [(t["vus_allocated"], series.vus_max), (t["vus_active"], series.vus)],
                     whole=True, bands=bands,
                     note=t["vus_note"].format(vus=number(report.figures.max_vus, 0, lang)))
    return _time(t, t["vus_chart"], series.seconds, [(t["vus"], series.vus)], whole=True,
                 bands=bands)


def _time(t: dict[str, str], title: str, seconds: Sequence[float], series: list[Series], *,
          unit: str = "", note: str = "", whole: bool = False,
          bands: list[dict[str, Any]] | None = None) -> Chart:
    return {"kind": "time", "title": title, "note": note, "x": list(seconds),
            "x_label": t["x_label"], "x_legend": t["x_legend"], "whole": whole,
            "bands": bands or [], "series": [{"label": label, "values": list(values),
                                              "unit": unit} for label, values in series]}


def _bars(t: dict[str, str], title: str, labels: list[str], series: list[Series], *,
          unit: str = "", note: str = "", whole: bool = False) -> Chart:
    return {"kind": "bars", "title": title, "note": note, "labels": labels,
            "x_legend": t["measure"], "unit": unit, "whole": whole,
            "series": [{"label": label, "values": list(values)} for label, values in series]}


def _balancer_per_second(report: RunReport) -> tuple[list[float], list[float],
                                                       list[float]] | None:
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
    return seconds, served, refused
