"""What the proofs read of the stack: HAProxy's counters, the breaker's state, the victim."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from alumnos_cli.errors import AlumnosError
from alumnos_cli.files import write_json
from alumnos_cli.proof.options import ProofOptions
from alumnos_cli.stack import haproxy
from alumnos_cli.stack.breaker import read_state
from alumnos_cli.stack.state import ReplicaRecord, StackState


def server_stats(state: StackState) -> dict[str, haproxy.ServerStat]:
    """HAProxy's counters and state for each replica."""
    if state.service.runtime_socket is None:
        raise AlumnosError("the stack runs without HAProxy's runtime socket")
    return {s.name: s for s in haproxy.server_stats(Path(state.service.runtime_socket))}


def victim(state: StackState, options: ProofOptions) -> ReplicaRecord:
    """The replica to kill or slow: --victim, else the second one."""
    replicas = {r.name: r for r in state.service.replicas}
    name = options.victim or state.service.replicas[min(1, len(replicas) - 1)].name
    if name not in replicas:
        raise AlumnosError(f"no replica named {name!r}", f"choose one of: {', '.join(replicas)}")
    return replicas[name]


def breaker_state(state: StackState, replica: str) -> str | None:
    """closed, open or recovering, as the breaker watcher last wrote it."""
    if state.service.breaker_state is None:
        return None
    snapshot = read_state(Path(state.service.breaker_state)) or {}
    replicas = snapshot.get("replicas")
    entry = replicas.get(replica) if isinstance(replicas, dict) else None
    value = entry.get("state") if isinstance(entry, dict) else None
    return None if value is None else str(value)


def write_fault(replica: ReplicaRecord, fault: dict[str, float] | None) -> None:
    """Set (or clear, with None) a replica's fault file, which the service reads."""
    path = Path(replica.fault_file)
    if fault is None:
        path.unlink(missing_ok=True)
        return
    write_json(path, fault)


def wait_for(condition: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until condition() held, None when it did not within timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.1)
    return None
