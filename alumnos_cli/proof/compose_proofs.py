"""The proofs on the compose stack: Traefik in front of containers.

Balancing, retry and cache are proven as in local mode, through Traefik; what they read comes
from Traefik's own API and the engine. Traefik's retry resends only requests whose connection
could not be opened: a request already sent to a replica that dies fails (HAProxy's
`retry-on empty-response` resends those). The retry proof therefore allows at most one failed
request per VU (one in flight each when the replica died) and requires that none fail once
Traefik has dropped the replica: without retries, every request sent to the dead address
until then would fail too.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alumnos_cli.errors import AlumnosError
from alumnos_cli.proof.balancing import BALANCING_TOLERANCE, judge_balance
from alumnos_cli.proof.cache import prove_cache_at
from alumnos_cli.proof.client import paced_gets, spread_gets_at
from alumnos_cli.proof.load import failed_requests, k6_load_at
from alumnos_cli.proof.options import (
    FAIL,
    PASS,
    PATTERNS,
    SKIPPED,
    PatternResult,
    Progress,
    ProofOptions,
)
from alumnos_cli.proof.rate_limit import CLIENT_ABOVE, CLIENT_BELOW
from alumnos_cli.proof.watch import EventWatch
from alumnos_cli.stack import compose_view
from alumnos_cli.stack.compose import FAULT_FILE, ComposeRecord
from alumnos_cli.stack.compose_view import ContainerStatus
from alumnos_cli.stack.engine import DockerClient
from alumnos_service.paths import FIRST_PAGE

# What local mode proves that Traefik cannot do, as the proof table says it.
NOT_IN_TRAEFIK = {
    "overload": "local mode only: Traefik has no queue; beyond its in-flight limit it answers "
                "429 at once (README: compose mode)",
}
# Why the other proofs need the rate limit off in compose mode.
SHARED_BUCKET = ("the rate limit is on: behind docker-proxy every client of the proof shares "
                 "one bucket, and its 429s would answer in place of the pattern")
# The breaker must cut the victim's failures to a tenth of its share at least.
BREAKER_MARGIN = 10
KILLS = {"granian": "Granian killed (SIGKILL) inside the container",
         "container": "container killed (docker kill)"}


def replicas(client: DockerClient, record: ComposeRecord) -> list[ContainerStatus]:
    """The replicas' containers."""
    return [r for r in compose_view.containers(client, record.project) if r.service == "alumnos"]


def prove_balancing(client: DockerClient, record: ComposeRecord,
                    options: ProofOptions) -> PatternResult:
    """Requests spread over every replica Traefik lists UP, within 10% of even."""
    servers = compose_view.traefik_servers(record) or {}
    names = {r.hostname: r.component for r in replicas(client, record)
             if compose_view.server_of(servers, r) == "UP"}
    answers = spread_gets_at(record.url, record.patterns, FIRST_PAGE, options.balancing_requests)
    counts = Counter(names.get(a.served_by, a.served_by) for a in answers if a.status == 200)
    healthy = sorted(names.values())
    ok, deviation = judge_balance(healthy, counts)
    served = ", ".join(f"{n} {counts.get(n, 0)}" for n in healthy)
    return PatternResult(
        "balancing", f"{len(answers)} GETs from 6 clients through Traefik",
        f"{served} (largest deviation from even {deviation:.1%}; "
        f"{len(answers) - sum(counts.values())} not 200)", PASS if ok else FAIL,
        {"healthy": healthy, "counts": dict(counts), "deviation": deviation,
         "tolerance": BALANCING_TOLERANCE})


def prove_retry(client: DockerClient, record: ComposeRecord, options: ProofOptions,
                folder: Path, say: Progress, how: str) -> PatternResult:
    """A replica killed under load (`how`: granian or container): at most one failed request
    per VU, and the replica out of Traefik's pool (for Granian, back once restarted)."""
    if not record.patterns.retry:
        return PatternResult("retry", "-", "retry is off in this stack", SKIPPED,
                             {"hint": "alumnos up --mode compose without --no-retry"})
    victim = _victim(client, record, options)
    watch = PoolWatch(record)
    kill_failed: list[str] = []

    def kill() -> None:
        try:
            watch.started(_kill(client, victim, how, say))
        except (AlumnosError, OSError) as exc:  # said in the verdict, not as a traceback
            kill_failed.append(str(exc))

    timer = threading.Timer(options.retry_seconds / 3, kill)
    watch.start()
    timer.start()
    try:
        figures = k6_load_at(record.url, record.patterns, options.vus, options.retry_seconds,
                             folder)
    finally:
        timer.cancel()
        watch.finish(wait_for_return=60.0 if how == "granian" else 0.0)
        if how == "container" and watch.started_at is not None:
            _restore(client, record, victim, say)
    if kill_failed:
        return PatternResult("retry", f"{KILLS[how]}: {victim.component}",
                             f"the kill failed: {kill_failed[0]}", FAIL, {"kill": how})
    failed = failed_requests(figures)
    events = watch.events
    back = how != "granian" or PoolWatch.back in events
    ok = watch.started_at is not None and failed <= options.vus and \
        "out of Traefik's pool" in events and back
    story = "; ".join(f"{name} at {seconds:.1f} s" for name, seconds in events.items())
    return PatternResult(
        "retry", f"{options.vus} VUs for {options.retry_seconds} s; {victim.component}: "
        f"{KILLS[how]} at {options.retry_seconds / 3:.0f} s",
        f"{figures.requests:,} requests, {failed} failed (at most {options.vus} allowed: "
        f"requests already sent to it, which Traefik does not resend); after the kill: "
        f"{story or 'nothing seen'}", PASS if ok else FAIL,
        {"requests": figures.requests, "failed": failed, "allowed": options.vus,
         "kill": how, "events_s_after_kill": events, "p95_ms": figures.latency.p95,
         "k6_folder": str(folder)})


def prove_rate_limit(record: ComposeRecord, options: ProofOptions) -> PatternResult:
    """A client above the limit gets 429s with Retry-After; one below it, at the same time,
    gets none, which behind docker-proxy Traefik cannot tell apart (one address for all)."""
    spec = record.patterns
    if not spec.rate_limit:
        return PatternResult("rate-limit", "-", "the rate limit is off in this stack", SKIPPED,
                             {"hint": "alumnos down; alumnos up --mode compose --rate-limit "
                                      "100/s"})
    limit = spec.rate_limit_average / spec.rate_limit_period_s
    seconds = max(options.rate_seconds, 2.0 * spec.rate_limit_period_s)
    with ThreadPoolExecutor(2) as pool:
        above_job = pool.submit(paced_gets, record.url, FIRST_PAGE, CLIENT_ABOVE, 2 * limit,
                                seconds)
        below_job = pool.submit(paced_gets, record.url, FIRST_PAGE, CLIENT_BELOW, 0.5 * limit,
                                seconds)
        above, below = above_job.result(), below_job.result()
    limited = [a for a in above if a.status == 429]
    retry_after = bool(limited) and all(a.headers.get("retry-after") for a in limited)
    below_limited = sum(a.status == 429 for a in below)
    accepted = sum(a.status == 200 for a in [*above, *below]) / seconds
    why = "" if below_limited == 0 else (
        ": behind docker-proxy both clients reach Traefik from the network's gateway address, "
        "so one bucket serves them all (README: compose mode)")
    return PatternResult(
        "rate-limit", f"{spec.rate_limit_text} per address; one client at {2 * limit:g}/s and "
        f"one at {0.5 * limit:g}/s for {seconds:g} s, through Traefik",
        f"above: {len(limited)} of {len(above)} got 429 (Retry-After: "
        f"{'yes' if retry_after else 'NO'}); below: {below_limited} of {len(below)} got 429; "
        f"both together accepted {accepted:.0f}/s{why}",
        PASS if limited and retry_after and below_limited == 0 else FAIL,
        {"above_sent": len(above), "above_429": len(limited), "below_sent": len(below),
         "below_429": below_limited, "accepted_per_s": accepted, "retry_after": retry_after})


def prove_circuit_breaker(client: DockerClient, record: ComposeRecord, options: ProofOptions,
                          folder: Path, say: Progress) -> PatternResult:
    """A replica answering 500 to every API request under load: Traefik's breaker (its
    passive health check) must keep the clients' failures far below the victim's share.

    Traefik's API keeps listing a passively ejected server as UP, so the proof judges by the
    clients: without ejection a third of the requests of the faulty phase would fail."""
    if not record.patterns.circuit_breaker:
        return PatternResult("circuit-breaker", "-", "the breaker is off in this stack",
                             SKIPPED, {"hint": "alumnos up --mode compose without "
                                               "--no-circuit-breaker"})
    if not record.fault_injection:
        return PatternResult("circuit-breaker", "-", "fault injection is off in this stack",
                             SKIPPED, {"hint": "alumnos down; alumnos up --mode compose "
                                               "--fault-injection"})
    victim = _victim(client, record, options)
    phase = options.breaker_phase_seconds
    seconds = 3 * phase

    def inject() -> None:
        say(f"{victim.component} answers 500 to every API request from now")
        _set_fault(client, victim, {"error_rate": 1.0})

    # After a first phase: k6's setup() verifies the target before any fault.
    timer = threading.Timer(phase, inject)
    timer.start()
    try:
        figures = k6_load_at(record.url, record.patterns, options.breaker_vus, seconds, folder)
    finally:
        timer.cancel()
        _set_fault(client, victim, None)
    failed = failed_requests(figures)
    share = failed / max(1, figures.requests)
    unprotected = (seconds - phase) / seconds / record.replicas
    ok = share <= unprotected / BREAKER_MARGIN
    return PatternResult(
        "circuit-breaker", f"{options.breaker_vus} VUs for {seconds} s; {victim.component} "
        f"answering 500 to every API request from {phase} s (the service's fault switch, "
        "inside its container)",
        f"{failed:,} of {figures.requests:,} requests failed ({share:.1%}; {unprotected:.0%} "
        f"if Traefik had kept sending it its share, at most {unprotected / BREAKER_MARGIN:.1%} "
        "allowed): Traefik's passive health check takes it out after failed answers; as its "
        "/health still passes, the active check lets it back, so a few requests a second still "
        "reach it", PASS if ok else FAIL,
        {"requests": figures.requests, "failed": failed, "failed_share": share,
         "share_without_breaker": unprotected, "k6_folder": str(folder)})


def _set_fault(client: DockerClient, victim: ContainerStatus,
               fault: dict[str, float] | None) -> None:
    """Write (or remove) the fault file inside the replica's container."""
    command = f"rm -f {FAULT_FILE}" if fault is None else \
        f"printf '%s' '{json.dumps(fault)}' > {FAULT_FILE}"
    result = client.containers.get(victim.name).exec_run(["sh", "-c", command])
    if result.exit_code != 0:
        raise AlumnosError(f"could not set the fault in {victim.name}: "
                           f"{bytes(result.output).decode(errors='replace').strip()}")


def _victim(client: DockerClient, record: ComposeRecord,
            options: ProofOptions) -> ContainerStatus:
    rows = {r.component: r for r in replicas(client, record)}
    if not rows:
        raise AlumnosError("the compose stack has no replica running", "alumnos status")
    name = options.victim or sorted(rows)[min(1, len(rows) - 1)]
    if name not in rows:
        raise AlumnosError(f"no replica named {name!r}", f"choose one of: {', '.join(rows)}")
    return rows[name]


def _kill(client: DockerClient, victim: ContainerStatus, how: str, say: Progress) -> float:
    container = client.containers.get(victim.name)
    if how == "granian":
        pid = int(container.attrs["State"]["Pid"])
        _check_is_the_containers(pid, container.id)
        say(f"killing Granian in {victim.component} (host pid {pid}) with SIGKILL")
        os.kill(pid, signal.SIGKILL)
    else:
        say(f"docker kill {victim.name}")
        container.kill()
    return time.monotonic()


def _check_is_the_containers(pid: int, container_id: str) -> None:
    """Refuse to signal a pid that is not the container's on this machine (an engine in
    another VM or PID namespace reports pids that mean something else here)."""
    try:
        cgroup = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        cgroup = ""
    if container_id not in cgroup:
        raise AlumnosError(f"pid {pid} is not the container's process on this machine (is the "
                           "engine in a VM or another PID namespace?)",
                           "prove retry with the docker kill variant only")


def _restore(client: DockerClient, record: ComposeRecord, victim: ContainerStatus,
             say: Progress) -> None:
    """Start the killed container again, so the stack is whole for what follows."""
    say(f"starting {victim.name} again")
    client.containers.get(victim.name).start()
    compose_view.wait_until_serving(client, record, 120.0)


class PoolWatch(EventWatch):
    """Follows Traefik's pool while one replica is killed or faulty."""

    back = "back UP in Traefik"

    def __init__(self, record: ComposeRecord) -> None:
        super().__init__()
        self.record = record

    def _observe(self, since: float) -> None:
        servers = compose_view.traefik_servers(self.record)
        if servers is None:
            return
        # Counted, not looked up by address: a restarted container may get another.
        serving = sum(state == "UP" for state in servers.values())
        if serving < self.record.replicas:
            self.events.setdefault("out of Traefik's pool", since)
        elif "out of Traefik's pool" in self.events:
            self.events.setdefault(self.back, since)


def prove_compose(record: ComposeRecord, client: DockerClient, options: ProofOptions,
                  folder: Path, say: Progress) -> list[PatternResult]:
    """Every asked proof, in the order of PATTERNS, on the compose stack."""
    results: list[PatternResult] = []
    for name in (p for p in PATTERNS if p in options.only):
        say(f"proving {name} ...")
        if record.patterns.rate_limit and name != "rate-limit":
            results.append(PatternResult(name, "-", SHARED_BUCKET, SKIPPED,
                                         {"hint": "alumnos down; alumnos up --mode compose "
                                                  "without --rate-limit"}))
        elif name == "balancing":
            results.append(prove_balancing(client, record, options))
        elif name == "retry":
            for how in KILLS:
                results.append(prove_retry(client, record, options, folder / f"retry-{how}",
                                           say, how))
        elif name == "rate-limit":
            results.append(prove_rate_limit(record, options))
        elif name == "circuit-breaker":
            results.append(prove_circuit_breaker(client, record, options, folder / "breaker",
                                                 say))
        elif name == "cache":
            results.append(prove_cache_at(record.url, record.patterns, record.database_url,
                                          options, cache=record.cache))
        else:
            results.append(PatternResult(name, "-", NOT_IN_TRAEFIK[name], SKIPPED,
                                         {"mode": "compose"}))
    return results
