"""alumnos bench."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from alumnos_cli.bench import SCENARIOS, BenchRequest, parse_duration, run_bench
from alumnos_cli.commands.common import (
    ResultsDir,
    StateDir,
    console,
    err_console,
    handle_errors,
    resolve_settings,
)
from alumnos_cli.k6 import LiveSample


@handle_errors
def bench(
    vus: Annotated[int, typer.Option("--vus", help="Peak virtual users.")] = 200,
    duration: Annotated[str, typer.Option("--duration", help="Test length: 30s, 2m, 1m30s.")]
    = "2m",
    scenario: Annotated[str, typer.Option(
        "--scenario", help=f"One of: {', '.join(SCENARIOS)}.")] = "spike",
    url: Annotated[str | None, typer.Option(
        "--url", help="Base URL to load [default: the stack started by alumnos up].")] = None,
    results_dir: ResultsDir = None,
    state_dir: StateDir = None,
) -> None:
    """Run a k6 scenario against the service and store the run.

    Example: alumnos bench --vus 200 --duration 2m --scenario spike
    """
    settings = resolve_settings(results_dir=results_dir, state_dir=state_dir)
    request = BenchRequest(scenario=scenario, vus=vus, duration_seconds=parse_duration(duration),
                           url=url)
    with Progress(TextColumn(f"[bold]{scenario}"), BarColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[live]}"), console=err_console) as bar:
        task = bar.add_task("k6", total=request.duration_seconds, live="starting k6 ...")
        last: list[LiveSample] = []

        def on_sample(sample: LiveSample) -> None:
            rate = 0.0
            if last and sample.elapsed > last[-1].elapsed:
                rate = (sample.requests - last[-1].requests) / (sample.elapsed - last[-1].elapsed)
            last[:] = [sample]
            bar.update(task, completed=min(sample.elapsed, request.duration_seconds),
                       live=f"{sample.vus} VUs  {rate:,.0f} req/s  {sample.requests:,} requests"
                       f"  {sample.failed_rate:.2%} errors")

        result = run_bench(settings, request, on_sample)
        bar.update(task, completed=request.duration_seconds)
    console.print(f"run stored in [bold]{result.run_dir}[/]; show it with: alumnos report "
                  f"{result.run_dir.name}")
    if not result.thresholds_ok:
        err_console.print("[bold red]thresholds failed[/] (see alumnos report)")
        raise typer.Exit(2)
