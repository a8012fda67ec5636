"""Local mode: Granian replicas of the bundled service under supervisord, HAProxy in front.

`up` writes HAProxy's configuration from the patterns spec, starts supervisord with one program
per replica, one for HAProxy and one for the breaker watcher, and waits until the balancer sees
every replica healthy. `down` stops supervisord, which stops all of them.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import redis

import service
from alumnos_cli.database import ensure_database, is_reachable, row_count, server_reachable
from alumnos_cli.errors import AlumnosError, ServiceUnreachable
from alumnos_cli.patterns import PatternsSpec
from alumnos_cli.settings import Settings, mask_password
from alumnos_cli.stack import haproxy
from alumnos_cli.stack import supervisor as supervision
from alumnos_cli.stack.breaker import BreakerConfig, read_state
from alumnos_cli.stack.ports import port_is_free
from alumnos_cli.stack.postgres import start_private_cluster, stop_private_cluster
from alumnos_cli.stack.processes import log_tail, stop_marked
from alumnos_cli.stack.state import (
    ReplicaRecord,
    ServiceRecord,
    StackState,
    load_state,
    save_state,
    state_path,
)

SERVICE_DIR = Path(service.__file__).resolve().parent
HEALTH_TIMEOUT_SECONDS = 45.0
# The local default: a benchmark is one client address, which a rate limit would throttle.
LOCAL_PATTERNS = PatternsSpec(rate_limit=False)
BREAKER_CONFIG = "breaker.json"
BREAKER_STATE = "breaker-state.json"
HAPROXY_CONFIG = "haproxy.cfg"
RUNTIME_SOCKET = "haproxy.sock"
STACK_ID_VARIABLE = "ALUMNOS_STACK_ID"


@dataclass(frozen=True)
class ServiceOptions:
    """How to run the replicas and the balancer."""

    host: str = "127.0.0.1"
    port: int = 8080
    replicas: int = 3
    workers: int = 1  # per replica: with 3 replicas, more processes than cores already
    blocking_threads: int = 4
    backlog: int = 2048
    cache: bool = True
    balancer: bool = True
    fault_injection: bool = False
    patterns: PatternsSpec = field(default_factory=lambda: LOCAL_PATTERNS)

    def replica_ports(self) -> list[int]:
        """Replicas listen just above the balancer's port; alone, a replica takes the port."""
        if not self.balancer:
            return [self.port]
        return [self.port + i for i in range(1, self.replicas + 1)]


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


@dataclass(frozen=True)
class ReplicaStatus:
    """One replica as supervisord, HAProxy and the breaker see it."""

    name: str
    url: str
    process: str  # supervisord's state, with the pid
    balancer: str  # HAProxy's state (UP, DOWN, MAINT...), "-" without a balancer
    breaker: str
    requests: int | None
    errors_5xx: int | None
    retries: int | None
    response_ms: int | None


@dataclass(frozen=True)
class StackStatus:
    """Everything `status` shows."""

    components: list[ComponentStatus]
    replicas: list[ReplicaStatus]
    cache_outcomes: dict[str, int] | None  # X-Cache counts at the balancer
    patterns: PatternsSpec | None

    @property
    def cache_hit_ratio(self) -> float | None:
        """Hits over hits and misses, as the balancer counted them."""
        if not self.cache_outcomes:
            return None
        hits, misses = self.cache_outcomes.get("HIT", 0), self.cache_outcomes.get("MISS", 0)
        return hits / (hits + misses) if hits + misses else None


def granian_command(options: ServiceOptions, port: int) -> list[str]:
    """The Granian command line for one replica, the same shape as the Dockerfile's CMD."""
    return [
        sys.executable, "-m", "granian", "--interface", "wsgi",
        "--host", options.host, "--port", str(port),
        "--workers", str(options.workers), "--blocking-threads", str(options.blocking_threads),
        "--backlog", str(options.backlog), "--working-dir", str(SERVICE_DIR),
        "--no-ws", "wsgi:app",
    ]


def service_environment(settings: Settings, *, cache: bool,
                        fault_injection: bool = False) -> dict[str, str]:
    """The service's environment: where its databases are, whether to cache, faults."""
    env = dict(os.environ)
    env.update({
        "ALUMNOS_DATABASE_URL": settings.database_url,
        "ALUMNOS_REDIS_URL": settings.redis_url,
        "ALUMNOS_CACHE": "on" if cache else "off",
        "ALUMNOS_FAULT_INJECTION": "on" if fault_injection else "off",
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


def validate_options(options: ServiceOptions) -> None:
    """Refuse combinations that cannot run."""
    if not 1 <= options.replicas <= 32:
        raise AlumnosError(f"--replicas must be between 1 and 32, got {options.replicas}")
    if not 1 <= options.workers <= 64:
        raise AlumnosError(f"--workers must be between 1 and 64, got {options.workers}")
    if not 1 <= options.blocking_threads <= 256:
        raise AlumnosError(
            f"--blocking-threads must be between 1 and 256, got {options.blocking_threads}")
    if not options.balancer and options.replicas != 1:
        raise AlumnosError("without a balancer only one replica can take the port",
                           "use --replicas 1 with --no-balancer, or keep the balancer")
    if not 1 <= options.port <= 65535 - options.replicas:
        raise AlumnosError(f"--port must leave room for the replicas above it, got {options.port}")


def up(settings: Settings, options: ServiceOptions) -> UpResult:
    """Start replicas, balancer and breaker (and a private PostgreSQL if none answers)."""
    current = running_state(settings.state_dir)
    if current is not None:
        return UpResult(current, already_running=True, started_postgres=False)
    validate_options(options)
    binary = haproxy.find_haproxy() if options.balancer else None
    for port in [options.port, *(options.replica_ports() if options.balancer else [])]:
        if not port_is_free(port, options.host):
            raise AlumnosError(f"port {port} on {options.host} is already in use",
                               "stop what listens there, or choose another with --port "
                               "(replicas take the ports just above it)")
    if load_state(settings.state_dir) is not None:
        down(settings)  # what a crashed or half-started stack left behind
    postgres = None
    try:
        if not server_reachable(settings.database_url):
            postgres = start_private_cluster(settings.state_dir)
            settings = settings.with_database_url(postgres.url)
        ensure_database(settings.database_url)
        state = _start(settings, options, binary, postgres)
        _wait_until_healthy(state, settings.state_dir)
    except BaseException:
        # Nothing half-started stays behind: the recorded stack, or the cluster just started.
        if load_state(settings.state_dir) is not None:
            down(settings)
        elif postgres is not None:
            stop_private_cluster(postgres)
        raise
    return UpResult(state, already_running=False, started_postgres=postgres is not None)


def _start(settings: Settings, options: ServiceOptions, binary: Path | None,
           postgres: object) -> StackState:
    state_dir = settings.state_dir.resolve()
    log_dir = state_dir / "logs"
    fault_dir = state_dir / "faults"
    fault_dir.mkdir(parents=True, exist_ok=True)
    replicas = tuple(
        ReplicaRecord(name=f"replica-{i}", port=port, url=f"http://{options.host}:{port}",
                      fault_file=str(fault_dir / f"replica-{i}.json"))
        for i, port in enumerate(options.replica_ports(), start=1))
    for replica in replicas:
        Path(replica.fault_file).unlink(missing_ok=True)  # a new stack starts without faults
    programs = [supervision.Program(
        name=r.name, command=granian_command(options, r.port),
        environment={"ALUMNOS_REPLICA": r.name, "ALUMNOS_FAULT_FILE": r.fault_file})
        for r in replicas]
    runtime_socket = breaker_state = None
    if binary is not None:
        runtime_socket = supervision.socket_dir(state_dir) / RUNTIME_SOCKET
        programs += _balancer_programs(options, replicas, binary, state_dir, runtime_socket)
        if options.patterns.circuit_breaker:
            breaker_state = state_dir / BREAKER_STATE
            breaker_state.unlink(missing_ok=True)
    env = service_environment(settings, cache=options.cache,
                              fault_injection=options.fault_injection)
    stack_id = uuid.uuid4().hex
    env[STACK_ID_VARIABLE] = stack_id
    process = supervision.start_supervisor(state_dir, log_dir, programs, env)
    url = f"http://{options.host}:{options.port}"
    state = StackState(
        mode="local", database_url=settings.database_url, redis_url=settings.redis_url,
        postgres=postgres,  # type: ignore[arg-type]
        service=ServiceRecord(
            url=url, host=options.host, port=options.port, workers=options.workers,
            blocking_threads=options.blocking_threads, cache=options.cache,
            balancer=binary is not None, fault_injection=options.fault_injection,
            supervisor=process, log_dir=str(log_dir), replicas=replicas,
            patterns=options.patterns, stack_id=stack_id,
            runtime_socket=str(runtime_socket) if runtime_socket else None,
            breaker_state=str(breaker_state) if breaker_state else None))
    save_state(settings.state_dir, state)
    supervision.wait_for_supervisor(state_dir, process)
    return state


def _balancer_programs(options: ServiceOptions, replicas: tuple[ReplicaRecord, ...],
                       binary: Path, state_dir: Path,
                       runtime_socket: Path) -> list[supervision.Program]:
    spec = options.patterns
    log_port = _free_udp_port() if spec.circuit_breaker else None
    config = state_dir / HAPROXY_CONFIG
    config.write_text(haproxy.haproxy_config(
        spec, [haproxy.Replica(r.name, options.host, r.port) for r in replicas],
        options.host, options.port, haproxy.BalancerPaths(runtime_socket, log_port)))
    problem = haproxy.check_config(binary, config)
    if problem:
        raise AlumnosError(f"HAProxy rejects the generated configuration {config}: {problem}")
    runtime_socket.unlink(missing_ok=True)
    programs = [supervision.Program(name="haproxy", command=[str(binary), "-db", "-f",
                                                              str(config)])]
    if log_port is not None:
        breaker_config = state_dir / BREAKER_CONFIG
        breaker_config.write_text(json.dumps(asdict(BreakerConfig(
            replicas=[r.name for r in replicas], latency_ms=spec.circuit_breaker_latency_ms,
            quantile=spec.circuit_breaker_quantile, window_s=spec.circuit_breaker_window_s,
            min_samples=spec.circuit_breaker_min_samples,
            check_period_ms=spec.circuit_breaker_check_period_ms,
            fallback_s=spec.circuit_breaker_fallback_s,
            recovery_s=spec.circuit_breaker_recovery_s, log_port=log_port,
            runtime_socket=str(runtime_socket),
            state_file=str(state_dir / BREAKER_STATE))), indent=2))
        programs.append(supervision.Program(
            name="breaker",
            command=[sys.executable, "-m", "alumnos_cli.stack.breaker", str(breaker_config)]))
    return programs


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_healthy(state: StackState, state_dir: Path) -> None:
    """Until every replica answers /health and the balancer sees them all UP."""
    record = state.service
    deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
    waiting: list[str] = []
    while time.monotonic() < deadline:
        waiting = _not_ready(record)
        if not waiting:
            return
        failed = [p for p in supervision.programs_info(state_dir) if p.state in
                  {"FATAL", "EXITED"}]
        if failed or not record.supervisor.alive():
            break
        time.sleep(0.2)
    raise ServiceUnreachable(_startup_failure(record, state_dir, waiting),
                             f"alumnos logs shows every log; they are in {record.log_dir}")


def _not_ready(record: ServiceRecord) -> list[str]:
    waiting = [r.name for r in record.replicas
               if (http_get(f"{r.url}/health", timeout=1.0) or (0,))[0] != 200]
    if record.runtime_socket and not waiting:
        try:
            stats = haproxy.server_stats(Path(record.runtime_socket))
        except AlumnosError:
            return ["haproxy"]
        waiting = [s.name for s in stats if s.status != "UP"] or (
            [] if len(stats) == len(record.replicas) else ["haproxy"])
        answer = http_get(f"{record.url}/health", timeout=1.0)
        if not waiting and (answer is None or answer[0] != 200):
            waiting = ["haproxy"]
    if record.breaker_state and not waiting and not Path(record.breaker_state).exists():
        waiting = ["breaker"]  # it writes its state file once it listens
    return waiting


def _startup_failure(record: ServiceRecord, state_dir: Path, waiting: list[str]) -> str:
    programs = {p.name: p for p in supervision.programs_info(state_dir)}
    names = waiting or list(programs)
    broken = [p.name for p in programs.values() if p.state in {"FATAL", "EXITED", "BACKOFF"}]
    for name in broken + names:
        info = programs.get(name)
        if info is not None and info.state != "RUNNING":
            tail = log_tail(Path(record.log_dir) / f"{name}.log")
            return f"{name} did not start ({info.state}: {info.description}): {tail}"
    if not record.supervisor.alive():
        return f"supervisord exited: {log_tail(Path(record.log_dir) / 'supervisord.out')}"
    return f"not healthy after {HEALTH_TIMEOUT_SECONDS:.0f} s: {', '.join(names)}"


def running_state(state_dir: Path) -> StackState | None:
    """The recorded stack if its supervisord still runs."""
    state = load_state(state_dir)
    if state is not None and state.service.supervisor.alive():
        return state
    return None


def down(settings: Settings) -> list[str]:
    """Stop exactly what `up` started; returns what was stopped."""
    state = load_state(settings.state_dir)
    if state is None:
        return []
    stopped = []
    record = state.service
    names = [p.name for p in supervision.programs_info(settings.state_dir.resolve())]
    if supervision.stop_supervisor(settings.state_dir.resolve(), record.supervisor):
        stopped.append(f"supervisord (pid {record.supervisor.pid}) and "
                       f"{', '.join(names) or 'its programs'}")
    # Programs run in their own process groups: if supervisord died first, they live on.
    strays = stop_marked(STACK_ID_VARIABLE, record.stack_id) if record.stack_id else []
    if strays:
        stopped.append(f"{len(strays)} process(es) that outlived supervisord")
    if state.postgres is not None:
        stop_private_cluster(state.postgres)
        stopped.append(f"private PostgreSQL (port {state.postgres.port})")
    state_path(settings.state_dir).unlink(missing_ok=True)
    return stopped


def status(settings: Settings) -> StackStatus:
    """Each component and replica, as supervisord, HAProxy and the breaker see them."""
    state = load_state(settings.state_dir)
    database_url = state.database_url if state else settings.database_url
    redis_url = state.redis_url if state else settings.redis_url
    components = [_service_status(state), _postgres_status(database_url, state),
                  _redis_status(redis_url)]
    if state is None:
        return StackStatus(components, [], None, None)
    record = state.service
    stats, outcomes = _balancer_view(record)
    breaker = _breaker_view(record)
    programs = {p.name: p for p in supervision.programs_info(settings.state_dir.resolve())}
    replicas = [_replica_status(r, programs.get(r.name), stats.get(r.name), breaker.get(r.name),
                                record) for r in record.replicas]
    return StackStatus(components, replicas, outcomes,
                       record.patterns if record.balancer else None)


def _balancer_view(record: ServiceRecord) -> tuple[dict[str, haproxy.ServerStat],
                                                    dict[str, int] | None]:
    if not record.runtime_socket:
        return {}, None
    try:
        socket_path = Path(record.runtime_socket)
        stats = {s.name: s for s in haproxy.server_stats(socket_path)}
        return stats, haproxy.cache_outcomes(socket_path)
    except AlumnosError:
        return {}, None


def _breaker_view(record: ServiceRecord) -> dict[str, dict[str, object]]:
    if not record.breaker_state:
        return {}
    snapshot = read_state(Path(record.breaker_state)) or {}
    replicas = snapshot.get("replicas")
    return replicas if isinstance(replicas, dict) else {}


def _replica_status(replica: ReplicaRecord, program: supervision.ProgramInfo | None,
                    stat: haproxy.ServerStat | None, breaker: dict[str, object] | None,
                    record: ServiceRecord) -> ReplicaStatus:
    process = "unknown" if program is None else (
        f"{program.state} {program.pid}" if program.pid else program.state)
    if not record.balancer:
        balancer = "-"
    elif stat is None:
        balancer = "unknown"
    else:
        balancer = f"{stat.status} {stat.check_status}".strip()
    if not record.balancer or not record.patterns.circuit_breaker:
        breaker_text = "off"
    elif breaker is None:
        breaker_text = "unknown"
    else:
        quantile = breaker.get("quantile_ms")
        breaker_text = str(breaker.get("state"))
        if isinstance(quantile, int | float):
            breaker_text += f", p50 {quantile:.0f} ms"
    return ReplicaStatus(
        name=replica.name, url=replica.url, process=process, balancer=balancer,
        breaker=breaker_text, requests=stat.requests if stat else None,
        errors_5xx=stat.errors_5xx if stat else None,
        retries=(stat.retries + stat.redispatches) if stat else None,
        response_ms=stat.response_ms if stat else None)


def _service_status(state: StackState | None) -> ComponentStatus:
    if state is None:
        return ComponentStatus("service", "-", answers=False, detail="not started (alumnos up)")
    record = state.service
    answer = http_get(f"{record.url}/health")
    detail = (f"{len(record.replicas)} replica(s) x {record.workers} workers, "
              f"{'HAProxy in front' if record.balancer else 'no balancer'}, "
              f"cache {'on' if record.cache else 'off'}")
    if not record.supervisor.alive():
        detail = f"supervisord {record.supervisor.pid} is gone (alumnos down, then up)"
    return ComponentStatus("service", record.url, answers=bool(answer and answer[0] == 200),
                           detail=detail)


def log_files(settings: Settings) -> dict[str, Path]:
    """Each component's log file, by name; they outlive `down`."""
    state = load_state(settings.state_dir)
    log_dir = Path(state.service.log_dir) if state else settings.state_dir.resolve() / "logs"
    files = {}
    if log_dir.is_dir():
        files = {path.stem: path for path in sorted(log_dir.glob("*.log"))}
        if (log_dir / "supervisord.out").exists():
            # What supervisord printed before its own log opened (why it did not start).
            files["supervisord-start"] = log_dir / "supervisord.out"
    if state is not None and state.postgres is not None:
        files["postgres"] = Path(state.postgres.log)
    return files


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


def tail_lines(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of a log file (read from the end, so large logs stay cheap)."""
    if not path.exists():
        return []
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 256 * max(lines, 1) * 4))
        text = handle.read().decode(errors="replace")
    return text.splitlines()[-lines:] if lines > 0 else []


def new_lines(path: Path, offset: int) -> list[tuple[str, int]]:
    """Complete lines written after `offset`, each with the offset after it."""
    if not path.exists():
        return []
    if path.stat().st_size < offset:  # rotated: start again
        offset = 0
    with path.open("rb") as handle:
        handle.seek(offset)
        chunk = handle.read()
    result = []
    for raw in chunk.splitlines(keepends=True):
        if not raw.endswith(b"\n"):
            break
        offset += len(raw)
        result.append((raw.decode(errors="replace").rstrip("\n"), offset))
    return result
