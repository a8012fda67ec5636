"""Local mode: Granian serving the bundled service, against PostgreSQL and Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import redis

import service
from alumnos_cli.database import ensure_database, is_reachable, row_count, server_reachable
from alumnos_cli.errors import AlumnosError, ServiceUnreachable
from alumnos_cli.settings import Settings, mask_password
from alumnos_cli.stack.ports import port_is_free
from alumnos_cli.stack.postgres import start_private_cluster, stop_private_cluster
from alumnos_cli.stack.processes import RecordedProcess, log_tail
from alumnos_cli.stack.state import (
    ServiceRecord,
    StackState,
    load_state,
    save_state,
    state_path,
)

SERVICE_DIR = Path(service.__file__).resolve().parent
# Servers outlive the Popen objects that started them; keeping the objects avoids a
# "subprocess is still running" ResourceWarning when a caller (a test) lives on.
_STARTED: list[subprocess.Popen[bytes]] = []
HEALTH_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class ServiceOptions:
    """How to run Granian."""

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = os.cpu_count() or 1
    blocking_threads: int = 4
    backlog: int = 2048
    cache: bool = True


@dataclass(frozen=True)
class UpResult:
    """What `up` did: the stack, and whether it was already running."""

    state: StackState
    already_running: bool
    started_postgres: bool


@dataclass(frozen=True)
class ComponentStatus:
    """One line of `status`."""

    name: str
    address: str
    answers: bool
    detail: str


def granian_command(options: ServiceOptions) -> list[str]:
    """The Granian command line, the same shape as the Dockerfile's CMD."""
    return [
        sys.executable, "-m", "granian", "--interface", "wsgi",
        "--host", options.host, "--port", str(options.port),
        "--workers", str(options.workers), "--blocking-threads", str(options.blocking_threads),
        "--backlog", str(options.backlog), "--working-dir", str(SERVICE_DIR),
        "--no-ws", "wsgi:app",
    ]


def service_environment(settings: Settings, *, cache: bool) -> dict[str, str]:
    """The service's environment: where its databases are, and whether to cache."""
    env = dict(os.environ)
    env.update({
        "ALUMNOS_DATABASE_URL": settings.database_url,
        "ALUMNOS_REDIS_URL": settings.redis_url,
        "ALUMNOS_CACHE": "on" if cache else "off",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SERVICE_DIR.parent),
                                                    env.get("PYTHONPATH")])),
    })
    return env


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes] | None:
    """(status, body) of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return None


def up(settings: Settings, options: ServiceOptions) -> UpResult:
    """Start the service (and a private PostgreSQL if none answers); wait until it is healthy."""
    current = running_state(settings.state_dir)
    if current is not None:
        return UpResult(current, already_running=True, started_postgres=False)
    if not port_is_free(options.port, options.host):
        raise AlumnosError(f"port {options.port} on {options.host} is already in use",
                           "stop what listens there, or choose another with --port")
    postgres = None
    if not server_reachable(settings.database_url):
        postgres = start_private_cluster(settings.state_dir)
        settings = settings.with_database_url(postgres.url)
    ensure_database(settings.database_url)
    process = _start_granian(settings, options)
    url = f"http://{options.host}:{options.port}"
    state = StackState(
        mode="local", database_url=settings.database_url, redis_url=settings.redis_url,
        postgres=postgres,
        service=ServiceRecord(process=process, url=url, host=options.host, port=options.port,
                              workers=options.workers, blocking_threads=options.blocking_threads,
                              cache=options.cache, log=str(_log_path(settings.state_dir))),
    )
    save_state(settings.state_dir, state)
    try:
        _wait_until_healthy(url, process, _log_path(settings.state_dir))
    except AlumnosError:
        down(settings)
        raise
    return UpResult(state, already_running=False, started_postgres=postgres is not None)


def _log_path(state_dir: Path) -> Path:
    return state_dir.resolve() / "logs" / "service.log"


def _start_granian(settings: Settings, options: ServiceOptions) -> RecordedProcess:
    log_path = _log_path(settings.state_dir)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        child = subprocess.Popen(
            granian_command(options), env=service_environment(settings, cache=options.cache),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: `down` stops all its workers
        )
    _STARTED.append(child)
    return RecordedProcess.of(child.pid)


def _wait_until_healthy(url: str, process: RecordedProcess, log: Path) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        answer = http_get(f"{url}/health", timeout=1.0)
        if answer is not None and answer[0] == 200:
            return
        if not process.alive():
            break
        time.sleep(0.2)
    raise ServiceUnreachable(
        f"the service did not become healthy at {url}/health: {log_tail(log)}", f"see {log}")


def running_state(state_dir: Path) -> StackState | None:
    """The recorded stack if its service process still runs."""
    state = load_state(state_dir)
    if state is not None and state.service.process.alive():
        return state
    return None


def down(settings: Settings) -> list[str]:
    """Stop exactly what `up` started; returns what was stopped."""
    state = load_state(settings.state_dir)
    if state is None:
        return []
    stopped = []
    if state.service.process.stop():
        stopped.append(f"service (pid {state.service.process.pid})")
    if state.postgres is not None:
        stop_private_cluster(state.postgres)
        stopped.append(f"private PostgreSQL (port {state.postgres.port})")
    state_path(settings.state_dir).unlink(missing_ok=True)
    # Let the Popen objects of servers this process started learn that they have ended.
    _STARTED[:] = [child for child in _STARTED if child.poll() is None]
    return stopped


def status(settings: Settings) -> list[ComponentStatus]:
    """Each component, its address, and whether it answers now."""
    state = load_state(settings.state_dir)
    database_url = state.database_url if state else settings.database_url
    redis_url = state.redis_url if state else settings.redis_url
    return [_service_status(state), _postgres_status(database_url, state),
            _redis_status(redis_url)]


def _service_status(state: StackState | None) -> ComponentStatus:
    if state is None:
        return ComponentStatus("service", "-", answers=False, detail="not started (alumnos up)")
    record = state.service
    answer = http_get(f"{record.url}/health")
    alive = record.process.alive()
    detail = (f"granian pid {record.process.pid}, {record.workers} workers, "
              f"cache {'on' if record.cache else 'off'}")
    if not alive:
        detail = f"process {record.process.pid} is gone (alumnos down, then up)"
    return ComponentStatus("service", record.url, answers=bool(answer and answer[0] == 200),
                           detail=detail)


def _postgres_status(url: str, state: StackState | None) -> ComponentStatus:
    rows = row_count(url) if is_reachable(url) else None
    private = state is not None and state.postgres is not None
    if not is_reachable(url):
        return ComponentStatus("postgresql", mask_password(url), answers=False, detail="down")
    detail = "no alumnos table (alumnos seed)" if rows is None else f"{rows:,} alumnos"
    if private:
        detail += ", private cluster started by up"
    return ComponentStatus("postgresql", mask_password(url), answers=True, detail=detail)


def _redis_status(url: str) -> ComponentStatus:
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
        return ComponentStatus("redis", mask_password(url), answers=True, detail="ok")
    except redis.RedisError as exc:
        return ComponentStatus("redis", mask_password(url), answers=False,
                               detail=f"down ({type(exc).__name__}); the service runs uncached")
    finally:
        client.close()
