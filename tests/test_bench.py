"""alumnos bench with the real k6 against the real service, and the report of that run."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import asdict, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alumnos_cli.bench.request import BenchRequest
from alumnos_cli.bench.run import run_bench
from alumnos_cli.bench.verify import verify_target
from alumnos_cli.errors import K6Error, ServiceUnreachable
from alumnos_cli.main import app
from alumnos_cli.report.render.numbers import number
from alumnos_cli.report.summary import summary_figures
from alumnos_cli.seed.load import seed_alumnos
from alumnos_cli.settings import Settings
from alumnos_cli.stack import local
from alumnos_cli.stack.components import placement
from alumnos_cli.stack.cpus import available_cpus
from alumnos_cli.stack.options import LOCAL_PATTERNS, ServiceOptions
from alumnos_cli.stack.ports import free_block

pytestmark = pytest.mark.slow
runner = CliRunner()


@pytest.fixture
def stack(settings: Settings) -> Iterator[local.UpResult]:
    seed_alumnos(settings, count=500, seed=8)
    result = local.up(settings, ServiceOptions(port=free_block(18180, 3), replicas=2,
                                                     workers=1, blocking_threads=2))
    yield result
    local.down(settings)


def _cli(settings: Settings, *args: str) -> object:
    folders = ["--results-dir", str(settings.results_dir)]
    if args[0] == "bench":
        folders += ["--state-dir", str(settings.state_dir)]
    return runner.invoke(app, [*args, *folders], env={"COLUMNS": "200"})


def test_bench_runs_k6_stores_the_run_and_report_shows_it(stack: local.UpResult,
                                                         settings: Settings) -> None:
    result = _cli(settings, "bench", "--scenario", "smoke", "--vus", "2", "--duration", "3s")
    assert result.exit_code == 0, result.output
    [run_dir] = list(settings.results_dir.iterdir())
    meta = json.loads((run_dir / "meta.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert meta["status"] == "finished" and meta["k6_exit_code"] == 0
    assert meta["url"] == stack.state.service.url
    assert meta["rows"] == 500
    assert meta["stack"] == {"mode": "local", "replicas": 2, "workers": 1,
                             "blocking_threads": 2, "cache": True, "balancer": "haproxy",
                             "patterns": asdict(LOCAL_PATTERNS), "cpus": None,
                             "stack_id": stack.state.service.stack_id, "fault_injection": False}
    # The scenario as it ran, so the report never reads old runs with today's definitions.
    assert meta["scenario_definition"]["script"] == "smoke.js"
    assert meta["scenario_definition"]["stages"] == []
    assert meta["scenario_definition"]["request_path"].startswith("/api/v1/alumno/alumno?")
    assert meta["versions"]["k6"].startswith("v1.")
    assert meta["versions"]["postgresql"]
    assert meta["machine"]["cpu_count"] >= 1
    requests = summary["metrics"]["http_reqs"]["values"]["count"]
    assert requests > 10
    # What the stack did meanwhile: HAProxy counted every k6 request over the two replicas.
    server = json.loads((run_dir / "server.json").read_text())["summary"]
    assert set(server["requests_by_replica"]) == {"replica-1", "replica-2"}
    assert requests <= sum(server["requests_by_replica"].values()) <= requests + 5
    assert server["service_cores_avg"] > 0 and server["service_rss_mib_max"] > 20
    assert server["pg_connections_max"] >= 1
    # Only 200 counts as right (k6/lib/checks.js): none failed.
    assert summary["metrics"]["http_req_failed"]["values"]["rate"] == 0
    # The scenario's own requests (setup()'s 4 left out), each once in the breakdown that
    # bench read from k6's copy in the stack's Prometheus.
    own = summary["metrics"]["http_req_failed{scenario:smoke}"]["values"]
    assert own["passes"] + own["fails"] == requests - 4
    breakdown = json.loads((run_dir / "breakdown.json").read_text())
    assert breakdown["statuses"] == [{"status": "200", "requests": requests - 4}]
    assert breakdown["errors"] == []

    report = _cli(settings, "report")
    assert report.exit_code == 0, report.output
    assert f"{requests - 4:,}" in report.output
    assert "2 VUs for 3 s" in report.output
    assert "100.00%" in report.output  # 200 responses


def test_bench_refuses_a_target_that_is_not_the_service(settings: Settings) -> None:
    class NotAlumnos(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b"no such page")

        def log_message(self, *args: object) -> None:
            """Keep the test output quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotAlumnos)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = _cli(settings, "bench", "--url", url, "--duration", "2s")
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 1
    assert "is not a working alumnos service (HTTP 404)" in result.output
    assert not settings.results_dir.exists() or not any(settings.results_dir.iterdir())


def test_a_failing_k6_is_reported_and_its_run_marked_failed(
        stack: local.UpResult, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # k6 reads K6_* options from its environment; an invalid one makes the real k6 fail.
    monkeypatch.setenv("K6_VUS", "not-a-number")
    with pytest.raises(K6Error, match="k6 failed with exit code"):
        run_bench(settings, BenchRequest(scenario="smoke", vus=1, duration_seconds=2))
    [run_dir] = list(settings.results_dir.iterdir())
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "failed"
    report = _cli(settings, "report")
    assert report.exit_code == 1
    assert "has status 'failed'" in report.output


def test_spike_scenario_ramps_to_the_peak(stack: local.UpResult, settings: Settings) -> None:
    result = run_bench(settings, BenchRequest(scenario="spike", vus=5, duration_seconds=4))
    summary = json.loads((Path(result.run_dir) / "summary.json").read_text())
    assert summary["metrics"]["vus_max"]["values"]["max"] == 5
    assert result.thresholds_ok


def test_calibrate_runs_the_same_load_on_ping_and_report_gives_the_share(
        stack: local.UpResult, settings: Settings) -> None:
    result = _cli(settings, "bench", "--scenario", "smoke", "--vus", "2", "--duration", "2s",
                  "--calibrate")
    assert result.exit_code == 0, result.output
    [run_dir] = list(settings.results_dir.iterdir())
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["calibration"]["path"] == "/api/v1/ping"
    ping = json.loads((run_dir / "calibration" / "summary.json").read_text())
    # The scenarios' own requests, as the report counts them (setup()'s left out).
    ping_rate = summary_figures(ping, "ping").requests_per_second
    page_rate = summary_figures(json.loads((run_dir / "summary.json").read_text()),
                                "page").requests_per_second
    report = _cli(settings, "report")
    assert report.exit_code == 0, report.output
    assert f"{ping_rate:,.1f} req/s" in report.output
    assert f"{page_rate / ping_rate:.2f}" in report.output
    # Then the database's own ceiling: the service's page statement under pgbench alone.
    database = meta["calibration"]["database"]
    assert set(database) == {"queries_per_second", "clients", "seconds", "limit", "protocol"}, \
        database
    assert (database["clients"], database["seconds"], database["limit"]) == (8, 10, 100)
    script = (run_dir / "calibration" / "page.sql").read_text()
    assert script.startswith("\\set start random(1, ") and "string_agg(p.as_json" in script
    assert "LIMIT 100 OFFSET 0" in script
    assert "number of transactions actually processed" in \
        (run_dir / "calibration" / "pgbench.log").read_text()
    shown = _cli(settings, "report", "--format", "markdown")
    assert shown.exit_code == 0, shown.output
    assert f"- **PostgreSQL solo: la consulta de página (pgbench, 8 clientes, 10 s):** " \
           f"{number(database['queries_per_second'], 0, 'es')} consultas/s\n" in shown.output


def test_endpoint_scenario_loads_the_given_path(stack: local.UpResult, settings: Settings) -> None:
    path = "/api/v1/alumno/alumno?limit=10&offset=490"
    result = run_bench(settings, BenchRequest(scenario="endpoint", vus=2, duration_seconds=2,
                                              path=path))
    meta = json.loads((result.run_dir / "meta.json").read_text())
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert meta["path"] == path
    assert summary["metrics"]["http_req_failed"]["values"]["rate"] == 0
    assert summary["metrics"]["http_reqs"]["values"]["count"] > 2


def test_endpoint_scenario_draws_a_random_page_for_offset(
        stack: local.UpResult, settings: Settings) -> None:
    path = "/api/v1/alumno/alumno?limit=10&offset={offset}"
    result = run_bench(settings, BenchRequest(scenario="endpoint", vus=2, duration_seconds=2,
                                              path=path))
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert json.loads((result.run_dir / "meta.json").read_text())["path"] == path
    assert summary["metrics"]["http_req_failed"]["values"]["rate"] == 0
    assert summary["metrics"]["http_reqs"]["values"]["count"] > 2
    # Only a page of alumnos says how many offsets there are.
    with pytest.raises(K6Error, match=r"has no total and limit: \{offset\} applies to pages"):
        run_bench(settings, BenchRequest(scenario="endpoint", vus=1, duration_seconds=1,
                                         path="/api/v1/ping?at={offset}"))


@pytest.mark.parametrize("scenario", ["load", "stress", "soak", "pagination", "cache-cold"])
def test_each_scenario_runs_against_the_real_stack_with_all_checks_passing(
        stack: local.UpResult, settings: Settings, scenario: str) -> None:
    result = run_bench(settings, BenchRequest(scenario=scenario, vus=3, duration_seconds=3))
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["metrics"]["http_reqs"]["values"]["count"] > 3
    # Each VU's first page, and one in 100 after it, checked in full: rows, offset, ids, total.
    assert summary["metrics"]["verified_answers"]["values"]["count"] >= 3
    assert summary["metrics"]["checks"]["values"]["rate"] == 1
    assert summary["metrics"]["wrong_answers"]["values"]["count"] == 0
    assert result.thresholds_ok


def test_a_threshold_flag_that_fails_exits_99_as_k6_does(stack: local.UpResult,
                                                        settings: Settings) -> None:
    result = _cli(settings, "bench", "--scenario", "endpoint", "--vus", "2", "--duration", "2s",
                  "--p95", "0.001")
    assert result.exit_code == 99, result.output
    assert "thresholds failed" in result.output
    [run_dir] = list(settings.results_dir.iterdir())
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["thresholds"] == {"p95_ms": 0.001, "max_error_rate": 0.01}
    summary = json.loads((run_dir / "summary.json").read_text())
    # Judged on the scenario's own requests (setup()'s left out).
    assert summary["metrics"]["http_req_duration{scenario:endpoint}"]["thresholds"] == {
        "p(95)<0.001": {"ok": False}}


def test_open_model_repeated_runs_form_a_group_that_report_compares(
        stack: local.UpResult, settings: Settings) -> None:
    result = _cli(settings, "bench", "--scenario", "smoke", "--vus", "4", "--rate", "40",
                  "--duration", "2s", "--repeat", "2")
    assert result.exit_code == 0, result.output
    first, second = sorted(settings.results_dir.iterdir())
    metas = [json.loads((run / "meta.json").read_text()) for run in (first, second)]
    assert [m["model"] for m in metas] == ["open", "open"]
    assert [m["repeat"] for m in metas] == [{"group": first.name, "index": 1, "of": 2},
                                            {"group": first.name, "index": 2, "of": 2}]
    summary = json.loads((first / "summary.json").read_text())
    # 40 iterations/s for 2 s, whatever the server does (the open model)
    assert 60 <= summary["metrics"]["iterations"]["values"]["count"] <= 100
    assert metas[0]["load_generator"]["k6_cpu_seconds"] > 0
    compared = _cli(settings, "report", "--compare", first.name, second.name)
    assert compared.exit_code == 0, compared.output
    # two runs of one group: each side is its own run, and two runs cannot tell noise apart
    assert first.name in compared.output and second.name in compared.output
    assert "cannot tell" in compared.output


def test_a_service_whose_total_is_not_its_databases_is_refused(stack: local.UpResult) -> None:
    verify_target(stack.state.service.url, expected_total=500)  # the seeded rows
    with pytest.raises(ServiceUnreachable, match="reports 500 alumnos but its database holds 499"):
        verify_target(stack.state.service.url, expected_total=499)


@pytest.mark.parametrize(("flags", "message"), [
    (["--rate", "0"], "must be between 1 and 1,000,000 requests/s"),
    (["--max-error-rate", "2"], "is a share between 0 and 1"),
    (["--p95", "-5"], "must be a latency in ms above 0"),
    (["--repeat", "0"], "must be between 1 and 100"),
    (["--vus", "abc"], "Input should be a valid integer"),
    (["--duration", "soon"], "must look like 30s, 2m or 1m30s"),
    (["--scenario", "nope"], "'nope' is not one of 'smoke', 'load', 'spike'"),
    (["--path", "/api/v1/ping"], "applies to the endpoint scenario only"),
])
def test_bad_bench_flags_are_usage_errors_before_any_load(tmp_path: Path, flags: list[str],
                                                          message: str) -> None:
    result = runner.invoke(app, ["bench", "--url", "http://127.0.0.1:9", *flags,
                                 "--results-dir", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert "Usage: alumnos bench" in result.output and "Traceback" not in result.output
    assert message in result.output
    assert not any(tmp_path.iterdir())


def test_bench_list_describes_every_scenario() -> None:
    result = runner.invoke(app, ["bench", "--list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in ("smoke", "load", "spike", "stress", "soak", "pagination", "cache-cold",
                 "endpoint"):
        assert name in result.output
    assert "--rate N" in result.output


def test_each_part_is_measured_and_the_answers_verified(stack: local.UpResult,
                                                        settings: Settings) -> None:
    result = _cli(settings, "bench", "--scenario", "pagination", "--vus", "3", "--duration",
                  "3s", "--verify-sample", "5")
    assert result.exit_code == 0, result.output
    [run_dir] = list(settings.results_dir.iterdir())
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["verify_sample"] == 5
    assert meta["verification"] == {"before": "passed", "after": "passed", "sample": 5}
    costs = meta["costs"]
    assert costs["stack_measured"] and costs["requests"] > 10
    seconds = costs["cpu_seconds"]
    assert set(seconds) == {"replicas", "haproxy", "breaker", "postgresql", "redis", "k6"}
    assert seconds["replicas"] > 0 and seconds["haproxy"] > 0 and seconds["k6"] > 0
    assert costs["shared"] == ["postgresql", "redis"]  # the machine's own servers
    summary = json.loads((run_dir / "summary.json").read_text())
    checked = summary["metrics"]["verified_answers"]["values"]["count"]
    assert checked >= summary["metrics"]["http_reqs"]["values"]["count"] / 5 - 10
    report = _cli(settings, "report")
    assert "CPU per 1,000 requests" in report.output and "right answers throughout" in report.output
    markdown = _cli(settings, "report", "--format", "markdown")
    assert "### Verificación de las respuestas" in markdown.output
    assert "Servir 1.000 peticiones le costó a la pila" in markdown.output


def test_cross_check_runs_wrk_on_the_same_path_after_k6(stack: local.UpResult,
                                                        settings: Settings) -> None:
    result = _cli(settings, "bench", "--scenario", "endpoint", "--vus", "4", "--duration",
                  "2s", "--cross-check")
    assert result.exit_code == 0, result.output
    [run_dir] = list(settings.results_dir.iterdir())
    cross = json.loads((run_dir / "meta.json").read_text())["cross_check"]
    assert cross["tool"] == "wrk" and cross["path"] == "/api/v1/alumno/alumno?limit=100&offset=0"
    assert cross["requests_per_second"] > 0 and cross["non_2xx"] == 0
    assert cross["connections"] == 4 and cross["seconds"] == 10
    report = _cli(settings, "report")
    assert "wrk drove" in report.output and "k6's figure is" in report.output


def test_stack_and_generator_on_cpus_of_their_own(settings: Settings) -> None:
    cpus = available_cpus()
    if len(cpus) < 2:
        pytest.skip("needs two CPUs to keep the stack and the generator apart")
    seed_alumnos(settings, count=500, seed=8)
    stack_cpu, generator_cpu = cpus[-1], cpus[0]
    result = local.up(settings, ServiceOptions(port=free_block(18180, 3), replicas=2, workers=1,
                                               blocking_threads=2, cpus=(stack_cpu,)))
    cpuset = result.state.service.cpuset
    try:
        # What the kernel says: every process of the stack may run on its CPU only.
        assert placement(result.state) and all(
            sets == [[stack_cpu]] for sets in placement(result.state).values())
        if cpuset is not None:
            assert Path(cpuset, "cpuset.cpus").read_text().strip() == str(stack_cpu)
        bench = _cli(settings, "bench", "--scenario", "smoke", "--vus", "2", "--duration",
                     "2s", "--generator-cpus", str(generator_cpu))
        assert bench.exit_code == 0, bench.output
        [run_dir] = list(settings.results_dir.iterdir())
        pinned = json.loads((run_dir / "meta.json").read_text())["placement"]
        assert pinned["generator"] == {"cpus": [generator_cpu], "k6_allowed": [generator_cpu]}
        assert pinned["stack"]["cpus"] == [stack_cpu]
        assert "redis (a system service, not ours to pin)" in pinned["not_pinned"]
        shared = _cli(settings, "bench", "--scenario", "smoke", "--duration", "2s",
                      "--generator-cpus", str(stack_cpu))
        assert shared.exit_code == 2 and "shares CPU" in shared.output
    finally:
        local.down(settings)
    if cpuset is not None:
        assert not Path(cpuset).exists()


def test_what_the_balancer_refused_is_recorded_and_reported(settings: Settings) -> None:
    # One client over a low rate limit: the balancer answers part of its requests with 429.
    seed_alumnos(settings, count=500, seed=8)
    spec = replace(LOCAL_PATTERNS, rate_limit=True, rate_limit_average=50, rate_limit_burst=50)
    local.up(settings, ServiceOptions(port=free_block(18180, 3), replicas=2, workers=1,
                                      blocking_threads=2, patterns=spec))
    try:
        result = _cli(settings, "bench", "--scenario", "smoke", "--vus", "4", "--duration",
                      "3s")
        assert result.exit_code == 99, result.output  # the error-rate threshold failed
        [run_dir] = list(settings.results_dir.iterdir())
        meta = json.loads((run_dir / "meta.json").read_text())
        summary = json.loads((run_dir / "summary.json").read_text())
    finally:
        local.down(settings)
    failed = summary["metrics"]["http_req_failed"]["values"]["passes"]
    requests = summary["metrics"]["http_reqs"]["values"]["count"]
    balancer = meta["balancer"]
    # Every request k6 saw fail was a 429 of the balancer, and the watcher counted each one.
    assert failed > 0
    assert balancer["refused"] == {"no_replica": 0, "queue_timeout": 0, "queue_full": 0,
                                   "rate_limit": failed}
    assert balancer["responses"] == requests
    assert balancer["breaker_enabled"] and balancer["events"] == []
    server = json.loads((run_dir / "server.json").read_text())
    assert server["samples"][-1]["refused"] <= failed

    report = _cli(settings, "report")
    assert f"{failed:,} of {requests:,} responses" in report.output
    assert "over the rate limit (429)" in report.output
    assert "on: no replica taken out" in report.output
    markdown = _cli(settings, "report", "--format", "markdown")
    assert "### Balanceador y circuit breaker" in markdown.output
    assert "sobre el límite de tasa (429)" in markdown.output
    assert "El circuit breaker no sacó ninguna réplica." in markdown.output
    document = json.loads(_cli(settings, "report", "--format", "json").output)
    assert document["balancer"]["refused_total"] == failed
