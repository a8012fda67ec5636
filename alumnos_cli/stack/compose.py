"""Compose mode: docker-compose.yml with Traefik in front, where a Docker engine answers.

The patterns come from the same spec as local mode's HAProxy: `up --mode compose` writes an
override file whose Traefik labels and replica count follow the flags, then runs
`docker compose up`. The engine is reached through the docker SDK (detection, status); the
compose CLI does the orchestration, as the SDK has no compose support.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import docker
import yaml
from docker.errors import DockerException
from requests.exceptions import RequestException

from alumnos_cli.errors import AlumnosError
from alumnos_cli.files import write_json, write_text
from alumnos_cli.stack.options import validate_mode
from alumnos_cli.stack.patterns import PatternsSpec
from alumnos_cli.stack.traefik import traefik_labels

PROJECT = "alumnos"
SERVICE = "alumnos"
OVERRIDE_FILE = "compose.override.yml"
STATE_FILE = "compose.json"
PROJECT_DIR = Path(__file__).resolve().parents[2]
COMPOSE_FILE = PROJECT_DIR / "docker-compose.yml"


class DockerClient(Protocol):
    """The part of docker.DockerClient this module uses."""

    def ping(self) -> bool: ...

    def close(self) -> None: ...

    @property
    def containers(self) -> Any: ...


# The boundary tests replace: the docker SDK's client factory, and the process runner.
ClientFactory = Callable[[], DockerClient]
Runner = Callable[[list[str]], "subprocess.CompletedProcess[str]"]


def _sdk_client() -> DockerClient:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://") and not Path(host.removeprefix("unix://")).exists():
        # Checked first: the SDK would negotiate over a socket it then never closes.
        raise DockerException(f"no Docker socket at {host}")
    client: DockerClient = docker.from_env(timeout=3)
    return client


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, cwd=PROJECT_DIR)


def engine(factory: ClientFactory = _sdk_client) -> DockerClient | None:
    """A client to a Docker engine that answers (close it when done), or None."""
    client = None
    try:
        client = factory()
        client.ping()
    except (DockerException, RequestException, OSError):
        if client is not None:
            client.close()
        return None
    return client


def engine_answers(factory: ClientFactory = _sdk_client) -> bool:
    """Whether a Docker engine answers."""
    client = engine(factory)
    if client is None:
        return False
    client.close()
    return True


def choose_mode(requested: str, factory: ClientFactory = _sdk_client) -> str:
    """'local' or 'compose': auto picks compose when a Docker engine answers."""
    validate_mode(requested)
    if requested == "local":
        return "local"
    if engine_answers(factory):
        return "compose"
    if requested == "compose":
        raise AlumnosError("no Docker engine answers, so compose mode cannot run",
                           "start Docker (or set DOCKER_HOST), or use --mode local")
    return "local"


def compose_override(spec: PatternsSpec, replicas: int, *, cache: bool) -> dict[str, Any]:
    """The override that makes the compose stack follow the flags: replicas, cache, patterns."""
    return {"services": {SERVICE: {
        "deploy": {"replicas": replicas},
        "environment": {"ALUMNOS_CACHE": "on" if cache else "off"},
        "labels": traefik_labels(spec),
    }}}


@dataclass(frozen=True)
class ComposeRecord:
    """What `up --mode compose` started."""

    project: str
    files: list[str]
    url: str
    replicas: int
    cache: bool
    patterns: PatternsSpec


def compose_command(files: list[str], *args: str) -> list[str]:
    """`docker compose` with our project name and files."""
    argv = ["docker", "compose", "--project-name", PROJECT]
    for file in files:
        argv += ["--file", file]
    return [*argv, *args]


def up(state_dir: Path, spec: PatternsSpec, replicas: int, *, cache: bool,
       runner: Runner = _run) -> ComposeRecord:
    """Write the override, then build and start the stack, waiting for its health checks."""
    if shutil.which("docker") is None and runner is _run:
        raise AlumnosError("the docker CLI is not installed, and compose mode drives it",
                           "install Docker's compose plugin, or use --mode local")
    state_dir.mkdir(parents=True, exist_ok=True)
    override = state_dir.resolve() / OVERRIDE_FILE
    write_text(override, yaml.safe_dump(compose_override(spec, replicas, cache=cache),
                                       sort_keys=False))
    files = [str(COMPOSE_FILE), str(override)]
    result = runner(compose_command(files, "up", "--detach", "--build", "--wait"))
    if result.returncode != 0:
        raise AlumnosError(f"docker compose up failed: {_last_line(result)}",
                           "docker compose logs shows why; alumnos down cleans up")
    record = ComposeRecord(project=PROJECT, files=files, url=f"http://{spec.host}",
                           replicas=replicas, cache=cache, patterns=spec)
    write_json(state_dir / STATE_FILE, asdict(record))
    return record


def load(state_dir: Path) -> ComposeRecord | None:
    """The compose stack `up` recorded, if any."""
    path = state_dir / STATE_FILE
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
        return ComposeRecord(**{**raw, "patterns": PatternsSpec(**raw["patterns"])})
    except (ValueError, TypeError, KeyError) as exc:
        raise AlumnosError(f"{path} is corrupt ({exc})",
                           f"docker compose --project-name {PROJECT} down, then delete it"
                           ) from None


def down(state_dir: Path, runner: Runner = _run) -> list[str]:
    """Stop and remove the compose stack's containers (the database volume stays)."""
    record = load(state_dir)
    if record is None:
        return []
    result = runner(compose_command(record.files, "down", "--remove-orphans"))
    if result.returncode != 0:
        raise AlumnosError(f"docker compose down failed: {_last_line(result)}")
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    return [f"compose project {record.project} ({record.replicas} replicas, Traefik, "
            "PostgreSQL, Redis)"]


@dataclass(frozen=True)
class ContainerStatus:
    """One container of the compose project."""

    name: str
    service: str
    state: str
    health: str


def containers(client: DockerClient) -> list[ContainerStatus]:
    """The project's containers with their state and health check verdict."""
    found = client.containers.list(all=True, filters={
        "label": f"com.docker.compose.project={PROJECT}"})
    rows = []
    for container in found:
        labels = container.labels or {}
        health = (container.attrs.get("State", {}).get("Health") or {}).get("Status", "-")
        rows.append(ContainerStatus(name=container.name,
                                    service=labels.get("com.docker.compose.service", "?"),
                                    state=container.status, health=health))
    return sorted(rows, key=lambda row: (row.service, row.name))


def _last_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = (result.stderr or result.stdout or "").strip().splitlines()
    return lines[-1] if lines else f"exit code {result.returncode}"
