"""Which Prometheus holds a run's server side, and which of its series are the stack's.

The local stack's own Prometheus, the compose stack's, or `--prometheus URL` for a stack
someone else runs; with none, the reason the report gives. A compose stack's series are named by
container (cgroups, addresses): the engine says which container is which component.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from alumnos_cli.bench.remote_write import OFF, base_url
from alumnos_cli.bench.server_prometheus import ServerScope
from alumnos_cli.stack import compose_view, engine
from alumnos_cli.stack.compose import ComposeRecord
from alumnos_cli.stack.compose_monitoring import REPLICA_PORT
from alumnos_cli.stack.state import StackState


@dataclass(frozen=True)
class ServerSource:
    """Where to read the run's server side (None: nowhere, and why)."""

    url: str | None
    why_none: str = ""
    scope: ServerScope = field(default_factory=ServerScope)


def stack_prometheus(stack: StackState | None, record: ComposeRecord | None) -> str | None:
    """The Prometheus of the stack `up` started, local or compose, when it runs one."""
    if stack is not None and stack.service.monitoring is not None:
        return stack.service.monitoring.url
    if record is not None and record.prometheus_url:
        return record.prometheus_url
    return None


def server_source(given: str | None, stack: StackState | None,
                  record: ComposeRecord | None) -> ServerSource:
    """The stack's own Prometheus, else --prometheus for a stack someone else runs."""
    if stack is not None:
        if stack.service.monitoring is not None:
            return ServerSource(stack.service.monitoring.url)
        return ServerSource(None, "the stack runs without Prometheus (alumnos up "
                                  "--no-prometheus): no CPU, memory, requests per replica, "
                                  "cache, PostgreSQL or Redis figures")
    if record is not None:
        if record.prometheus_url:
            return ServerSource(record.prometheus_url, scope=compose_scope(record))
        return ServerSource(None, "the compose stack runs without Prometheus (alumnos up "
                                  "--mode compose --no-prometheus): no server-side figures")
    if given is not None and given != OFF:
        return ServerSource(base_url(given))
    return ServerSource(None, "another stack (--url), and no --prometheus URL to read its "
                              "server side from")


def compose_scope(record: ComposeRecord) -> ServerScope:
    """The compose stack's containers by id, and its replicas by the address Prometheus
    scrapes, each to its component name."""
    client = engine.connect(record.docker_host)
    try:
        rows = compose_view.containers(client, record.project)
    finally:
        client.close()
    return ServerScope.for_containers(
        {row.id: row.component for row in rows if row.id},
        {f"{row.address}:{REPLICA_PORT}": row.component for row in rows
         if row.service == "alumnos" and row.address})
