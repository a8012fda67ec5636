"""The local circuit breaker: takes slow replicas out of HAProxy's rotation, brings them back.

HAProxy ejects replicas that fail (`observe layer7`) but has no notion of "slow". This watcher
reads HAProxy's log line for every response (server name, server response time, status) over
UDP, keeps a sliding window per replica, and applies Traefik's expression to each replica:
`LatencyAtQuantileMS(50.0) > 100` trips it. Then, as Traefik's breaker does:
closed -> open (out of rotation for the fallback duration) -> recovering (back with a weight
that grows over the recovery duration; slow again means open again) -> closed.

Differences from Traefik, on purpose: one breaker per replica, not one for the whole service,
so one slow replica does not take the others down; and no verdict on fewer than
`circuit_breaker_min_samples` responses, since Traefik's breaker trips on tiny samples.

Run as `python -m alumnos_cli.stack.breaker CONFIG.json` (supervisord does it); it writes what it
sees to the state file that `alumnos status` and `alumnos patterns` read.
"""

from __future__ import annotations

import json
import math
import os
import select
import socket
import statistics
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from alumnos_cli.errors import AlumnosError
from alumnos_cli.files import write_text
from alumnos_cli.stack.haproxy import (
    ServerStat,
    server_stats,
    set_server_state,
    set_server_weight,
)

CLOSED, OPEN, RECOVERING = "closed", "open", "recovering"
FIRST_RECOVERY_WEIGHT = 10  # percent of the replica's weight when it comes back
STATE_WRITE_SECONDS = 0.5
RECONCILE_SECONDS = 1.0


@dataclass(frozen=True)
class BreakerConfig:
    """What the watcher needs: the spec's numbers, the replicas, and where things are."""

    replicas: list[str]
    latency_ms: float
    quantile: float
    window_s: float
    min_samples: int
    check_period_ms: int
    fallback_s: float
    recovery_s: float
    log_port: int
    runtime_socket: str
    state_file: str

    @classmethod
    def read(cls, path: Path) -> BreakerConfig:
        """Load the JSON file `up` wrote."""
        return cls(**json.loads(path.read_text()))


@dataclass
class ReplicaBreaker:
    """One replica's breaker and its window of (time, server ms) samples."""

    name: str
    state: str = CLOSED
    since: float = 0.0
    trips: int = 0
    weight: int = 100
    quantile_ms: float | None = None
    samples: deque[tuple[float, float]] = field(default_factory=deque)


@dataclass(frozen=True)
class Action:
    """A runtime-API change the breaker wants: a server state or a weight."""

    replica: str
    state: str | None = None  # "maint" or "ready"
    weight: int | None = None


class Breaker:
    """The state machine, free of I/O: feed it samples and ticks, apply the actions it returns."""

    def __init__(self, config: BreakerConfig, now: float) -> None:
        self.config = config
        self.replicas = {name: ReplicaBreaker(name, since=now) for name in config.replicas}
        self.transitions: list[str] = []

    def observe(self, replica: str, server_ms: float, now: float) -> None:
        """One response served by `replica` in `server_ms` (inf when it never answered)."""
        breaker = self.replicas.get(replica)
        if breaker is not None:
            breaker.samples.append((now, server_ms))

    def tick(self, now: float) -> list[Action]:
        """Advance every breaker to `now`."""
        actions: list[Action] = []
        for breaker in self.replicas.values():
            self._expire(breaker, now)
            breaker.quantile_ms = self._quantile(breaker)
            actions += self._step(breaker, now)
        return actions

    def _expire(self, breaker: ReplicaBreaker, now: float) -> None:
        horizon = now - self.config.window_s
        while breaker.samples and breaker.samples[0][0] < horizon:
            breaker.samples.popleft()

    def _quantile(self, breaker: ReplicaBreaker) -> float | None:
        if len(breaker.samples) < self.config.min_samples:
            return None
        values = sorted(ms for _, ms in breaker.samples)
        if self.config.quantile == 50.0:
            return statistics.median(values)
        index = min(len(values) - 1, math.ceil(self.config.quantile / 100 * len(values)) - 1)
        return values[max(0, index)]

    def _step(self, breaker: ReplicaBreaker, now: float) -> list[Action]:
        slow = breaker.quantile_ms is not None and breaker.quantile_ms > self.config.latency_ms
        if breaker.state in (CLOSED, RECOVERING) and slow:
            return self._open(breaker, now)
        if breaker.state == OPEN and now - breaker.since >= self.config.fallback_s:
            return self._recover(breaker, now)
        if breaker.state == RECOVERING:
            elapsed = now - breaker.since
            if elapsed >= self.config.recovery_s:
                return self._close(breaker, now)
            weight = FIRST_RECOVERY_WEIGHT + int(
                (100 - FIRST_RECOVERY_WEIGHT) * elapsed / self.config.recovery_s)
            if weight >= breaker.weight + 10:
                breaker.weight = weight
                return [Action(breaker.name, weight=weight)]
        return []

    def _open(self, breaker: ReplicaBreaker, now: float) -> list[Action]:
        self._note(breaker, OPEN, now,
                   f"p{self.config.quantile:g} {breaker.quantile_ms:.0f} ms over "
                   f"{len(breaker.samples)} responses > {self.config.latency_ms:g} ms")
        breaker.trips += 1
        return [Action(breaker.name, state="maint")]

    def _recover(self, breaker: ReplicaBreaker, now: float) -> list[Action]:
        self._note(breaker, RECOVERING, now, f"after {self.config.fallback_s:g} s out")
        breaker.weight = FIRST_RECOVERY_WEIGHT
        return [Action(breaker.name, weight=FIRST_RECOVERY_WEIGHT),
                Action(breaker.name, state="ready")]

    def _close(self, breaker: ReplicaBreaker, now: float) -> list[Action]:
        self._note(breaker, CLOSED, now, "recovered")
        breaker.weight = 100
        return [Action(breaker.name, weight=100)]

    def _note(self, breaker: ReplicaBreaker, state: str, now: float, why: str) -> None:
        breaker.state = state
        breaker.since = now
        # Verdicts in the new state come from responses served in it.
        breaker.samples.clear()
        breaker.quantile_ms = None
        self.transitions.append(f"{breaker.name} {state}: {why}")

    def snapshot(self, now: float) -> dict[str, object]:
        """What `status` and `patterns` read."""
        return {
            "updated": time.time(),
            "pid": os.getpid(),
            "latency_ms": self.config.latency_ms,
            "quantile": self.config.quantile,
            "replicas": {
                name: {"state": b.state, "trips": b.trips, "weight": b.weight,
                       "samples": len(b.samples), "quantile_ms": b.quantile_ms,
                       "for_seconds": round(now - b.since, 1)}
                for name, b in self.replicas.items()},
        }


def parse_log_line(line: bytes) -> tuple[str, float] | None:
    """(server, server ms) from HAProxy's '%s %Tr %ST' line; None for lines without a server."""
    parts = line.decode(errors="replace").split()
    if len(parts) < 3 or parts[0].startswith("<"):
        return None
    try:
        server_ms = float(parts[1])
    except ValueError:
        return None
    # -1: no response at all (aborted, timed out): as slow as it gets.
    return parts[0], math.inf if server_ms < 0 else server_ms


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


def reconcile(breaker: Breaker, stats: list[ServerStat]) -> list[Action]:
    """What to send so HAProxy matches the breakers: after a failed command, after HAProxy
    restarted (it forgets runtime changes), or after this watcher restarted (it starts closed)."""
    actions = []
    for stat in stats:
        state = breaker.replicas.get(stat.name)
        if state is None:
            continue
        in_maint = stat.status.startswith("MAINT")
        if state.state == OPEN and not in_maint:
            actions.append(Action(stat.name, state="maint"))
        elif state.state != OPEN and in_maint:
            actions.append(Action(stat.name, state="ready"))
        if stat.weight != state.weight and not in_maint and state.state != OPEN:
            actions.append(Action(stat.name, weight=state.weight))
    return actions


def apply(actions: list[Action], runtime_socket: Path) -> None:
    """Send the breaker's changes to HAProxy; what fails is set right by the next reconcile."""
    for action in actions:
        try:
            if action.weight is not None:
                set_server_weight(runtime_socket, action.replica, action.weight)
            if action.state is not None:
                set_server_state(runtime_socket, action.replica, action.state)
        except AlumnosError as exc:
            print(f"runtime API: {exc.message}", flush=True)


def run(config: BreakerConfig) -> None:
    """Listen for log lines and drive the breakers until terminated."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.bind(("127.0.0.1", config.log_port))
    sock.setblocking(False)  # noqa: FBT003
    runtime_socket, state_file = Path(config.runtime_socket), Path(config.state_file)
    breaker = Breaker(config, time.monotonic())
    period = config.check_period_ms / 1000
    next_tick = next_write = next_reconcile = time.monotonic()
    print(f"breaker watching {', '.join(config.replicas)} on udp/{config.log_port}", flush=True)
    while True:
        readable, _, _ = select.select([sock], [], [], period)
        now = time.monotonic()
        if readable:
            _drain(sock, breaker, now)
        if now >= next_tick:
            apply(breaker.tick(now), runtime_socket)
            for line in breaker.transitions:
                print(line, flush=True)
            breaker.transitions.clear()
            next_tick = now + period
        if now >= next_write:
            write_state(state_file, breaker.snapshot(now))
            next_write = now + STATE_WRITE_SECONDS
        if now >= next_reconcile:
            try:
                apply(reconcile(breaker, server_stats(runtime_socket)), runtime_socket)
            except AlumnosError as exc:
                print(f"runtime API: {exc.message}", flush=True)
            next_reconcile = now + RECONCILE_SECONDS


def _drain(sock: socket.socket, breaker: Breaker, now: float) -> None:
    while True:
        try:
            datagram = sock.recv(2048)
        except BlockingIOError:
            return
        sample = parse_log_line(datagram)
        if sample is not None:
            breaker.observe(sample[0], sample[1], now)


def main(argv: list[str] | None = None) -> None:
    """Entry point for supervisord."""
    args = sys.argv[1:] if argv is None else argv
    run(BreakerConfig.read(Path(args[0])))


if __name__ == "__main__":
    main()
