"""k6 writing into Prometheus: the real k6 against a throwaway server, a real Prometheus."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from alumnos_cli.bench import run as bench_run
from alumnos_cli.bench.k6 import find_k6
from alumnos_cli.bench.remote_write import check_prometheus, remote_write_record
from alumnos_cli.bench.request import BenchRequest
from alumnos_cli.bench.run import run_scenario
from alumnos_cli.bench.scenarios import SCENARIOS, scripts_dir
from alumnos_cli.files import read_json
from alumnos_cli.main import app
from alumnos_cli.runfolder import (
    CALIBRATION_DIR,
    K6_LOG_FILE,
    K6_REPORT_FILE,
    SUMMARY_FILE,
    TIMESERIES_FILE,
)
from alumnos_cli.stack.ports import free_port
from tests.prometheus_server import (
    FASTEST_S,
    prometheus_installed,
    query,
    running_prometheus,
    scalar,
    slow_page,
)

pytestmark = pytest.mark.skipif(not prometheus_installed(),
                                reason="/usr/bin/prometheus is not installed "
                                "(bash scripts/system-packages)")
runner = CliRunner()
# The throwaway target answers after 5 to 50 ms (prometheus_server.SlowPage): a spread wide
# enough to cross about 30 of the native histogram's buckets, so a p95 read from them is a real
# estimate.
# Native histograms as k6 sends them are schema 3: 8 buckets per doubling, each bucket's upper
# bound 2^(1/8) = 1.0905 times its lower one. histogram_quantile only knows which bucket the
# 95th percentile falls in (it interpolates inside it), so it may be off k6's exact figure by
# up to one bucket's width: 9.05%. 10% allows that and a rank that lands in the neighbouring
# bucket when the p95 sits right on a boundary (then both are close to that boundary).
P95_TOLERANCE = 0.10
PATH = "/slow"


@pytest.fixture
def slow_server() -> Iterator[str]:
    with slow_page() as url:
        yield url


@pytest.fixture
def prometheus() -> Iterator[str]:
    with running_prometheus() as url:
        yield url


def _wait_for_a_lone_k6() -> None:
    """One load test at a time on this machine: wait while another k6 or wrk runs."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if not any(subprocess.run(["pgrep", "-x", name], capture_output=True,
                                  check=False).stdout for name in ("k6", "wrk")):
            return
        time.sleep(2)
    pytest.fail("another load generator ran for 10 minutes")


def _run(url: str, folder: Path, prometheus_url: str | None) -> dict[str, Any]:
    """A 5 s, 3-VU endpoint scenario on the slow page; k6's summary."""
    folder.mkdir()
    request = BenchRequest(scenario="endpoint", vus=3, duration_seconds=5, path=PATH,
                           url=url, prometheus_url=prometheus_url)
    _wait_for_a_lone_k6()
    outcome = run_scenario(find_k6(), scripts_dir() / SCENARIOS["endpoint"].script, request,
                           url, folder)
    assert outcome.exit_code == 0, (folder / K6_LOG_FILE).read_text()
    return read_json(folder / SUMMARY_FILE)


@pytest.mark.slow
def test_k6_writes_into_prometheus_what_its_summary_says(slow_server: str, prometheus: str,
                                                         tmp_path: Path) -> None:
    folder = tmp_path / "20260101T000000Z-endpoint"
    summary = _run(slow_server, folder, prometheus)
    metrics = summary["metrics"]
    one_run = '{run_id="20260101T000000Z-endpoint"}'

    # The run folder is written as without Prometheus: summary and time series, and k6's own
    # HTML report beside ours.
    assert (folder / TIMESERIES_FILE).stat().st_size > 0
    k6_report = (folder / K6_REPORT_FILE).read_text(errors="replace")
    assert "<!doctype html>" in k6_report.lower() and k6_report.rstrip().endswith("</html>")
    assert "Grafana Labs" in k6_report  # k6's own page (its dashboard's), not ours
    # A counter arrives exact: every request k6 counted, setup's included.
    requests = int(metrics["http_reqs"]["values"]["count"])
    assert requests > 100
    assert scalar(prometheus, f"sum(k6_http_reqs_total{one_run})") == requests
    # The trend arrives as a native histogram, one observation per request.
    latency = f"sum(k6_http_req_duration_seconds{one_run})"
    assert query(prometheus, f"k6_http_req_duration_seconds{one_run}")[0]["histogram"]
    assert scalar(prometheus, f"histogram_count({latency})") == requests
    # Its p95 is k6's within the histogram's resolution. The histogram has counted from zero
    # since the run began, so the last sample is the whole run: no increase() over a window,
    # which would leave out what arrived in k6's first push.
    k6_p95_s = metrics["http_req_duration"]["values"]["p(95)"] / 1000
    prometheus_p95_s = scalar(prometheus, f"histogram_quantile(0.95, {latency})")
    assert prometheus_p95_s is not None
    assert abs(prometheus_p95_s / k6_p95_s - 1) <= P95_TOLERANCE, (prometheus_p95_s, k6_p95_s)
    assert prometheus_p95_s >= FASTEST_S  # no answer comes sooner than the page sleeps

    record = remote_write_record(prometheus, folder)
    assert record == {"write_url": f"{prometheus}/api/v1/write", "label": "run_id",
                      "run_id": "20260101T000000Z-endpoint", "push_interval": "1s",
                      "trends": "native histograms", "failed_pushes": 0}


@pytest.mark.slow
def test_without_prometheus_k6_writes_nothing_there(slow_server: str, prometheus: str,
                                                    tmp_path: Path) -> None:
    folder = tmp_path / "run"
    summary = _run(slow_server, folder, prometheus_url=None)

    assert summary["metrics"]["http_reqs"]["values"]["count"] > 0
    assert query(prometheus, '{__name__=~"k6_.+"}') == []
    assert "Prometheus remote write" not in (folder / K6_LOG_FILE).read_text()
    assert remote_write_record(None, folder) is None


def test_failed_pushes_are_counted_from_both_logs_and_the_password_masked(
        tmp_path: Path) -> None:
    failed = ('time="..." level=error msg="Failed to send the time series data to the '
              'endpoint" error="connection refused" output="Prometheus remote write"\n')
    (tmp_path / CALIBRATION_DIR).mkdir()
    (tmp_path / K6_LOG_FILE).write_text(failed * 2)
    (tmp_path / CALIBRATION_DIR / K6_LOG_FILE).write_text("all well\n" + failed)

    record = remote_write_record("http://k6:s3cret@prometheus:9090/", tmp_path)

    assert record is not None
    assert record["failed_pushes"] == 3
    assert record["write_url"] == "http://k6:***@prometheus:9090/api/v1/write"
    assert record["calibration_run_id"] == f"{tmp_path.name}/{CALIBRATION_DIR}"


def test_a_prometheus_that_cannot_take_writes_is_said_in_one_line_before_any_load() -> None:
    with running_prometheus(accept_writes=False) as url:
        refused = check_prometheus(url)
    assert refused is not None and "does not take k6's writes" in refused
    assert "--web.enable-remote-write-receiver" in refused
    with running_prometheus() as url:
        assert check_prometheus(url) is None
        assert check_prometheus(f"{url}/api/v1/write") is None  # either form of the URL
    silent = check_prometheus(f"http://k6:s3cret@127.0.0.1:{free_port(19990)}")
    assert silent is not None and "does not answer" in silent
    assert "s3cret" not in silent and "k6:***@" in silent


def test_bench_takes_prometheus_from_the_flag_or_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[BenchRequest] = []

    def run_repeated(settings: object, request: BenchRequest, *args: object,
                     **kwargs: object) -> list[object]:
        asked.append(request)
        return []

    monkeypatch.setattr(bench_run, "run_repeated", run_repeated)
    common = ["bench", "--url", "http://127.0.0.1:9", "--results-dir", str(tmp_path)]
    env = {"COLUMNS": "200", "ALUMNOS_PROMETHEUS_URL": "http://127.0.0.1:9090"}

    assert runner.invoke(app, common, env=env).exit_code == 0
    flag = runner.invoke(app, [*common, "--prometheus", "http://10.0.0.5:9090"], env=env)
    bad = runner.invoke(app, [*common, "--prometheus", "10.0.0.5:9090"], env=env)

    assert flag.exit_code == 0, flag.output
    assert [r.prometheus_url for r in asked] == ["http://127.0.0.1:9090", "http://10.0.0.5:9090"]
    assert bad.exit_code == 2, bad.output
    assert "must start with http:// or https://, got '10.0.0.5:9090'" in bad.output

