"""Overload: more load than the stack serves, and the patterns protect it instead of switching
it off.

Uncached random pages over the whole table, twice back to back: with the circuit breaker on,
then paused. With it on, no request may fail other than by a fast refusal (503 or 429, a
problem with Retry-After), refusals stay under 1% of requests, the breaker ejects no replica
(every replica is slow alike: that is overload, not a faulty replica), and the stack serves at
least 0.9 of what it serves with the breaker paused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from alumnos_cli.bench.balancer import balancer_record, watcher_view
from alumnos_cli.bench.k6 import THRESHOLDS_FAILED, find_k6
from alumnos_cli.bench.request import BenchRequest
from alumnos_cli.bench.run import run_scenario
from alumnos_cli.bench.scenarios import scripts_dir
from alumnos_cli.errors import AlumnosError
from alumnos_cli.files import read_json
from alumnos_cli.proof.options import (
    FAIL,
    PASS,
    SKIPPED,
    PatternResult,
    Progress,
    ProofOptions,
)
from alumnos_cli.runfolder import SUMMARY_FILE
from alumnos_cli.stack.breaker import OPEN, PAUSE_FILE
from alumnos_cli.stack.state import StackState

SCRIPT = "overload.js"
MAX_REFUSED = 0.01
MIN_GOODPUT_RATIO = 0.9
# A refusal is fast when it comes before the queue timeout has passed by this much: the
# balancer said no, nothing hung until the server timeout.
REFUSAL_SLACK_MS = 1000


@dataclass(frozen=True)
class OverloadRun:
    """What one overload load did."""

    requests: int
    seconds: float
    refusals: int
    failures: int
    refusal_p95_ms: float | None
    ejections: int
    balancer_refused: dict[str, int]  # what the balancer counted, by reason

    @property
    def goodput(self) -> float:
        """Answered requests per second."""
        answered = self.requests - self.refusals - self.failures
        return answered / self.seconds if self.seconds else 0.0


def prove_overload(state: StackState, options: ProofOptions, folder: Path,
                   say: Progress) -> PatternResult:
    """Overload with the breaker on, then paused: fast refusals only, no ejection."""
    record = state.service
    if record.cache:
        return PatternResult("overload", "-", "the cache answers, so the stack is not loaded",
                             SKIPPED, {"hint": "alumnos down; alumnos up --no-cache"})
    if not record.patterns.circuit_breaker or not record.breaker_state:
        return PatternResult("overload", "-", "the circuit breaker is off", SKIPPED,
                             {"hint": "alumnos up without --no-circuit-breaker"})
    vus, seconds = options.overload_vus, options.overload_seconds
    say(f"overload with the breaker on: {vus} VUs for {seconds} s on uncached random pages")
    on = _load(state, vus, seconds, folder / "1-breaker-on")
    pause = Path(record.breaker_state).parent / PAUSE_FILE
    pause.touch()
    try:
        time.sleep(0.5)  # the watcher looks for the pause every tick
        say(f"the same with the breaker paused: {vus} VUs for {seconds} s")
        off = _load(state, vus, seconds, folder / "2-breaker-off")
    finally:
        pause.unlink(missing_ok=True)
    limit_ms = record.patterns.queue_timeout_s * 1000 + REFUSAL_SLACK_MS
    fast = on.refusal_p95_ms is None or on.refusal_p95_ms <= limit_ms
    ratio = on.goodput / off.goodput if off.goodput else 0.0
    refused = on.refusals / on.requests if on.requests else 1.0
    ok = (on.failures == 0 and fast and refused <= MAX_REFUSED and on.ejections == 0
          and ratio >= MIN_GOODPUT_RATIO)
    observed = (
        f"breaker on: {on.requests:,} requests, {on.goodput:,.0f} answered/s, "
        f"{on.refusals:,} refused ({refused:.2%}"
        + (f", p95 {on.refusal_p95_ms:,.0f} ms" if on.refusal_p95_ms is not None else "")
        + f"), {on.failures:,} failed otherwise, {on.ejections} ejection(s); breaker paused: "
        f"{off.goodput:,.0f} answered/s; ratio {ratio:.2f}")
    return PatternResult(
        "overload", f"{vus} VUs on uncached random pages, {seconds} s with the breaker on, then "
        f"{seconds} s paused", observed, PASS if ok else FAIL,
        {"breaker_on": on.__dict__, "breaker_off": off.__dict__, "goodput_ratio": ratio,
         "refused_share": refused, "refusal_limit_ms": limit_ms})


def _load(state: StackState, vus: int, seconds: int, folder: Path) -> OverloadRun:
    folder.mkdir(parents=True, exist_ok=True)
    before = watcher_view(state, after=time.time())
    started = time.time()
    request = BenchRequest(scenario="smoke", vus=vus, duration_seconds=seconds, timeseries=False)
    outcome = run_scenario(find_k6(), scripts_dir() / SCRIPT, request, state.service.url, folder)
    summary = folder / SUMMARY_FILE
    if outcome.exit_code not in (0, THRESHOLDS_FAILED) or not summary.exists():
        raise AlumnosError(f"k6 failed with exit code {outcome.exit_code}",
                           f"see {outcome.log}")
    metrics = read_json(summary)["metrics"]

    def count(name: str) -> int:
        return int((metrics.get(name) or {}).get("values", {}).get("count", 0))

    refusal = (metrics.get("refusal_duration") or {}).get("values") or {}
    ended = time.time()
    counted = balancer_record(before, watcher_view(state, after=ended), started=started,
                              ended=ended, breaker_enabled=True)
    # Served, refused and failed are counted by the scenario's own iterations (overload.js),
    # so setup()'s request is in none of them.
    return OverloadRun(
        requests=count("served") + count("refusals") + count("failures"),
        seconds=float(metrics["http_reqs"]["values"]["count"]
                      / max(metrics["http_reqs"]["values"]["rate"], 1e-9)),
        refusals=count("refusals"), failures=count("failures"),
        refusal_p95_ms=refusal.get("p(95)"),
        ejections=sum(e["state"] == OPEN for e in counted["events"]) if counted else 0,
        balancer_refused=counted["refused"] if counted else {})

