"""Fault injection for the resilience proofs: a replica made slow or failing on purpose.

Off by default. Only when the configuration enables it (ALUMNOS_FAULT_INJECTION=on) does a
worker read its replica's fault file (ALUMNOS_FAULT_FILE), a small JSON document such as
{"delay_ms": 300} or {"error_rate": 1.0}. The file, not an HTTP endpoint, carries the switch so
that every worker process of a replica sees the same fault, and nobody can set one over HTTP.
Faults touch only the API: health checks keep answering, so what takes a slow replica out of
rotation is the circuit breaker, not the health check.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, Response, request

from alumnos_service.paths import API_PREFIX
from alumnos_service.problems import problem

# The delay itself; a module attribute so the tests can see each delay applied.
sleep = time.sleep
# How stale a worker's view of the fault file may be.
RECHECK_SECONDS = 0.1
# The longest delay a fault file can ask for: a proof's slow replica, not a hung one.
MAX_DELAY_MS = 5_000.0


@dataclass(frozen=True)
class Fault:
    """What to do to each API request."""

    delay_ms: float = 0.0
    error_rate: float = 0.0


def read_fault(path: Path) -> Fault:
    """The fault a file describes; no file or an unreadable one means no fault."""
    try:
        raw = json.loads(path.read_text())
        return Fault(delay_ms=min(MAX_DELAY_MS, max(0.0, float(raw.get("delay_ms", 0)))),
                     error_rate=min(1.0, max(0.0, float(raw.get("error_rate", 0)))))
    except (OSError, ValueError, TypeError, AttributeError):
        return Fault()


class FaultSwitch:
    """A fault file, re-read at most every RECHECK_SECONDS."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._checked = 0.0
        self._fault = Fault()

    def current(self) -> Fault:
        """The fault in force now."""
        now = time.monotonic()
        if now - self._checked >= RECHECK_SECONDS:
            with self._lock:
                self._fault = read_fault(self.path)
                self._checked = now
        return self._fault


def install(app: Flask, path: Path) -> None:
    """Apply the fault file's delay and errors to every API request."""
    switch = FaultSwitch(path)

    @app.before_request
    def inject() -> Response | None:
        if not request.path.startswith(f"{API_PREFIX}/"):
            return None
        fault = switch.current()
        if fault.delay_ms:
            sleep(fault.delay_ms / 1000)
        if fault.error_rate and random.random() < fault.error_rate:
            return problem(500, "Internal Server Error", "injected fault", slug="injected-fault")
        return None
