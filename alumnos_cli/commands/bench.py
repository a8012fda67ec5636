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
        live = LiveProgress(bar, run_seconds=request.duration_seconds,
                            runs=2 if calibrate else 1)
        result = run_bench(settings, request, live.on_sample)
        live.finish()
    console.print(f"run stored in [bold]{result.run_dir}[/]; show it with: alumnos report "
                  f"{result.run_dir.name}")
    if not result.thresholds_ok:
        err_console.print("[bold red]thresholds failed[/] (see alumnos report)")
        raise typer.Exit(2)


class LiveProgress:
    """Feeds k6's live samples to a progress bar: elapsed time, VUs, current req/s, errors."""

    def __init__(self, bar: Progress, *, run_seconds: int, runs: int) -> None:
        self.bar = bar
        self.run_seconds = run_seconds
        self.total = run_seconds * runs
        self.task = bar.add_task("k6", total=self.total, live="starting k6 ...")
        self.previous: LiveSample | None = None
        self.finished_runs = 0

    def on_sample(self, sample: LiveSample) -> None:
        """Show one sample; a clock that went back means the next k6 run (calibration) began."""
        rate = 0.0
        if self.previous is not None and sample.elapsed < self.previous.elapsed:
            self.finished_runs += 1
        elif self.previous is not None and sample.elapsed > self.previous.elapsed:
            rate = ((sample.requests - self.previous.requests)
                    / (sample.elapsed - self.previous.elapsed))
        self.previous = sample
        done = self.finished_runs * self.run_seconds + sample.elapsed
        self.bar.update(self.task, completed=min(done, self.total),
                        live=f"{sample.vus} VUs  {rate:,.0f} req/s  {sample.requests:,} requests"
                        f"  {sample.failed_rate:.2%} errors")

    def finish(self) -> None:
        """Fill the bar once k6 is done."""
        self.bar.update(self.task, completed=self.total)
