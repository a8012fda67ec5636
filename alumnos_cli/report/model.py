"""A run as the report sees it: typed, frozen, read once from its folder.

`alumnos_cli.report.read` builds these from a run folder; renderers take them and only format.
Adding a figure means one field here and one line per renderer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alumnos_cli.report.attribution import (
    Costs,
    CrossCheck,
    DatabaseCeiling,
    PageQueries,
    Placement,
    Verification,
)
from alumnos_cli.report.balancer import BalancerActivity
from alumnos_cli.report.breakdown import Breakdown
from alumnos_cli.report.generators import GeneratorHost

OPEN_MODEL = "open"
CLOSED_MODEL = "closed"


@dataclass(frozen=True)
class Latency:
    """http_req_duration statistics, in milliseconds."""

    avg: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float
    p999: float | None = None  # None: recorded before runs asked k6 for p(99.9)


@dataclass(frozen=True)
class Threshold:
    """One k6 threshold and whether it held."""

    metric: str
    expression: str
    ok: bool


@dataclass(frozen=True)
class Check:
    """One k6 check of the scripts (a status, a page verified): how often it held."""

    name: str
    passes: int
    fails: int

    @property
    def ok(self) -> bool:
        """True when the check never failed."""
        return self.fails == 0


@dataclass(frozen=True)
class RunFigures:
    """What the reference report gives, and more: from k6's end-of-test summary."""

    requests: int
    requests_per_second: float
    share_200: float | None
    error_rate: float
    latency: Latency
    duration_seconds: float
    data_received_bytes: int
    max_vus: int
    iterations: int
    thresholds: tuple[Threshold, ...]
    iteration_avg_ms: float = 0.0
    dropped_iterations: int = 0
    checks_rate: float | None = None  # share of the scripts' checks (status, rows) that held
    checks: tuple[Check, ...] = ()  # each check, or their total when k6 named none

    @property
    def thresholds_ok(self) -> bool:
        """True when every threshold held."""
        return all(t.ok for t in self.thresholds)


@dataclass(frozen=True)
class LoadShape:
    """The load's stages as [share of the run, share of the peak]; none for a constant load."""

    stages: tuple[tuple[float, float], ...] = ()

    def average_share(self) -> float:
        """The run's average VUs (or rate) as a share of the peak.

        Ramps are linear, so each stage averages its start and end levels.
        """
        if not self.stages:
            return 1.0
        level, total = 0.0, 0.0
        for share, target in self.stages:
            total += share * (level + target) / 2
            level = target
        return total / sum(share for share, _ in self.stages)


@dataclass(frozen=True)
class Machine:
    """Where the run was made."""

    cpu_count: int | None
    cpu_model: str | None


@dataclass(frozen=True)
class PatternsInUse:
    """Which resilience patterns ran in front of the service."""

    retry: bool
    rate_limit: bool
    circuit_breaker: bool


@dataclass(frozen=True)
class StackInfo:
    """The stack `alumnos up` started, when it was the target."""

    mode: str
    workers: int | None
    cache: bool
    replicas: int | None = None  # None: recorded before replicas existed (one Granian)
    balancer: str | None = None
    patterns: PatternsInUse | None = None
    stack_id: str | None = None  # pairs the run with `alumnos patterns` proofs of that stack


@dataclass(frozen=True)
class GeneratorUsage:
    """The CPU k6 used during the run, and how busy the machine was."""

    k6_cores: float
    cpu_count: int
    machine_busy: float
    hosts: tuple[GeneratorHost, ...] = ()  # the generators of a split run (bench --generator)
    percentiles: str | None = None  # where a split run's merged percentiles came from


@dataclass(frozen=True)
class Repeat:
    """A run's place in a `bench --repeat` group."""

    group: str | None
    index: int
    of: int


@dataclass(frozen=True)
class RunMeta:
    """How the run was made, from its meta.json (old runs completed from report.legacy)."""

    scenario: str
    script: str
    model: str  # closed (VUs loop) or open (a fixed arrival rate)
    vus: int
    rate: float | None
    duration_seconds: int
    url: str
    command: str
    started_at: str
    rows: int | None
    requests: str  # the request the scenario makes, e.g. GET /api/v1/alumno/alumno?...
    load_shape: LoadShape
    machine: Machine
    versions: Mapping[str, str]
    path: str | None = None  # the endpoint scenario's --path
    stack: StackInfo | None = None
    repeat: Repeat | None = None
    generator: GeneratorUsage | None = None
    calibration_path: str | None = None
    verification: Verification | None = None  # None: recorded before runs were verified
    costs: Costs | None = None
    cross_check: CrossCheck | None = None
    placement: Placement | None = None
    balancer: BalancerActivity | None = None  # None: no balancer, or recorded before runs kept it
    queries: PageQueries | None = None  # None: recorded before runs counted them
    database_ceiling: DatabaseCeiling | None = None  # bench --calibrate's pgbench

    @property
    def open_model(self) -> bool:
        """True for an arrival-rate run, where VUs are only a pool."""
        return self.model == OPEN_MODEL

    @property
    def group(self) -> str | None:
        """The --repeat group this run belongs to, if any."""
        return self.repeat.group if self.repeat else None


@dataclass(frozen=True)
class LittlesLaw:
    """Concurrency three ways: configured, implied by the requests, implied by the iterations.

    Little's law: concurrency = throughput x time in the system. In a closed model each VU is
    always in an iteration, so VUs ~= iterations/s x iteration time; the time per iteration
    beyond the request's latency is spent in k6 (checks, parsing, a busy generator).
    """

    configured: float  # average VUs over the run
    in_requests: float  # throughput x average latency
    in_iterations: float  # iterations/s x average iteration duration

    @property
    def consistent(self) -> bool:
        """The iterations account for the configured VUs within 15%."""
        return self.configured > 0 and abs(self.in_iterations / self.configured - 1) <= 0.15

    @property
    def outside_requests(self) -> float:
        """Share of the VUs' time not spent waiting for a response."""
        return 1 - self.in_requests / self.configured if self.configured else 0.0


@dataclass(frozen=True)
class GeneratorVerdict:
    """Whether the load generator could have limited the figures."""

    k6_cores: float
    cpu_count: int
    machine_busy: float
    limited: bool
    text: str
    apart: int = 0  # CPUs k6 had to itself, apart from the stack's (bench --generator-cpus)


@dataclass(frozen=True)
class TimeSeries:
    """One point per second: seconds from the start, and that second's figures."""

    seconds: tuple[float, ...] = ()
    requests_per_s: tuple[float, ...] = ()
    errors: tuple[float, ...] = ()  # share of failed requests
    p50_ms: tuple[float | None, ...] = ()
    p95_ms: tuple[float | None, ...] = ()
    p99_ms: tuple[float | None, ...] = ()
    vus: tuple[float | None, ...] = ()  # active VUs (k6's `vus`)
    # k6's `vus_max`: the VUs allocated, which the open model keeps above the active ones
    vus_max: tuple[float | None, ...] = ()

    def __len__(self) -> int:
        return len(self.seconds)


@dataclass(frozen=True)
class ServerSample:
    """One second of the stack, as `bench` sampled it."""

    t: float
    service_cores: float
    service_rss_mib: float
    pg_connections: int | None
    requests: Mapping[str, int] = field(default_factory=dict)  # by replica, cumulative
    refused: int | None = None  # answered by the balancer itself, cumulative since the start


@dataclass(frozen=True)
class ServerSummary:
    """The run as the server saw it."""

    requests_by_replica: Mapping[str, int]
    cache_hit_ratio: float | None
    cache_outcomes: Mapping[str, int]
    service_cores_avg: float
    service_cores_max: float
    service_rss_mib_max: float
    pg_connections_max: int | None
    source: str = "sampled"  # "prometheus": read from the stack's Prometheus for the window
    cores_by_component: Mapping[str, float] = field(default_factory=dict)  # average cores
    pg_transactions: int | None = None  # committed and rolled back during the load
    redis_hits: int | None = None  # keyspace hits during the load
    db_queries: int | None = None  # queries the service counted sending (its own counter)
    balancer_sessions_max: int | None = None  # HAProxy's most connections to the replicas
    balancer_slots: int | None = None  # their maxconn, all replicas together
    balancer_queue_max: int | None = None  # the most requests waiting for a slot
    # PostgreSQL's active backends by what they waited on (CPU: nothing), on average
    pg_waits: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ServerSide:
    """server.json: the summary and the per-second samples."""

    summary: ServerSummary
    samples: tuple[ServerSample, ...]


@dataclass(frozen=True)
class ProofVerdict:
    """One row of an `alumnos patterns` proof."""

    pattern: str
    observed: str
    verdict: str


@dataclass(frozen=True)
class Proof:
    """The `alumnos patterns` proof made on the same stack as the run."""

    started_at: str
    results: tuple[ProofVerdict, ...]
    document: Mapping[str, Any]  # as saved, for the JSON format


@dataclass(frozen=True)
class RunRecord:
    """A run's metadata and figures: enough to list and compare runs."""

    folder: Path
    meta: RunMeta
    figures: RunFigures
    ceiling: RunFigures | None  # the same load on /api/v1/ping, when calibrated
    recorded_meta: Mapping[str, Any]  # meta.json as written, for the JSON format

    @property
    def name(self) -> str:
        """The run folder's name, which names the run."""
        return self.folder.name


@dataclass(frozen=True)
class RunReport:
    """Everything a renderer shows about one run."""

    record: RunRecord
    little: LittlesLaw | None
    generator: GeneratorVerdict | None
    timeseries: TimeSeries | None
    server: ServerSide | None
    proof: Proof | None
    server_missing: str | None = None  # why there is no server side, or what it lacks
    breakdown: Breakdown | None = None  # per endpoint, status and error type
    breakdown_missing: str | None = None  # why there is no breakdown, in one line

    @property
    def name(self) -> str:
        """The run folder's name."""
        return self.record.name

    @property
    def meta(self) -> RunMeta:
        """How the run was made."""
        return self.record.meta

    @property
    def figures(self) -> RunFigures:
        """The run's figures."""
        return self.record.figures

    @property
    def ceiling(self) -> RunFigures | None:
        """The calibration run's figures, when there is one."""
        return self.record.ceiling


@dataclass(frozen=True)
class ListedRun:
    """One run folder in `report --list`: its record, or why it cannot be read."""

    name: str
    record: RunRecord | None
    problem: str | None = None
