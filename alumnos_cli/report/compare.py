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

from alumnos_cli.report.model import RunMeta, RunRecord

BETTER, WORSE, NOISE, UNKNOWN = "better", "worse", "within noise", "cannot tell"
MIN_RUNS = 3
MIN_EFFECT = 0.05


@dataclass(frozen=True)
class Metric:
    """A figure to compare, and which direction is better."""

    name: str
    unit: str
    value: Callable[[RunRecord], float | None]  # None: the run did not record it
    higher_is_better: bool
    # Differences of means below this are noise whatever their share (a cached run's one
    # warm-up query in 100,000 requests is not a change).
    at_least: float = 0.0


def _service_cpu(run: RunRecord) -> float | None:
    return run.meta.costs.service_per_1000 if run.meta.costs else None


def _k6_cpu(run: RunRecord) -> float | None:
    return run.meta.costs.per_1000("k6") if run.meta.costs else None


def _queries_per_request(run: RunRecord) -> float | None:
    queries = run.meta.queries
    return queries.per_request(run.figures.requests) if queries else None


def _query_ms(run: RunRecord) -> float | None:
    return run.meta.queries.mean_ms if run.meta.queries else None


METRICS = (
    Metric("throughput", "req/s", lambda r: r.figures.requests_per_second,
           higher_is_better=True),
    Metric("latency avg", "ms", lambda r: r.figures.latency.avg, higher_is_better=False),
    Metric("latency p95", "ms", lambda r: r.figures.latency.p95, higher_is_better=False),
    Metric("latency p99", "ms", lambda r: r.figures.latency.p99, higher_is_better=False),
    Metric("error rate", "%", lambda r: 100 * r.figures.error_rate, higher_is_better=False),
    # What each request cost, whatever limited the runs: comparable even when k6 capped both.
    Metric("stack CPU per 1k requests", "ms", _service_cpu, higher_is_better=False),
    Metric("k6 CPU per 1k requests", "ms", _k6_cpu, higher_is_better=False),
    # What the cache saved, as PostgreSQL counted it (pg_stat_statements).
    Metric("page queries per request", "", _queries_per_request, higher_is_better=False,
           at_least=0.01),
    Metric("page query time in PostgreSQL", "ms", _query_ms, higher_is_better=False),
)


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a run, or every run of its --repeat group."""

    label: str
    runs: tuple[RunRecord, ...]

    @property
    def name(self) -> str:
        """The first run's folder name, for file names."""
        return self.runs[0].name


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


# What a note is about, for machines that read the comparison's JSON.
NOT_LIKE_FOR_LIKE, TOO_FEW_RUNS, HOW_TO_READ = "not_like_for_like", "too_few_runs", "how_to_read"


@dataclass(frozen=True)
class Note:
    """One note under a comparison: its kind, a short label (empty for none) and the text."""

    kind: str
    label: str
    text: str


@dataclass(frozen=True)
class Comparison:
    """The two sides and each metric's verdict."""

    baseline: Side
    candidate: Side
    rows: tuple[Row, ...]
    mismatches: tuple[str, ...]  # what differs in how the two sides were made

    @property
    def single_runs(self) -> bool:
        """True when a side has too few runs for the spread between repeats to be known."""
        return len(self.baseline.runs) < MIN_RUNS or len(self.candidate.runs) < MIN_RUNS

    @property
    def overall(self) -> str:
        """The comparison's verdict in one word, from its rows' (see overall_verdict)."""
        return overall_verdict(tuple(row.verdict for row in self.rows))

    @property
    def notes(self) -> tuple[Note, ...]:
        """How to read the comparison: what is not like for like, and whether the runs were
        enough to tell a difference from noise. Every format shows these words."""
        notes = [Note(NOT_LIKE_FOR_LIKE, "not like for like", mismatch)
                 for mismatch in self.mismatches]
        if self.single_runs:
            notes.append(Note(TOO_FEW_RUNS, f"fewer than {MIN_RUNS} runs a side",
                              "the spread between repeats is unknown, so no difference can be "
                              f"told from noise; bench with --repeat {MIN_RUNS} on both sides"))
        else:
            notes.append(Note(HOW_TO_READ, "", "a difference counts only when every repeat of "
                              "one side beats every repeat of the other and the means differ by "
                              f"{MIN_EFFECT:.0%} or more (ranges shown as min-max)"))
        return tuple(notes)


def overall_verdict(verdicts: tuple[str, ...]) -> str:
    """worse when any metric is worse (a regression anywhere fails a gate), better when some
    are better and none worse, cannot tell when the runs were too few (or nothing compared),
    else within noise."""
    if WORSE in verdicts:
        return WORSE
    if BETTER in verdicts:
        return BETTER
    if UNKNOWN in verdicts or not verdicts:
        return UNKNOWN
    return NOISE


def compare(baseline: Side, candidate: Side) -> Comparison:
    """Each metric: means, ranges and the verdict."""
    rows = []
    for metric in METRICS:
        a = [value for run in baseline.runs if (value := metric.value(run)) is not None]
        b = [value for run in candidate.runs if (value := metric.value(run)) is not None]
        if len(a) < len(baseline.runs) or len(b) < len(candidate.runs):
            continue  # not recorded by every run: no comparison on it
        rows.append(Row(metric.name, metric.unit, statistics.fmean(a), statistics.fmean(b),
                        (min(a), max(a)), (min(b), max(b)),
                        verdict(a, b, higher_is_better=metric.higher_is_better,
                                at_least=metric.at_least)))
    return Comparison(baseline, candidate, tuple(rows), mismatches(baseline, candidate))


# The load settings a comparison must hold equal (the stack may differ: that is the point).
COMPARED_SETTINGS: tuple[tuple[str, Callable[[RunMeta], object]], ...] = (
    ("scenario", lambda m: m.scenario), ("model", lambda m: m.model), ("vus", lambda m: m.vus),
    ("rate", lambda m: m.rate), ("duration_seconds", lambda m: m.duration_seconds),
    ("path", lambda m: m.path), ("rows", lambda m: m.rows),
)


def mismatches(baseline: Side, candidate: Side) -> tuple[str, ...]:
    """Load settings that differ between the sides: a comparison across them is not like
    for like."""
    a, b = baseline.runs[0].meta, candidate.runs[0].meta
    return tuple(f"{name}: {_setting(value(a))} against {_setting(value(b))}"
                 for name, value in COMPARED_SETTINGS if value(a) != value(b))


def _setting(value: object) -> str:
    """A setting as the run recorded it (whole numbers without a decimal point)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def verdict(baseline: list[float], candidate: list[float], *, higher_is_better: bool,
            at_least: float = 0.0) -> str:
    """better / worse only with enough repeats, ranges that do not overlap, and a difference
    of means of at least MIN_EFFECT (and of `at_least`); else within noise, or cannot tell."""
    if len(baseline) < MIN_RUNS or len(candidate) < MIN_RUNS:
        return UNKNOWN
    a, b = statistics.fmean(baseline), statistics.fmean(candidate)
    large = (abs(b - a) >= MIN_EFFECT * abs(a) if a else b != a) and abs(b - a) >= at_least
    if min(candidate) > max(baseline) and large:
        return BETTER if higher_is_better else WORSE
    if max(candidate) < min(baseline) and large:
        return WORSE if higher_is_better else BETTER
    return NOISE
