"""alumnos seed."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from alumnos_cli.commands.common import (
    DatabaseUrl,
    RedisUrl,
    StateDir,
    console,
    err_console,
    handle_errors,
    resolve_settings,
)
from alumnos_cli.seeding import DEFAULT_BATCH_ROWS, seed_alumnos


class RowsPerSecondColumn(TextColumn):
    """Rows per second, from the task's speed."""

    def __init__(self) -> None:
        super().__init__("")

    def render(self, task):  # type: ignore[no-untyped-def,override]
        speed = task.finished_speed or task.speed
        return super().render(task) if speed is None else f"{speed:,.0f} rows/s"


@handle_errors
def seed(
    count: Annotated[int, typer.Option("--count", "-n", help="Rows the table must hold.")]
    = 2_000_000,
    seed_value: Annotated[int, typer.Option("--seed", help="Same seed, same data.")] = 0,
    reset: Annotated[bool, typer.Option("--reset", help="Drop the table and load anew.")]
    = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Rows per COPY transaction.")]
    = DEFAULT_BATCH_ROWS,
    database_url: DatabaseUrl = None,
    redis_url: RedisUrl = None,
    state_dir: StateDir = None,
) -> None:
    """Fill PostgreSQL with fake alumnos (Faker es_AR) using COPY; resumable.

    Example: alumnos seed --count 2000000 --seed 42
    """
    settings = resolve_settings(database_url=database_url, redis_url=redis_url,
                                state_dir=state_dir)
    with Progress(TextColumn("[bold]seeding"), BarColumn(), MofNCompleteColumn(),
                  TaskProgressColumn(), RowsPerSecondColumn(), TimeElapsedColumn(),
                  TextColumn("eta"), TimeRemainingColumn(), console=err_console) as bar:
        task = bar.add_task("seed", total=count)
        first = [True]

        def progress(loaded: int, wanted: int) -> None:
            if first[0]:  # rows already there on resume must not count towards rows/s
                bar.reset(task, total=wanted, completed=loaded)
                first[0] = False
            bar.update(task, completed=loaded, total=wanted)

        try:
            result = seed_alumnos(settings, count=count, seed=seed_value, reset=reset,
                                  batch_rows=batch_size, progress=progress)
        except KeyboardInterrupt:
            bar.stop()
            err_console.print("[yellow]interrupted:[/] committed batches are kept; "
                              "run the same command again to resume")
            raise typer.Exit(130) from None
    if result.rows_loaded == 0:
        console.print(f"alumnos already holds {result.rows_after:,} rows for seed {seed_value}; "
                      "nothing to do")
    else:
        console.print(f"seeded {result.rows_loaded:,} rows ({result.rows_after:,} in all) in "
                      f"{result.seconds:.1f} s, {result.rows_per_second:,.0f} rows/s")
    if not result.cache_invalidated:
        err_console.print("[yellow]warning:[/] Redis did not answer, so cached pages were not "
                          "invalidated; they expire within 66 s")
