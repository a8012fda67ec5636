"""What `up` started, kept as JSON in the state directory for `down`, `status` and `patterns`."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from alumnos_cli.errors import AlumnosError
from alumnos_cli.files import write_text
from alumnos_cli.stack.patterns import PatternsSpec
from alumnos_cli.stack.processes import RecordedProcess

STATE_FILE = "stack.json"


@dataclass(frozen=True)
class ReplicaRecord:
    """One Granian replica of the service."""

    name: str
    port: int
    url: str
    fault_file: str


@dataclass(frozen=True)
class MonitoringRecord:
    """Where Prometheus and each scrape target of one stack listen."""

    url: str  # Prometheus, on 127.0.0.1
    port: int
    targets: dict[str, list[str]] = field(default_factory=dict)  # job -> host:port

    @property
    def target_count(self) -> int:
        """How many targets Prometheus should scrape."""
        return sum(len(targets) for targets in self.targets.values())

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> MonitoringRecord:
        """Rebuild from the state file's JSON."""
        return cls(url=raw["url"], port=int(raw["port"]),
                   targets={k: list(v) for k, v in raw.get("targets", {}).items()})


@dataclass(frozen=True)
class ServiceRecord:
    """The service as `up` started it: replicas under supervisord, HAProxy in front."""

    url: str  # where clients go: the balancer, or the only replica when there is none
    host: str
    port: int
    workers: int  # per replica
    blocking_threads: int
    cache: bool
    balancer: bool
    fault_injection: bool
    supervisor: RecordedProcess
    log_dir: str
    replicas: tuple[ReplicaRecord, ...] = ()
    patterns: PatternsSpec = field(default_factory=PatternsSpec)
    stack_id: str = ""  # in every started process's environment, so `down` finds them all
    runtime_socket: str | None = None  # HAProxy's stats socket
    breaker_state: str | None = None  # the breaker watcher's state file
    cpus: tuple[int, ...] | None = None  # `up --cpus`: where every process of the stack runs
    cpuset: str | None = None  # the cgroup v1 cpuset holding them, where one could be made
    service_dir: str | None = None  # the service side's private folder (service_user.py)
    service_user: str | None = None  # who runs the replicas and HAProxy; None: who ran up
    monitoring: MonitoringRecord | None = None  # Prometheus and its targets, when they run

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ServiceRecord:
        """Rebuild from the state file's JSON."""
        values = dict(raw)
        values["supervisor"] = RecordedProcess(**raw["supervisor"])
        values["replicas"] = tuple(ReplicaRecord(**item) for item in raw["replicas"])
        values["patterns"] = PatternsSpec(**raw["patterns"])
        values["cpus"] = tuple(raw["cpus"]) if raw.get("cpus") else None
        values["monitoring"] = (MonitoringRecord.from_dict(raw["monitoring"])
                                if raw.get("monitoring") else None)
        return cls(**values)


@dataclass(frozen=True)
class PostgresRecord:
    """A private PostgreSQL cluster started by `up` because none answered."""

    data_dir: str
    port: int
    url: str
    log: str
    bin_dir: str


@dataclass(frozen=True)
class StackState:
    """Everything `down` must stop and `status` must show."""

    mode: str
    database_url: str
    redis_url: str
    service: ServiceRecord
    postgres: PostgresRecord | None = None

    def to_json(self) -> str:
        """Serialise for the state file."""
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> StackState:
        """Rebuild from the state file's JSON."""
        postgres = PostgresRecord(**raw["postgres"]) if raw.get("postgres") else None
        return cls(mode=raw["mode"], database_url=raw["database_url"],
                   redis_url=raw["redis_url"], service=ServiceRecord.from_dict(raw["service"]),
                   postgres=postgres)


# What `up --mode compose` records (stack/compose.py writes it).
COMPOSE_STATE_FILE = "compose.json"


def state_path(state_dir: Path) -> Path:
    """Where the state file lives."""
    return state_dir / STATE_FILE


def load_state(state_dir: Path) -> StackState | None:
    """The recorded stack, or None when `up` has not run (or `down` cleaned up)."""
    path = state_path(state_dir)
    if not path.exists():
        return None
    try:
        return StackState.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AlumnosError(f"the stack state file {path} is corrupt or from an older version "
                           f"({exc})",
                           "stop any leftover processes, delete the file, and run `alumnos up`"
                           ) from None


# The state file holds the database and Redis URLs, passwords included: its owner's only.
STATE_FILE_MODE = 0o600


def private_state_dir(state_dir: Path) -> None:
    """Make the state directory 0700, or take group and others' access away from one of ours
    that has it: it holds stack.json, supervisord's configuration and socket, and the logs."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = state_dir.stat()
    if info.st_uid == os.geteuid() and info.st_mode & 0o077:
        state_dir.chmod(stat.S_IMODE(info.st_mode) & 0o700)


def save_state(state_dir: Path, state: StackState) -> None:
    """Write the state file atomically, readable by its owner only."""
    write_text(state_path(state_dir), state.to_json(), mode=STATE_FILE_MODE)


def running_state(state_dir: Path) -> StackState | None:
    """The recorded stack if its supervisord still runs."""
    state = load_state(state_dir)
    if state is not None and state.service.supervisor.alive():
        return state
    return None


def recorded_settings(state_dir: Path) -> dict[str, str]:
    """Settings `up` recorded for the other commands: the private cluster's URL, or the
    compose stack's database and cache (read here as plain JSON: no compose code needed)."""
    compose = _compose_settings(state_dir / COMPOSE_STATE_FILE)
    if compose:
        return compose
    try:
        state = load_state(state_dir)
    except AlumnosError:
        return {}
    if state is None or state.postgres is None:
        return {}
    return {"database_url": state.postgres.url}


def _compose_settings(path: Path) -> dict[str, str]:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {key: str(raw[key]) for key in ("database_url", "redis_url") if raw.get(key)}
