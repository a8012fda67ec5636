"""The figures of a run, read from k6's end-of-test summary."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from alumnos_cli.errors import RunFolderError
from alumnos_cli.k6 import scripts_dir
from alumnos_cli.runs import StoredRun


@dataclass(frozen=True)
class Latency:
    """http_req_duration statistics, in milliseconds."""

    avg: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float


@dataclass(frozen=True)
class Threshold:
    """One k6 threshold and whether it held."""

    metric: str
    expression: str
    ok: bool


@dataclass(frozen=True)
class RunFigures:
    """What the reference report gives, and more."""

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

    @property
    def thresholds_ok(self) -> bool:
        """True when every threshold held."""
        return all(t.ok for t in self.thresholds)


def _values(summary: dict[str, Any], metric: str, file: str) -> dict[str, Any]:
    try:
        values = summary["metrics"][metric]["values"]
    except (KeyError, TypeError):
        raise RunFolderError(f"{file} has no '{metric}' metric",
                             "the run sent no requests, or the file is not a k6 summary") from None
    return dict(values)


def figures(run: StoredRun) -> RunFigures:
    """Extract the figures from a stored run's k6 summary."""
    return summary_figures(run.summary, str(run.path / "summary.json"))


def ceiling_figures(run: StoredRun) -> RunFigures | None:
    """The figures of the calibration run (same load on /api/v1/ping), when there is one."""
    if run.calibration is None:
        return None
    return summary_figures(run.calibration, str(run.path / "calibration" / "summary.json"))


def summary_figures(summary: dict[str, Any], file: str) -> RunFigures:
    """Extract the figures from one k6 summary document."""
    reqs = _values(summary, "http_reqs", file)
    duration = _values(summary, "http_req_duration", file)
    failed = _values(summary, "http_req_failed", file)
    try:
        latency = Latency(avg=duration["avg"], p50=duration["med"], p90=duration["p(90)"],
                          p95=duration["p(95)"], p99=duration["p(99)"], max=duration["max"])
    except KeyError as exc:
        raise RunFolderError(f"{file} lacks the latency statistic {exc}",
                             "run with the bundled k6 scripts, which ask k6 for p(99)") from None
    metrics = summary.get("metrics", {})
    share = metrics.get("http_200", {}).get("values", {}).get("rate")
    return RunFigures(
        requests=int(reqs.get("count", 0)),
        requests_per_second=float(reqs.get("rate", 0.0)),
        share_200=None if share is None else float(share),
        error_rate=float(failed.get("rate", 0.0)),
        latency=latency,
        duration_seconds=float(summary.get("state", {}).get("testRunDurationMs", 0)) / 1000,
        data_received_bytes=int(metrics.get("data_received", {}).get("values", {})
                                .get("count", 0)),
        max_vus=int(metrics.get("vus_max", {}).get("values", {}).get("max", 0)),
        iterations=int(metrics.get("iterations", {}).get("values", {}).get("count", 0)),
        thresholds=tuple(_thresholds(metrics)),
        iteration_avg_ms=float(metrics.get("iteration_duration", {}).get("values", {})
                               .get("avg", 0.0)),
        dropped_iterations=int(metrics.get("dropped_iterations", {}).get("values", {})
                               .get("count", 0)),
        checks_rate=_optional_float(metrics.get("checks", {}).get("values", {}).get("rate")),
    )


def _optional_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _thresholds(metrics: dict[str, Any]) -> list[Threshold]:
    found = []
    for name, metric in sorted(metrics.items()):
        for expression, verdict in (metric.get("thresholds") or {}).items():
            found.append(Threshold(metric=name, expression=expression,
                                   ok=bool(verdict.get("ok"))))
    return found


SHAPES_FILE = "lib/shapes.json"


def average_load_share(scenario_shape: str | None) -> float:
    """The run's average VUs (or rate) as a share of the peak, from the shape's stages.

    Ramps are linear, so each stage averages its start and end levels.
    """
    if not scenario_shape:
        return 1.0
    shapes = json.loads((scripts_dir() / SHAPES_FILE).read_text())
    stages = shapes.get(scenario_shape)
    if not stages:
        return 1.0
    level, total = 0.0, 0.0
    for share, target in stages:
        total += share * (level + target) / 2
        level = target
    return total / sum(share for share, _ in stages)


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


def littles_law(figures: RunFigures, meta: dict[str, Any]) -> LittlesLaw | None:
    """The check for a closed-model run; None for the open model, where VUs are a pool."""
    if meta.get("model") == "open" or not figures.duration_seconds:
        return None
    planned = float(meta.get("duration_seconds") or 0)
    if planned and figures.duration_seconds < 0.95 * planned:
        return None  # stopped early (stress): the shape's average no longer applies
    from alumnos_cli.bench import SCENARIOS

    scenario = SCENARIOS.get(str(meta.get("scenario")))
    shape = None if scenario is None else scenario.profile
    configured = float(meta.get("vus") or figures.max_vus) * average_load_share(shape)
    iterations_per_s = figures.iterations / figures.duration_seconds
    return LittlesLaw(configured=configured,
                      in_requests=figures.requests_per_second * figures.latency.avg / 1000,
                      in_iterations=iterations_per_s * figures.iteration_avg_ms / 1000)


@dataclass(frozen=True)
class GeneratorVerdict:
    """Whether the load generator could have limited the figures."""

    k6_cores: float
    cpu_count: int
    machine_busy: float
    limited: bool
    text: str


def generator_verdict(meta: dict[str, Any]) -> GeneratorVerdict | None:
    """From the CPU k6 used and how busy the machine was during the run."""
    usage = meta.get("load_generator") or {}
    if not usage:
        return None
    cores = float(usage.get("k6_cores", 0))
    count = int(usage.get("cpu_count", 1))
    busy = float(usage.get("machine_busy", 0))
    # On a saturated machine, every core k6 burns is one the service did not get.
    limited = busy >= 0.9 and cores >= 0.15 * count
    if limited:
        text = (f"k6 used {cores:.2f} of {count} cores while the machine was {busy:.0%} busy: "
                "the load generator competed with the service, so these figures are a lower "
                "bound; run k6 on another machine for the service's own limit")
    elif busy >= 0.9:
        text = (f"the machine was {busy:.0%} busy, k6 taking only {cores:.2f} of {count} cores: "
                "the service itself used what was left")
    else:
        text = (f"k6 used {cores:.2f} of {count} cores; the machine was {busy:.0%} busy: "
                "the generator was not the bottleneck")
    return GeneratorVerdict(cores, count, busy, limited, text)
