"""Local mode: Granian replicas of the bundled service under supervisord, HAProxy in front.

`up` writes HAProxy's configuration from the patterns spec, starts supervisord with one program
per replica, one for HAProxy and one for the breaker watcher, and waits until the balancer sees
every replica healthy. `down` stops supervisord, which stops all of them.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from alumnos_cli.database import ensure_database, server_reachable
from alumnos_cli.errors import AlumnosError, ServiceUnreachable
from alumnos_cli.settings import Settings
from alumnos_cli.stack import haproxy
from alumnos_cli.stack import supervisor as supervision
from alumnos_cli.stack.balancer_programs import RUNTIME_SOCKET, balancer_programs
from alumnos_cli.stack.breaker import STATE_FILE
from alumnos_cli.stack.components import check_placement
from alumnos_cli.stack.config_values import check_state_dir
from alumnos_cli.stack.cpus import make_cpuset, remove_cpuset
from alumnos_cli.stack.granian import GranianSpec
from alumnos_cli.stack.http import http_get
from alumnos_cli.stack.monitoring import (
    exporter_environment,
    is_ready,
    monitoring_programs,
    plan_monitoring,
    replica_metrics_dir,
)
from alumnos_cli.stack.options import STACK_ID_VARIABLE, ServiceOptions, validate_options
from alumnos_cli.stack.ports import port_is_free
from alumnos_cli.stack.postgres import start_private_cluster, stop_private_cluster
from alumnos_cli.stack.processes import log_tail, stop_marked
from alumnos_cli.stack.service_user import (
    PACKAGES_DIR,
    ServiceSide,
    prepare_service_side,
    remove_service_folder,
)
from alumnos_cli.stack.state import (
    PostgresRecord,
    ReplicaRecord,
    ServiceRecord,
    StackState,
    load_state,
    private_state_dir,
    running_state,
    save_state,
    state_path,
)

HEALTH_TIMEOUT_SECONDS = 45.0


@dataclass(frozen=True)
class UpResult:
    """What `up` did: the stack, and whether it was already running."""

    state: StackState
    already_running: bool
    started_postgres: bool


def granian_command(options: ServiceOptions, port: int, python: str) -> list[str]:
    """The Granian command line for one replica: the Dockerfile's, with local values."""
    spec = GranianSpec(host=options.replica_host, port=port, workers=options.workers,
                       blocking_threads=options.blocking_threads, backlog=options.backlog)
    return spec.argv(launcher=(python, "-m", "granian"))


def service_environment(settings: Settings, *, cache: bool,
                        fault_injection: bool = False) -> dict[str, str]:
    """The service's environment: where its databases are, whether to cache, faults."""
    env = dict(os.environ)
    env.update({
        "ALUMNOS_DATABASE_URL": settings.database_url,
        "ALUMNOS_REDIS_URL": settings.redis_url,
        "ALUMNOS_CACHE": "on" if cache else "off",
        "ALUMNOS_FAULT_INJECTION": "on" if fault_injection else "off",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGES_DIR),
                                                    env.get("PYTHONPATH")])),
    })
    return env


def up(settings: Settings, options: ServiceOptions) -> UpResult:
    """Start replicas, balancer and breaker (and a private PostgreSQL if none answers)."""
    current = running_state(settings.state_dir)
    if current is not None:
        return UpResult(current, already_running=True, started_postgres=False)
    validate_options(options)
    check_state_dir(settings.state_dir)
    private_state_dir(settings.state_dir)
    binary = haproxy.find_haproxy() if options.balancer else None
    binds = [(options.host, options.port)] + [
        (options.replica_host, port) for port in options.replica_ports() if options.balancer]
    for host, port in binds:
        if not port_is_free(port, host):
            raise AlumnosError(f"port {port} on {host} is already in use",
                               "stop what listens there, or choose another with --port "
                               "(replicas take the ports just above it)")
    if options.prometheus and not port_is_free(options.prometheus_port):
        raise AlumnosError(f"port {options.prometheus_port} on 127.0.0.1 (Prometheus) is "
                           "already in use",
                           "choose another with --prometheus-port (ALUMNOS_PROMETHEUS_PORT), "
                           "or run without it: --no-prometheus")
    if load_state(settings.state_dir) is not None:
        down(settings)  # what a crashed or half-started stack left behind
    stack_id = uuid.uuid4().hex
    cpuset = make_cpuset(f"alumnos-{stack_id}", options.cpus) if options.cpus else None
    postgres = side = None
    try:
        side = prepare_service_side()
        if not server_reachable(settings.database_url):
            postgres = start_private_cluster(settings.state_dir, cpus=options.cpus,
                                             cpuset=cpuset)
            settings = settings.with_database_url(postgres.url)
        ensure_database(settings.database_url)
        state = _start(settings, options, binary, postgres, Launch(stack_id, cpuset, side))
        _wait_until_healthy(state, settings.state_dir)
        check_placement(state)
    except BaseException:
        # Nothing half-started stays behind: the recorded stack, or the cluster just started.
        if load_state(settings.state_dir) is not None:
            down(settings)
        else:
            if postgres is not None:
                stop_private_cluster(postgres)
            if cpuset is not None:
                remove_cpuset(cpuset)
            if side is not None:
                remove_service_folder(side.folder)
        raise
    return UpResult(state, already_running=False, started_postgres=postgres is not None)


@dataclass(frozen=True)
class Launch:
    """What marks, places and runs every process of one `up`: its id, its cpuset if any, and
    who runs the service side, in which folder."""

    stack_id: str
    cpuset: Path | None
    side: ServiceSide


def _start(settings: Settings, options: ServiceOptions, binary: Path | None,
           postgres: PostgresRecord | None, launch: Launch) -> StackState:
    state_dir = settings.state_dir.resolve()
    log_dir = state_dir / "logs"
    side = launch.side
    fault_dir = side.folder / "faults"
    fault_dir.mkdir()  # a fresh folder: a new stack starts without faults
    replicas = tuple(
        ReplicaRecord(name=f"replica-{i}", port=port,
                      url=f"http://{options.replica_host}:{port}",
                      fault_file=str(fault_dir / f"replica-{i}.json"))
        for i, port in enumerate(options.replica_ports(), start=1))
    monitoring = plan_monitoring(options.prometheus_port, {r.name: r.port for r in replicas},
                                 balancer=binary is not None) if options.prometheus else None
    programs = [supervision.Program(
        name=r.name, command=granian_command(options, r.port, side.python),
        environment={"ALUMNOS_REPLICA": r.name, "ALUMNOS_FAULT_FILE": r.fault_file,
                     # Its workers' figures, summed on every scrape of any of them.
                     "PROMETHEUS_MULTIPROC_DIR": str(replica_metrics_dir(side, r.name))})
        for r in replicas]
    runtime_socket = breaker_state = None
    if binary is not None:
        runtime_socket = side.folder / RUNTIME_SOCKET
        programs += balancer_programs(options, replicas, binary, side, monitoring)
        breaker_state = side.folder / STATE_FILE
    env = service_environment(settings, cache=options.cache,
                              fault_injection=options.fault_injection)
    if monitoring is not None:
        programs += monitoring_programs(monitoring, side, {r.name: r.port for r in replicas})
        env.update(exporter_environment(settings.database_url, settings.redis_url))
    programs = [replace(p, user=side.user, directory=str(side.folder)) for p in programs]
    env[STACK_ID_VARIABLE] = launch.stack_id
    if side.user is not None:
        env["HOME"] = str(side.folder)  # not root's home, which the service user cannot read
    process = supervision.start_supervisor(state_dir, log_dir, programs, env, options.cpus,
                                           launch.cpuset)
    url = f"http://{options.host}:{options.port}"
    state = StackState(
        mode="local", database_url=settings.database_url, redis_url=settings.redis_url,
        postgres=postgres,
        service=ServiceRecord(
            url=url, host=options.host, port=options.port, workers=options.workers,
            blocking_threads=options.blocking_threads, cache=options.cache,
            balancer=binary is not None, fault_injection=options.fault_injection,
            supervisor=process, log_dir=str(log_dir), replicas=replicas,
            patterns=options.patterns, stack_id=launch.stack_id,
            runtime_socket=str(runtime_socket) if runtime_socket else None,
            breaker_state=str(breaker_state) if breaker_state else None,
            cpus=options.cpus, cpuset=str(launch.cpuset) if launch.cpuset else None,
            service_dir=str(side.folder), service_user=side.user, monitoring=monitoring))
    save_state(settings.state_dir, state)
    supervision.wait_for_supervisor(state_dir, process)
    return state


def _wait_until_healthy(state: StackState, state_dir: Path) -> None:
    """Until every replica answers /health and the balancer sees them all UP."""
    record = state.service
    deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
    waiting: list[str] = []
    while time.monotonic() < deadline:
        # Every program past its start seconds too: an exporter that cannot start is named
        # here with its log, not found later as a target that is down.
        programs = supervision.programs_info(state_dir)
        waiting = _not_ready(record) or [p.name for p in programs if p.state != "RUNNING"]
        if not waiting:
            return
        failed = [p for p in programs if p.state in {"FATAL", "EXITED"}]
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
    if record.monitoring is not None and not waiting and not is_ready(record.monitoring):
        waiting = ["prometheus"]
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


def down(settings: Settings) -> list[str]:
    """Stop exactly what `up` started; returns what was stopped."""
    state = load_state(settings.state_dir)
    if state is None:
        return []
    stopped = []
    record = state.service
    names = [p.name for p in supervision.programs_info(settings.state_dir.resolve())]
    marker = (STACK_ID_VARIABLE, record.stack_id) if record.stack_id else None
    if supervision.stop_supervisor(settings.state_dir.resolve(), record.supervisor,
                                   marker=marker):
        stopped.append(f"supervisord (pid {record.supervisor.pid}) and "
                       f"{', '.join(names) or 'its programs'}")
    # Programs run in their own process groups: if supervisord died first, they live on.
    strays = stop_marked(STACK_ID_VARIABLE, record.stack_id) if record.stack_id else []
    if strays:
        stopped.append(f"{len(strays)} process(es) that outlived supervisord")
    if state.postgres is not None:
        stop_private_cluster(state.postgres)
        stopped.append(f"private PostgreSQL (port {state.postgres.port})")
    if record.cpuset:
        remove_cpuset(Path(record.cpuset))
    if record.service_dir:
        remove_service_folder(Path(record.service_dir))
    supervision.release_socket_dir(settings.state_dir)
    state_path(settings.state_dir).unlink(missing_ok=True)
    return stopped


