"""Benchmark runs: verify the target, run a k6 scenario, keep everything in a run folder."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
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
from alumnos_cli.settings import Settings
from alumnos_cli.stack import compose
from alumnos_cli.stack.local import http_get, running_state
from alumnos_cli.stack.processes import log_tail

SCENARIOS: dict[str, str] = {
    "spike": "spike_tests.js",
    "smoke": "smoke.js",
    "endpoint": "endpoint.js",
}
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
    if request.path is not None and request.scenario != "endpoint":
        raise AlumnosError("--path applies to the endpoint scenario only",
                           "add --scenario endpoint")


def target_url(settings: Settings, url: str | None) -> str:
    """The URL to load: --url, else the stack that `up` started."""
    if url:
        if not re.match(r"https?://", url):
            raise AlumnosError(f"--url must start with http:// or https://, got {url!r}")
        return url.rstrip("/")
    state = running_state(settings.state_dir)
    if state is not None:
        return state.service.url
    record = compose.load(settings.state_dir)
    if record is not None:
        return record.url
    raise ServiceUnreachable("no running stack to benchmark",
                             "start one with alumnos up, or pass --url")


def verify_target(url: str) -> None:
    """Refuse to load a target that is not a healthy, seeded alumnos service."""
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


def run_bench(settings: Settings, request: BenchRequest,
              on_sample: Callable[[LiveSample], None] | None = None) -> BenchResult:
    """Verify the target, run k6, and store summary, log and metadata in a new run folder."""
    validate(request)
    url = target_url(settings, request.url)
    verify_target(url)
    binary = find_k6()
    script = scripts_dir() / SCENARIOS[request.scenario]
    run_dir = new_run_dir(settings.results_dir, request.scenario)
    meta = run_metadata(settings, request, url=url, binary=binary, script=script)
    write_json(run_dir / META_FILE, meta)
    outcome = _run_scenario(binary, script, request, url, run_dir, on_sample)
    calibration = None
    if request.calibrate and outcome.exit_code in (0, THRESHOLDS_FAILED):
        calibration_dir = run_dir / CALIBRATION_DIR
        calibration_dir.mkdir()
        calibration = _run_scenario(binary, script, request, url, calibration_dir, on_sample,
                                    path=CEILING_PATH)
        meta["calibration"] = {"path": CEILING_PATH, "folder": CALIBRATION_DIR,
                               "k6_exit_code": calibration.exit_code}
    meta["finished_at"] = _now()
    meta["k6_exit_code"] = outcome.exit_code
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


def _run_scenario(binary: Path, script: Path, request: BenchRequest, url: str, folder: Path,
                  on_sample: Callable[[LiveSample], None] | None,
                  path: str | None = None) -> K6Outcome:
    env = dict(os.environ, BASE_URL=url, VUS=str(request.vus),
               DURATION=f"{request.duration_seconds}s",
               SUMMARY_PATH=str((folder / SUMMARY_FILE).resolve()),
               K6_NO_USAGE_REPORT="true")
    target = path or request.path
    if target:
        env["TARGET_PATH"] = target
    return run_k6(binary, script, env, folder / K6_LOG_FILE, on_sample)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def run_metadata(settings: Settings, request: BenchRequest, *, url: str, binary: Path,
                 script: Path) -> dict[str, Any]:
    """Everything needed to interpret the run later; metadata first, results after."""
    state = running_state(settings.state_dir)
    database_url = state.database_url if state else settings.database_url
    stack = None
    if state is not None and state.service.url == url:
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
        "path": request.path,
        "calibrate": request.calibrate,
        "duration_seconds": request.duration_seconds,
        "url": url,
        "command": " ".join(["alumnos", *sys.argv[1:]]),
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


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
