"""The breakdown from a real k6 run through a real Prometheus: every request of the scenario
counted once per status, setup()'s left out, the errors by type with their first second."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from alumnos_cli.bench.breakdown import record_breakdown
from alumnos_cli.bench.k6 import find_k6
from alumnos_cli.bench.request import BenchRequest
from alumnos_cli.bench.run import run_scenario
from alumnos_cli.bench.scenarios import SCENARIOS, scripts_dir
from alumnos_cli.bench.server_prometheus import Window
from alumnos_cli.files import read_json
from alumnos_cli.report.breakdown import parse_breakdown
from alumnos_cli.report.summary import summary_figures
from alumnos_cli.report.timeseries import read_timeseries
from alumnos_cli.runfolder import BREAKDOWN_FILE, K6_LOG_FILE, SUMMARY_FILE, TIMESERIES_FILE
from tests import test_remote_write
from tests.prometheus_server import FASTEST_S, FLAKY_PATH
from tests.test_remote_write import P95_TOLERANCE, _wait_for_a_lone_k6

# The remote-write tests' throwaway Prometheus and target (its /flaky path), and their skip
# without /usr/bin/prometheus.
pytestmark = test_remote_write.pytestmark
prometheus = test_remote_write.prometheus
slow_server = test_remote_write.slow_server
SECONDS = 4


@pytest.mark.slow
def test_the_breakdown_counts_the_scenarios_requests_as_k6_does(
        slow_server: str, prometheus: str, tmp_path: Path) -> None:
    folder = tmp_path / "20260101T000000Z-endpoint"
    folder.mkdir()
    # A 4 s, 3-VU endpoint run on a page that answers one request in ten with a 503; the
    # error threshold is loosened so that k6 exits 0.
    request = BenchRequest(scenario="endpoint", vus=3, duration_seconds=SECONDS,
                           path=FLAKY_PATH, url=slow_server, prometheus_url=prometheus,
                           max_error_rate=0.5)
    _wait_for_a_lone_k6()
    started = time.time()
    outcome = run_scenario(find_k6(), scripts_dir() / SCENARIOS["endpoint"].script, request,
                           slow_server, folder)
    ended = time.time()
    assert outcome.exit_code == 0, (folder / K6_LOG_FILE).read_text()
    assert record_breakdown(prometheus, folder, Window(started, ended))["missing"] is None

    summary = read_json(folder / SUMMARY_FILE)
    figures = summary_figures(summary, SUMMARY_FILE)
    breakdown = parse_breakdown(read_json(folder / BREAKDOWN_FILE), BREAKDOWN_FILE)
    # setup() made one request (endpoint.js): in k6's whole metric, not in the figures.
    assert summary["metrics"]["http_reqs"]["values"]["count"] == figures.requests + 1
    statuses = {row.status: row.requests for row in breakdown.statuses}
    assert sum(statuses.values()) == figures.requests > 50
    failed = round(figures.error_rate * figures.requests)
    assert statuses["503"] == failed > 0
    [endpoint] = breakdown.endpoints
    assert (endpoint.name, endpoint.requests, endpoint.failed) == ("endpoint",
                                                                   figures.requests, failed)
    quantiles = [endpoint.p50_ms, endpoint.p95_ms, endpoint.p99_ms, endpoint.p999_ms]
    assert None not in quantiles and quantiles == sorted(quantiles)
    # The scenario's p95, as k6 computed it exactly, within one bucket of the histogram's.
    assert endpoint.p95_ms is not None
    assert abs(endpoint.p95_ms / figures.latency.p95 - 1) <= P95_TOLERANCE
    # The whole run's distribution: every request in one bucket, none sooner than the page
    # answers, and k6's exact p95 in the bucket where 95% have been counted (or the next).
    histogram = breakdown.histogram
    assert sum(bucket.requests for bucket in histogram) == figures.requests
    assert histogram[0].upper_ms >= FASTEST_S * 1000
    counted, p95_bucket = 0, histogram[-1]
    for bucket in histogram:
        counted += bucket.requests
        if counted >= 0.95 * figures.requests:
            p95_bucket = bucket
            break
    width = 2 ** (1 / 8)
    assert p95_bucket.lower_ms / width <= figures.latency.p95 <= p95_bucket.upper_ms * width
    errors = {(e.kind, e.key): e for e in breakdown.errors}
    assert set(errors) == {("status", "503"), ("error_code", "1503")}
    for error in errors.values():
        assert error.count == failed
        assert error.first_s is not None and 0 <= error.first_s <= ended - started
    # p(99.9) asked of k6 leaves its per-second recording as the report reads it.
    series = read_timeseries(folder / TIMESERIES_FILE)
    assert series is not None and any(p95 is not None for p95 in series.p95_ms)
