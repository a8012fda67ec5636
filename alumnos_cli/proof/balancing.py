"""Balancing: requests spread over every healthy replica, within 10% of even."""

from __future__ import annotations

from collections import Counter

from alumnos_cli.proof.client import spread_gets
from alumnos_cli.proof.options import FAIL, PASS, PatternResult, ProofOptions
from alumnos_cli.proof.stack_view import server_stats
from alumnos_cli.stack.state import StackState
from alumnos_service.paths import FIRST_PAGE

BALANCING_TOLERANCE = 0.10


def judge_balance(healthy: list[str], counts: Counter[str]) -> tuple[bool, float]:
    """Whether every healthy replica, and only those, served within the tolerance of even."""
    total = sum(counts.values())
    if not healthy or not total:
        return False, 1.0
    even = total / len(healthy)
    deviation = max(abs(counts.get(n, 0) - even) / even for n in healthy)
    return set(counts) == set(healthy) and deviation <= BALANCING_TOLERANCE, deviation


def prove_balancing(state: StackState, options: ProofOptions) -> PatternResult:
    """Requests spread over every healthy replica, within 10% of even."""
    healthy = sorted(n for n, s in server_stats(state).items() if s.status == "UP")
    answers = spread_gets(state, FIRST_PAGE, options.balancing_requests)
    counts = Counter(a.served_by for a in answers if a.status == 200)
    ok, deviation = judge_balance(healthy, counts)
    served = ", ".join(f"{n} {counts.get(n, 0)}" for n in healthy)
    return PatternResult(
        "balancing", f"{len(answers)} GETs from 6 clients through the balancer",
        f"{served} (largest deviation from even {deviation:.1%}; "
        f"{len(answers) - sum(counts.values())} not 200)",
        PASS if ok else FAIL,
        {"healthy": healthy, "counts": dict(counts), "deviation": deviation,
         "tolerance": BALANCING_TOLERANCE})
