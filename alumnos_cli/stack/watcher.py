"""The balancer's watcher: reads HAProxy's line for every response, drives the circuit breaker,
and counts what the balancer refused and why.

HAProxy keeps a `server server_ms status termination path` line per response in a ring in its
own memory; the watcher follows it on HAProxy's runtime socket (`show events responses -w`),
which is mode 0600 in the owner's private state directory. Nothing listens for log lines, so
nobody else can forge lines that put replicas out, and a watcher a moment behind loses nothing.
Run as `python -m alumnos_cli.stack.watcher CONFIG.json` (supervisord does it); it writes what
it sees to the state file that `alumnos status`, `alumnos patterns` and `alumnos bench` read.
"""

from __future__ import annotations

import math
import os
import select
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from alumnos_cli.errors import AlumnosError
from alumnos_cli.stack.breaker import OPEN, Action, Breaker, BreakerConfig, write_state
from alumnos_cli.stack.breaker_metrics import write_breaker_metrics
from alumnos_cli.stack.haproxy import (
    LOG_RING,
    ServerStat,
    follow_log,
    server_stats,
    set_server_state,
    set_server_weight,
)
from alumnos_service.paths import API_PREFIX

STATE_WRITE_SECONDS = 0.5
RECONCILE_SECONDS = 1.0
RECONNECT_SECONDS = 0.5  # between attempts to follow a HAProxy that is (re)starting
NO_SERVER = "<NOSRV>"
# Why the balancer answered a request itself, from the status and HAProxy's termination state.
REFUSALS = ("no_replica", "queue_timeout", "queue_full", "rate_limit")


@dataclass(frozen=True)
class LogLine:
    """One response as HAProxy logged it."""

    server: str
    server_ms: float  # inf: the server never answered
    status: int
    termination: str  # HAProxy's %tsc, e.g. "----", "sQ--", "SC--", "PR--"
    path: str = ""

    @property
    def judged(self) -> bool:
        """Whether the breaker judges this response: the API's, served by a replica (a health
        or metrics request says nothing of how a replica serves its pages)."""
        return (self.server != NO_SERVER and self.refusal is None
                and self.path.startswith(API_PREFIX))

    @property
    def refusal(self) -> str | None:
        """Why the balancer answered instead of a replica, or None when a replica did."""
        # L: HAProxy answered the request itself (`http-request return`), P: it denied it.
        answered_itself = self.termination.startswith(("L", "P"))
        if self.status == 429 and answered_itself:
            return "rate_limit"
        if self.status == 503 and answered_itself:
            return "queue_full"
        if self.termination.startswith("sQ"):
            return "queue_timeout"
        if self.server == NO_SERVER and self.status == 503:
            return "no_replica"
        return None

    @property
    def failed(self) -> bool:
        """A server error, or no answer at all, from the replica."""
        return self.status >= 500 or math.isinf(self.server_ms)


def parse_log_line(line: bytes) -> LogLine | None:
    """HAProxy's '%s %Tr %ST %tsc %HP' line; None for a line of another shape."""
    parts = line.decode(errors="replace").split()
    if len(parts) != 5:
        return None
    try:
        server_ms, status = float(parts[1]), int(parts[2])
    except ValueError:
        return None
    # -1: no response at all (aborted, timed out): as slow as it gets.
    return LogLine(parts[0], math.inf if server_ms < 0 else server_ms, status, parts[3],
                   parts[4])


class Counts:
    """Responses seen, and the balancer's refusals by reason, since the watcher started."""

    def __init__(self) -> None:
        self.responses = 0
        self.refused = dict.fromkeys(REFUSALS, 0)

    def add(self, line: LogLine) -> None:
        """Count one logged response."""
        self.responses += 1
        reason = line.refusal
        if reason is not None:
            self.refused[reason] += 1


def reconcile(breaker: Breaker, stats: list[ServerStat]) -> list[Action]:
    """What to send so HAProxy matches the breakers: after a failed command, after HAProxy
    restarted (it forgets runtime changes), or after this watcher restarted (it starts closed)."""
    actions = []
    breaker.down = {s.name for s in stats if s.status.startswith("DOWN")}
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


class LogFollower:
    """The stream of log lines from HAProxy's ring, reconnected when HAProxy restarts."""

    def __init__(self, runtime_socket: Path) -> None:
        self.runtime_socket = runtime_socket
        self.sock: socket.socket | None = None
        self.pending = b""
        self.retry_at = 0.0

    def wait(self, seconds: float) -> None:
        """Block until lines arrive or `seconds` pass."""
        sock = self._connected()
        if sock is None:
            time.sleep(seconds)
        else:
            select.select([sock], [], [], seconds)

    def lines(self) -> list[bytes]:
        """The complete lines received so far, without waiting."""
        sock = self._connected()
        if sock is None:
            return []
        while True:
            try:
                chunk = sock.recv(1 << 16)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:  # HAProxy stopped: follow the next one when it is back
                self._disconnect()
                break
            self.pending += chunk
        *complete, self.pending = self.pending.split(b"\n")
        return complete

    def _connected(self) -> socket.socket | None:
        if self.sock is None and time.monotonic() >= self.retry_at:
            try:
                self.sock = follow_log(self.runtime_socket)
                self.sock.setblocking(False)  # noqa: FBT003
                print(f"following HAProxy's {LOG_RING} ring", flush=True)
            except AlumnosError:
                self.retry_at = time.monotonic() + RECONNECT_SECONDS
        return self.sock

    def _disconnect(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.pending = None, b""
        self.retry_at = time.monotonic() + RECONNECT_SECONDS


def run(config: BreakerConfig) -> None:
    """Follow the log lines and drive the breakers until terminated."""
    runtime_socket, state_file = Path(config.runtime_socket), Path(config.state_file)
    pause_file = Path(config.pause_file)
    follower = LogFollower(runtime_socket)
    breaker, counts = Breaker(config, time.monotonic()), Counts()
    period = config.check_period_ms / 1000
    next_tick = next_write = next_reconcile = time.monotonic()
    print(f"watching {', '.join(config.replicas)}; breaker "
          f"{'on' if config.enabled else 'off'}", flush=True)
    while True:
        follower.wait(period)
        # Every line HAProxy had written before this moment has been read now, so the state
        # written below counts every response logged before `updated`.
        seen_at, now = time.time(), time.monotonic()
        _observe(follower.lines(), breaker, counts, now)
        if now >= next_tick:
            breaker.paused = pause_file.exists()
            apply(breaker.tick(now), runtime_socket)
            for event in breaker.new_events:
                print(f"{event.replica} {event.state}: {event.why}", flush=True)
            breaker.new_events.clear()
            next_tick = now + period
        if now >= next_write:
            snapshot = breaker.snapshot(now)
            write_state(state_file, {"updated": seen_at, "pid": os.getpid(),
                                     "responses": counts.responses, "refused": counts.refused,
                                     **snapshot})
            if config.metrics_file:
                write_breaker_metrics(Path(config.metrics_file),
                                      breaker.replica_states(), counts.refused)
            next_write = now + STATE_WRITE_SECONDS
        if now >= next_reconcile:
            try:
                apply(reconcile(breaker, server_stats(runtime_socket)), runtime_socket)
            except AlumnosError as exc:
                print(f"runtime API: {exc.message}", flush=True)
            next_reconcile = now + RECONCILE_SECONDS


def _observe(lines: list[bytes], breaker: Breaker, counts: Counts, now: float) -> None:
    for raw in lines:
        line = parse_log_line(raw)
        if line is None:
            continue
        counts.add(line)
        if line.judged:
            breaker.observe(line.server, line.server_ms, failed=line.failed, now=now)


def main(argv: list[str] | None = None) -> None:
    """Entry point for supervisord."""
    args = sys.argv[1:] if argv is None else argv
    run(BreakerConfig.read(Path(args[0])))


if __name__ == "__main__":
    main()
