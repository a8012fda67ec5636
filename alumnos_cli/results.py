"""The figures of a run, read from k6's end-of-test summary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alumnos_cli.errors import RunFolderError
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
    )


def _thresholds(metrics: dict[str, Any]) -> list[Threshold]:
    found = []
    for name, metric in sorted(metrics.items()):
        for expression, verdict in (metric.get("thresholds") or {}).items():
            found.append(Threshold(metric=name, expression=expression,
                                   ok=bool(verdict.get("ok"))))
    return found
