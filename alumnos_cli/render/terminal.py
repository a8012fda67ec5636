"""Rich tables for a run."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table

from alumnos_cli.results import RunFigures
from alumnos_cli.runs import StoredRun


def _bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} GiB"


def configuration_table(meta: dict[str, Any]) -> Table:
    """How the run was made: load, target, machine and versions."""
    table = Table(title="Configuration", show_header=False, title_justify="left")
    table.add_column("setting", style="bold")
    table.add_column("value")
    stack = meta.get("stack") or {}
    versions = meta.get("versions") or {}
    machine = meta.get("machine") or {}
    rows = meta.get("rows")
    table.add_row("scenario", f"{meta.get('scenario')} ({meta.get('script')})")
    table.add_row("load", f"{meta.get('vus')} VUs for {meta.get('duration_seconds')} s")
    table.add_row("target", str(meta.get("url")))
    table.add_row("rows in table", "unknown" if rows is None else f"{rows:,}")
    if stack:
        table.add_row("stack", f"{stack.get('mode')}, {stack.get('workers')} Granian workers, "
                               f"cache {'on' if stack.get('cache') else 'off'}")
    table.add_row("machine", f"{machine.get('cpu_count')} CPUs, {machine.get('cpu_model')}")
    table.add_row("versions", ", ".join(f"{k} {v}" for k, v in versions.items()))
    table.add_row("started", str(meta.get("started_at")))
    table.add_row("command", str(meta.get("command")))
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
        ("throughput", f"{figures.requests_per_second:,.1f} req/s"),
        ("latency avg", f"{lat.avg:,.1f} ms"),
        ("latency p50", f"{lat.p50:,.1f} ms"),
        ("latency p90", f"{lat.p90:,.1f} ms"),
        ("latency p95", f"{lat.p95:,.1f} ms"),
        ("latency p99", f"{lat.p99:,.1f} ms"),
        ("latency max", f"{lat.max:,.1f} ms"),
        ("peak VUs", f"{figures.max_vus:,}"),
        ("test duration", f"{figures.duration_seconds:,.1f} s"),
        ("data received", _bytes(figures.data_received_bytes)),
    ):
        table.add_row(name, value)
    if ceiling is not None and ceiling.requests_per_second > 0:
        share = figures.requests_per_second / ceiling.requests_per_second
        table.add_row("ceiling (ping, same load)", f"{ceiling.requests_per_second:,.1f} req/s")
        table.add_row("share of the ceiling", f"{share:.2f}")
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


def run_report(run: StoredRun, figures: RunFigures, ceiling: RunFigures | None = None) -> Group:
    """The whole terminal report of one run."""
    parts: list[Table] = [configuration_table(run.meta), results_table(figures, ceiling)]
    if figures.thresholds:
        parts.append(thresholds_table(figures))
    return Group(f"[bold]Run {run.path.name}[/]", *parts)
