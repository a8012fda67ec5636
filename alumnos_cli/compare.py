"""Comparing runs: side-by-side figures, differences, and a verdict that respects the noise.

A run made with --repeat belongs to a group; comparing it compares the whole groups. With
several runs on each side, a difference counts only when the two groups' ranges do not
overlap (every run of one side beats every run of the other); with a single run on a side,
the spread between repeats is unknown and the verdict says it cannot tell.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alumnos_cli.errors import RunFolderError
from alumnos_cli.results import RunFigures, figures
from alumnos_cli.runs import StoredRun, list_runs, load_run, resolve_run

BETTER, WORSE, NOISE, UNKNOWN = "better", "worse", "within noise", "cannot tell"


@dataclass(frozen=True)
class Metric:
    """A figure to compare, and which direction is better."""

    name: str
    unit: str
    value: Callable[[RunFigures], float]
    higher_is_better: bool


METRICS = (
    Metric("throughput", "req/s", lambda f: f.requests_per_second, higher_is_better=True),
    Metric("latency avg", "ms", lambda f: f.latency.avg, higher_is_better=False),
    Metric("latency p95", "ms", lambda f: f.latency.p95, higher_is_better=False),
    Metric("latency p99", "ms", lambda f: f.latency.p99, higher_is_better=False),
    Metric("error rate", "%", lambda f: 100 * f.error_rate, higher_is_better=False),
)


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a run, or every run of its --repeat group."""

    label: str
    runs: list[StoredRun]
    figures: list[RunFigures]


@dataclass(frozen=True)
class Row:
    """One metric compared."""

    metric: str
    unit: str
    baseline: float
    candidate: float
    baseline_range: tuple[float, float]
    candidate_range: tuple[float, float]
    verdict: str

    @property
    def difference(self) -> float:
        """Candidate minus baseline, in the metric's unit."""
        return self.candidate - self.baseline

    @property
    def relative(self) -> float | None:
        """The difference as a share of the baseline."""
        return self.difference / self.baseline if self.baseline else None


@dataclass(frozen=True)
class Comparison:
    """The two sides and each metric's verdict."""

    baseline: Side
    candidate: Side
    rows: list[Row]

    @property
    def single_runs(self) -> bool:
        """True when a side has one run only, so no spread is known."""
        return len(self.baseline.runs) < 2 or len(self.candidate.runs) < 2


def load_side(results_dir: Path, name: str) -> Side:
    """A run by name, widened to its --repeat group when it has one."""
    run = load_run(resolve_run(results_dir, name))
    group = (run.meta.get("repeat") or {}).get("group")
    runs = [run]
    if group:
        members = [load_run(path) for path in list_runs(run.path.parent)
                   if (_meta_group(path) == group)]
        runs = members or runs
    label = f"{group} ({len(runs)} runs)" if group and len(runs) > 1 else run.path.name
    return Side(label, runs, [figures(r) for r in runs])


def _meta_group(path: Path) -> str | None:
    try:
        run = load_run(path)
    except RunFolderError:
        return None
    return (run.meta.get("repeat") or {}).get("group")


def compare(baseline: Side, candidate: Side) -> Comparison:
    """Each metric: means, ranges and the verdict."""
    rows = []
    for metric in METRICS:
        a = [metric.value(f) for f in baseline.figures]
        b = [metric.value(f) for f in candidate.figures]
        rows.append(Row(metric.name, metric.unit, statistics.fmean(a), statistics.fmean(b),
                        (min(a), max(a)), (min(b), max(b)),
                        verdict(a, b, higher_is_better=metric.higher_is_better)))
    return Comparison(baseline, candidate, rows)


def verdict(baseline: list[float], candidate: list[float], *, higher_is_better: bool) -> str:
    """better / worse only when the ranges of repeats do not overlap; else noise or unknown."""
    if len(baseline) < 2 or len(candidate) < 2:
        return UNKNOWN
    if min(candidate) > max(baseline):
        return BETTER if higher_is_better else WORSE
    if max(candidate) < min(baseline):
        return WORSE if higher_is_better else BETTER
    return NOISE
