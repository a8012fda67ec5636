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
    path: Annotated[str | None, typer.Option(
        "--path", help="Path for the endpoint scenario, e.g. '/api/v1/alumno/alumno?offset=0'.")]
    = None,
    calibrate: Annotated[bool, typer.Option(
        "--calibrate", help="Also run the same load on /api/v1/ping: the machine's ceiling.")]
    = False,
    results_dir: ResultsDir = None,
    state_dir: StateDir = None,
) -> None:
    """Run a k6 scenario against the service and store the run.

    Example: alumnos bench --vus 200 --duration 2m --scenario spike --calibrate
    """
    settings = resolve_settings(results_dir=results_dir, state_dir=state_dir)
    request = BenchRequest(scenario=scenario, vus=vus, duration_seconds=parse_duration(duration),
                           url=url, path=path, calibrate=calibrate)
    with Progress(TextColumn(f"[bold]{scenario}"), BarColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[live]}"), console=err_console) as bar:
        total = request.duration_seconds * (2 if calibrate else 1)
        task = bar.add_task("k6", total=total, live="starting k6 ...")
        last: list[LiveSample] = []
        base = [0]

        def on_sample(sample: LiveSample) -> None:
            rate = 0.0
            if last and sample.elapsed > last[-1].elapsed:
                rate = (sample.requests - last[-1].requests) / (sample.elapsed - last[-1].elapsed)
            done = request.duration_seconds if last and sample.elapsed < last[-1].elapsed else 0
            if done:  # the calibration run started: its clock restarts at zero
                rate = 0.0
            base[0] += done
            last[:] = [sample]
            bar.update(task, completed=min(base[0] + sample.elapsed, total),
                       live=f"{sample.vus} VUs  {rate:,.0f} req/s  {sample.requests:,} requests"
                       f"  {sample.failed_rate:.2%} errors")

        result = run_bench(settings, request, on_sample)
        bar.update(task, completed=total)
    console.print(f"run stored in [bold]{result.run_dir}[/]; show it with: alumnos report "
                  f"{result.run_dir.name}")
    if not result.thresholds_ok:
        err_console.print("[bold red]thresholds failed[/] (see alumnos report)")
        raise typer.Exit(2)
