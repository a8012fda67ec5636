"""The run broken down per endpoint, per status and per error type, from k6's copy in Prometheus.

k6 writes every sample into Prometheus with the tags the report reads (k6/lib/config.js
SYSTEM_TAGS: name, status, expected_response, error_code, scenario) and the run's `run_id`
(remote_write.py): right after the load `bench` asks Prometheus for the run's counters by
those labels and keeps the answers in the run folder (breakdown.json), so that the report
renders after Prometheus is gone. It costs k6 nothing more; without a Prometheus that took
k6's writes (`--prometheus off`) the run has no breakdown and the report says so.

Only samples with a `scenario` label count: setup()'s requests have none, as in the figures.
Counters count from the run's start, so their last value is the whole run (no increase()).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alumnos_cli.bench.remote_write import RUN_LABEL, base_url, run_id
from alumnos_cli.bench.server_prometheus import PrometheusUnreadable, Window, prometheus_api
from alumnos_cli.files import write_json
from alumnos_cli.report.breakdown import NO_PROMETHEUS
from alumnos_cli.runfolder import BREAKDOWN_FILE
from alumnos_cli.settings import mask_password

# Percentiles per endpoint, from the native histogram k6 writes (within one bucket, 9%).
QUANTILES = {"p50_ms": 0.5, "p95_ms": 0.95, "p99_ms": 0.99, "p999_ms": 0.999}
# query_range answers at most 11,000 points; a 6-hour run at one a second would exceed it.
MAX_POINTS = 10_000


@dataclass(frozen=True)
class Selection:
    """The run's own samples and how far back to look for them."""

    run: str
    seconds: int

    def series(self, metric: str, extra: str = "") -> str:
        """The metric's series of the run's scenario."""
        labels = f'{RUN_LABEL}="{self.run}",scenario!=""' + (f",{extra}" if extra else "")
        return f"{metric}{{{labels}}}"

    def of(self, metric: str, extra: str = "") -> str:
        """Each series at its last value in the run: k6 pushes a series only when it has new
        samples, so one that stopped early (an error of the first minute) is older than
        Prometheus's 5-minute lookback by the end of a long run."""
        return f"last_over_time({self.series(metric, extra)}[{self.seconds}s])"


REQUESTS = "k6_http_reqs_total"
DURATION = "k6_http_req_duration_seconds"
WRONG = "k6_wrong_answers_total"
FAILED = 'expected_response="false"'
WITH_CODE = 'error_code!=""'


def queries(selection: Selection) -> dict[str, str]:
    """Every PromQL query the breakdown asks, by what it answers."""
    # Prometheus 2.42 (Debian 12's) gives nothing for last_over_time of a native histogram:
    # the latest sample within its lookback, which leaves out a series idle for its last
    # 5 minutes (the percentiles only; the counts above are whole).
    by_name = f"sum by (name) ({selection.series(DURATION)})"
    return {
        "requests_by_name": f"sum by (name) ({selection.of(REQUESTS)})",
        "failed_by_name": f"sum by (name) ({selection.of(REQUESTS, FAILED)})",
        "requests_by_status": f"sum by (status) ({selection.of(REQUESTS)})",
        **{f"{key}_by_name": f"histogram_quantile({q}, {by_name})"
           for key, q in QUANTILES.items()},
        # Errors by type: each status that is not 200, each k6 error code, each check's reason.
        "status": f"sum by (status) ({selection.of(REQUESTS, FAILED)})",
        "error_code": f"sum by (error_code) ({selection.of(REQUESTS, WITH_CODE)})",
        "check": f"sum by (wrong) ({selection.of(WRONG)})",
        # The whole run's latencies, every endpoint and status together: the distribution.
        "histogram": f"sum({selection.series(DURATION)})",
    }


ERROR_LABELS = {"status": "status", "error_code": "error_code", "check": "wrong"}


def read_breakdown(base: str, folder: Path, window: Window) -> dict[str, Any]:
    """What Prometheus holds of the run: counts by label at the end, and for each error type
    the first second its counter was above zero."""
    seconds = math.ceil(window.end - window.start) + 60
    asked = queries(Selection(run_id(folder), seconds))
    at_end = {name: prometheus_api(base, "query", {"query": promql, "time": f"{window.end:.3f}"})
              for name, promql in asked.items()}
    step = max(1, math.ceil((window.end - window.start) / MAX_POINTS))
    errors = []
    for kind, label in ERROR_LABELS.items():
        over_time = prometheus_api(base, "query_range", {
            "query": asked[kind], "start": f"{window.start:.3f}", "end": f"{window.end:.3f}",
            "step": str(step)})
        first = {item["metric"].get(label, ""): _first_above_zero(item["values"], window.start)
                 for item in over_time}
        errors += [{"kind": kind, "key": key, "count": round(count), "first_s": first.get(key)}
                   for key, count in sorted(_by(at_end[kind], label).items())]
    return {"window": {"start": window.start, "end": window.end}, "queries": asked,
            "endpoints": _endpoints(at_end), "histogram": _histogram(at_end["histogram"]),
            "statuses": [
                {"status": status, "requests": round(count)}
                for status, count in sorted(_by(at_end["requests_by_status"], "status").items())],
            "errors": errors}


def _endpoints(at_end: dict[str, Any]) -> list[dict[str, Any]]:
    requests = _by(at_end["requests_by_name"], "name")
    failed = _by(at_end["failed_by_name"], "name")
    quantiles = {key: _by(at_end[f"{key}_by_name"], "name") for key in QUANTILES}
    return [{"name": name, "requests": round(count), "failed": round(failed.get(name, 0.0)),
             **{key: _ms(values.get(name)) for key, values in quantiles.items()}}
            for name, count in sorted(requests.items())]


def _histogram(result: list[dict[str, Any]]) -> list[list[float]]:
    """The native histogram's buckets as [lower ms, upper ms, requests], lowest first. The
    API gives each bucket's own count (not cumulative) and its bounds as strings; k6's zero
    bucket (latencies under its threshold) reaches below 0, which no latency does."""
    if not result or "histogram" not in result[0]:
        return []
    buckets = result[0]["histogram"][1].get("buckets") or []
    return sorted([max(0.0, _ms_of(lower)), _ms_of(upper), round(float(count))]
                  for _, lower, upper, count in buckets if float(count) > 0)


def _ms_of(seconds: str) -> float:
    return round(float(seconds) * 1000, 6)


def _by(result: list[dict[str, Any]], label: str) -> dict[str, float]:
    """An instant vector's values by one label."""
    return {item["metric"].get(label, ""): float(item["value"][1]) for item in result}


def _ms(seconds: float | None) -> float | None:
    if seconds is None or math.isnan(seconds):
        return None
    return round(seconds * 1000, 3)


def _first_above_zero(values: list[list[Any]], start: float) -> float | None:
    """Seconds from the load's start to the first point above zero (k6 pushes once a second,
    so this is to the second)."""
    for moment, value in values:
        if float(value) > 0:
            return round(max(0.0, float(moment) - start), 1)
    return None


def record_breakdown(prometheus_url: str | None, run_dir: Path,
                     window: Window) -> dict[str, Any]:
    """Read the run's breakdown into its folder; what meta.json says of it."""
    if prometheus_url is None:
        return {"missing": NO_PROMETHEUS}
    base = base_url(prometheus_url)
    shown = mask_password(base)
    try:
        read = read_breakdown(base, run_dir, window)
    except PrometheusUnreadable as exc:
        return {"url": shown, "missing": f"no breakdown: {mask_password(str(exc))}"}
    write_json(run_dir / BREAKDOWN_FILE, {"url": shown, **read})
    return {"url": shown, "missing": None}
