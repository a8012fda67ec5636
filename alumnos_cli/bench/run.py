"""Benchmark runs: verify the target, run a k6 scenario, keep everything in a run folder."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

from alumnos_cli.bench.balancer import balancer_record, watcher_view
from alumnos_cli.bench.breakdown import record_breakdown
from alumnos_cli.bench.costs import run_costs, snapshot
from alumnos_cli.bench.crosscheck import run_wrk
from alumnos_cli.bench.db_ceiling import database_ceiling_record
from alumnos_cli.bench.generators.abort import AbortRule
from alumnos_cli.bench.generators.run import run_distributed
from alumnos_cli.bench.generators.spec import refuse_loopback_target
from alumnos_cli.bench.k6 import (
    THRESHOLDS_FAILED,
    K6Outcome,
    LiveSample,
    find_k6,
    recording_env,
    run_k6,
)
from alumnos_cli.bench.metadata import compose_stack_metadata, now, placement, run_metadata
from alumnos_cli.bench.queries import queries_record, start_counting
from alumnos_cli.bench.remote_write import (
    check_prometheus,
    chosen_prometheus,
    remote_write_args,
    remote_write_env,
    remote_write_record,
)
from alumnos_cli.bench.request import BenchRequest, validate
from alumnos_cli.bench.scenarios import (
    SCENARIOS,
    default_max_error_rate,
    default_p95_ms,
    default_verify_sample,
    scripts_dir,
)
from alumnos_cli.bench.server_prometheus import Window, record_server_side, window_start
from alumnos_cli.bench.server_source import server_source, stack_prometheus
from alumnos_cli.bench.verify import verify_target
from alumnos_cli.database import row_count
from alumnos_cli.errors import AlumnosError, K6Error, ServiceUnreachable
from alumnos_cli.files import read_json, write_json
from alumnos_cli.report.summary import summary_figures
from alumnos_cli.runfolder import (
    CALIBRATION_DIR,
    K6_LOG_FILE,
    META_FILE,
    SUMMARY_FILE,
    new_run_dir,
)
from alumnos_cli.settings import Settings
from alumnos_cli.stack import compose
from alumnos_cli.stack.fault_files import refuse_injected_faults
from alumnos_cli.stack.processes import log_tail
from alumnos_cli.stack.state import StackState, running_state
from alumnos_service.paths import PING_PATH


@dataclass(frozen=True)
class BenchResult:
    """Where the run was stored, whether its thresholds held and its answers stayed right."""

    run_dir: Path
    thresholds_ok: bool
    verification_failed: str | None = None  # what was wrong with the target after the load
    missing: tuple[str, ...] = ()  # what Prometheus could not take or give, one line each


def target_url(settings: Settings, url: str | None, state: StackState | None) -> str:
    """The URL to load: --url, else the stack that `up` started (`state`, when it runs)."""
    if url:
        return url.rstrip("/")
    if state is not None:
        return state.service.url
    record = compose.load(settings.state_dir)
    if record is not None:
        return record.url
    raise ServiceUnreachable("no running stack to benchmark",
                             "start one with alumnos up, or pass --url")


def run_repeated(settings: Settings, request: BenchRequest, repeat: int,
                 on_sample: Callable[[LiveSample], None] | None = None,
                 on_run: Callable[[int], None] | None = None) -> list[BenchResult]:
    """The same run `repeat` times, each in its own folder, grouped for the report."""
    validate(request, repeat)
    results: list[BenchResult] = []
    group = None
    for index in range(1, repeat + 1):
        if on_run is not None:
            on_run(index)
        series = {"group": group, "index": index, "of": repeat} if repeat > 1 else None
        result = run_bench(settings, request, on_sample, series=series)
        group = group or result.run_dir.name
        if index == 1 and series is not None:
            _name_group(result.run_dir, group)
        results.append(result)
    return results


def _name_group(run_dir: Path, group: str) -> None:
    """The first run of a series names the group after itself, once its folder exists."""
    meta = read_json(run_dir / META_FILE)
    meta["repeat"]["group"] = group
    write_json(run_dir / META_FILE, meta)


def _our_stack(state: StackState | None, url: str) -> StackState | None:
    """The stack `up` started, when it is the target."""
    return state if state is not None and state.service.url == url else None


def run_bench(settings: Settings, request: BenchRequest,
              on_sample: Callable[[LiveSample], None] | None = None,
              series: dict[str, Any] | None = None) -> BenchResult:
    """Verify the target, run k6, verify again, and store everything in a new run folder:
    summary, log, metadata, the server side, what each part spent, the cross-check."""
    validate(request)
    running = running_state(settings.state_dir)
    url = target_url(settings, request.url, running)
    refuse_loopback_target(url, request.generators)
    stack = _our_stack(running, url)
    if stack is not None:
        refuse_injected_faults(stack)
    expected_total = row_count(stack.database_url) if stack else None
    verify_target(url, expected_total)
    record = compose.load(settings.state_dir) if stack is None else None
    if record is not None and record.url != url:
        record = None
    source = server_source(request.prometheus_url, stack, record)
    request = replace(request, prometheus_url=chosen_prometheus(
        request.prometheus_url, stack_prometheus(stack, record)))
    # A Prometheus that cannot take k6's writes costs the run its copy there, not the run.
    unwritable = check_prometheus(request.prometheus_url) if request.prometheus_url else None
    if unwritable is not None:
        request = replace(request, prometheus_url=None)
    binary = find_k6()
    script = scripts_dir() / SCENARIOS[request.scenario].script
    run_dir = new_run_dir(settings.results_dir, request.scenario)
    meta = run_metadata(settings, request, binary=binary, script=script, url=url,
                        running=running, ours=stack)
    meta["repeat"] = series
    if record is not None:
        meta["stack"] = compose_stack_metadata(record)
    write_json(run_dir / META_FILE, meta)
    before, watched_before = snapshot(stack), watcher_view(stack, after=time.time())
    load_started = window_start(source.url)
    database = stack.database_url if stack else (record.database_url or None) if record else None
    counting = start_counting(database)
    outcome = _load(binary, script, request, url, run_dir, on_sample, meta)
    load_ended = time.time()
    after = snapshot(stack)
    meta["queries"] = queries_record(counting)
    # Read now, before the verification after the load adds requests of its own.
    meta["server_side"] = record_server_side(
        source.url, Window(load_started, load_ended),
        make_url(stack.database_url).database if stack else None, run_dir, source.why_none,
        source.scope)
    # k6's own samples in Prometheus: per endpoint, status and error type (breakdown.py).
    meta["breakdown"] = record_breakdown(request.prometheus_url, run_dir,
                                         Window(load_started, load_ended))
    meta["balancer"] = balancer_record(
        watched_before, watcher_view(stack, after=load_ended), started=load_started,
        ended=load_ended, breaker_enabled=bool(stack and stack.service.patterns.circuit_breaker))
    finished = outcome.exit_code in (0, THRESHOLDS_FAILED) and (run_dir / SUMMARY_FILE).exists()
    if finished:
        meta["verification"] = _verified_after(url, expected_total, request)
        meta["costs"] = run_costs(before, after, requests=_requests(run_dir), state=stack,
                                  k6_cpu_seconds=float(outcome.usage["k6_cpu_seconds"]))
        meta["placement"] = placement(stack, request, outcome)
    calibration = _calibrate(binary, script, request, url, run_dir, on_sample, meta,
                             database) if request.calibrate and finished else None
    if request.cross_check and finished:
        meta["cross_check"] = asdict(run_wrk(url, request.path or SCENARIOS[request.scenario]
                                             .request_path, request.vus,
                                             request.generator_cpus))
    meta["finished_at"] = now()
    meta["k6_exit_code"] = outcome.exit_code
    meta["load_generator"] = outcome.usage
    meta["prometheus"] = remote_write_record(request.prometheus_url, run_dir) or (
        {"missing": unwritable} if unwritable else None)
    failed = [(folder, o) for folder, o in [(run_dir, outcome), (run_dir / CALIBRATION_DIR,
                                                                  calibration)]
              if o is not None and (not (folder / SUMMARY_FILE).exists()
                                    or o.exit_code not in (0, THRESHOLDS_FAILED))]
    meta["status"] = "failed" if failed else "finished"
    write_json(run_dir / META_FILE, meta)
    if failed:
        _, bad = failed[0]
        raise K6Error(f"k6 failed with exit code {bad.exit_code}: {log_tail(bad.log)}",
                      f"full log in {bad.log}")
    verified = meta["verification"]["after"] == PASSED
    return BenchResult(run_dir=run_dir, thresholds_ok=outcome.exit_code == 0 and verified,
                       verification_failed=None if verified else meta["verification"]["after"],
                       missing=_missing(meta, asked=source.url is not None))


def _load(binary: Path, script: Path, request: BenchRequest, url: str, run_dir: Path,
          on_sample: Callable[[LiveSample], None] | None, meta: dict[str, Any]) -> K6Outcome:
    """The load: k6 here, or split over the generator hosts. A split run that fails keeps
    what the hosts sent back, and its folder says `partial`."""
    if not request.generators:
        return run_scenario(binary, script, request, url, run_dir, on_sample)
    try:
        return run_distributed(
            binary, script, script_settings(request, url, None, SUMMARY_FILE),
            request.generators, run_dir, prometheus_url=request.prometheus_url,
            ssh_config=Path(request.ssh_config) if request.ssh_config else None,
            timeseries=request.timeseries, on_sample=on_sample, abort=_abort_rule(request))
    except BaseException:
        meta["status"], meta["finished_at"] = "partial", now()
        write_json(run_dir / META_FILE, meta)
        raise


def _abort_rule(request: BenchRequest) -> AbortRule | None:
    """A stress run's thresholds, which the controller judges on the whole split load."""
    if not SCENARIOS[request.scenario].aborts:
        return None
    return AbortRule(request.scenario, request.p95_ms or default_p95_ms(),
                     request.max_error_rate or default_max_error_rate())


def _missing(meta: dict[str, Any], *, asked: bool) -> tuple[str, ...]:
    """What the user is told the run lacks: k6's copy in Prometheus, and (when a Prometheus
    was there to read) server-side figures."""
    lines = [(meta.get("prometheus") or {}).get("missing"),
             meta["server_side"].get("missing") if asked else None]
    return tuple(line for line in lines if line)


def _calibrate(binary: Path, script: Path, request: BenchRequest, url: str, run_dir: Path,
               on_sample: Callable[[LiveSample], None] | None,
               meta: dict[str, Any], database: str | None) -> K6Outcome:
    """The same load on the ping endpoint: this machine's ceiling, in the run's folder; then
    the page statement under pgbench alone: the database's."""
    folder = run_dir / CALIBRATION_DIR
    folder.mkdir()
    outcome = run_scenario(binary, script, request, url, folder, on_sample, path=PING_PATH)
    meta["calibration"] = {"path": PING_PATH, "folder": CALIBRATION_DIR,
                           "k6_exit_code": outcome.exit_code,
                           "database": database_ceiling_record(database, folder)}
    return outcome


PASSED = "passed"


def _verified_after(url: str, expected_total: int | None,
                    request: BenchRequest) -> dict[str, Any]:
    """The target verified in full again, right after the load; what was sampled during it."""
    try:
        verify_target(url, expected_total)
        after = PASSED
    except AlumnosError as exc:
        after = exc.message
    return {"before": PASSED, "after": after,
            "sample": request.verify_sample or default_verify_sample()}


def _requests(run_dir: Path) -> int:
    """The scenario's requests (setup()'s left out), as the report counts them."""
    path = run_dir / SUMMARY_FILE
    return summary_figures(read_json(path), str(path)).requests


def run_scenario(binary: Path, script: Path, request: BenchRequest, url: str, folder: Path,
                 on_sample: Callable[[LiveSample], None] | None = None,
                 path: str | None = None, extra_env: dict[str, str] | None = None,
                 extra_args: tuple[str, ...] = ()) -> K6Outcome:
    """Run one k6 test of `request` against `url`, its summary and log in `folder`."""
    env = dict(os.environ, **script_settings(request, url, path,
                                             str((folder / SUMMARY_FILE).resolve())),
               K6_NO_USAGE_REPORT="true")
    if request.timeseries:
        env.update(recording_env(folder))
    if request.prometheus_url is not None:
        env.update(remote_write_env(request.prometheus_url))
        extra_args = (*remote_write_args(folder), *extra_args)
    env.update(extra_env or {})
    return run_k6(binary, script, env, folder / K6_LOG_FILE, on_sample, extra_args,
                  cpus=request.generator_cpus)


def script_settings(request: BenchRequest, url: str, path: str | None,
                    summary_path: str) -> dict[str, str]:
    """What the k6 scripts read from __ENV (k6/lib/config.js): the target, the load, the
    thresholds, where handleSummary writes."""
    settings = {"BASE_URL": url, "VUS": str(request.vus),
                "DURATION": f"{request.duration_seconds}s", "SUMMARY_PATH": summary_path,
                "COLD_START": f"{random.random():.6f}"}
    if request.rate:
        settings["RATE"] = f"{request.rate:g}"
    if request.p95_ms is not None:
        settings["THRESHOLD_P95_MS"] = f"{request.p95_ms:g}"
    if request.max_error_rate is not None:
        settings["THRESHOLD_ERROR_RATE"] = f"{request.max_error_rate:g}"
    target = path or request.path
    if target:
        settings["TARGET_PATH"] = target
    settings["VERIFY_SAMPLE"] = str(request.verify_sample or default_verify_sample())
    return settings
