"""What the balancer did during a run: its refusals and the breaker's transitions.

The breaker's watcher counts every response HAProxy logs, and the requests HAProxy answered
itself by reason, since it started; a run records the difference over its load, and the
transitions inside it with their time from the start of the load (report.balancer reads it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alumnos_cli.stack.breaker import read_state
from alumnos_cli.stack.state import StackState
from alumnos_cli.stack.watcher import STATE_WRITE_SECONDS

# Long enough for the watcher to write what it saw of the load's last responses.
SETTLE_SECONDS = 3 * STATE_WRITE_SECONDS


@dataclass(frozen=True)
class WatcherView:
    """The watcher's counters at one moment, and the wall-clock time it was taken."""

    at: float
    responses: int
    refused: dict[str, int]
    events: list[dict[str, Any]]


def watcher_view(state: StackState | None, *, after: float | None = None) -> WatcherView | None:
    """The watcher's latest state, at once; with `after`, one it wrote after that time (what
    it saw of the load's end), waiting briefly for it. None without a balancer."""
    path = state.service.breaker_state if state else None
    if not path:
        return None
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        snapshot = read_state(Path(path))
        updated = snapshot.get("updated") if snapshot else None
        written = float(updated) if isinstance(updated, int | float) else 0.0
        settled = after is None or time.monotonic() >= deadline
        if snapshot is not None and (settled or written > (after or 0.0)):
            return _view(snapshot)
        if settled:
            return None
        time.sleep(STATE_WRITE_SECONDS / 5)


def _view(snapshot: dict[str, Any]) -> WatcherView:
    refused = snapshot.get("refused") or {}
    events = snapshot.get("events") or []
    return WatcherView(at=float(snapshot.get("updated", 0)),
                       responses=int(snapshot.get("responses", 0)),
                       refused={str(k): int(v) for k, v in refused.items()},
                       events=[e for e in events if isinstance(e, dict)])


def balancer_record(before: WatcherView | None, after: WatcherView | None, *,
                    started: float, ended: float, breaker_enabled: bool) -> dict[str, Any] | None:
    """The run's share of the watcher's counters, and the breaker's events during the load.

    A watcher that restarted during the run (its counters went back) gives the counts since
    its restart: never negative, and said nowhere else, so the count is a floor.
    """
    if after is None:
        return None
    base = before if before is not None and before.responses <= after.responses else None
    refused = {reason: max(0, count - (base.refused.get(reason, 0) if base else 0))
               for reason, count in after.refused.items()}
    events = [{key: value for key, value in e.items() if key != "at"}
              | {"offset_s": round(float(e["at"]) - started, 2)}
              for e in after.events if started <= float(e.get("at", 0)) <= ended]
    return {"breaker_enabled": breaker_enabled,
            "responses": after.responses - (base.responses if base else 0),
            "refused": refused, "events": events, "load_seconds": round(ended - started, 2)}
