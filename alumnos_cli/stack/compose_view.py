"""What the compose stack looks like: its containers as the engine sees them, its replicas as
Traefik's own API sees them, and its containers' logs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from alumnos_cli.errors import AlumnosError
from alumnos_cli.stack.compose_monitoring import PROMETHEUS_SERVICE
from alumnos_cli.stack.engine import DockerClient
from alumnos_cli.stack.http import http_get
from alumnos_cli.stack.monitoring import is_ready, target_health, targets_not_up
from alumnos_cli.stack.processes import LOG_TAIL
from alumnos_cli.stack.state import MonitoringRecord

if TYPE_CHECKING:
    from alumnos_cli.stack.compose import ComposeRecord

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
NUMBER_LABEL = "com.docker.compose.container-number"


@dataclass(frozen=True)
class ContainerStatus:
    """One container of the compose project."""

    name: str
    service: str
    component: str  # what `alumnos logs` calls it: traefik, postgres, alumnos-2 ...
    state: str
    health: str
    address: str  # on the project's network
    hostname: str = ""  # what the service names itself in X-Served-By
    id: str = ""  # the engine's full id, which its processes' cgroups hold

    @property
    def ready(self) -> bool:
        """Running, and healthy where it has a health check."""
        return self.state == "running" and self.health in {"healthy", "-"}


def containers(client: DockerClient, project: str) -> list[ContainerStatus]:
    """The project's containers with their state, health check verdict and address."""
    found = client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"})
    per_service: dict[str, int] = {}
    for container in found:
        service = (container.labels or {}).get(SERVICE_LABEL, "?")
        per_service[service] = per_service.get(service, 0) + 1
    rows = []
    for container in found:
        labels = container.labels or {}
        service = labels.get(SERVICE_LABEL, "?")
        number = labels.get(NUMBER_LABEL, "1")
        attrs: dict[str, Any] = container.attrs or {}
        health = (attrs.get("State", {}).get("Health") or {}).get("Status", "-")
        networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
        address = next((n.get("IPAddress") for n in networks.values() if n.get("IPAddress")), "")
        component = service if per_service[service] == 1 and service != "alumnos" \
            else f"{service}-{number}"
        rows.append(ContainerStatus(name=container.name, service=service, component=component,
                                    state=container.status, health=health, address=address,
                                    hostname=str((attrs.get("Config") or {}).get("Hostname", "")),
                                    id=str(container.id or "")))
    return sorted(rows, key=lambda row: (row.service, row.component))


def traefik_servers(record: ComposeRecord) -> dict[str, str] | None:
    """Traefik's own view of the service's servers (URL -> UP/DOWN), None if it has none."""
    answer = http_get(f"{record.api_url}/api/http/services/{record.patterns.service}@docker",
                      timeout=2.0)
    if answer is None or answer[0] != 200:
        return None
    try:
        status = json.loads(answer[1]).get("serverStatus") or {}
    except ValueError:
        return None
    return {str(url): str(state) for url, state in status.items()}


def server_of(servers: dict[str, str], row: ContainerStatus) -> str:
    """Traefik's state for one replica's container ('-' when Traefik does not list it)."""
    for url, state in servers.items():
        if row.address and f"//{row.address}:" in url:
            return state
    return "-"


def wait_until_serving(client: DockerClient, record: ComposeRecord, timeout: float) -> None:
    """Return once every container is ready and Traefik lists every replica UP; else name
    the container that is not and show the end of its log."""
    deadline = time.monotonic() + timeout
    while True:
        rows = containers(client, record.project)
        dead = [r for r in rows if r.state in {"exited", "dead"}]
        if dead:
            raise _not_ready(client, dead[0], f"{dead[0].state} while starting")
        servers = traefik_servers(record) or {}
        replicas = [r for r in rows if r.service == "alumnos"]
        serving = sum(1 for r in replicas if server_of(servers, r) == "UP")
        if rows and all(r.ready for r in rows) and len(replicas) == record.replicas \
                and serving == record.replicas:
            return
        if time.monotonic() > deadline:
            late = next((r for r in rows if not r.ready), None)
            if late is not None:
                raise _not_ready(client, late, f"never became healthy ({late.health})")
            raise AlumnosError(f"Traefik lists {serving} of {record.replicas} replicas UP after "
                               f"{timeout:.0f} s", "alumnos logs traefik shows why; "
                               "alumnos down cleans up")
        time.sleep(1.0)


def wait_until_scraped(client: DockerClient, project: str, record: MonitoringRecord,
                       timeout: float) -> None:
    """Return once Prometheus has scraped each target once (a run started then has a sample of
    every counter before its load); else name what it could not scrape."""
    deadline = time.monotonic() + timeout
    while not is_ready(record):
        if time.monotonic() > deadline:
            health = target_health(record)
            if health is None:
                rows = {row.service: row for row in containers(client, project)}
                raise _not_ready(client, rows[PROMETHEUS_SERVICE], "does not answer") \
                    if PROMETHEUS_SERVICE in rows else AlumnosError(
                        f"Prometheus does not answer at {record.url}", "alumnos down cleans up")
            down = targets_not_up(health)
            raise AlumnosError(f"Prometheus has not scraped every target after {timeout:.0f} s "
                               f"({len(health)} seen; not up: {', '.join(down) or '-'})",
                               "alumnos status and alumnos logs prometheus show why; "
                               "alumnos down cleans up")
        time.sleep(0.5)


def _not_ready(client: DockerClient, row: ContainerStatus, what: str) -> AlumnosError:
    tail = container_logs(client, row.name, LOG_TAIL)
    return AlumnosError(f"container {row.name} {what}; the end of its log:\n{tail}",
                        f"alumnos logs {row.component}; alumnos down cleans up")


def container_logs(client: DockerClient, name: str, lines: int) -> str:
    """The last lines of a container's log (stdout and stderr)."""
    raw = client.containers.get(name).logs(tail=lines)
    return bytes(raw).decode(errors="replace").rstrip()


def follow_logs(client: DockerClient, name: str, lines: int) -> Iterator[str]:
    """A container's log from its last lines on, as it grows."""
    for chunk in client.containers.get(name).logs(tail=lines, stream=True, follow=True):
        yield bytes(chunk).decode(errors="replace")
