"""Rich tables for a run, a comparison and the list of runs."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from alumnos_cli.report.attribution import Costs, Verification
from alumnos_cli.report.balancer import BalancerActivity
from alumnos_cli.report.compare import BETTER, WORSE, Comparison
from alumnos_cli.report.model import (
    GeneratorUsage,
    GeneratorVerdict,
    ListedRun,
    LittlesLaw,
    Proof,
    RunFigures,
    RunMeta,
    RunReport,
    TimeSeries,
)
from alumnos_cli.report.render.attribution import (
    cost_notes,
    cost_rows,
    cross_check_text,
    placement_text,
    verification_rows,
)
from alumnos_cli.report.render.balancer import balancer_rows
from alumnos_cli.report.render.breakdown import (
    BreakdownTable,
    breakdown_notes,
    breakdown_tables,
)
from alumnos_cli.report.render.generators import generators_notes, generators_table
from alumnos_cli.report.render.numbers import relative, with_range
from alumnos_cli.report.render.text import (
    describe_load,
    describe_stack,
    littles_law_text,
    server_side_rows,
)


def _bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} GiB"


def configuration_table(meta: RunMeta) -> Table:
    """How the run was made: load, target, machine and versions."""
    table = Table(title="Configuration", show_header=False, title_justify="left")
    table.add_column("setting", style="bold")
    table.add_column("value")
    table.add_row("scenario", f"{meta.scenario} ({meta.script})")
    table.add_row("load", describe_load(meta))
    table.add_row("target", meta.url)
    table.add_row("rows in table", "unknown" if meta.rows is None else f"{meta.rows:,}")
    if meta.stack:
        table.add_row("stack", describe_stack(meta.stack))
    table.add_row("machine", f"{meta.machine.cpu_count} CPUs, {meta.machine.cpu_model}")
    if meta.placement:
        table.add_row("CPUs", placement_text(meta.placement))
    table.add_row("versions", ", ".join(f"{k} {v}" for k, v in meta.versions.items()))
    table.add_row("started", meta.started_at)
    table.add_row("command", meta.command)
    return table


def results_table(figures: RunFigures, ceiling: RunFigures | None = None) -> Table:
    """The reference report's figures, plus percentiles and the share of the ceiling."""
    table = Table(title="Results", title_justify="left")
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    lat = figures.latency
    share = "n/a" if figures.share_200 is None else f"{figures.share_200:.2%}"
    for name, value in (
        ("total requests", f"{figures.requests:,}"),
        ("200 responses", share),
        ("error rate", f"{figures.error_rate:.2%}"),
        *([("checks passed (status, rows)", f"{figures.checks_rate:.2%}")]
          if figures.checks_rate is not None else []),
        ("throughput", f"{figures.requests_per_second:,.1f} req/s"),
        ("latency avg", f"{lat.avg:,.1f} ms"),
        ("latency p50", f"{lat.p50:,.1f} ms"),
        ("latency p90", f"{lat.p90:,.1f} ms"),
        ("latency p95", f"{lat.p95:,.1f} ms"),
        ("latency p99", f"{lat.p99:,.1f} ms"),
        ("latency p99.9", "-" if lat.p999 is None else f"{lat.p999:,.1f} ms"),
        ("latency max", f"{lat.max:,.1f} ms"),
        ("peak VUs", f"{figures.max_vus:,}"),
        *([("dropped iterations (open model)", f"{figures.dropped_iterations:,}")]
          if figures.dropped_iterations else []),
        ("test duration", f"{figures.duration_seconds:,.1f} s"),
        ("data received", _bytes(figures.data_received_bytes)),
    ):
        table.add_row(name, value)
    if ceiling is not None and ceiling.requests_per_second > 0:
        share = f"{figures.requests_per_second / ceiling.requests_per_second:.2f}"
        table.add_row("ceiling (ping, same load)", f"{ceiling.requests_per_second:,.1f} req/s")
        table.add_row("share of the ceiling", share)
    return table


def thresholds_table(figures: RunFigures) -> Table:
    """Each k6 threshold and whether it held."""
    table = Table(title="Thresholds", title_justify="left")
    table.add_column("metric")
    table.add_column("threshold")
    table.add_column("verdict")
    for threshold in figures.thresholds:
        verdict = "[green]pass[/]" if threshold.ok else "[red]FAIL[/]"
        table.add_row(threshold.metric, threshold.expression, verdict)
    return table


def verification_table(verification: Verification, requests: int) -> Table:
    """How the answers were checked, and what the sampling could miss."""
    table = Table(title="Answers verified", title_justify="left", show_header=False)
    table.add_column("check", style="bold")
    table.add_column("finding", overflow="fold")
    for label, value in verification_rows(verification, requests):
        table.add_row(label, escape(value))
    table.add_row("verdict", "[green]right answers throughout[/]" if verification.passed
                  else "[red]WRONG ANSWERS[/]")
    return table


def costs_table(costs: Costs) -> Table:
    """What each part spent, per 1,000 requests."""
    notes = cost_notes(costs)
    table = Table(title="CPU per 1,000 requests", title_justify="left",
                  caption="; ".join(notes) or None, caption_justify="left")
    table.add_column("part", style="bold")
    table.add_column("CPU s", justify="right")
    table.add_column("CPU ms per 1,000 requests", justify="right")
    for row in cost_rows(costs):
        table.add_row(*row)
    return table


def checks_table(little: LittlesLaw | None, generator: GeneratorVerdict | None,
                 cross: str | None = None) -> Table | None:
    """Whether the figures hold together: Little's law, the load generator's CPU, and an
    independent generator's figure."""
    if little is None and generator is None and cross is None:
        return None
    table = Table(title="Consistency", title_justify="left", show_header=False)
    table.add_column("check", style="bold")
    table.add_column("finding", overflow="fold")
    if little is not None:
        table.add_row("Little's law", littles_law_text(little))
    if generator is not None:
        color = "yellow" if generator.limited else "green"
        table.add_row("load generator", f"[{color}]{generator.text}[/]")
    if cross is not None:
        table.add_row("cross-check", cross)
    return table


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(points: Sequence[float | None], width: int = 60) -> str:
    """A row of block characters, one per bucket of points (gaps as spaces)."""
    present = [p for p in points if p is not None]
    if not present:
        return ""
    buckets = _buckets(points, width)
    low, high = min(present), max(present)
    span = (high - low) or 1.0
    return "".join(" " if b is None else SPARKS[min(len(SPARKS) - 1,
                                                     int((b - low) / span * len(SPARKS)))]
                   for b in buckets)


def _buckets(points: Sequence[float | None], width: int) -> list[float | None]:
    if len(points) <= width:
        return list(points)
    size = len(points) / width
    out: list[float | None] = []
    for i in range(width):
        chunk = [p for p in points[int(i * size):int((i + 1) * size)] if p is not None]
        out.append(sum(chunk) / len(chunk) if chunk else None)
    return out


def over_time_table(series: TimeSeries) -> Table:
    """Sparklines of the per-second figures, with their range."""
    table = Table(title=f"Over time (one point per second, {len(series)} s)",
                  title_justify="left", show_header=True)
    table.add_column("figure", style="bold")
    table.add_column("min", justify="right")
    table.add_column("max", justify="right")
    table.add_column("over the run", no_wrap=True)
    rows: list[tuple[str, Sequence[float | None], str]] = [
        ("req/s", series.requests_per_s, ",.0f"),
        ("p95 ms", series.p95_ms, ",.1f"),
        ("errors %", [100 * e for e in series.errors], ".2f"),
        ("VUs", series.vus, ",.0f"),
    ]
    for name, points, spec in rows:
        present = [p for p in points if p is not None]
        if not present:
            continue
        table.add_row(name, format(min(present), spec), format(max(present), spec),
                      f"[cyan]{sparkline(points)}[/]")
    return table


def _figures_table(title: str, rows: list[tuple[str, str]]) -> Table:
    """(figure, value) rows under a title, without a header."""
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("figure", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in rows:
        table.add_row(name, value)
    return table


def server_table(report: RunReport) -> Table:
    """What the stack did during the run, and what could not be read of it."""
    return _figures_table("Server side", server_side_rows(report))


def balancer_table(activity: BalancerActivity) -> Table:
    """What the balancer answered itself, and whom the breaker took out, when."""
    return _figures_table("Balancer", balancer_rows(activity))


def patterns_table(proof: Proof) -> Table:
    """The verdicts of the `alumnos patterns` proof made on the run's stack."""
    table = Table(title=f"Patterns (alumnos patterns, {proof.started_at})",
                  title_justify="left")
    for column in ("pattern", "observed", "verdict"):
        table.add_column(column, overflow="fold")
    for result in proof.results:
        color = {"pass": "green", "fail": "red"}.get(result.verdict, "yellow")
        table.add_row(result.pattern, result.observed, f"[{color}]{result.verdict}[/]")
    return table


def breakdown_parts(report: RunReport) -> list[RenderableType]:
    """Per endpoint, per status, errors by type; or the line that says why there are none."""
    parts: list[RenderableType] = [
        text_table(part) for part in (breakdown_tables(report.breakdown)
                                      if report.breakdown else [])]
    return parts + [f"[dim]{escape(note)}[/]" for note in breakdown_notes(report)]


def generators_parts(usage: GeneratorUsage) -> list[RenderableType]:
    """A split run's generators, one row each, and how to read them."""
    return [text_table(generators_table(usage)),
            *(f"[dim]{escape(note)}[/]" for note in generators_notes(usage))]


def text_table(part: BreakdownTable) -> Table:
    """A table of text rows: figures right-aligned, text left."""
    table = Table(title=part.title, title_justify="left")
    for index, column in enumerate(part.columns):
        table.add_column(column, justify="left" if index in part.text_columns else "right",
                         overflow="fold")
    for row in part.rows:
        table.add_row(*(escape(cell) for cell in row))
    return table


def run_terminal(report: RunReport) -> Group:
    """The whole terminal report of one run."""
    meta = report.meta
    parts: list[RenderableType] = [configuration_table(meta),
                                   results_table(report.figures, report.ceiling)]
    parts += breakdown_parts(report)
    if meta.generator and meta.generator.hosts:
        parts += generators_parts(meta.generator)
    if meta.verification:
        parts.append(verification_table(meta.verification, report.figures.requests))
    if meta.costs:
        parts.append(costs_table(meta.costs))
    if report.timeseries:
        parts.append(over_time_table(report.timeseries))
    if server_side_rows(report):
        parts.append(server_table(report))
    if meta.balancer:
        parts.append(balancer_table(meta.balancer))
    if report.figures.thresholds:
        parts.append(thresholds_table(report.figures))
    cross = (cross_check_text(meta.cross_check, report.figures) if meta.cross_check
             else None)
    checks = checks_table(report.little, report.generator, cross)
    if checks is not None:
        parts.append(checks)
    if report.proof:
        parts.append(patterns_table(report.proof))
    return Group(f"[bold]Run {report.name}[/]", *parts)


def comparison_terminal(result: Comparison) -> Group:
    """The comparison table, its verdict, what differs in how the sides were made, and how to
    read it."""
    table = Table(title=f"{result.candidate.label} against {result.baseline.label}")
    for column in ("metric", "baseline", "candidate", "difference", "verdict"):
        table.add_column(column, justify="left" if column in {"metric", "verdict"} else "right")
    for row in result.rows:
        table.add_row(f"{row.metric} ({row.unit})", with_range(row.baseline, row.baseline_range),
                      with_range(row.candidate, row.candidate_range),
                      relative(row.relative), _colored(row.verdict))
    notes: list[RenderableType] = [f"[bold]verdict:[/] {_colored(result.overall)}"]
    notes += [f"[yellow]{escape(note.label)}:[/] {escape(note.text)}" if note.label
              else escape(note.text) for note in result.notes]
    return Group(table, *notes)


def _colored(verdict: str) -> str:
    color = {BETTER: "green", WORSE: "red"}.get(verdict, "yellow")
    return f"[{color}]{verdict}[/]"


def runs_terminal(results_dir: str,
                  runs: Sequence[ListedRun]) -> tuple[RenderableType, list[Text]]:
    """The stored runs and their key figures; unreadable ones are marked, then named.

    A run's name is what the user copies into the next command, and a cut figure is a wrong
    one: neither is ever cut nor wrapped, and no word of the other columns is split. Where the
    terminal is too narrow even for that, the table runs past it (print it with crop=False).
    """
    rows = [_listed_run_row(run) for run in runs]
    table = Table(title=f"runs in {results_dir}", title_justify="left", box=box.SIMPLE_HEAD,
                  show_edge=False, padding=(0, 1, 0, 0))
    for index, column in enumerate(RUNS_COLUMNS):
        whole = index == 0 or column in RUNS_NUMERIC
        cells = [Text(column), *(row[index] for row in rows)]
        table.add_column(column, justify="right" if column in RUNS_NUMERIC else "left",
                         no_wrap=whole, min_width=max(
                             cell.cell_len if whole else _longest_word(cell) for cell in cells))
    for row in rows:
        table.add_row(*row)
    problems = [Text.from_markup("[red]unreadable[/] ") + Text(f"{run.name}: {run.problem}")
                for run in runs if run.record is None]
    return _NeverNarrower(table), problems


RUNS_COLUMNS = ("run", "load", "requests", "req/s", "p95 ms", "errors", "status")
RUNS_NUMERIC = frozenset({"requests", "req/s", "p95 ms", "errors"})


class _NeverNarrower:
    """A table drawn no narrower than its columns' minimum widths: short of room, rich would
    squeeze every column alike, down to nothing, names and figures included."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        narrowest = Measurement.get(console, options.update_width(1_000_000), self.table).minimum
        yield from console.render(self.table, options.update_width(max(options.max_width,
                                                                        narrowest)))


def _longest_word(text: Text) -> int:
    return max((cell_len(word) for word in text.plain.split()), default=0)


def _listed_run_row(run: ListedRun) -> list[Text]:
    # Text, not markup: a folder's name is the user's, brackets and all.
    if run.record is None:
        return [Text(run.name), *(Text() for _ in range(5)), Text("unreadable", "red")]
    f, meta = run.record.figures, run.record.meta
    status = Text("pass", "green") if f.thresholds_ok else Text("thresholds failed", "red")
    return [Text(run.name), Text(f"{meta.scenario}, {describe_load(meta, 'list')}"),
            Text(f"{f.requests:,}"), Text(f"{f.requests_per_second:,.1f}"),
            Text(f"{f.latency.p95:,.1f}"), Text(f"{f.error_rate:.2%}"), status]
