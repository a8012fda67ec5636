"""A stress scenario's stop, judged on the whole load while it runs.

Alone, k6 stops a stress test once one of its thresholds is crossed (k6/lib/config.js
abortingThresholds: abortOnFail, judged from 5 s on). Split over generators, each instance
sees only its share, so it never aborts (SEGMENTED); the controller judges the same
thresholds on what all of them measured so far, and stops every instance when one is crossed:

- wrong answers (`count<1`) and the error rate (`rate<E`) from each instance's counts;
- the p95 (`p(95)<P`) from the merged distribution in Prometheus when there is one; without
  it, only once every instance's own p95 is past P (the merged p95 is at least the lowest of
  them), so a stop is never called on a guess.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# As k6/lib/config.js abortingThresholds() asks k6: judged from this many seconds on.
DELAY_S = 5.0
# How often the controller judges (k6 itself evaluates thresholds every 2 s).
EVERY_S = 2.0


@dataclass(frozen=True)
class AbortRule:
    """The thresholds of the run's scenario (bench's --p95 and --max-error-rate, or their
    defaults), judged on its own requests."""

    scenario: str
    p95_ms: float
    max_error_rate: float


@dataclass(frozen=True)
class Progress:
    """One instance's counts so far, from its REST API."""

    requests: int
    failed_rate: float
    wrong_answers: int
    p95_ms: float | None


def crossed(rule: AbortRule, parts: list[Progress],
            merged_p95_ms: Callable[[], float | None] | None) -> str | None:
    """The threshold the whole load has crossed so far, as k6 names it; None if none."""
    if sum(p.wrong_answers for p in parts) >= 1:
        return "wrong_answers count<1"
    requests = sum(p.requests for p in parts)
    failed = sum(p.failed_rate * p.requests for p in parts)
    if requests and failed / requests >= rule.max_error_rate:
        return f"http_req_failed rate<{rule.max_error_rate:g} ({failed / requests:.2%})"
    p95 = merged_p95_ms() if merged_p95_ms is not None else None
    if p95 is None:
        own = [p.p95_ms for p in parts if p.p95_ms is not None]
        p95 = min(own) if own and len(own) == len(parts) else None
    if p95 is not None and p95 >= rule.p95_ms:
        return f"http_req_duration p(95)<{rule.p95_ms:g} ({p95:.1f} ms)"
    return None
