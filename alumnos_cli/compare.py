"""Comparing runs: side-by-side figures, differences, and a verdict that respects the noise.

A run made with --repeat belongs to a group; comparing it compares the whole groups (two runs
of the same group are compared one against the other). A difference counts only with at
least 3 runs a side, when the two groups' ranges do not overlap (every run of one side beats
every run of the other) and the means differ by at least 5%: with 3 runs a side, ranges of
unchanged configurations still miss each other by chance one time in ten, hence the floor.
With fewer runs the spread between repeats is unknown and the verdict says it cannot tell.
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
MIN_RUNS = 3
MIN_EFFECT = 0.05


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
    mismatches: list[str]  # what differs in how the two sides were made

    @property
    def single_runs(self) -> bool:
        """True when a side has too few runs for the spread between repeats to be known."""
        return len(self.baseline.runs) < MIN_RUNS or len(self.candidate.runs) < MIN_RUNS


def load_sides(results_dir: Path, baseline: str, candidate: str) -> tuple[Side, Side]:
    """Both sides; runs of one --repeat group are compared one against the other."""
    a = load_run(resolve_run(results_dir, baseline))
    b = load_run(resolve_run(results_dir, candidate))
    same_group = (_group_of(a) is not None and _group_of(a) == _group_of(b))
    if same_group or a.path.resolve() == b.path.resolve():
        return _single(a), _single(b)
    return load_side(results_dir, baseline), load_side(results_dir, candidate)


def _group_of(run: StoredRun) -> str | None:
    return (run.meta.get("repeat") or {}).get("group")


def _single(run: StoredRun) -> Side:
    return Side(run.path.name, [run], [figures(run)])


def load_side(results_dir: Path, name: str) -> Side:
    """A run by name, widened to its --repeat group when it has one."""
    run = load_run(resolve_run(results_dir, name))
    group = _group_of(run)
    runs = [run]
    if group:
        members = [other for other in _readable_runs(run.path.parent)
                   if _group_of(other) == group]
        runs = members or runs
    label = f"{group} ({len(runs)} runs)" if group and len(runs) > 1 else run.path.name
    return Side(label, runs, [figures(r) for r in runs])


def _readable_runs(results_dir: Path) -> list[StoredRun]:
    """Every run of the folder that loads (unfinished or corrupt ones cannot be compared)."""
    runs = []
    for path in list_runs(results_dir):
        try:
            runs.append(load_run(path))
        except RunFolderError:
            continue
    return runs


def compare(baseline: Side, candidate: Side) -> Comparison:
    """Each metric: means, ranges and the verdict."""
    rows = []
    for metric in METRICS:
        a = [metric.value(f) for f in baseline.figures]
        b = [metric.value(f) for f in candidate.figures]
        rows.append(Row(metric.name, metric.unit, statistics.fmean(a), statistics.fmean(b),
                        (min(a), max(a)), (min(b), max(b)),
                        verdict(a, b, higher_is_better=metric.higher_is_better)))
    return Comparison(baseline, candidate, rows, mismatches(baseline, candidate))


COMPARED_SETTINGS = ("scenario", "model", "vus", "rate", "duration_seconds", "path", "rows")


def mismatches(baseline: Side, candidate: Side) -> list[str]:
    """Load settings that differ between the sides: a comparison across them is not like
    for like (the stack may differ on purpose: that is what comparisons are for)."""
    a, b = baseline.runs[0].meta, candidate.runs[0].meta
    return [f"{key}: {a.get(key)} against {b.get(key)}" for key in COMPARED_SETTINGS
            if a.get(key) != b.get(key)]


def verdict(baseline: list[float], candidate: list[float], *, higher_is_better: bool) -> str:
    """better / worse only with enough repeats, ranges that do not overlap, and a difference
    of means of at least MIN_EFFECT; else within noise, or cannot tell."""
    if len(baseline) < MIN_RUNS or len(candidate) < MIN_RUNS:
        return UNKNOWN
    a, b = statistics.fmean(baseline), statistics.fmean(candidate)
    large = abs(b - a) >= MIN_EFFECT * abs(a) if a else b != a
    if min(candidate) > max(baseline) and large:
        return BETTER if higher_is_better else WORSE
    if max(candidate) < min(baseline) and large:
        return WORSE if higher_is_better else BETTER
    return NOISE
