"""A run's meta.json: everything needed to read the run later, written before the load."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from alumnos_cli import __version__
from alumnos_cli.bench.k6 import K6Outcome, k6_version
from alumnos_cli.bench.request import BenchRequest
from alumnos_cli.bench.scenarios import (
    SCENARIOS,
    default_max_error_rate,
    default_p95_ms,
    default_verify_sample,
    definition,
)
from alumnos_cli.database import row_count, server_version
from alumnos_cli.settings import Settings, mask_password, mask_secrets
from alumnos_cli.stack.components import placement as stack_placement
from alumnos_cli.stack.compose import ComposeRecord
from alumnos_cli.stack.granian import GranianSpec
from alumnos_cli.stack.state import StackState


def now() -> str:
    """The current UTC time, as runs record it."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def run_metadata(settings: Settings, request: BenchRequest, *, url: str, binary: Path,
                 script: Path, running: StackState | None,
                 ours: StackState | None) -> dict[str, Any]:
    """Everything needed to interpret the run later; metadata first, results after.

    `running` is the stack `up` started, if any; `ours` is that stack when it is the target.
    """
    database_url = running.database_url if running else settings.database_url
    return {
        "status": "running",
        "scenario": request.scenario,
        "script": script.name,
        "script_sha256": hashlib.sha256(script.read_bytes()).hexdigest(),
        "scenario_definition": definition(SCENARIOS[request.scenario], request.path),
        "vus": request.vus,
        "model": request.model,
        "timeseries": request.timeseries,
        "rate": request.rate,
        "verify_sample": request.verify_sample or default_verify_sample(),
        "thresholds": {"p95_ms": request.p95_ms or default_p95_ms(),
                       "max_error_rate": request.max_error_rate or default_max_error_rate()},
        "path": request.path,
        "calibrate": request.calibrate,
        "duration_seconds": request.duration_seconds,
        # A run folder is shared and published (reports): no password goes into it.
        "url": mask_password(url),
        "command": " ".join(["alumnos", *(mask_secrets(arg) for arg in sys.argv[1:])]),
        "project": project_revision(),
        "started_at": now(),
        "versions": {
            "alumnos": __version__,
            "k6": k6_version(binary),
            # Faker's name pools decide what a seed produces (pyproject pins it).
            "faker": installed_version("faker"),
            "granian": version("granian"),
            "postgresql": server_version(database_url),
            "python": platform.python_version(),
        },
        "rows": row_count(database_url),
        "machine": {"cpu_count": os.cpu_count(), "cpu_model": cpu_model(),
                    "platform": platform.platform()},
        "stack": stack_metadata(ours),
        "settings": settings.public(),
    }


def stack_metadata(state: StackState | None) -> dict[str, Any] | None:
    """The stack that served the run, when `up` started it; None for another target."""
    if state is None:
        return None
    record = state.service
    return {"mode": state.mode, "replicas": len(record.replicas),
            "workers": record.workers, "blocking_threads": record.blocking_threads,
            "cache": record.cache, "balancer": "haproxy" if record.balancer else None,
            "cpus": list(record.cpus) if record.cpus else None,
            "patterns": asdict(record.patterns) if record.balancer else None,
            "stack_id": record.stack_id or None, "fault_injection": record.fault_injection}


def compose_stack_metadata(record: ComposeRecord) -> dict[str, Any]:
    """The compose stack that served the run: Traefik in front of the image's replicas."""
    image = GranianSpec()
    return {"mode": "compose", "replicas": record.replicas, "workers": image.workers,
            "blocking_threads": image.blocking_threads, "cache": record.cache,
            "balancer": "traefik", "cpus": None, "patterns": asdict(record.patterns),
            "stack_id": None, "images": record.images,
            "fault_injection": record.fault_injection}


def project_revision() -> dict[str, Any]:
    """The git commit of the project that ran the benchmark, and whether it had local changes."""
    root = Path(__file__).resolve().parents[2]
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


def placement(state: StackState | None, request: BenchRequest,
              outcome: K6Outcome) -> dict[str, Any] | None:
    """Which CPUs the stack and the load generator were given, what the kernel says each of
    their processes may use, and what was left unpinned (None when nothing was pinned)."""
    stack_cpus = state.service.cpus if state is not None else None
    if not stack_cpus and not request.generator_cpus:
        return None
    unpinned = []
    if not request.generator_cpus:
        unpinned.append("k6 (bench without --generator-cpus)")
    if state is None:
        unpinned.append("the target (not started by alumnos up)")
    elif not stack_cpus:
        unpinned.append("the stack (alumnos up without --cpus)")
    else:
        if state.postgres is None:
            unpinned.append("postgresql (a system service, not ours to pin)")
        unpinned.append("redis (a system service, not ours to pin)")
    return {
        "generator": {"cpus": list(request.generator_cpus),
                      "k6_allowed": outcome.usage.get("k6_cpus")}
        if request.generator_cpus else None,
        "stack": {"cpus": list(stack_cpus), "cpuset": state.service.cpuset,
                  "allowed": stack_placement(state)}
        if state is not None and stack_cpus else None,
        "not_pinned": unpinned,
    }


def installed_version(distribution: str) -> str:
    """An installed distribution's version, or "not installed" (an extra left out)."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"
