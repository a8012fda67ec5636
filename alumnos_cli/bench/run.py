"""Benchmark runs: verify the target, run a k6 scenario, keep everything in a run folder."""

from __future__ import annotations

import contextlib
import json
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alumnos_cli.bench.k6 import (
    THRESHOLDS_FAILED,
    K6Outcome,
    LiveSample,
    find_k6,
    recording_env,
    run_k6,
)
from alumnos_cli.bench.metadata import now, run_metadata
from alumnos_cli.bench.request import BenchRequest, validate
from alumnos_cli.bench.scenarios import SCENARIOS, scripts_dir
from alumnos_cli.bench.serverside import ServerSampler
from alumnos_cli.database import row_count
from alumnos_cli.errors import AlumnosError, K6Error, ServiceUnreachable
from alumnos_cli.files import read_json, write_json
from alumnos_cli.runfolder import (
    CALIBRATION_DIR,
    K6_LOG_FILE,
    META_FILE,
    SUMMARY_FILE,
    new_run_dir,
)
from alumnos_cli.settings import Settings
from alumnos_cli.stack import compose
from alumnos_cli.stack.http import http_get
from alumnos_cli.stack.processes import log_tail
from alumnos_cli.stack.state import StackState, running_state
from alumnos_service.paths import PAGE_PATH, PING_PATH


@dataclass(frozen=True)
class BenchResult:
    """Where the run was stored and whether its thresholds held."""

    run_dir: Path
    thresholds_ok: bool


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


def verify_target(url: str, expected_total: int | None = None) -> None:
    """Refuse to load a target that is not a healthy, seeded alumnos service (with the rows
    the database holds, when we know which database it serves)."""
    page = http_get(f"{url}{PAGE_PATH}?limit=1&offset=0", timeout=5.0)
    if page is None:
        raise ServiceUnreachable(f"nothing answers at {url}",
                                 "start the stack with alumnos up, or check --url")
    status, body = page
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if status != 200 or not isinstance(document, dict) or "items" not in document:
        raise ServiceUnreachable(f"{url} is not a working alumnos service (HTTP {status})",
                                 "check --url; if the table is empty, run alumnos seed")
    if not document.get("total"):
        raise AlumnosError(f"{url} serves no alumnos", "run alumnos seed first")
    if expected_total is not None and document["total"] != expected_total:
        raise ServiceUnreachable(
            f"{url} reports {document['total']:,} alumnos but its database holds "
            f"{expected_total:,}", "is the URL the stack alumnos up started? is a seed running?")


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
    """Verify the target, run k6, and store summary, log and metadata in a new run folder."""
    validate(request)
    running = running_state(settings.state_dir)
    url = target_url(settings, request.url, running)
    stack = _our_stack(running, url)
    verify_target(url, row_count(stack.database_url) if stack else None)
    binary = find_k6()
    script = scripts_dir() / SCENARIOS[request.scenario].script
    run_dir = new_run_dir(settings.results_dir, request.scenario)
    meta = run_metadata(settings, request, binary=binary, script=script, url=url,
                        running=running, ours=stack)
    meta["repeat"] = series
    write_json(run_dir / META_FILE, meta)
    sampler = ServerSampler(stack) if stack is not None else None
    with sampler or contextlib.nullcontext():
        outcome = run_scenario(binary, script, request, url, run_dir, on_sample)
    if sampler is not None:
        sampler.write(run_dir)
    calibration = None
    if request.calibrate and outcome.exit_code in (0, THRESHOLDS_FAILED):
        calibration_dir = run_dir / CALIBRATION_DIR
        calibration_dir.mkdir()
        calibration = run_scenario(binary, script, request, url, calibration_dir, on_sample,
                                   path=PING_PATH)
        meta["calibration"] = {"path": PING_PATH, "folder": CALIBRATION_DIR,
                               "k6_exit_code": calibration.exit_code}
    meta["finished_at"] = now()
    meta["k6_exit_code"] = outcome.exit_code
    meta["load_generator"] = outcome.usage
    finished = [(run_dir, outcome)] + ([(run_dir / CALIBRATION_DIR, calibration)]
                                       if calibration else [])
    failed = [(folder, o) for folder, o in finished
              if not (folder / SUMMARY_FILE).exists() or o.exit_code not in (0, THRESHOLDS_FAILED)]
    meta["status"] = "failed" if failed else "finished"
    write_json(run_dir / META_FILE, meta)
    if failed:
        _, bad = failed[0]
        raise K6Error(f"k6 failed with exit code {bad.exit_code}: {log_tail(bad.log)}",
                      f"full log in {bad.log}")
    return BenchResult(run_dir=run_dir, thresholds_ok=outcome.exit_code == 0)


def run_scenario(binary: Path, script: Path, request: BenchRequest, url: str, folder: Path,
                 on_sample: Callable[[LiveSample], None] | None = None,
                 path: str | None = None, extra_env: dict[str, str] | None = None,
                 extra_args: tuple[str, ...] = ()) -> K6Outcome:
    """Run one k6 test of `request` against `url`, its summary and log in `folder`."""
    env = dict(os.environ, BASE_URL=url, VUS=str(request.vus),
               DURATION=f"{request.duration_seconds}s",
               SUMMARY_PATH=str((folder / SUMMARY_FILE).resolve()),
               K6_NO_USAGE_REPORT="true", COLD_START=f"{random.random():.6f}")
    if request.timeseries:
        env.update(recording_env(folder))
    if request.rate:
        env["RATE"] = f"{request.rate:g}"
    if request.p95_ms is not None:
        env["THRESHOLD_P95_MS"] = f"{request.p95_ms:g}"
    if request.max_error_rate is not None:
        env["THRESHOLD_ERROR_RATE"] = f"{request.max_error_rate:g}"
    target = path or request.path
    if target:
        env["TARGET_PATH"] = target
    env.update(extra_env or {})
    return run_k6(binary, script, env, folder / K6_LOG_FILE, on_sample, extra_args)
