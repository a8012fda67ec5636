"""`alumnos patterns`: prove each resilience pattern on the running local stack, by experiment.

Each proof does something to the stack (a load, a killed replica, an injected delay), observes
what clients and the balancer saw, and gives a verdict. Results are data; the CLI renders them
and they are saved as JSON under <results>/patterns/ for the report.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from alumnos_cli.bench import SCENARIOS, BenchRequest, run_scenario
from alumnos_cli.errors import AlumnosError, ServiceUnreachable
from alumnos_cli.k6 import THRESHOLDS_FAILED, find_k6, scripts_dir
from alumnos_cli.results import RunFigures, summary_figures
from alumnos_cli.runs import SUMMARY_FILE, new_run_dir, read_json, write_json
from alumnos_cli.settings import Settings
from alumnos_cli.stack import haproxy
from alumnos_cli.stack import supervisor as supervision
from alumnos_cli.stack.breaker import read_state
from alumnos_cli.stack.local import running_state
from alumnos_cli.stack.state import ReplicaRecord, StackState

PROOFS_DIR = "patterns"  # under the results folder, beside the run folders
PATTERNS = ("balancing", "retry", "rate-limit", "circuit-breaker", "cache")
PAGE_PATH = "/api/v1/alumno/alumno?limit=100&offset=0"
PASS, FAIL, SKIPPED = "pass", "fail", "skipped"
# Source addresses on loopback: each proof client gets its own, so the per-address rate limit
# (when on) judges each client separately, as it would distinct users.
RATE_CLIENT_ABOVE, RATE_CLIENT_BELOW = "127.0.0.2", "127.0.0.3"
BALANCING_TOLERANCE = 0.10
CACHE_HIT_TARGET = 0.95


@dataclass(frozen=True)
class ProofOptions:
    """How hard and how long to push; the defaults are the issue's, tests shorten them."""

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


@dataclass(frozen=True)
class PatternResult:
    """One row of the proof table."""

    pattern: str
    action: str
    observed: str
    verdict: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProofReport:
    """Every proof's result, and where it was saved."""

    results: list[PatternResult]
    path: Path

    @property
    def ok(self) -> bool:
        """True when no proof failed (skipped ones do not count)."""
        return all(r.verdict != FAIL for r in self.results)


Progress = Callable[[str], None]


def prove(settings: Settings, options: ProofOptions,
          progress: Progress | None = None) -> ProofReport:
    """Run the asked proofs against the stack `up` started; save and return the results."""
    unknown = set(options.only) - set(PATTERNS)
    if unknown:
        raise AlumnosError(f"unknown pattern(s): {', '.join(sorted(unknown))}",
                           f"choose among: {', '.join(PATTERNS)}")
    state = running_state(settings.state_dir)
    if state is None:
        raise ServiceUnreachable("no running stack to prove", "start one with alumnos up")
    if not state.service.balancer:
        raise AlumnosError("the stack runs without a balancer, so it has no patterns to prove",
                           "alumnos down, then alumnos up (HAProxy is on by default)")
    folder = new_run_dir(settings.results_dir / PROOFS_DIR)
    say = progress or (lambda _message: None)
    steps: dict[str, Callable[[], PatternResult]] = {
        "balancing": lambda: prove_balancing(state, options),
        "retry": lambda: prove_retry(state, options, folder / "retry", say),
        "rate-limit": lambda: prove_rate_limit(state, options),
        "circuit-breaker": lambda: prove_circuit_breaker(state, options, folder / "breaker", say),
        "cache": lambda: prove_cache(state, options),
    }
    results = []
    for name in PATTERNS:
        if name in options.only:
            say(f"proving {name} ...")
            results.append(steps[name]())
    path = folder / "patterns.json"
    write_json(path, {"started_at": folder.name, "url": state.service.url,
                      "replicas": [r.name for r in state.service.replicas],
                      "patterns": asdict(state.service.patterns),
                      "options": asdict(options),
                      "results": [asdict(r) for r in results]})
    return ProofReport(results, path)


def latest_proof(results_dir: Path) -> dict[str, Any] | None:
    """The newest saved proof, for the report; None when `patterns` never ran."""
    root = results_dir / PROOFS_DIR
    files = sorted(root.glob("*/patterns.json")) if root.is_dir() else []
    return read_json(files[-1]) if files else None


# --- a small HTTP client with its own source address -------------------------------------


@dataclass(frozen=True)
class Answer:
    """What a client saw for one request."""

    status: int
    served_by: str
    cache: str
    headers: dict[str, str]
    body: bytes


class Client:
    """One keep-alive connection to the balancer, from a chosen loopback source address."""

    def __init__(self, url: str, source: str = "127.0.0.1") -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.connection = http.client.HTTPConnection(host, int(port), timeout=10,
                                                     source_address=(source, 0))

    def get(self, path: str) -> Answer:
        """GET path; one reconnect when the connection was closed under us."""
        for attempt in range(2):
            try:
                self.connection.request("GET", path)
                response = self.connection.getresponse()
                body = response.read()
                headers = {k.lower(): v for k, v in response.getheaders()}
                return Answer(response.status, headers.get("x-served-by", "").split(":")[0],
                              headers.get("x-cache", ""), headers, body)
            except (http.client.HTTPException, OSError) as exc:
                self.connection.close()
                if attempt:
                    raise ServiceUnreachable(
                        f"the balancer did not answer GET {path} ({exc or type(exc).__name__})",
                        "alumnos status shows the stack; alumnos logs haproxy shows why"
                    ) from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()


def _paced_gets(url: str, path: str, source: str, rate: float, seconds: float) -> list[Answer]:
    """GETs from one address at a steady rate, spread over a few connections."""
    lanes = max(1, min(8, int(rate // 40) + 1))
    interval = lanes / rate
    start = time.monotonic() + 0.05

    def lane(offset: int) -> list[Answer]:
        client = Client(url, source)
        answers = []
        try:
            i = 0
            while (due := start + offset * interval / lanes + i * interval) < start + seconds:
                time.sleep(max(0.0, due - time.monotonic()))
                answers.append(client.get(path))
                i += 1
        finally:
            client.close()
        return answers

    with ThreadPoolExecutor(lanes) as pool:
        return [a for chunk in pool.map(lane, range(lanes)) for a in chunk]


def _spread_gets(state: StackState, path: str, count: int) -> list[Answer]:
    """`count` GETs over several clients, each with its own address and under any rate limit."""
    spec = state.service.patterns
    clients = 6
    per_client = -(-count // clients)
    # Under the limit, so the rate limit (if on) never answers these proofs instead.
    rate = 0.8 * spec.rate_limit_average / spec.rate_limit_period_s if spec.rate_limit else 1e9

    def run(index: int) -> list[Answer]:
        client = Client(state.service.url, f"127.0.3.{index + 1}")
        answers = []
        started = time.monotonic()
        try:
            for i in range(per_client):
                time.sleep(max(0.0, started + i / rate - time.monotonic()))
                answers.append(client.get(path))
        finally:
            client.close()
        return answers

    with ThreadPoolExecutor(clients) as pool:
        return [a for chunk in pool.map(run, range(clients)) for a in chunk][:count]


# --- the proofs --------------------------------------------------------------------------


def _stats(state: StackState) -> dict[str, haproxy.ServerStat]:
    assert state.service.runtime_socket is not None
    return {s.name: s for s in haproxy.server_stats(Path(state.service.runtime_socket))}


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
    healthy = sorted(n for n, s in _stats(state).items() if s.status == "UP")
    answers = _spread_gets(state, PAGE_PATH, options.balancing_requests)
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


def _victim(state: StackState, options: ProofOptions) -> ReplicaRecord:
    replicas = {r.name: r for r in state.service.replicas}
    name = options.victim or state.service.replicas[min(1, len(replicas) - 1)].name
    if name not in replicas:
        raise AlumnosError(f"no replica named {name!r}", f"choose one of: {', '.join(replicas)}")
    return replicas[name]


def _k6_load(state: StackState, vus: int, seconds: int, folder: Path) -> RunFigures:
    """A constant-VU k6 load on the page through the balancer; its figures."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = state.service.patterns
    extra_args: tuple[str, ...] = ()
    extra_env: dict[str, str] = {}
    if spec.rate_limit:
        # Distinct users, not one client: one loopback address per VU, each paced under the
        # per-address limit, so the rate limit never answers in place of the pattern tested.
        extra_args = ("--local-ips", f"127.0.4.1-127.0.4.{min(vus, 254)}")
        per_address = spec.rate_limit_average / spec.rate_limit_period_s
        vus_per_address = -(-vus // 254)
        extra_env["PACING_S"] = f"{vus_per_address / (0.8 * per_address):.4f}"
    request = BenchRequest(scenario="endpoint", vus=vus, duration_seconds=seconds,
                           path=PAGE_PATH, timeseries=False)
    outcome = run_scenario(find_k6(), scripts_dir() / SCENARIOS["endpoint"].script, request,
                           state.service.url, folder, extra_env=extra_env,
                           extra_args=extra_args)
    summary = folder / SUMMARY_FILE
    if outcome.exit_code not in (0, THRESHOLDS_FAILED) or not summary.exists():
        raise AlumnosError(f"k6 failed with exit code {outcome.exit_code}",
                           f"see {outcome.log}")
    return summary_figures(read_json(summary), str(summary))


def _failed(figures: RunFigures) -> int:
    return round(figures.error_rate * figures.requests)


def prove_retry(state: StackState, options: ProofOptions, folder: Path,
                say: Progress) -> PatternResult:
    """A replica killed (SIGKILL) under load: no client request may fail."""
    if not state.service.patterns.retry:
        return PatternResult("retry", "-", "retry is off in this stack", SKIPPED,
                             {"hint": "alumnos up without --no-retry"})
    victim = _victim(state, options)
    state_dir = Path(state.service.log_dir).parent
    before = _stats(state)
    timeline = _Timeline(state, state_dir, victim.name)

    def kill() -> None:
        info = {p.name: p for p in supervision.programs_info(state_dir)}.get(victim.name)
        if info is not None and info.pid:
            say(f"killing {victim.name} (pid {info.pid}) with SIGKILL")
            timeline.killed(info.pid)
            os.killpg(info.pid, signal.SIGKILL)

    timer = threading.Timer(options.retry_seconds / 3, kill)
    timeline.start()
    timer.start()
    try:
        figures = _k6_load(state, options.vus, options.retry_seconds, folder)
    finally:
        timer.cancel()
        timeline.finish(wait_for_return=30.0)
    after = _stats(state)
    retried = sum(after[n].retries + after[n].redispatches
                  - before[n].retries - before[n].redispatches for n in after if n in before)
    failed = _failed(figures)
    events = timeline.events
    ok = timeline.killed_pid is not None and failed == 0 and BACK_UP in events
    story = "; ".join(f"{name} at {seconds:.1f} s" for name, seconds in events.items())
    return PatternResult(
        "retry", f"{options.vus} VUs for {options.retry_seconds} s; {victim.name} killed "
        f"(SIGKILL) at {options.retry_seconds / 3:.0f} s",
        f"{figures.requests:,} requests, {failed} failed; {retried} retried or redispatched by "
        f"HAProxy; after the kill: {story or 'nothing seen'}", PASS if ok else FAIL,
        {"requests": figures.requests, "failed": failed, "retried": retried,
         "killed_pid": timeline.killed_pid, "events_s_after_kill": events,
         "p95_ms": figures.latency.p95, "k6_folder": str(folder)})


BACK_UP = "back UP in HAProxy"
MARKED_DOWN = "marked DOWN by HAProxy"


class _Timeline:
    """Watches one replica during the retry proof: when it went DOWN, restarted, came back."""

    def __init__(self, state: StackState, state_dir: Path, replica: str) -> None:
        self.state, self.state_dir, self.replica = state, state_dir, replica
        self.killed_pid: int | None = None
        self.killed_at = 0.0
        self.events: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        """Begin polling supervisord and HAProxy."""
        self._thread.start()

    def killed(self, pid: int) -> None:
        """Note the kill; events are timed from here."""
        self.killed_pid, self.killed_at = pid, time.monotonic()

    def finish(self, wait_for_return: float) -> None:
        """Stop polling once the replica is back UP, or after the wait."""
        deadline = time.monotonic() + wait_for_return
        while self.killed_pid and BACK_UP not in self.events and time.monotonic() < deadline:
            time.sleep(0.1)
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.is_set():
            if self.killed_pid is not None:
                self._observe(time.monotonic() - self.killed_at)
            time.sleep(0.05)

    def _observe(self, since: float) -> None:
        info = {p.name: p for p in supervision.programs_info(self.state_dir)}.get(self.replica)
        try:
            stat = _stats(self.state).get(self.replica)
        except AlumnosError:
            stat = None
        if stat is not None and not stat.status.startswith("UP"):
            self.events.setdefault(MARKED_DOWN, since)
        if info is not None and info.state == "RUNNING" and info.pid not in (0, self.killed_pid):
            self.events.setdefault(f"restarted by supervisord (pid {info.pid})", since)
            if stat is not None and stat.status == "UP" and MARKED_DOWN in self.events:
                self.events.setdefault(BACK_UP, since)


def prove_rate_limit(state: StackState, options: ProofOptions) -> PatternResult:
    """A client above the limit gets 429s; one below it, at the same time, gets none."""
    spec = state.service.patterns
    if not spec.rate_limit:
        return PatternResult("rate-limit", "-", "the rate limit is off in this stack", SKIPPED,
                             {"hint": "alumnos down; alumnos up --rate-limit 100/s"})
    limit = spec.rate_limit_average / spec.rate_limit_period_s
    seconds = max(options.rate_seconds, 2.0 * spec.rate_limit_period_s)
    with ThreadPoolExecutor(2) as pool:
        above_job = pool.submit(_paced_gets, state.service.url, PAGE_PATH, RATE_CLIENT_ABOVE,
                                2 * limit, seconds)
        below_job = pool.submit(_paced_gets, state.service.url, PAGE_PATH, RATE_CLIENT_BELOW,
                                0.5 * limit, seconds)
        above, below = above_job.result(), below_job.result()
    limited = [a for a in above if a.status == 429]
    well_formed = all(a.headers.get("retry-after") and
                      a.headers.get("content-type", "").startswith("application/problem+json")
                      and json.loads(a.body).get("status") == 429 for a in limited)
    accepted = sum(a.status == 200 for a in above) / seconds
    below_limited = sum(a.status == 429 for a in below)
    ok = bool(limited) and well_formed and below_limited == 0
    return PatternResult(
        "rate-limit", f"{spec.rate_limit_text} per address; one client at {2 * limit:g}/s and "
        f"one at {0.5 * limit:g}/s for {seconds:g} s",
        f"above: {len(limited)} of {len(above)} got 429 (problem+json with Retry-After: "
        f"{'yes' if well_formed else 'NO'}), {accepted:.0f}/s accepted; below: "
        f"{below_limited} of {len(below)} got 429", PASS if ok else FAIL,
        {"above_sent": len(above), "above_429": len(limited), "accepted_per_s": accepted,
         "below_sent": len(below), "below_429": below_limited, "well_formed": well_formed})


def _write_fault(victim: ReplicaRecord, fault: dict[str, float] | None) -> None:
    path = Path(victim.fault_file)
    if fault is None:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(fault))
    tmp.replace(path)


def _breaker_state(state: StackState, replica: str) -> str | None:
    assert state.service.breaker_state is not None
    snapshot = read_state(Path(state.service.breaker_state)) or {}
    entry = (snapshot.get("replicas") or {}).get(replica)  # type: ignore[union-attr]
    return entry.get("state") if isinstance(entry, dict) else None


def _wait_for(condition: Callable[[], bool], timeout: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.1)
    return None


def prove_circuit_breaker(state: StackState, options: ProofOptions, folder: Path,
                          say: Progress) -> PatternResult:
    """A replica made slow is ejected, client p95 recovers, and it returns once healed."""
    spec = state.service.patterns
    if not spec.circuit_breaker:
        return PatternResult("circuit-breaker", "-", "the circuit breaker is off", SKIPPED,
                             {"hint": "alumnos up without --no-circuit-breaker"})
    if not state.service.fault_injection:
        return PatternResult("circuit-breaker", "-",
                             "fault injection is off, so no replica can be made slow", SKIPPED,
                             {"hint": "alumnos down; alumnos up --fault-injection"})
    victim = _victim(state, options)
    phase = options.breaker_phase_seconds
    vus = options.breaker_vus
    say(f"baseline: {vus} VUs for {phase} s")
    baseline = _k6_load(state, vus, phase, folder / "1-baseline")
    say(f"making {victim.name} slow (+{options.breaker_delay_ms} ms per request)")
    _write_fault(victim, {"delay_ms": options.breaker_delay_ms})
    ejected_at: list[float] = []
    after: RunFigures | None = None
    served_while_out: int | None = None
    try:
        started = time.monotonic()
        watcher = threading.Thread(target=lambda: _wait_for(
            lambda: _breaker_state(state, victim.name) == "open"
            and not ejected_at.append(time.monotonic()), phase + 10))
        watcher.start()
        during = _k6_load(state, vus, phase, folder / "2-slow")
        watcher.join()
        # Measure while the breaker is surely still open: it re-admits traffic after fallback.
        left = (spec.circuit_breaker_fallback_s - (time.monotonic() - ejected_at[0]) - 1.5
                if ejected_at else 0)
        if int(min(phase, left)) >= 1:
            before = _stats(state)[victim.name].requests
            say(f"load while {victim.name} is out")
            after = _k6_load(state, vus, int(min(phase, left)), folder / "3-ejected")
            served_while_out = _stats(state)[victim.name].requests - before
    finally:
        _write_fault(victim, None)
    say(f"healed {victim.name}; waiting for the breaker to close")
    wait = spec.circuit_breaker_fallback_s + spec.circuit_breaker_recovery_s + 10
    closed_after = _wait_for(lambda: _breaker_state(state, victim.name) == "closed"
                             and _stats(state)[victim.name].status.startswith("UP"), wait)
    served_after_heal = _requests_to(state, victim.name) if closed_after is not None else 0
    ejected = ejected_at[0] - started if ejected_at else None
    recovered = after is not None and after.latency.p95 < options.breaker_delay_ms
    ok = (ejected is not None and served_while_out == 0 and recovered
          and closed_after is not None and served_after_heal > 0)
    if ejected is None:
        outcome = "never ejected"
    elif after is None:
        outcome = (f"ejected after {ejected:.1f} s, but the fallback duration "
                   f"({spec.circuit_breaker_fallback_s} s) ended before clients could be "
                   "measured without it; raise --breaker-fallback-s")
    else:
        outcome = (f"p95 / p99 {_p95_p99(after)} once ejected (after {ejected:.1f} s), "
                   f"{served_while_out} requests to it while out")
    observed = (
        f"p95 / p99 {_p95_p99(baseline)} before, {_p95_p99(during)} while slow; {outcome}; "
        + (f"back after healing in {closed_after:.1f} s, serving {served_after_heal} of 60"
           if closed_after is not None else "not back after healing"))
    return PatternResult(
        "circuit-breaker", f"{vus} VUs; {victim.name} slowed by {options.breaker_delay_ms} ms "
        f"(breaker: p{spec.circuit_breaker_quantile:g} > {spec.circuit_breaker_latency_ms} ms)",
        observed, PASS if ok else FAIL,
        {"p95_before_ms": baseline.latency.p95, "p95_slow_ms": during.latency.p95,
         "p95_ejected_ms": after.latency.p95 if after else None, "ejected_after_s": ejected,
         "served_while_out": served_while_out, "closed_after_s": closed_after,
         "served_after_heal": served_after_heal, "failed_requests":
         _failed(baseline) + _failed(during) + (_failed(after) if after else 0)})


def _p95_p99(figures: RunFigures) -> str:
    return f"{figures.latency.p95:.0f} / {figures.latency.p99:.0f} ms"


def _requests_to(state: StackState, replica: str) -> int:
    answers = _spread_gets(state, PAGE_PATH, 60)
    return sum(a.served_by == replica for a in answers)


def prove_cache(state: StackState, options: ProofOptions) -> PatternResult:
    """A repeated page is served from cache (> 95%) and equals what the database gives."""
    if not state.service.cache:
        return PatternResult("cache", "-", "the cache is off in this stack", SKIPPED,
                             {"hint": "alumnos up without --no-cache"})
    path = "/api/v1/alumno/alumno?limit=100&offset=4200"
    answers = _spread_gets(state, path, options.cache_requests + 1)[1:]  # the first may fill
    hits = sum(a.cache == "HIT" for a in answers)
    ratio = hits / max(1, len(answers))
    fresh = _page_from_database(state, path)
    equal = all(json.loads(a.body) == fresh for a in answers if a.status == 200)
    ok = ratio > CACHE_HIT_TARGET and equal
    return PatternResult(
        "cache", f"the same page {len(answers)} times through the balancer",
        f"hit ratio {ratio:.1%} ({hits} hits); cached page "
        f"{'equals' if equal else 'DIFFERS from'} the page built from PostgreSQL",
        PASS if ok else FAIL, {"requests": len(answers), "hits": hits, "ratio": ratio,
                               "equal_to_database": equal, "target": CACHE_HIT_TARGET})


def _page_from_database(state: StackState, path: str) -> Any:
    """The page as the service builds it with no cache at all, straight from PostgreSQL."""
    from service import create_app

    app = create_app({"DATABASE_URL": state.database_url, "CACHE": "off"})
    try:
        response = app.test_client().get(path)
        return response.get_json()
    finally:
        app.extensions["alumnos.repository"].engine.dispose()
