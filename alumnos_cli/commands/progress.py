"""The progress bars of the long commands, seed and bench.

A module of its own, imported when one of them runs: rich.progress brings rich.table and the
rest of rich's layout, which `alumnos --version` and every Tab completion would pay for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

if TYPE_CHECKING:
    from alumnos_cli.bench.k6 import LiveSample


class RowsPerSecondColumn(TextColumn):
    """Rows per second, from the task's speed."""

    def __init__(self) -> None:
        super().__init__("")

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return super().render(task) if speed is None else Text(f"{speed:,.0f} rows/s")


def seeding_bar(console: Console) -> Progress:
    """Rows loaded of rows wanted, rows/s and the time left."""
    return Progress(TextColumn("[bold]seeding"), BarColumn(), MofNCompleteColumn(),
                    TaskProgressColumn(), RowsPerSecondColumn(), TimeElapsedColumn(),
                    TextColumn("eta"), TimeRemainingColumn(), console=console)


def k6_bar(console: Console) -> Progress:
    """The time of the k6 run, and what LiveProgress says of its last sample."""
    return Progress(TextColumn("[bold]{task.fields[title]}"), BarColumn(), TimeElapsedColumn(),
                    TextColumn("{task.fields[live]}"), console=console,
                    refresh_per_second=2)  # a redraw costs CPU the stack then lacks


class LiveProgress:
    """Feeds k6's live samples to a progress bar: elapsed time, VUs, current req/s, errors."""

    def __init__(self, bar: Progress, *, run_seconds: int, runs: int, title: str) -> None:
        self.bar = bar
        self.run_seconds = run_seconds
        self.runs = runs
        self.total = run_seconds * runs
        self.task = bar.add_task("k6", total=self.total, live="starting k6 ...", title=title)
        self.previous: LiveSample | None = None
        self.finished_runs = 0

    def next_run(self, title: str) -> None:
        """A new run of a --repeat series: the bar starts again."""
        self.previous = None
        self.finished_runs = 0
        self.bar.reset(self.task, total=self.total, live="starting k6 ...", title=title)

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
        hosts = "  ".join(f"{name}: {count:,}" for name, count in sample.by_host)
        self.bar.update(self.task, completed=min(done, self.total),
                        live=f"{sample.vus} VUs  {rate:,.0f} req/s  {sample.requests:,} requests"
                        f"  {sample.failed_rate:.2%} errors" + (f"  ({hosts})" if hosts else ""))

    def finish(self) -> None:
        """Fill the bar once k6 is done."""
        self.bar.update(self.task, completed=self.total)
