"""Rich tables for a run."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table

from alumnos_cli.render.numbers import number, percent
from alumnos_cli.results import (
    GeneratorVerdict,
    LittlesLaw,
    RunFigures,
    generator_verdict,
    littles_law,
)
from alumnos_cli.runs import StoredRun
from alumnos_cli.serverside import read_server
from alumnos_cli.timeseries import TimeSeries, read_timeseries, sparkline


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
    if meta.get("model") == "open":
        table.add_row("load", f"open model: {meta.get('rate'):g} requests/s for "
                              f"{meta.get('duration_seconds')} s, up to {meta.get('vus')} VUs")
    else:
        table.add_row("load", f"{meta.get('vus')} VUs for {meta.get('duration_seconds')} s "
                              "(closed model)")
    table.add_row("target", str(meta.get("url")))
    table.add_row("rows in table", "unknown" if rows is None else f"{rows:,}")
    if stack:
        table.add_row("stack", describe_stack(stack))
    table.add_row("machine", f"{machine.get('cpu_count')} CPUs, {machine.get('cpu_model')}")
    table.add_row("versions", ", ".join(f"{k} {v}" for k, v in versions.items()))
    table.add_row("started", str(meta.get("started_at")))
    table.add_row("command", str(meta.get("command")))
    return table


STACK_TEXT = {
    "en": {"on": "on", "off": "off", "cache": "cache", "workers": "Granian workers",
           "replicas": "replica(s)", "none": "no balancer", "patterns": "patterns",
           "no_patterns": "none"},
    "es": {"on": "activada", "off": "desactivada", "cache": "caché", "workers":
           "workers de Granian", "replicas": "réplica(s)", "none": "sin balanceador",
           "patterns": "patrones", "no_patterns": "ninguno"},
}


def describe_stack(stack: dict[str, Any], lang: str = "en") -> str:
    """The stack in a line: mode, balancer, replicas, workers, cache, patterns."""
    t = STACK_TEXT[lang]
    cache = f"{t['cache']} {t['on'] if stack.get('cache') else t['off']}"
    if "replicas" not in stack:  # recorded before replicas existed: one Granian, no balancer
        return f"{stack.get('mode')}, {stack.get('workers')} {t['workers']}, {cache}"
    front = "HAProxy" if stack.get("balancer") else t["none"]
    text = (f"{stack.get('mode')}, {front}, {stack['replicas']} {t['replicas']} x "
            f"{stack.get('workers')} {t['workers']}, {cache}")
    patterns = stack.get("patterns")
    if patterns:
        enabled = [name for name, key in (("retry", "retry"), ("rate limit", "rate_limit"),
                                          ("circuit breaker", "circuit_breaker"))
                   if patterns.get(key)]
        text += f"; {t['patterns']}: {', '.join(enabled) or t['no_patterns']}"
    return text


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
        ("latency max", f"{lat.max:,.1f} ms"),
        ("peak VUs", f"{figures.max_vus:,}"),
        *([("dropped iterations (open model)", f"{figures.dropped_iterations:,}")]
          if figures.dropped_iterations else []),
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


def checks_table(little: LittlesLaw | None, generator: GeneratorVerdict | None) -> Table | None:
    """Whether the figures hold together: Little's law, and the load generator's CPU."""
    if little is None and generator is None:
        return None
    table = Table(title="Consistency", title_justify="left", show_header=False)
    table.add_column("check", style="bold")
    table.add_column("finding", overflow="fold")
    if little is not None:
        table.add_row("Little's law", littles_law_text(little))
    if generator is not None:
        color = "yellow" if generator.limited else "green"
        table.add_row("load generator", f"[{color}]{generator.text}[/]")
    return table


def littles_law_text(little: LittlesLaw) -> str:
    """The check in words, with the gap explained rather than hidden."""
    text = (f"average VUs {little.configured:,.1f}; iterations/s x iteration time = "
            f"{little.in_iterations:,.1f}; requests/s x average latency = "
            f"{little.in_requests:,.1f}. ")
    if not little.consistent:
        text += ("The iterations do not account for the VUs: VUs were idle part of the run "
                 "(ramps, an early stop, a saturated generator), so the throughput "
                 "understates what this load would give. ")
    if little.outside_requests > 0.1:
        text += (f"{little.outside_requests:.0%} of the VUs' time went outside the requests "
                 "(k6 checks and parsing, think time, ramps): the average latency is not "
                 "VUs / throughput.")
    else:
        text += "The VUs spent their time waiting for responses, as they should."
    return text


def over_time_table(series: TimeSeries) -> Table:
    """Sparklines of the per-second figures, with their range."""
    table = Table(title=f"Over time (one point per second, {len(series)} s)",
                  title_justify="left", show_header=True)
    table.add_column("figure", style="bold")
    table.add_column("min", justify="right")
    table.add_column("max", justify="right")
    table.add_column("over the run", no_wrap=True)
    rows: list[tuple[str, list[float | None], str]] = [
        ("req/s", list(series.requests_per_s), ",.0f"),
        ("p95 ms", list(series.p95_ms), ",.1f"),
        ("errors %", [100 * e for e in series.errors], ".2f"),
        ("VUs", list(series.vus), ",.0f"),
    ]
    for name, points, spec in rows:
        present = [p for p in points if p is not None]
        if not present:
            continue
        table.add_row(name, format(min(present), spec), format(max(present), spec),
                      f"[cyan]{sparkline(points)}[/]")
    return table


SERVER_TEXT = {
    "en": {"replicas": "requests per replica", "cache": "cache hit ratio (at the balancer)",
           "cpu": "service CPU (replicas)", "cpu_value": "{avg} cores average, {max} at most",
           "rss": "service memory (replicas)", "rss_value": "{mib} MiB RSS at most, all "
           "processes", "pg": "PostgreSQL connections", "pg_value": "{n} at most"},
    "es": {"replicas": "peticiones por réplica", "cache": "aciertos de caché (en el balanceador)",
           "cpu": "CPU del servicio (réplicas)", "cpu_value": "{avg} núcleos de promedio, {max} "
           "como máximo", "rss": "memoria del servicio (réplicas)", "rss_value": "{mib} MiB "
           "RSS como máximo, todos los procesos", "pg": "conexiones a PostgreSQL",
           "pg_value": "{n} como máximo"},
}


def server_rows(server: dict[str, Any], lang: str = "en") -> list[tuple[str, str]]:
    """The server-side summary as (figure, value) rows, for every format."""
    t = SERVER_TEXT[lang]
    summary = server.get("summary") or {}
    rows = []
    by_replica = summary.get("requests_by_replica") or {}
    if by_replica:
        total = sum(by_replica.values()) or 1
        rows.append((t["replicas"], ", ".join(
            f"{name} {number(count, 0, lang)} ({percent(count / total, lang, 0)})"
            for name, count in by_replica.items())))
    ratio = summary.get("cache_hit_ratio")
    if ratio is not None:
        rows.append((t["cache"], percent(ratio, lang, 1)))
    rows.append((t["cpu"], t["cpu_value"].format(
        avg=number(summary.get("service_cores_avg", 0), 2, lang),
        max=number(summary.get("service_cores_max", 0), 2, lang))))
    rows.append((t["rss"], t["rss_value"].format(
        mib=number(summary.get("service_rss_mib_max", 0), 0, lang))))
    if summary.get("pg_connections_max") is not None:
        rows.append((t["pg"], t["pg_value"].format(n=summary["pg_connections_max"])))
    return rows


def server_table(server: dict[str, Any]) -> Table:
    """What the stack did during the run."""
    table = Table(title="Server side", title_justify="left", show_header=False)
    table.add_column("figure", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in server_rows(server):
        table.add_row(name, value)
    return table


def patterns_table(proof: dict[str, Any]) -> Table:
    """The verdicts of the last `alumnos patterns`."""
    table = Table(title=f"Patterns (alumnos patterns, {proof.get('started_at')})",
                  title_justify="left")
    for column in ("pattern", "observed", "verdict"):
        table.add_column(column, overflow="fold")
    for result in proof.get("results", []):
        color = {"pass": "green", "fail": "red"}.get(result.get("verdict"), "yellow")
        table.add_row(str(result.get("pattern")), str(result.get("observed")),
                      f"[{color}]{result.get('verdict')}[/]")
    return table


def run_report(run: StoredRun, figures: RunFigures, ceiling: RunFigures | None = None,
               proof: dict[str, Any] | None = None) -> Group:
    """The whole terminal report of one run (and the last patterns proof, if any)."""
    parts: list[Table] = [configuration_table(run.meta), results_table(figures, ceiling)]
    series = read_timeseries(run.path)
    if series:
        parts.append(over_time_table(series))
    server = read_server(run.path)
    if server:
        parts.append(server_table(server))
    if figures.thresholds:
        parts.append(thresholds_table(figures))
    checks = checks_table(littles_law(figures, run.meta), generator_verdict(run.meta))
    if checks is not None:
        parts.append(checks)
    if proof:
        parts.append(patterns_table(proof))
    return Group(f"[bold]Run {run.path.name}[/]", *parts)
