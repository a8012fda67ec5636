"""Prometheus and the standard exporters beside the local stack, for real."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from alumnos_cli.errors import AlumnosError
from alumnos_cli.main import app
from alumnos_cli.seed.load import seed_alumnos
from alumnos_cli.settings import Settings
from alumnos_cli.stack import local, monitoring, supervisor
from alumnos_cli.stack.options import ServiceOptions
from alumnos_cli.stack.ports import free_block, free_port
from alumnos_cli.stack.state import MonitoringRecord
from tests import prometheus_server

pytestmark = pytest.mark.slow


@pytest.fixture
def options() -> ServiceOptions:
    return ServiceOptions(port=free_block(18300, 3), replicas=2, workers=2, blocking_threads=2,
                          prometheus_port=free_port(19190))


def query(record: MonitoringRecord, promql: str) -> list[dict[str, Any]]:
    """An instant query's result vector."""
    return prometheus_server.query(record.url, promql)


def wait_for(record: MonitoringRecord, promql: str, want: int,
             timeout: float = 30.0) -> list[dict[str, Any]]:
    """The query's result once it has `want` series (scrapes come once a second)."""
    deadline = time.monotonic() + timeout
    result = query(record, promql)
    while len(result) < want and time.monotonic() < deadline:
        time.sleep(0.5)
        result = query(record, promql)
    return result


def _listening_addresses(pid: int) -> set[str]:
    """The local addresses of the TCP sockets a process listens on."""
    inodes = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and f"socket:[{fields[9]}]" in inodes:  # 0A: LISTEN
                found.add(fields[1].rsplit(":", 1)[0])
    return found


def test_every_target_is_scraped_and_everything_listens_on_loopback_only(
        stack: local.UpResult, settings: Settings) -> None:
    record = stack.state.service.monitoring
    assert record is not None
    expected = sum(len(targets) for targets in record.targets.values())
    assert expected == 2 + 1 + 1 + len(monitoring.EXPORTERS)  # replicas, Prometheus, HAProxy
    up = wait_for(record, "up == 1", expected)
    assert sorted(r["metric"]["job"] for r in up) == sorted(
        job for job, targets in record.targets.items() for _ in targets)
    loopback = {"0100007F"}  # 127.0.0.1 as /proc/net/tcp writes it
    for program in supervisor.programs_info(settings.state_dir.resolve()):
        assert _listening_addresses(program.pid) <= loopback, program.name
    status = CliRunner().invoke(app, ["status", "--state-dir", str(settings.state_dir)],
                                env={"COLUMNS": "200"})
    assert f"{expected} of {expected} targets up" in status.output


def test_each_replica_is_one_series_whichever_worker_answers(stack: local.UpResult) -> None:
    record = stack.state.service.monitoring
    assert record is not None
    for _ in range(40):  # through the balancer: both replicas, both workers of each
        urllib.request.urlopen(f"{stack.state.service.url}/api/v1/alumno/alumno?limit=5",
                               timeout=5).read()
    series = wait_for(record, 'alumnos_http_requests_total{route="/api/v1/alumno/alumno"}', 2)
    assert sorted(s["metric"]["replica"] for s in series) == ["replica-1", "replica-2"]
    assert all("worker" not in s["metric"] for s in series)  # no per-pid series
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # until a scrape after the last request
        total = sum(float(s["value"][1]) for s in query(
            record, 'alumnos_http_requests_total{route="/api/v1/alumno/alumno"}'))
        if total == 40:
            break
        time.sleep(0.5)
    assert total == 40


def test_the_breaker_and_each_component_are_in_prometheus(stack: local.UpResult) -> None:
    record = stack.state.service.monitoring
    assert record is not None
    states = wait_for(record, 'alumnos_breaker_state{state="closed"} == 1', 2)
    assert sorted(s["metric"]["replica"] for s in states) == ["replica-1", "replica-2"]
    assert len(wait_for(record, "alumnos_breaker_ejections_total", 2)) == 2
    groups = {s["metric"]["groupname"] for s in wait_for(
        record, "namedprocess_namegroup_num_procs > 0", 5)}
    assert {"replica-1", "replica-2", "haproxy", "breaker", "prometheus"} <= groups
    # Each replica counts its Granian workers with it: the master and two workers.
    procs = query(record, 'namedprocess_namegroup_num_procs{groupname="replica-1"}')
    assert float(procs[0]["value"][1]) >= 3
    assert wait_for(record, "haproxy_backend_active_servers", 1)
    assert wait_for(record, "pg_up == 1", 1)
    assert wait_for(record, "redis_up == 1", 1)


def test_bench_writes_into_the_stacks_prometheus_unless_told_off(
        stack: local.UpResult, settings: Settings) -> None:
    from dataclasses import replace

    from alumnos_cli.bench.request import BenchRequest
    from alumnos_cli.bench.run import run_bench
    from alumnos_cli.files import read_json

    record = stack.state.service.monitoring
    assert record is not None
    request = BenchRequest(scenario="spike", vus=3, duration_seconds=3)
    written = run_bench(settings, request)
    meta = read_json(written.run_dir / "meta.json")
    assert meta["prometheus"]["write_url"] == f"{record.url}/api/v1/write"
    assert meta["prometheus"]["failed_pushes"] == 0
    summary = read_json(written.run_dir / "summary.json")
    one = f'{{run_id="{written.run_dir.name}"}}'
    counted = query(record, f"sum(k6_http_reqs_total{one})")
    assert float(counted[0]["value"][1]) == summary["metrics"]["http_reqs"]["values"]["count"]
    silent = run_bench(settings, replace(request, prometheus_url="off"))
    assert read_json(silent.run_dir / "meta.json")["prometheus"] is None
    assert query(record, f'k6_http_reqs_total{{run_id="{silent.run_dir.name}"}}') == []


def test_the_reports_server_side_is_read_from_prometheus_and_agrees_with_the_balancer(
        stack: local.UpResult, settings: Settings) -> None:
    from alumnos_cli.bench.request import BenchRequest
    from alumnos_cli.bench.run import run_bench
    from alumnos_cli.report.read import read_run
    from alumnos_cli.stack import haproxy

    socket_path = Path(stack.state.service.runtime_socket or "")

    def served() -> dict[str, int]:
        return {s.name: s.requests for s in haproxy.server_stats(socket_path)}

    before = served()
    result = run_bench(settings, BenchRequest(scenario="spike", vus=10, duration_seconds=6))
    after = served()
    balancer = {name: after[name] - before.get(name, 0) for name in after}
    report = read_run(result.run_dir)
    assert report.server is not None and report.server_missing is None
    summary = report.server.summary
    assert summary.source == "prometheus"
    read = summary.requests_by_replica
    # The balancer's counters also saw the verification before and after the load (a few
    # requests), which the load's window leaves out.
    assert abs(sum(read.values()) - sum(balancer.values())) <= 0.005 * sum(balancer.values())
    for name, count in balancer.items():
        assert abs(read[name] / sum(read.values()) - count / sum(balancer.values())) <= 0.01
    assert {"replica-1", "replica-2", "haproxy"} <= set(summary.cores_by_component)
    assert summary.pg_connections_max is not None and summary.redis_hits is not None
    assert summary.cache_hit_ratio is not None and report.server.samples
    local.down(settings)  # Prometheus and its data are gone: the run folder has what was read
    rendered = CliRunner().invoke(app, ["report", result.run_dir.name, "--results-dir",
                                        str(settings.results_dir), "--format", "markdown"])
    assert rendered.exit_code == 0, rendered.output
    assert "Prometheus, en la ventana de la carga" in rendered.output  # markdown: Spanish


def test_another_stacks_prometheus_without_the_runs_series_is_one_line_and_the_report(
        stack: local.UpResult, settings: Settings) -> None:
    from alumnos_cli.bench.request import BenchRequest
    from alumnos_cli.bench.run import run_bench
    from alumnos_cli.report.read import read_run
    from tests.prometheus_server import running_prometheus

    # A replica is an alumnos service that is not the stack `up` recorded: another stack, as
    # far as bench knows, with a Prometheus that scrapes nothing of it.
    replica = stack.state.service.replicas[0].url
    with running_prometheus() as elsewhere:
        result = run_bench(settings, BenchRequest(scenario="spike", vus=2, duration_seconds=2,
                                                  url=replica, prometheus_url=elsewhere))
    report = read_run(result.run_dir)
    assert report.server is None
    assert report.server_missing is not None
    assert "has no series for this run's window" in report.server_missing
    assert report.figures.requests > 0  # the rest of the report is there


def test_a_prometheus_that_does_not_answer_is_one_line_and_the_rest_of_the_run(
        stack: local.UpResult, settings: Settings) -> None:
    from alumnos_cli.report.read import read_run

    replica = stack.state.service.replicas[0].url
    nowhere = f"http://127.0.0.1:{free_port(19590)}"
    ran = CliRunner().invoke(app, [
        "bench", "--scenario", "spike", "--vus", "2", "--duration", "2s", "--url", replica,
        "--prometheus", nowhere, "--results-dir", str(settings.results_dir),
        "--state-dir", str(settings.state_dir)], env={"COLUMNS": "300"})
    assert ran.exit_code == 0, ran.output
    # k6 wrote nowhere, and nothing of the server side could be read: two lines, and a run.
    lines = [line for line in ran.output.splitlines() if line.startswith("not in this run: ")]
    assert len(lines) == 2, ran.output
    assert all(f"Prometheus does not answer at {nowhere}" in line for line in lines)
    report = read_run(sorted(settings.results_dir.glob("*-spike"))[-1])
    assert report.server is None
    assert report.server_missing is not None and "k6 wrote nowhere" in report.server_missing
    assert report.figures.requests > 0


def test_report_reads_a_runs_server_side_later_from_the_prometheus_it_names(
        stack: local.UpResult, settings: Settings) -> None:
    from alumnos_cli.bench.request import BenchRequest
    from alumnos_cli.bench.run import run_bench
    from alumnos_cli.files import read_json
    from alumnos_cli.report.read import read_run

    record = stack.state.service.monitoring
    assert record is not None
    # Straight to a replica, as if to a stack someone else runs: no server side during the run.
    replica = stack.state.service.replicas[0]
    result = run_bench(settings, BenchRequest(scenario="spike", vus=4, duration_seconds=4,
                                              url=replica.url))
    assert read_run(result.run_dir).server is None

    def report(prometheus: str) -> Any:
        return CliRunner().invoke(app, ["report", result.run_dir.name, "--results-dir",
                                        str(settings.results_dir), "--prometheus", prometheus],
                                  env={"COLUMNS": "300"})

    files, meta = sorted(result.run_dir.iterdir()), (result.run_dir / "meta.json").read_text()
    nowhere = f"http://127.0.0.1:{free_port(19590)}"
    unread = report(nowhere)
    assert unread.exit_code == 0, unread.output
    assert f"not read: Prometheus does not answer at {nowhere}" in unread.output
    assert "Server side" in unread.output  # the rest of the report, saying what is missing
    assert sorted(result.run_dir.iterdir()) == files
    assert (result.run_dir / "meta.json").read_text() == meta
    # Read once the window is history, as a later report does (not the wait for a scrape).
    from alumnos_cli.bench.server_prometheus import SCRAPE_WAIT_SECONDS
    ended = json.loads(meta)["server_side"]["window"]["end"]
    time.sleep(max(0.0, ended + SCRAPE_WAIT_SECONDS + 1 - time.time()))
    read = report(record.url)
    assert read.exit_code == 0, read.output
    assert f"server side read from {record.url}" in read.output
    server = read_run(result.run_dir).server
    assert server is not None
    k6 = read_run(result.run_dir).figures.requests
    served = server.summary.requests_by_replica
    # The window ends at the first scrape after the load: the verification after the load
    # may fall inside it (a few requests), never the check before it.
    assert k6 <= served[replica.name] <= k6 + 20, served
    assert read_json(result.run_dir / "meta.json")["server_side"]["read_by"] == "report"
    again = report(record.url)
    assert again.exit_code != 0
    assert "already has its server side" in again.output


@pytest.mark.skipif(os.geteuid() != 0, reason="Debian's services would run as root's choice")
def test_installing_the_packages_left_no_system_service_running() -> None:
    try:
        pwd.getpwnam("prometheus")
    except KeyError:
        pytest.skip("Debian's prometheus user does not exist: the packages are not installed")
    # Debian's own units run as the user `prometheus`; ours run as the stack's user.
    found = subprocess.run(["pgrep", "-u", "prometheus", "-a"], capture_output=True, text=True,
                           check=False)
    assert found.stdout == ""


def test_without_prometheus_nothing_of_it_runs(settings: Settings,
                                               options: ServiceOptions) -> None:
    seed_alumnos(settings, count=100, seed=2)
    result = local.up(settings, ServiceOptions(**{**options.__dict__, "prometheus": False}))
    try:
        names = {p.name for p in supervisor.programs_info(settings.state_dir.resolve())}
        assert names == {"replica-1", "replica-2", "haproxy", "breaker"}
        assert result.state.service.monitoring is None
        status = CliRunner().invoke(app, ["status", "--state-dir", str(settings.state_dir)],
                                    env={"COLUMNS": "200"})
        assert "prometheus" not in status.output.lower()
        from alumnos_cli.bench.request import BenchRequest
        from alumnos_cli.bench.run import run_bench

        run = run_bench(settings, BenchRequest(scenario="spike", vus=2, duration_seconds=2))
        shown = CliRunner().invoke(app, ["report", run.run_dir.name, "--results-dir",
                                         str(settings.results_dir), "--format", "markdown"])
        assert shown.exit_code == 0, shown.output
        assert "no leído:** the stack runs without Prometheus" in shown.output
    finally:
        local.down(settings)


def test_a_taken_prometheus_port_is_refused_before_anything_starts(
        settings: Settings, options: ServiceOptions) -> None:
    import socket

    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", options.prometheus_port))
        holder.listen()
        with pytest.raises(AlumnosError, match="--prometheus-port"):
            local.up(settings, options)
    assert supervisor.programs_info(settings.state_dir.resolve()) == []


def test_an_exporter_that_cannot_start_is_named_with_its_log(
        settings: Settings, options: ServiceOptions, monkeypatch: pytest.MonkeyPatch) -> None:
    # A broken install: the node exporter on PATH exits at once with a message.
    folder = Path(tempfile.mkdtemp(prefix="alumnos-test-bin-"))
    try:
        folder.chmod(0o755)  # the service user must reach it
        fake = folder / "prometheus-node-exporter"
        fake.write_text("#!/bin/sh\necho 'node exporter: cannot read /proc' >&2\nexit 3\n")
        fake.chmod(0o755)
        monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
        seed_alumnos(settings, count=100, seed=2)
        with pytest.raises(AlumnosError) as refused:
            local.up(settings, options)
        assert "node-exporter did not start" in refused.value.message
        assert "cannot read /proc" in refused.value.message
        assert supervisor.programs_info(settings.state_dir.resolve()) == []
    finally:
        for item in folder.iterdir():
            item.unlink()
        folder.rmdir()


def test_a_missing_binary_says_how_to_install_it() -> None:
    with pytest.raises(AlumnosError, match="not installed") as missing:
        monitoring.find_binary("prometheus-no-such-exporter")
    assert "--no-prometheus" in missing.value.hint
