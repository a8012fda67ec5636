"""Retry: a replica killed (SIGKILL) under load, and no client request may fail."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from alumnos_cli.errors import AlumnosError
from alumnos_cli.proof.load import failed_requests, k6_load
from alumnos_cli.proof.options import (
    FAIL,
    PASS,
    SKIPPED,
    PatternResult,
    Progress,
    ProofOptions,
)
from alumnos_cli.proof.stack_view import server_stats, victim
from alumnos_cli.proof.watch import EventWatch
from alumnos_cli.stack import supervisor as supervision
from alumnos_cli.stack.state import StackState

BACK_UP = "back UP in HAProxy"
MARKED_DOWN = "marked DOWN by HAProxy"


def prove_retry(state: StackState, options: ProofOptions, folder: Path,
                say: Progress) -> PatternResult:
    """A replica killed (SIGKILL) under load: no client request may fail."""
    if not state.service.patterns.retry:
        return PatternResult("retry", "-", "retry is off in this stack", SKIPPED,
                             {"hint": "alumnos up without --no-retry"})
    target = victim(state, options)
    state_dir = Path(state.service.log_dir).parent
    before = server_stats(state)
    timeline = Timeline(state, state_dir, target.name)

    def kill() -> None:
        info = {p.name: p for p in supervision.programs_info(state_dir)}.get(target.name)
        if info is not None and info.pid:
            say(f"killing {target.name} (pid {info.pid}) with SIGKILL")
            timeline.killed(info.pid)
            os.killpg(info.pid, signal.SIGKILL)

    timer = threading.Timer(options.retry_seconds / 3, kill)
    timeline.start()
    timer.start()
    try:
        figures = k6_load(state, options.vus, options.retry_seconds, folder)
    finally:
        timer.cancel()
        timeline.finish(wait_for_return=30.0)
    after = server_stats(state)
    retried = sum(after[n].retries + after[n].redispatches
                  - before[n].retries - before[n].redispatches for n in after if n in before)
    failed = failed_requests(figures)
    events = timeline.events
    ok = timeline.killed_pid is not None and failed == 0 and BACK_UP in events
    story = "; ".join(f"{name} at {seconds:.1f} s" for name, seconds in events.items())
    return PatternResult(
        "retry", f"{options.vus} VUs for {options.retry_seconds} s; {target.name} killed "
        f"(SIGKILL) at {options.retry_seconds / 3:.0f} s",
        f"{figures.requests:,} requests, {failed} failed; {retried} retried or redispatched by "
        f"HAProxy; after the kill: {story or 'nothing seen'}", PASS if ok else FAIL,
        {"requests": figures.requests, "failed": failed, "retried": retried,
         "killed_pid": timeline.killed_pid, "events_s_after_kill": events,
         "p95_ms": figures.latency.p95, "k6_folder": str(folder)})


class Timeline(EventWatch):
    """Watches one replica during the retry proof: when it went DOWN, restarted, came back."""

    back = BACK_UP
    poll_s = 0.05

    def __init__(self, state: StackState, state_dir: Path, replica: str) -> None:
        super().__init__()
        self.state, self.state_dir, self.replica = state, state_dir, replica
        self.killed_pid: int | None = None

    def killed(self, pid: int) -> None:
        """Note the kill; events are timed from here."""
        self.killed_pid = pid
        self.started(time.monotonic())

    def _observe(self, since: float) -> None:
        info = {p.name: p for p in supervision.programs_info(self.state_dir)}.get(self.replica)
        try:
            stat = server_stats(self.state).get(self.replica)
        except AlumnosError:
            stat = None
        if stat is not None and not stat.status.startswith("UP"):
            self.events.setdefault(MARKED_DOWN, since)
        if info is not None and info.state == "RUNNING" and info.pid not in (0, self.killed_pid):
            self.events.setdefault(f"restarted by supervisord (pid {info.pid})", since)
            if stat is not None and stat.status == "UP" and MARKED_DOWN in self.events:
                self.events.setdefault(BACK_UP, since)
