"""A cross-check against an independent load generator: wrk, a C program, on the same path.

After the k6 run, never during it: a short fixed load on the one path the scenario asked for,
so the report can say how far k6's figure is from what the stack served to a generator that
spends far less per request.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from alumnos_cli.errors import AlumnosError, InvalidOption
from alumnos_cli.report.attribution import CrossCheck
from alumnos_cli.stack.cpus import pinned
from alumnos_cli.stack.http import loopback_target

SECONDS = 10
THREADS = 2
MAX_CONNECTIONS = 1_000
# The scenarios that load one fixed path, which wrk can load too.
MIRRORED = ("spike", "endpoint")
_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def validate(scenario: str, rate: int | None) -> None:
    """Refuse a cross-check that could not mirror the run, before anything starts."""
    if rate is not None:
        raise InvalidOption("--cross-check", "--cross-check mirrors a closed-model run; wrk "
                            "keeps connections busy and cannot hold a --rate",
                            "drop --rate, or --cross-check")
    if scenario not in MIRRORED:
        raise InvalidOption("--cross-check", f"--cross-check loads one fixed path, and the "
                            f"{scenario} scenario asks for many",
                            f"use it with --scenario {' or '.join(MIRRORED)}")
    if find_wrk() is None:
        raise AlumnosError("--cross-check needs wrk, which is not installed",
                           "apt-get install wrk")


def find_wrk() -> str | None:
    """wrk on PATH (Debian's package), or None."""
    return shutil.which("wrk")


def run_wrk(url: str, path: str, connections: int,
            cpus: tuple[int, ...] | None = None) -> CrossCheck:
    """A fixed wrk load on url+path; on the load generator's CPUs when it was pinned."""
    wrk = find_wrk()
    if wrk is None:
        raise AlumnosError("--cross-check needs wrk, which is not installed",
                           "apt-get install wrk")
    connections = max(THREADS, min(connections, MAX_CONNECTIONS))
    target, host = loopback_target(url)
    header = ["--header", f"Host: {host}"] if host else []
    argv = pinned([wrk, f"-t{THREADS}", f"-c{connections}", f"-d{SECONDS}s", *header,
                   f"{target}{path}"],
                  cpus)
    result = subprocess.run(argv, capture_output=True, text=True, check=False,
                            timeout=SECONDS + 60)
    rate = _RATE.search(result.stdout)
    if result.returncode != 0 or rate is None:
        raise AlumnosError(f"wrk failed: {(result.stderr or result.stdout).strip()[-300:]}")
    non_2xx = _NON_2XX.search(result.stdout)
    errors = _ERRORS.search(result.stdout)
    return CrossCheck(tool="wrk", path=path, connections=connections, threads=THREADS,
                      seconds=SECONDS, requests_per_second=float(rate[1]),
                      non_2xx=int(non_2xx[1]) if non_2xx else 0,
                      socket_errors=sum(int(n) for n in errors.groups()) if errors else 0)
