"""`alumnos status`: each component, and each replica as supervisord, HAProxy and the breaker
see it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import redis

from alumnos_cli.database import is_reachable, row_count
from alumnos_cli.errors import AlumnosError
from alumnos_cli.settings import Settings, mask_password
from alumnos_cli.stack import haproxy
from alumnos_cli.stack import supervisor as supervision
from alumnos_cli.stack.breaker import read_state
from alumnos_cli.stack.components import placement
from alumnos_cli.stack.fault_files import describe_fault, injected_faults
from alumnos_cli.stack.http import http_get
from alumnos_cli.stack.monitoring import target_health, targets_not_up
from alumnos_cli.stack.patterns import PatternsSpec
from alumnos_cli.stack.state import (
    MonitoringRecord,
    ReplicaRecord,
    ServiceRecord,
    StackState,
    load_state,
)


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
    placement: dict[str, list[list[int]]] | None = None  # `up --cpus`: where each part runs
    refused: dict[str, int] | None = None  # answered by the balancer itself, by reason
    events: list[dict[str, object]] | None = None  # the breaker's latest transitions
    fault_injection: bool | None = None  # whether `patterns` may slow or fail a replica
    faults: dict[str, str] | None = None  # replica -> the fault in place now

    @property
    def cache_hit_ratio(self) -> float | None:
        """Hits over hits and misses, as the balancer counted them."""
        if not self.cache_outcomes:
            return None
        hits, misses = self.cache_outcomes.get("HIT", 0), self.cache_outcomes.get("MISS", 0)
        return hits / (hits + misses) if hits + misses else None


RECENT_EVENTS = 5  # breaker transitions `status` shows


def stack_status(settings: Settings) -> StackStatus:
    """Each component and replica, as supervisord, HAProxy and the breaker see them."""
    state = load_state(settings.state_dir)
    database_url = state.database_url if state else settings.database_url
    redis_url = state.redis_url if state else settings.redis_url
    components = [_service_status(state), _postgres_status(database_url, state),
                  _redis_status(redis_url)]
    if state is None:
        return StackStatus(components, [], None, None)
    record = state.service
    if record.monitoring is not None:
        components.append(_prometheus_status(record.monitoring))
    stats, outcomes = _balancer_view(record)
    watcher = read_state(Path(record.breaker_state)) if record.breaker_state else None
    breakers = (watcher or {}).get("replicas")
    breaker = breakers if isinstance(breakers, dict) else {}
    programs = {p.name: p for p in supervision.programs_info(settings.state_dir.resolve())}
    replicas = [_replica_status(r, programs.get(r.name), stats.get(r.name), breaker.get(r.name),
                                record) for r in record.replicas]
    refused = (watcher or {}).get("refused")
    events = (watcher or {}).get("events")
    return StackStatus(components, replicas, outcomes,
                       record.patterns if record.balancer else None,
                       placement(state) if record.cpus else None,
                       refused if isinstance(refused, dict) else None,
                       events[-RECENT_EVENTS:] if isinstance(events, list) else None,
                       fault_injection=record.fault_injection,
                       faults={name: describe_fault(fault)
                               for name, fault in injected_faults(state).items()})


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


def _prometheus_status(record: MonitoringRecord) -> ComponentStatus:
    health = target_health(record)
    if health is None:
        return ComponentStatus("prometheus", record.url, answers=False,
                               detail="down (alumnos logs prometheus)")
    down = targets_not_up(health)
    detail = f"{len(health) - len(down)} of {len(health)} targets up"
    if down:
        detail += f"; not up: {', '.join(down)}"
    return ComponentStatus("prometheus", record.url, answers=True, detail=detail)
