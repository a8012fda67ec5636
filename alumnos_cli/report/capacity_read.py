"""A sweep's folder read once into a typed Sweep: its sweep.json (what was asked, which run
holds each level) and each level's run, read as any run is (report.read)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alumnos_cli.errors import RunFolderError
from alumnos_cli.files import read_json
from alumnos_cli.report.capacity import (
    BALANCER_QUEUE,
    BALANCER_SLOTS,
    MACHINE,
    PG_CONNECTIONS,
    STACK_CPUS,
    Sweep,
    SweepLevel,
    Usage,
    fit_levels,
    knee,
)
from alumnos_cli.report.checks import cpus_apart
from alumnos_cli.report.model import RunReport, ServerSummary
from alumnos_cli.report.read import read_run
from alumnos_cli.runfolder import SWEEP_FILE
from alumnos_service.config import DEFAULTS

# Process groups by component, as the local stack's process exporter names them (compose
# names its replicas alumnos-N).
REPLICA_PREFIXES = ("replica-", "alumnos-")
# Components that serve one command at a time whatever the cores: Redis's one thread.
ONE_CORE = {"redis"}
# What `up --cpus` pins beside the replicas (PostgreSQL and Redis are system services).
PINNED = {"haproxy", "breaker"}


def is_sweep(folder: Path) -> bool:
    """A sweep's folder (bench --sweep), not a run's."""
    return (folder / SWEEP_FILE).is_file()


def read_sweep(folder: Path) -> Sweep:
    """The sweep in `folder`: each level that ran, the fit, the knee."""
    path = folder / SWEEP_FILE
    record = read_json(path)
    try:
        planned = tuple(int(level) for level in record["levels"])
        rows = [(int(row["level"]), str(row["run"])) for row in record["runs"]]
        model, scenario = str(record["model"]), str(record["scenario"])
        duration = int(record["duration_seconds"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RunFolderError(f"{path} is not a sweep's record ({exc})") from None
    levels, problems = [], {}
    for level, run in rows:
        # One level that cannot be read is said; the others still make the sweep.
        try:
            levels.append(_level(level, read_run(folder / run), model))
        except RunFolderError as exc:
            problems[level] = f"level {level} ({run}) cannot be read: {exc.message}"
    fit, note = fit_levels(levels)
    return Sweep(name=folder.name, scenario=scenario, model=model, duration_seconds=duration,
                 levels=tuple(levels), planned=planned, fit=fit, fit_note=note,
                 knee=knee(levels), problems=problems)


def _level(level: int, report: RunReport, model: str) -> SweepLevel:
    figures, lat = report.figures, report.figures.latency
    if model == "closed":
        # The average VUs the load shape gives (the same when the run stopped early).
        concurrency = report.little.configured if report.little else \
            level * report.meta.load_shape.average_share()
    else:  # in-flight requests, by Little's law
        concurrency = figures.requests_per_second * lat.avg / 1000
    return SweepLevel(
        level=level, run=report.name, concurrency=concurrency,
        requests_per_second=figures.requests_per_second, p50_ms=lat.p50, p95_ms=lat.p95,
        p99_ms=lat.p99, avg_ms=lat.avg, error_rate=figures.error_rate,
        generator_limited=bool(report.generator and report.generator.limited),
        usage=usage(report),
        queries_per_request=report.meta.queries.per_request(figures.requests)
        if report.meta.queries else None,
        pg_waits=report.server.summary.pg_waits if report.server else {})


def usage(report: RunReport) -> tuple[Usage, ...]:
    """Each component's CPU against the cores it can use, and the machine's."""
    meta, generator = report.meta, report.meta.generator
    cores = (generator.cpu_count if generator else None) or meta.machine.cpu_count or 1
    # `up --cpus` gives the replicas and the balancer those CPUs only.
    placement = meta.placement
    pinned = len(placement.stack_cpus) if placement and placement.stack_cpus else cores
    found: list[Usage] = []
    if report.server is not None:
        together = _pinned(report) if pinned < cores else set()
        parts = _components(report.server.summary.cores_by_component, cores, pinned,
                            _replica_cores(report, pinned), together)
        found += parts + _slots(report.server.summary, report)
        if together:  # what `up --cpus` pinned shares the CPUs it was given
            found.append(Usage(STACK_CPUS, sum(u.used for u in parts
                                               if u.component in {"replicas", *together}),
                               float(pinned), "cores"))
    if generator is not None:
        found.append(Usage("k6", generator.k6_cores, cpus_apart(meta) or cores, "cores"))
        found.append(Usage(MACHINE, generator.machine_busy * cores, cores, "cores"))
    return tuple(found)


def _pinned(report: RunReport) -> set[str]:
    """What `up --cpus` pinned beside the replicas: the balancer and the breaker, and the
    private PostgreSQL when `up` started one (a system server is not ours to pin)."""
    placement = report.meta.placement
    if placement is None or any(part.startswith("postgresql") for part in placement.not_pinned):
        return PINNED
    return PINNED | {"postgres"}


def _slots(summary: ServerSummary, report: RunReport) -> list[Usage]:
    """Connections against their limits: HAProxy's to the replicas (maxconn) and the
    replicas' to PostgreSQL (each Granian worker's pool, its overflow included)."""
    stack, found = report.meta.stack, []
    if summary.balancer_sessions_max is not None and summary.balancer_slots:
        found.append(Usage(BALANCER_SLOTS, summary.balancer_sessions_max,
                           summary.balancer_slots, "connections"))
        bound = _queue_bound(report.record.recorded_meta, summary.balancer_slots)
        if summary.balancer_queue_max is not None and bound:
            found.append(Usage(BALANCER_QUEUE, summary.balancer_queue_max, bound, "requests"))
    if summary.pg_connections_max is not None and stack is not None and stack.workers:
        pools = (stack.replicas or 1) * stack.workers * 2 * int(DEFAULTS["DB_POOL_SIZE"])
        found.append(Usage(PG_CONNECTIONS, summary.pg_connections_max, pools, "connections"))
    return found


def _queue_bound(meta: Mapping[str, Any], slots: int) -> int | None:
    """How long HAProxy's queue may grow before it refuses: queue_per_slot requests for each
    slot, a slot being admitted_per_slot of maxconn (the patterns as the run recorded them)."""
    patterns = (meta.get("stack") or {}).get("patterns") or {}
    per_slot, admitted = patterns.get("queue_per_slot"), patterns.get("admitted_per_slot")
    if not isinstance(per_slot, int) or not isinstance(admitted, int) or admitted <= 0:
        return None
    return slots * per_slot // admitted


def _replica_cores(report: RunReport, cores: int) -> float:
    """The replicas can use a core per Granian worker, at most the machine's."""
    stack = report.meta.stack
    if stack is None or not stack.workers:
        return float(cores)
    return float(min(cores, (stack.replicas or 1) * stack.workers))


def _components(by_component: Mapping[str, float], cores: int, pinned: int,
                replica_limit: float, pinned_names: set[str]) -> list[Usage]:
    replicas = sum(v for name, v in by_component.items() if name.startswith(REPLICA_PREFIXES))
    found = [Usage("replicas", replicas, replica_limit, "cores")] if replicas else []
    for name, used in sorted(by_component.items()):
        if name.startswith(REPLICA_PREFIXES) or name == "k6":
            continue
        limit = 1 if name in ONE_CORE else pinned if name in pinned_names else cores
        found.append(Usage(name, used, float(limit), "cores"))
    return found


def sweep_record(scenario: str, model: str, duration_seconds: int, levels: tuple[int, ...],
                 cool_down_seconds: int) -> dict[str, Any]:
    """What sweep.json holds when the sweep starts; each level's run is added as it ends."""
    return {"scenario": scenario, "model": model, "duration_seconds": duration_seconds,
            "levels": list(levels), "cool_down_seconds": cool_down_seconds, "runs": [],
            "status": "running"}


def listed_sweeps(results_dir: Path) -> list[tuple[str, str]]:
    """Each sweep in the results folder and a line on it (scenario, model, levels, status),
    oldest first; a sweep.json that cannot be read says so on its line."""
    found = []
    folders = sorted(p for p in results_dir.iterdir() if is_sweep(p)) \
        if results_dir.is_dir() else []
    for folder in folders:
        try:
            record = read_json(folder / SWEEP_FILE)
            line = (f"{record['scenario']}, {record['model']} model, levels "
                    f"{','.join(str(level) for level in record['levels'])}: "
                    f"{len(record['runs'])} ran, {record['status']}")
        except (RunFolderError, KeyError, TypeError) as exc:
            line = f"cannot be read ({exc})"
        found.append((folder.name, line))
    return found
