"""Circuit breaker: a replica made slow is ejected, client p95 recovers, and it returns once
healed."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

from alumnos_cli.proof.client import spread_gets
from alumnos_cli.proof.load import failed_requests, k6_load, p95_p99
from alumnos_cli.proof.options import (
    FAIL,
    PASS,
    SKIPPED,
    PatternResult,
    Progress,
    ProofOptions,
)
from alumnos_cli.proof.stack_view import breaker_state, server_stats, victim, wait_for, write_fault
from alumnos_cli.report.model import RunFigures
from alumnos_cli.stack.patterns import PatternsSpec
from alumnos_cli.stack.state import StackState
from alumnos_service.paths import FIRST_PAGE

# Requests sent after healing to see the replica serve again.
REQUESTS_AFTER_HEALING = 60
# Margin kept before the breaker re-admits traffic, so the "while out" load ends in time.
FALLBACK_MARGIN_S = 1.5


def prove_circuit_breaker(state: StackState, options: ProofOptions, folder: Path,
                          say: Progress) -> PatternResult:
    """A replica made slow is ejected, client p95 recovers, and it returns once healed."""
    spec = state.service.patterns
    if not spec.circuit_breaker:
        return PatternResult("circuit-breaker", "-", "the circuit breaker is off", SKIPPED,
                             {"hint": "alumnos up without --no-circuit-breaker"})
    if not state.service.fault_injection:
        return PatternResult("circuit-breaker", "-",
                             "fault injection is off, so no replica can be made slow", SKIPPED,
                             {"hint": "alumnos down; alumnos up --fault-injection"})
    slow = victim(state, options).name
    phase, vus = options.breaker_phase_seconds, options.breaker_vus
    say(f"baseline: {vus} VUs for {phase} s")
    baseline = k6_load(state, vus, phase, folder / "1-baseline")
    say(f"making {slow} slow (+{options.breaker_delay_ms} ms per request)")
    trial = _while_slow(state, options, folder, slow, say)
    say(f"healed {slow}; waiting for the breaker to close")
    wait = spec.circuit_breaker_fallback_s + spec.circuit_breaker_recovery_s + 10
    closed_after = wait_for(lambda: breaker_state(state, slow) == "closed"
                            and server_stats(state)[slow].status.startswith("UP"), wait)
    served_after_heal = _requests_to(state, slow) if closed_after is not None else 0
    recovered = trial.after is not None and trial.after.latency.p95 < options.breaker_delay_ms
    ok = (trial.ejected_after is not None and trial.served_while_out == 0 and recovered
          and closed_after is not None and served_after_heal > 0)
    observed = (
        f"p95 / p99 {p95_p99(baseline)} before, {p95_p99(trial.during)} while slow; "
        f"{trial.outcome(spec)}; "
        + (f"back after healing in {closed_after:.1f} s, serving {served_after_heal} of "
           f"{REQUESTS_AFTER_HEALING}" if closed_after is not None else "not back after healing"))
    return PatternResult(
        "circuit-breaker", f"{vus} VUs; {slow} slowed by {options.breaker_delay_ms} ms "
        f"(breaker: p{spec.circuit_breaker_quantile:g} > {spec.circuit_breaker_latency_ms} ms "
        f"and > {spec.circuit_breaker_peer_factor:g}x its peers')",
        observed, PASS if ok else FAIL,
        {"p95_before_ms": baseline.latency.p95, "p95_slow_ms": trial.during.latency.p95,
         "p95_ejected_ms": trial.after.latency.p95 if trial.after else None,
         "ejected_after_s": trial.ejected_after, "served_while_out": trial.served_while_out,
         "closed_after_s": closed_after, "served_after_heal": served_after_heal,
         "failed_requests": failed_requests(baseline) + failed_requests(trial.during)
         + (failed_requests(trial.after) if trial.after else 0)})


class _SlowTrial:
    """The loads while the victim is slow: until ejected, then while it is out."""

    def __init__(self, during: RunFigures, ejected_after: float | None,
                 after: RunFigures | None, served_while_out: int | None) -> None:
        self.during, self.ejected_after = during, ejected_after
        self.after, self.served_while_out = after, served_while_out

    def outcome(self, spec: PatternsSpec) -> str:
        if self.ejected_after is None:
            return "never ejected"
        if self.after is None:
            return (f"ejected after {self.ejected_after:.1f} s, but the fallback duration "
                    f"({spec.circuit_breaker_fallback_s} s) ended before clients could be "
                    "measured without it; raise --breaker-fallback-s")
        return (f"p95 / p99 {p95_p99(self.after)} once ejected (after {self.ejected_after:.1f} "
                f"s), {self.served_while_out} requests to it while out")


def _while_slow(state: StackState, options: ProofOptions, folder: Path, slow: str,
                say: Progress) -> _SlowTrial:
    spec = state.service.patterns
    phase, vus = options.breaker_phase_seconds, options.breaker_vus
    replica = {r.name: r for r in state.service.replicas}[slow]
    write_fault(replica, {"delay_ms": options.breaker_delay_ms})
    ejected_at: list[float] = []
    after: RunFigures | None = None
    served_while_out: int | None = None
    def opened() -> bool:
        if breaker_state(state, slow) != "open":
            return False
        ejected_at.append(time.monotonic())
        return True

    try:
        started = time.monotonic()
        watcher = threading.Thread(target=wait_for, args=(opened, phase + 10))
        watcher.start()
        during = k6_load(state, vus, phase, folder / "2-slow")
        watcher.join()
        # Measure while the breaker is surely still open: it re-admits traffic after fallback.
        left = (spec.circuit_breaker_fallback_s - (time.monotonic() - ejected_at[0])
                - FALLBACK_MARGIN_S if ejected_at else 0)
        if int(min(phase, left)) >= 1:
            before = server_stats(state)[slow].requests
            say(f"load while {slow} is out")
            after = k6_load(state, vus, int(min(phase, left)), folder / "3-ejected")
            served_while_out = server_stats(state)[slow].requests - before
    finally:
        write_fault(replica, None)
    ejected = ejected_at[0] - started if ejected_at else None
    return _SlowTrial(during, ejected, after, served_while_out)


def _requests_to(state: StackState, replica: str) -> int:
    answers = spread_gets(state, FIRST_PAGE, REQUESTS_AFTER_HEALING)
    return Counter(a.served_by for a in answers)[replica]
