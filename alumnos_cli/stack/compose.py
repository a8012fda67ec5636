"""Compose mode: docker-compose.yml with Traefik in front, on a real Docker engine.

The patterns come from the same spec as local mode's HAProxy: `up --mode compose` writes an
override whose Traefik labels, replica count and images follow the flags, builds the service,
starts the project, and returns once every container is healthy and Traefik's own API shows
every replica UP. Everything is published on 127.0.0.1 only, on ports of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from alumnos_cli.errors import AlumnosError
from alumnos_cli.files import write_json, write_text
from alumnos_cli.stack import compose_monitoring, compose_view, engine, images
from alumnos_cli.stack.patterns import PatternsSpec
from alumnos_cli.stack.ports import port_is_free
from alumnos_cli.stack.processes import output_tail
from alumnos_cli.stack.state import (
    COMPOSE_STATE_FILE,
    STATE_FILE_MODE,
    MonitoringRecord,
    private_state_dir,
)
from alumnos_cli.stack.traefik import traefik_labels

PROJECT = "alumnos"
SERVICE = "alumnos"
OVERRIDE_FILE = "compose.override.yml"
STATE_FILE = COMPOSE_STATE_FILE
PROJECT_DIR = images.PROJECT_DIR
COMPOSE_FILE = PROJECT_DIR / "docker-compose.yml"
# docker-compose.yml's database credentials: published on loopback only.
POSTGRES_USER_PASSWORD = "postgres:postgres"
POSTGRES_DB = "alumnos"
READY_TIMEOUT_S = 180.0
# Inside each replica's container: its own /tmp, so the fault is that replica's alone.
FAULT_FILE = "/tmp/alumnos-fault.json"

Runner = Callable[[list[str], Mapping[str, str]], "subprocess.CompletedProcess[str]"]
Say = Callable[[str], None]


@dataclass(frozen=True)
class ComposePorts:
    """Loopback ports the compose stack publishes; each has its setting (docker-compose.yml
    holds the same defaults for a bare `docker compose up`)."""

    web: int = 8088
    api: int = 8089
    postgres: int = 15432
    redis: int = 16379
    prometheus: int = 19090

    SETTINGS: ClassVar[dict[str, str]] = {
        "web": "ALUMNOS_COMPOSE_PORT", "api": "ALUMNOS_COMPOSE_API_PORT",
        "postgres": "ALUMNOS_COMPOSE_POSTGRES_PORT", "redis": "ALUMNOS_COMPOSE_REDIS_PORT",
        "prometheus": "ALUMNOS_COMPOSE_PROMETHEUS_PORT"}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ComposePorts:
        """The ports: each ALUMNOS_COMPOSE_* variable, else its default."""
        env = os.environ if env is None else env
        values: dict[str, int] = {}
        for name, variable in cls.SETTINGS.items():
            raw = env.get(variable)
            if raw is None or raw == "":
                continue
            if not raw.isdigit() or not 1 <= int(raw) <= 65535:
                raise AlumnosError(f"{variable} must be a port (1-65535), got {raw!r}",
                                   f"set {variable} to a free port, or unset it for "
                                   f"{getattr(cls(), name)}")
            values[name] = int(raw)
        return cls(**values)

    def environment(self) -> dict[str, str]:
        """The variables docker-compose.yml reads its published ports from."""
        return {variable: str(getattr(self, name)) for name, variable in self.SETTINGS.items()}


@dataclass(frozen=True)
class ComposeRecord:
    """What `up --mode compose` started, for the other commands."""

    project: str
    cli: list[str]
    files: list[str]
    url: str
    api_url: str
    replicas: int
    cache: bool
    patterns: PatternsSpec
    ports: dict[str, int] = field(default_factory=dict)
    database_url: str = ""
    redis_url: str = ""
    images: str = "registry"
    socket: str = ""
    fault_injection: bool = False
    prometheus_url: str = ""  # "" when started with --no-prometheus (or by an older alumnos)

    @property
    def monitoring(self) -> MonitoringRecord | None:
        """Its Prometheus and what that scrapes, when it runs one."""
        if not self.prometheus_url:
            return None
        return compose_monitoring.monitoring_record(self.prometheus_url, self.replicas)

    @property
    def docker_host(self) -> str:
        """The engine the stack runs on, whatever DOCKER_HOST says in a later shell."""
        return f"unix://{self.socket}"

    def environment(self) -> dict[str, str]:
        """What the compose CLI needs in its environment to address this project again: the
        same engine (not the docker context's), the same ports, the same socket for Traefik."""
        return {**ComposePorts(**self.ports).environment(),
                "ALUMNOS_DOCKER_SOCKET": self.socket, "DOCKER_HOST": self.docker_host}


def compose_override(spec: PatternsSpec, replicas: int, *, cache: bool,
                     offline: bool = False, fault_injection: bool = False) -> dict[str, Any]:
    """The override that makes the compose stack follow the flags: replicas, cache, patterns,
    the fault switch, and the local images where `alumnos images --offline` built them."""
    environment = {"ALUMNOS_CACHE": "on" if cache else "off",
                   "ALUMNOS_FAULT_INJECTION": "on" if fault_injection else "off"}
    if fault_injection:
        environment["ALUMNOS_FAULT_FILE"] = FAULT_FILE
    service: dict[str, Any] = {"deploy": {"replicas": replicas}, "environment": environment,
                               "labels": traefik_labels(spec)}
    services: dict[str, Any] = {SERVICE: service}
    if offline:
        service["build"] = {"context": str(PROJECT_DIR), "args": dict(images.OFFLINE_BUILD_ARGS)}
        services |= {name: {"image": image} for name, image in images.OFFLINE_IMAGES.items()}
        services |= {name: {"image": images.MONITORING_IMAGE, "entrypoint": [part.debian_binary]}
                     for name, part in compose_monitoring.SERVICES.items()}
    return {"services": services}


def _run(argv: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, cwd=PROJECT_DIR,
                          env={**os.environ, **env})


def check_ports_free(ports: ComposePorts, *, prometheus: bool = True) -> None:
    """Refuse a published port that something already holds, naming the setting to change."""
    for name, variable in ComposePorts.SETTINGS.items():
        if name == "prometheus" and not prometheus:
            continue
        port = getattr(ports, name)
        if not port_is_free(port):
            raise AlumnosError(f"port {port} on 127.0.0.1 is taken, and the compose stack's "
                               f"{name} port would be published there",
                               f"set {variable} to a free port (or stop what holds {port})")


def up(state_dir: Path, spec: PatternsSpec, replicas: int, *, cache: bool,
       fault_injection: bool = False, prometheus: bool = True, ports: ComposePorts | None = None,
       runner: Runner = _run, say: Say = lambda _message: None) -> ComposeRecord:
    """Build the service, start the project, and wait until it serves through Traefik (and,
    with Prometheus, until Prometheus has scraped every target once)."""
    ports = ports or ComposePorts.from_env()
    client = engine.connect()
    try:
        socket = engine.socket_path()
        if socket is None:
            raise AlumnosError(f"compose mode mounts the engine's socket into Traefik, and "
                               f"DOCKER_HOST is {engine.docker_host()}",
                               "point DOCKER_HOST at the engine's Unix socket (unix:///...)")
        cli = engine.compose_cli()
        check_ports_free(ports, prometheus=prometheus)
        offline = images.offline_images_present(client)
        private_state_dir(state_dir)
        override = state_dir.resolve() / OVERRIDE_FILE
        write_text(override, yaml.safe_dump(
            compose_override(spec, replicas, cache=cache, offline=offline,
                             fault_injection=fault_injection), sort_keys=False))
        record = ComposeRecord(
            project=PROJECT, cli=list(cli), files=[str(COMPOSE_FILE), str(override)],
            url=f"http://{spec.host}:{ports.web}", api_url=f"http://127.0.0.1:{ports.api}",
            replicas=replicas, cache=cache, patterns=spec, ports=asdict(ports),
            database_url=f"postgresql://{POSTGRES_USER_PASSWORD}@127.0.0.1:{ports.postgres}/"
                         f"{POSTGRES_DB}",
            redis_url=f"redis://127.0.0.1:{ports.redis}/0",
            images="offline" if offline else "registry", socket=str(socket),
            fault_injection=fault_injection,
            prometheus_url=f"http://127.0.0.1:{ports.prometheus}" if prometheus else "")
        say(f"building {images.SERVICE_IMAGE} ...")
        _compose(record, runner, "build", SERVICE,
                 failure=f"image {images.SERVICE_IMAGE} failed to build")
        # Recorded before starting, so `down` can clean up whatever comes next.
        write_json(state_dir / STATE_FILE, asdict(record), mode=STATE_FILE_MODE)
        say("starting the containers ...")
        _compose(record, runner, "up", "--detach", "--no-build", "--remove-orphans",
                 "--scale", f"{SERVICE}={replicas}",
                 *([] if prometheus else compose_monitoring.scale_to_zero()),
                 failure="docker compose up failed", hint=_images_hint(offline=offline))
        say("waiting until every container is healthy and Traefik sees every replica ...")
        compose_view.wait_until_serving(client, record, READY_TIMEOUT_S)
        if record.monitoring is not None:
            say("waiting until Prometheus has scraped every target ...")
            compose_view.wait_until_scraped(client, record.project, record.monitoring,
                                            READY_TIMEOUT_S)
    finally:
        client.close()
    return record


def _images_hint(*, offline: bool) -> str:
    if offline:
        return "alumnos logs shows why; alumnos down cleans up"
    return ("no registry here? alumnos images --offline builds local images, which compose "
            "mode then uses; alumnos down cleans up")


def _compose(record: ComposeRecord, runner: Runner, *args: str, failure: str,
             hint: str = "alumnos down cleans up") -> None:
    argv = engine.compose_argv(tuple(record.cli), record.project, record.files, *args)
    result = runner(argv, record.environment())
    if result.returncode != 0:
        raise AlumnosError(f"{failure}; the end of its log:\n"
                           + output_tail(result), hint)


def _forget(state_dir: Path) -> None:
    for name in (STATE_FILE, OVERRIDE_FILE):
        (state_dir / name).unlink(missing_ok=True)


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


def down(state_dir: Path, *, volumes: bool = False, runner: Runner = _run) -> list[str]:
    """Remove the project's containers and networks (its database volume only if asked).
    When its engine no longer answers, only forget the stack (nothing of it can run)."""
    record = load(state_dir)
    if record is None:
        return []
    try:
        engine.connect(record.docker_host).close()
    except engine.EngineUnreachable:
        _forget(state_dir)
        return [f"nothing: the engine at {record.docker_host} no longer answers, so the compose "
                "stack recorded here is forgotten (start that engine and run "
                f"docker compose --project-name {record.project} down to remove what it kept)"]
    _compose(record, runner, "down", "--remove-orphans", *(["--volumes"] if volumes else []),
             failure="docker compose down failed", hint="is the engine still running?")
    _forget(state_dir)
    kept = "its volumes removed" if volumes else \
        "database and Prometheus volumes kept: alumnos down --volumes removes them"
    monitoring = ", Prometheus and exporters" if record.prometheus_url else ""
    return [f"compose project {record.project} ({record.replicas} replicas, Traefik, "
            f"PostgreSQL, Redis{monitoring}; {kept})"]
