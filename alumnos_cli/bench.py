"""Benchmark runs: verify the target, run a k6 scenario, keep everything in a run folder."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import random
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from alumnos_cli import __version__
from alumnos_cli.database import row_count, server_version
from alumnos_cli.errors import AlumnosError, K6Error, ServiceUnreachable
from alumnos_cli.k6 import (
    THRESHOLDS_FAILED,
    K6Outcome,
    LiveSample,
    find_k6,
    k6_version,
    run_k6,
    scripts_dir,
)
from alumnos_cli.runs import K6_LOG_FILE, META_FILE, SUMMARY_FILE, new_run_dir, write_json
from alumnos_cli.serverside import ServerSampler
from alumnos_cli.settings import Settings
from alumnos_cli.stack import compose
from alumnos_cli.stack.local import http_get, running_state
from alumnos_cli.stack.processes import log_tail
from alumnos_cli.stack.state import StackState
from alumnos_cli.timeseries import recording_env


@dataclass(frozen=True)
class Scenario:
    """One k6 script in k6/, and what it does."""

    name: str
    script: str
    shape: str
    description: str
    profile: str | None = None  # its stages in k6/lib/shapes.json; None: constant load


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("smoke", "smoke.js", "constant",
             "a few VUs on random pages over the whole table: does the stack work at all"),
    Scenario("load", "load.js", "ramp 10%, hold, ramp down 10%",
             "the expected load on the first 20 pages (mostly cached), ramped", "load"),
    Scenario("spike", "spike_tests.js", "jump in 5%, hold, drop in the last 10%",
             "the reference report's test: a sudden jump to the peak on the first page",
             "spike"),
    Scenario("stress", "stress.js", "5 steps of a fifth of the peak",
             "steps up until the thresholds break; k6 stops once one is crossed",
             "stress"),
    Scenario("soak", "soak.js", "constant, long",
             "a steady load for a long time (--duration 30m+): creep, leaks; 10% deep pages"),
    Scenario("pagination", "pagination.js", "constant",
             "random offsets over the whole table, 10% among the last pages, rows checked"),
    Scenario("cache-cold", "cache_cold.js", "constant",
             "an offset no request asked before, every time: no cache can help"),
    Scenario("endpoint", "endpoint.js", "constant",
             "one --path, status checks only (ceilings, comparisons)"),
)}
CEILING_PATH = "/api/v1/ping"
CALIBRATION_DIR = "calibration"
MAX_VUS = 5_000
MAX_DURATION_SECONDS = 6 * 3600
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(text: str) -> int:
    """Seconds in '2m', '90s', '1m30s' or '1h'; an AlumnosError otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise AlumnosError(f"--duration must look like 30s, 2m or 1m30s, got {text!r}")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if not 1 <= total <= MAX_DURATION_SECONDS:
        raise AlumnosError(f"--duration must be between 1s and 6h, got {text!r}")
    return total


@dataclass(frozen=True)
class BenchRequest:
    """One benchmark run to make."""

    scenario: str
    vus: int
    duration_seconds: int
    url: str | None = None
    path: str | None = None  # endpoint scenario: the path to load
    calibrate: bool = False  # also run the same load on the ping endpoint
    rate: int | None = None  # open model: iterations per second (VUs become the pool)
    p95_ms: float | None = None  # threshold on the p95 latency
    max_error_rate: float | None = None  # threshold on the share of failed requests
    timeseries: bool = True  # record per-second aggregates (k6's dashboard recording)

    @property
    def model(self) -> str:
        """closed (VUs loop) or open (a fixed arrival rate)."""
        return "open" if self.rate else "closed"


@dataclass(frozen=True)
class BenchResult:
    """Where the run was stored and whether its thresholds held."""

    run_dir: Path
    thresholds_ok: bool


def validate(request: BenchRequest) -> None:
    """Refuse a scenario, VU count or duration that cannot run."""
    if request.scenario not in SCENARIOS:
        raise AlumnosError(f"unknown scenario {request.scenario!r}",
                           f"choose one of: {', '.join(sorted(SCENARIOS))}")
    if not 1 <= request.vus <= MAX_VUS:
        raise AlumnosError(f"--vus must be between 1 and {MAX_VUS}, got {request.vus}")
    if request.path is not None and not request.path.startswith("/"):
        raise AlumnosError(f"--path must start with /, got {request.path!r}")
    if request.rate is not None and not 1 <= request.rate <= 1_000_000:
        raise AlumnosError(f"--rate must be between 1 and 1,000,000 requests/s, got {request.rate}")
    if request.p95_ms is not None and not 0 < request.p95_ms <= 600_000:
        raise AlumnosError(f"--p95 must be a latency in ms above 0, got {request.p95_ms}")
    if request.max_error_rate is not None and not 0 < request.max_error_rate <= 1:
        raise AlumnosError("--max-error-rate is a share between 0 and 1 (0.01 is 1%), "
                           f"got {request.max_error_rate}")
    if request.path is not None and request.scenario != "endpoint":
        raise AlumnosError("--path applies to the endpoint scenario only",
                           "add --scenario endpoint")


def target_url(settings: Settings, url: str | None, state: StackState | None) -> str:
    """The URL to load: --url, else the stack that `up` started (`state`, when it runs)."""
    if url:
        if not re.match(r"https?://", url):
            raise AlumnosError(f"--url must start with http:// or https://, got {url!r}")
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
    page = http_get(f"{url}/api/v1/alumno/alumno?limit=1&offset=0", timeout=5.0)
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


MAX_REPEAT = 100


def run_repeated(settings: Settings, request: BenchRequest, repeat: int,
                 on_sample: Callable[[LiveSample], None] | None = None,
                 on_run: Callable[[int], None] | None = None) -> list[BenchResult]:
    """The same run `repeat` times, each in its own folder, grouped for the report."""
    if not 1 <= repeat <= MAX_REPEAT:
        raise AlumnosError(f"--repeat must be between 1 and {MAX_REPEAT}, got {repeat}")
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
    meta = json.loads((run_dir / META_FILE).read_text())
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
                        running=running)
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
                                   path=CEILING_PATH)
        meta["calibration"] = {"path": CEILING_PATH, "folder": CALIBRATION_DIR,
                               "k6_exit_code": calibration.exit_code}
    meta["finished_at"] = _now()
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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def run_metadata(settings: Settings, request: BenchRequest, *, url: str, binary: Path,
                 script: Path, running: StackState | None) -> dict[str, Any]:
    """Everything needed to interpret the run later; metadata first, results after."""
    database_url = running.database_url if running else settings.database_url
    stack = None
    state = _our_stack(running, url)
    if state is not None:
        record = state.service
        stack = {"mode": state.mode, "replicas": len(record.replicas),
                 "workers": record.workers, "blocking_threads": record.blocking_threads,
                 "cache": record.cache, "balancer": "haproxy" if record.balancer else None,
                 "patterns": asdict(record.patterns) if record.balancer else None}
    return {
        "status": "running",
        "scenario": request.scenario,
        "script": script.name,
        "script_sha256": hashlib.sha256(script.read_bytes()).hexdigest(),
        "vus": request.vus,
        "model": request.model,
        "timeseries": request.timeseries,
        "rate": request.rate,
        "thresholds": {"p95_ms": request.p95_ms or 2000,
                       "max_error_rate": request.max_error_rate or 0.01},
        "path": request.path,
        "calibrate": request.calibrate,
        "duration_seconds": request.duration_seconds,
        "url": url,
        "command": " ".join(["alumnos", *sys.argv[1:]]),
        "project": project_revision(),
        "started_at": _now(),
        "versions": {
            "alumnos": __version__,
            "k6": k6_version(binary),
            "granian": version("granian"),
            "postgresql": server_version(database_url),
            "python": platform.python_version(),
        },
        "rows": row_count(database_url),
        "machine": {"cpu_count": os.cpu_count(), "cpu_model": cpu_model(),
                    "platform": platform.platform()},
        "stack": stack,
        "settings": settings.public(),
    }


def project_revision() -> dict[str, Any]:
    """The git commit of the project that ran the benchmark, and whether it had local changes."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                                capture_output=True, text=True, check=True, timeout=5)
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                 "--untracked-files=no"], capture_output=True, text=True,
                                check=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
