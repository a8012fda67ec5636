"""The local circuit breaker: outlier ejection, as Envoy does it, over HAProxy's log lines.

A replica is taken out only when it is worse than its peers: its median server time over the
window above the threshold (Traefik's `LatencyAtQuantileMS(50.0) > 100`) *and* more than
`peer_factor` times its peers' median; or `error_share` of its answers failing and at least
twice its peers' share. When every replica is slow, none is an outlier: the stack is
overloaded, admission control (HAProxy's queue) handles it, and ejecting replicas would only
remove the capacity left. At most `max_ejected_share` of the replicas are out at once (one
always may be) and never the last one serving. A replica that is out comes back after the
fallback duration with a weight that grows over the recovery duration; still an outlier, it
goes out again.

The state machine here does no I/O: feed it samples and ticks, apply the actions it returns
(alumnos_cli/stack/watcher.py does, as a supervisord program).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

from alumnos_cli.files import write_text

CLOSED, OPEN, RECOVERING = "closed", "open", "recovering"
STATE_FILE = "breaker-state.json"  # in the state directory: what the watcher last saw
PAUSE_FILE = "breaker-paused"  # in the state directory: while it exists nothing is ejected
FIRST_RECOVERY_WEIGHT = 10  # percent of the replica's weight when it comes back
MAX_EVENTS = 500  # transitions kept in the state file, for `status` and the runs' timelines


@dataclass(frozen=True)
class BreakerConfig:
    """What the watcher needs: the spec's numbers, the replicas, and where things are."""

    replicas: list[str]
    enabled: bool  # False: count and report, never eject (--no-circuit-breaker)
    latency_ms: float
    quantile: float
    window_s: float
    min_samples: int
    check_period_ms: int
    fallback_s: float
    recovery_s: float
    peer_factor: float
    error_share: float
    max_ejected_share: float
    runtime_socket: str
    state_file: str
    pause_file: str  # while it exists the breaker ejects nothing (the overload proof's control)
    metrics_file: str | None = None  # its states and ejections, for Prometheus's node exporter

    @classmethod
    def read(cls, path: Path) -> BreakerConfig:
        """Load the JSON file `up` wrote."""
        return cls(**json.loads(path.read_text()))


@dataclass(frozen=True)
class Sample:
    """One response a replica served: when, in how many ms (inf: none), and whether it failed."""

    at: float
    server_ms: float
    failed: bool


@dataclass
class ReplicaBreaker:
    """One replica's breaker and its window of samples."""

    name: str
    state: str = CLOSED
    since: float = 0.0
    trips: int = 0
    weight: int = 100
    quantile_ms: float | None = None
    error_share: float | None = None
    samples: deque[Sample] = field(default_factory=deque)


@dataclass(frozen=True)
class Action:
    """A runtime-API change the breaker wants: a server state or a weight."""

    replica: str
    state: str | None = None  # "maint" or "ready"
    weight: int | None = None


@dataclass(frozen=True)
class Event:
    """One transition, for the timeline of a run."""

    at: float  # unix time
    replica: str
    state: str
    why: str
    # When it goes out: its median, its peers' median, and its share of failed responses.
    median_ms: float | None = None
    peers_ms: float | None = None
    failed_share: float | None = None


class Breaker:
    """The state machine, free of I/O."""

    def __init__(self, config: BreakerConfig, now: float) -> None:
        self.config = config
        self.replicas = {name: ReplicaBreaker(name, since=now) for name in config.replicas}
        self.events: deque[Event] = deque(maxlen=MAX_EVENTS)
        self.new_events: list[Event] = []
        self.down: set[str] = set()  # replicas HAProxy's health checks have taken out
        self.paused = False

    @property
    def allowed_out(self) -> int:
        """How many replicas may be out at once: the configured share, and one at least."""
        return max(1, math.floor(self.config.max_ejected_share * len(self.replicas)))

    def observe(self, replica: str, server_ms: float, *, failed: bool, now: float) -> None:
        """One response served by `replica` in `server_ms` (inf when it never answered)."""
        breaker = self.replicas.get(replica)
        if breaker is not None:
            breaker.samples.append(Sample(now, server_ms, failed))

    def tick(self, now: float) -> list[Action]:
        """Advance every breaker to `now`."""
        for breaker in self.replicas.values():
            self._expire(breaker, now)
            self._measure(breaker)
        if not self.config.enabled or self.paused:
            return self._close_all(now)
        actions: list[Action] = []
        for breaker in self.replicas.values():
            actions += self._advance(breaker, now)
        for breaker in self._outliers():
            if self._may_eject():
                actions += self._open(breaker, now)
        return actions

    def _expire(self, breaker: ReplicaBreaker, now: float) -> None:
        horizon = now - self.config.window_s
        while breaker.samples and breaker.samples[0].at < horizon:
            breaker.samples.popleft()

    def _measure(self, breaker: ReplicaBreaker) -> None:
        if len(breaker.samples) < self.config.min_samples:
            breaker.quantile_ms = breaker.error_share = None
            return
        values = sorted(sample.server_ms for sample in breaker.samples)
        if self.config.quantile == 50.0:
            breaker.quantile_ms = statistics.median(values)
        else:
            index = min(len(values) - 1, math.ceil(self.config.quantile / 100 * len(values)) - 1)
            breaker.quantile_ms = values[max(0, index)]
        breaker.error_share = sum(s.failed for s in breaker.samples) / len(breaker.samples)

    def _outliers(self) -> list[ReplicaBreaker]:
        """Serving replicas slow or failing compared with their peers, the worst first."""
        found = [b for b in self.replicas.values()
                 if b.state in (CLOSED, RECOVERING) and self._is_outlier(b)]
        return sorted(found, key=lambda b: -(b.quantile_ms or 0))

    def _is_outlier(self, breaker: ReplicaBreaker) -> bool:
        peers, peer_ms = self._peers(breaker), self._peer_ms(breaker)
        if breaker.quantile_ms is None or peer_ms is None:
            return False  # nothing to compare with: no verdict
        slow = (breaker.quantile_ms > self.config.latency_ms
                and breaker.quantile_ms > self.config.peer_factor * peer_ms)
        peer_errors = statistics.fmean(b.error_share or 0.0 for b in peers)
        failing = ((breaker.error_share or 0.0) >= self.config.error_share
                   and (breaker.error_share or 0.0) >= 2 * peer_errors)
        return slow or failing

    def _peers(self, breaker: ReplicaBreaker) -> list[ReplicaBreaker]:
        """The other serving replicas with a verdict of their own."""
        return [b for b in self.replicas.values()
                if b is not breaker and b.state != OPEN and b.quantile_ms is not None]

    def _peer_ms(self, breaker: ReplicaBreaker) -> float | None:
        """The median of the peers' medians, None with no peer to compare with."""
        peers = self._peers(breaker)
        return statistics.median(b.quantile_ms or 0.0 for b in peers) if peers else None

    def _may_eject(self) -> bool:
        out = sum(b.state == OPEN for b in self.replicas.values())
        serving = sum(b.state != OPEN and b.name not in self.down
                      for b in self.replicas.values())
        return out < self.allowed_out and serving > 1

    def _why(self, breaker: ReplicaBreaker) -> str:
        return (f"p{self.config.quantile:g} {breaker.quantile_ms:.0f} ms, "
                f"{breaker.error_share or 0:.0%} failed, over {len(breaker.samples)} "
                f"responses: an outlier among its peers")

    def _advance(self, breaker: ReplicaBreaker, now: float) -> list[Action]:
        if breaker.state == OPEN and now - breaker.since >= self.config.fallback_s:
            return self._recover(breaker, now)
        if breaker.state == RECOVERING:
            elapsed = now - breaker.since
            if elapsed >= self.config.recovery_s:
                return self._close(breaker, now, "recovered")
            weight = FIRST_RECOVERY_WEIGHT + int(
                (100 - FIRST_RECOVERY_WEIGHT) * elapsed / self.config.recovery_s)
            if weight >= breaker.weight + 10:
                breaker.weight = weight
                return [Action(breaker.name, weight=weight)]
        return []

    def _open(self, breaker: ReplicaBreaker, now: float) -> list[Action]:
        self._note(breaker, OPEN, now, self._why(breaker), median_ms=breaker.quantile_ms,
                   peers_ms=self._peer_ms(breaker), failed_share=breaker.error_share)
        breaker.trips += 1
        return [Action(breaker.name, state="maint")]

    def _recover(self, breaker: ReplicaBreaker, now: float) -> list[Action]:
        self._note(breaker, RECOVERING, now, f"after {self.config.fallback_s:g} s out")
        breaker.weight = FIRST_RECOVERY_WEIGHT
        return [Action(breaker.name, weight=FIRST_RECOVERY_WEIGHT),
                Action(breaker.name, state="ready")]

    def _close(self, breaker: ReplicaBreaker, now: float, why: str) -> list[Action]:
        self._note(breaker, CLOSED, now, why)
        breaker.weight = 100
        return [Action(breaker.name, weight=100)]

    def _close_all(self, now: float) -> list[Action]:
        """Switched off or paused: every replica serves, at full weight."""
        actions: list[Action] = []
        for breaker in self.replicas.values():
            if breaker.state != CLOSED:
                actions += [*self._close(breaker, now, "breaker paused"),
                            Action(breaker.name, state="ready")]
        return actions

    def _note(self, breaker: ReplicaBreaker, state: str, now: float, why: str, *,
              median_ms: float | None = None, peers_ms: float | None = None,
              failed_share: float | None = None) -> None:
        breaker.state = state
        breaker.since = now
        # Verdicts in the new state come from responses served in it.
        breaker.samples.clear()
        breaker.quantile_ms = breaker.error_share = None
        event = Event(time.time(), breaker.name, state, why, median_ms, peers_ms, failed_share)
        self.events.append(event)
        self.new_events.append(event)

    def replica_states(self) -> dict[str, dict[str, object]]:
        """Each replica's breaker state and how many times it was taken out."""
        return {name: {"state": b.state, "trips": b.trips} for name, b in self.replicas.items()}

    def snapshot(self, now: float) -> dict[str, object]:
        """The replicas' breakers as `status` and `patterns` read them."""
        return {
            "enabled": self.config.enabled, "paused": self.paused,
            "latency_ms": self.config.latency_ms, "quantile": self.config.quantile,
            "allowed_out": self.allowed_out,
            "replicas": {
                name: {"state": b.state, "trips": b.trips, "weight": b.weight,
                       "samples": len(b.samples), "quantile_ms": b.quantile_ms,
                       "error_share": b.error_share, "for_seconds": round(now - b.since, 1)}
                for name, b in self.replicas.items()},
            "events": [asdict(e) for e in self.events],
        }


def write_state(path: Path, snapshot: dict[str, object]) -> None:
    """Atomically replace the state file."""
    write_text(path, json.dumps(snapshot, indent=2, default=str))


def read_state(path: Path) -> dict[str, object] | None:
    """The watcher's last snapshot, or None."""
    try:
        snapshot = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return snapshot if isinstance(snapshot, dict) else None
