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

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

from alumnos_cli.errors import AlumnosError
from alumnos_cli.proof.balancing import BALANCING_TOLERANCE, judge_balance
from alumnos_cli.proof.cache import prove_cache_at
from alumnos_cli.proof.client import spread_gets_at
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
from alumnos_cli.stack import compose_view
from alumnos_cli.stack.compose import ComposeRecord
from alumnos_cli.stack.compose_view import ContainerStatus
from alumnos_cli.stack.engine import DockerClient
from alumnos_service.paths import FIRST_PAGE

# What local mode proves that Traefik cannot do, as the proof table says it.
NOT_IN_TRAEFIK = {
    "rate-limit": "not proven in compose mode yet: behind docker-proxy every client reaches "
                  "Traefik from the network's gateway address, so a per-address limit is one "
                  "limit for all (README: compose mode)",
    "circuit-breaker": "not proven in compose mode yet: Traefik ejects a replica only for "
                       "failed connections (passive health check), not for being slower than "
                       "its peers as local mode's breaker does (README: compose mode)",
    "overload": "local mode only: Traefik has no queue; beyond its in-flight limit it answers "
                "429 at once (README: compose mode)",
}
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
    watch = PoolWatch(record, victim)
    timer = threading.Timer(options.retry_seconds / 3, lambda: watch.killed(
        _kill(client, victim, how, say)))
    watch.start()
    timer.start()
    try:
        figures = k6_load_at(record.url, record.patterns, options.vus, options.retry_seconds,
                             folder)
    finally:
        timer.cancel()
        watch.finish(wait_for_return=60.0 if how == "granian" else 0.0)
    if how == "container":
        _restore(client, record, victim, say)
    failed = failed_requests(figures)
    events = watch.events
    back = how != "granian" or "back UP in Traefik" in events
    ok = watch.killed_at is not None and failed <= options.vus and \
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
        say(f"killing Granian in {victim.component} (host pid {pid}) with SIGKILL")
        os.kill(pid, signal.SIGKILL)
    else:
        say(f"docker kill {victim.name}")
        container.kill()
    return time.monotonic()


def _restore(client: DockerClient, record: ComposeRecord, victim: ContainerStatus,
             say: Progress) -> None:
    """Start the killed container again, so the stack is whole for what follows."""
    say(f"starting {victim.name} again")
    client.containers.get(victim.name).start()
    compose_view.wait_until_serving(client, record, 120.0)


class PoolWatch:
    """Follows one replica in Traefik's pool during the retry proof."""

    def __init__(self, record: ComposeRecord, victim: ContainerStatus) -> None:
        self.record, self.victim = record, victim
        self.killed_at: float | None = None
        self.events: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        """Begin polling Traefik's API."""
        self._thread.start()

    def killed(self, at: float) -> None:
        """Note the kill; events are timed from here."""
        self.killed_at = at

    def finish(self, wait_for_return: float) -> None:
        """Stop polling once the replica is back UP, or after the wait."""
        deadline = time.monotonic() + wait_for_return
        while self.killed_at and "back UP in Traefik" not in self.events \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.is_set():
            if self.killed_at is not None:
                since = time.monotonic() - self.killed_at
                servers = compose_view.traefik_servers(self.record)
                if servers is not None:
                    # Counted, not looked up by address: a restarted container may get another.
                    serving = sum(state == "UP" for state in servers.values())
                    if serving < self.record.replicas:
                        self.events.setdefault("out of Traefik's pool", since)
                    elif "out of Traefik's pool" in self.events:
                        self.events.setdefault("back UP in Traefik", since)
            time.sleep(0.1)


def prove_compose(record: ComposeRecord, client: DockerClient, options: ProofOptions,
                  folder: Path, say: Progress) -> list[PatternResult]:
    """Every asked proof, in the order of PATTERNS, on the compose stack."""
    results: list[PatternResult] = []
    for name in (p for p in PATTERNS if p in options.only):
        say(f"proving {name} ...")
        if name == "balancing":
            results.append(prove_balancing(client, record, options))
        elif name == "retry":
            for how in KILLS:
                results.append(prove_retry(client, record, options, folder / f"retry-{how}",
                                           say, how))
        elif name == "cache":
            results.append(prove_cache_at(record.url, record.patterns, record.database_url,
                                          options, cache=record.cache))
        else:
            results.append(PatternResult(name, "-", NOT_IN_TRAEFIK[name], SKIPPED,
                                         {"mode": "compose"}))
    return results
