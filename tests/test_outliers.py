"""The circuit breaker on a real stack (HAProxy, Granian replicas, PostgreSQL): it ejects a
replica that is worse than its peers, never replicas that are all slow together, and never
more than its share.

Replicas are made slow (or failing) through the service's fault switch; a light load of
keep-alive clients gives the breaker its samples.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from alumnos_cli.seed.load import seed_alumnos
from alumnos_cli.settings import Settings
from alumnos_cli.stack import haproxy, local
from alumnos_cli.stack.breaker import OPEN, read_state
from alumnos_cli.stack.options import LOCAL_PATTERNS, ServiceOptions
from alumnos_cli.stack.ports import free_block
from alumnos_cli.stack.state import StackState

pytestmark = pytest.mark.slow

Start = Callable[[int], StackState]


@pytest.fixture
def start(settings: Settings) -> Iterator[Start]:
    """Start a stack of n replicas with the fault switch on, stopped after the test."""
    seed_alumnos(settings, count=300, seed=5)

    def up(replicas: int) -> StackState:
        spec = replace(LOCAL_PATTERNS, circuit_breaker_fallback_s=60)  # out stays out
        options = ServiceOptions(port=free_block(18400, replicas + 1), replicas=replicas,
                                 workers=1, blocking_threads=2, cache=False,
                                 fault_injection=True, patterns=spec)
        return local.up(settings, options).state

    yield up
    local.down(settings)


def _fault(state: StackState, names: list[str], fault: dict[str, float] | None) -> None:
    for replica in state.service.replicas:
        path = Path(replica.fault_file)
        if replica.name in names and fault is not None:
            path.write_text(json.dumps(fault))
        else:
            path.unlink(missing_ok=True)


def _load(state: StackState, seconds: float, clients: int = 16) -> None:
    """Keep-alive clients asking for ping through the balancer, for `seconds`."""
    host, port = state.service.host, state.service.port
    deadline = time.monotonic() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=10)
        while time.monotonic() < deadline:
            try:
                connection.request("GET", "/api/v1/ping")
                connection.getresponse().read()
            except (OSError, http.client.HTTPException):
                connection.close()
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _out(state: StackState) -> list[str]:
    """The replicas whose breaker is open now."""
    snapshot = read_state(Path(str(state.service.breaker_state))) or {}
    replicas = snapshot.get("replicas")
    assert isinstance(replicas, dict)
    return sorted(name for name, entry in replicas.items() if entry.get("state") == OPEN)


def test_slow_together_is_overload_and_one_slow_among_fast_is_ejected(start: Start) -> None:
    state = start(3)
    everyone = [r.name for r in state.service.replicas]
    _fault(state, everyone, {"delay_ms": 150})
    _load(state, 4)
    assert _out(state) == []  # all over 100 ms, none an outlier: nothing ejected
    _fault(state, ["replica-2"], {"delay_ms": 300})
    _load(state, 4)
    assert _out(state) == ["replica-2"]


def test_failing_replicas_are_ejected_up_to_the_share(start: Start) -> None:
    state = start(3)
    _fault(state, ["replica-1", "replica-2"], {"error_rate": 1.0})
    _load(state, 4)
    assert len(_out(state)) == 1  # a third of three: one out, two serving


def test_one_slow_replica_of_two_may_go(start: Start) -> None:
    state = start(2)
    _fault(state, ["replica-1"], {"delay_ms": 300})
    _load(state, 4)
    assert _out(state) == ["replica-1"]  # one may always be out; replica-2 still serves


def test_five_replicas_two_slow_one_out(start: Start) -> None:
    state = start(5)
    _fault(state, ["replica-1", "replica-4"], {"delay_ms": 300})
    _load(state, 5, clients=20)
    assert len(_out(state)) == 1 and _out(state)[0] in {"replica-1", "replica-4"}


def test_a_replica_whose_threads_are_all_stuck_fails_its_health_check(start: Start) -> None:
    # /health runs on the same blocking threads as the API; with every thread held by a slow
    # request it cannot answer, so HAProxy's check takes the replica out, and puts it back.
    state = start(2)
    stuck = state.service.replicas[1]
    _fault(state, [stuck.name], {"delay_ms": 6000})

    def hold_a_thread() -> None:
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"{stuck.url}/api/v1/ping", timeout=20).read()

    holders = [threading.Thread(target=hold_a_thread) for _ in range(6)]
    for holder in holders:
        holder.start()
    try:
        assert _balancer_status_becomes(state, stuck.name, "DOWN", within_s=10)
    finally:
        _fault(state, [], None)
        for holder in holders:
            holder.join()
    assert _balancer_status_becomes(state, stuck.name, "UP", within_s=10)


def _balancer_status_becomes(state: StackState, replica: str, status: str,
                             within_s: float) -> bool:
    socket = Path(str(state.service.runtime_socket))
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if any(s.name == replica and s.status.startswith(status)
               for s in haproxy.server_stats(socket)):
            return True
        time.sleep(0.2)
    return False
