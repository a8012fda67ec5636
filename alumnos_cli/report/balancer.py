"""What the balancer did during a run, as runs record it: the requests it answered itself
(refusals, by reason) and the circuit breaker's transitions on the run's timeline.

k6 counts a refusal as a failed request like any other; these say which failures were the
balancer protecting the stack (a fast 503 or 429) and whether the breaker took replicas out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

OPENED = "open"  # the breaker's state when it takes a replica out


@dataclass(frozen=True)
class BreakerEvent:
    """One transition of a replica's breaker."""

    offset_s: float  # seconds from the start of the load
    replica: str
    state: str  # "open" (out), "recovering" (back at a growing weight), "closed"
    why: str  # the breaker's own words, as its log has them
    # When it goes out: its median, its peers' median, and its share of failed responses.
    median_ms: float | None = None
    peers_ms: float | None = None
    failed_share: float | None = None


@dataclass(frozen=True)
class Ejection:
    """A replica out of the balancer: from when, until when (None: still out at the end)."""

    replica: str
    start_s: float
    end_s: float | None
    cause: BreakerEvent  # the transition that took it out


@dataclass(frozen=True)
class BalancerActivity:
    """The balancer over the run: responses it logged, refusals by reason, breaker events."""

    breaker_enabled: bool
    responses: int
    refused: Mapping[str, int]  # by reason, as alumnos_cli/stack/watcher.py names them
    events: tuple[BreakerEvent, ...] = ()
    load_seconds: float | None = None  # how long the load ran, to close open ejections

    @property
    def refused_total(self) -> int:
        """Every request the balancer answered itself."""
        return sum(self.refused.values())

    @property
    def refused_share(self) -> float:
        """Refusals over the responses the balancer logged."""
        return self.refused_total / self.responses if self.responses else 0.0

    @property
    def ejections(self) -> tuple[Ejection, ...]:
        """Each time a replica was taken out, paired with its return."""
        out: dict[str, BreakerEvent] = {}
        found: list[Ejection] = []
        for event in self.events:
            opened = out.pop(event.replica, None)
            if opened is not None:
                found.append(Ejection(event.replica, opened.offset_s, event.offset_s, opened))
            if event.state == OPENED:
                out[event.replica] = event
        found += [Ejection(e.replica, e.offset_s, None, e) for e in out.values()]
        return tuple(sorted(found, key=lambda e: e.start_s))
