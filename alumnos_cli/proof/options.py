"""What the proofs may do, and the shape of their results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from alumnos_cli.errors import InvalidOption


class Pattern(StrEnum):
    """The resilience patterns `alumnos patterns` proves, in the order it proves them."""

    BALANCING = "balancing"
    RETRY = "retry"
    RATE_LIMIT = "rate-limit"
    CIRCUIT_BREAKER = "circuit-breaker"
    CACHE = "cache"
    OVERLOAD = "overload"


PATTERNS = tuple(pattern.value for pattern in Pattern)
# Which proofs each of `alumnos patterns`'s tuning flags changes.
USED_BY = {"--vus": (Pattern.RETRY,), "--retry-seconds": (Pattern.RETRY,),
           "--victim": (Pattern.RETRY, Pattern.CIRCUIT_BREAKER),
           "--breaker-vus": (Pattern.CIRCUIT_BREAKER,),
           "--breaker-phase-seconds": (Pattern.CIRCUIT_BREAKER,),
           "--overload-vus": (Pattern.OVERLOAD,), "--overload-seconds": (Pattern.OVERLOAD,)}
PASS, FAIL, SKIPPED = "pass", "fail", "skipped"

Progress = Callable[[str], None]  # a line saying what a proof is doing now


@dataclass(frozen=True)
class ProofOptions:
    """How hard and how long to push; tests shorten them."""

    only: tuple[str, ...] = PATTERNS
    vus: int = 200
    retry_seconds: int = 15
    balancing_requests: int = 600
    cache_requests: int = 200
    rate_seconds: float = 3.0
    breaker_vus: int = 50
    breaker_phase_seconds: int = 5
    breaker_delay_ms: int = 300
    victim: str | None = None  # the replica to kill or slow; the second one by default
    overload_vus: int = 300
    overload_seconds: int = 30


@dataclass(frozen=True)
class PatternResult:
    """One row of the proof table."""

    pattern: str
    action: str
    observed: str
    verdict: str
    evidence: dict[str, Any] = field(default_factory=dict)


def refuse_unused_flags(given: set[str], only: tuple[str, ...]) -> None:
    """A tuning flag typed for proofs that are not asked for would change nothing: refused."""
    for flag in sorted(given & USED_BY.keys()):
        users = [pattern.value for pattern in USED_BY[flag]]
        if not set(users) & set(only):
            raise InvalidOption(flag, f"{flag} only changes the {' and '.join(users)} proof, "
                                f"which is not among those asked ({', '.join(only)})",
                                f"add {users[0]}, or leave {flag} out")


def validate(options: ProofOptions) -> None:
    """Refuse patterns that do not exist, before anything starts."""
    unknown = set(options.only) - set(PATTERNS)
    if unknown:
        raise InvalidOption("PATTERNS", f"unknown pattern(s): {', '.join(sorted(unknown))}",
                            f"choose among: {', '.join(PATTERNS)}")
