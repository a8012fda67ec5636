"""alumnos seed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from alumnos_cli.commands.common import (
    DatabaseUrl,
    RedisUrl,
    StateDir,
    console,
    err_console,
    given_flags,
    handle_errors,
    requires,
    resolve_settings,
)
from alumnos_cli.errors import ExitCode, InvalidOption
from alumnos_cli.seed.request import (
    DEFAULT_BATCH_ROWS,
    validate_request,
    validate_reset,
    validate_rounds,
)

if TYPE_CHECKING:
    from alumnos_cli.seed.benchmark import SeedBenchmark


@handle_errors
def seed(
    ctx: typer.Context,
    count: Annotated[int, typer.Option("--count", help="Rows the table must hold.")]
    = 2_000_000,
    seed_value: Annotated[int, typer.Option("--seed", help="Same seed, same data.")] = 0,
    reset: Annotated[bool, typer.Option(
        "--reset", help="Drop the table `alumnos seed` wrote and load anew.")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="With --reset: also drop an alumnos table that `alumnos seed` did not "
        "write, and all its rows.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Rows per COPY transaction.")]
    = DEFAULT_BATCH_ROWS,
    checksum: Annotated[bool, typer.Option(
        "--checksum", help="Print the SHA-256 of the table's rows: same seed, same checksum.")]
    = False,
    benchmark: Annotated[bool, typer.Option(
        "--benchmark", help="Time a seed and its floor (PostgreSQL's COPY from a file plus the "
        "same indexes) in a scratch database, and print the ratio.")] = False,
    rounds: Annotated[int, typer.Option(
        "--rounds", help="With --benchmark: rounds of seed then floor; the median is kept.")]
    = 3,
    database_url: DatabaseUrl = None,
    redis_url: RedisUrl = None,
    state_dir: StateDir = None,
) -> None:
    """Fill PostgreSQL with fake alumnos (Faker es_AR) using COPY; resumable.

    Example: alumnos seed --count 2000000 --seed 42 --checksum
    """
    validate_request(count, seed_value, batch_size)
    validate_reset(reset=reset, force=force)
    refuse_what_does_not_apply(given_flags(ctx))
    if benchmark:
        validate_rounds(rounds)
    with requires("seed"):
        from alumnos_cli.seed.benchmark import benchmark_seed
        from alumnos_cli.seed.load import seed_alumnos, table_checksum
    settings = resolve_settings(database_url=database_url, redis_url=redis_url,
                                state_dir=state_dir)
    if benchmark:
        _print_benchmark(benchmark_seed(settings, count=count, seed=seed_value, rounds=rounds,
                                        phase=lambda message: console.print(f"[dim]{message}")))
        return
    from alumnos_cli.commands.progress import seeding_bar

    with seeding_bar(err_console) as bar:
        task = bar.add_task("seed", total=count)
        first = [True]

        def progress(loaded: int, wanted: int) -> None:
            if first[0]:  # rows already there on resume must not count towards rows/s
                bar.reset(task, total=wanted, completed=loaded)
                first[0] = False
            bar.update(task, completed=loaded, total=wanted)

        try:
            result = seed_alumnos(settings, count=count, seed=seed_value, reset=reset,
                                  force=force, batch_rows=batch_size, progress=progress)
        except KeyboardInterrupt:
            bar.stop()
            err_console.print("[yellow]interrupted:[/] committed batches are kept; "
                              "run the same command again to resume")
            raise typer.Exit(ExitCode.INTERRUPTED) from None
    if result.dropped_foreign_rows is not None:
        err_console.print(f"[yellow]--force:[/] dropped table alumnos and its "
                          f"{result.dropped_foreign_rows:,} rows, which alumnos seed did not write")
    if result.rows_loaded == 0:
        console.print(f"alumnos already holds {result.rows_after:,} rows for seed {seed_value}; "
                      "nothing to do")
    else:
        console.print(f"seeded {result.rows_loaded:,} rows ({result.rows_after:,} in all) in "
                      f"{result.seconds:.1f} s, {result.rows_per_second:,.0f} rows/s")
    if checksum:
        console.print(f"checksum sha256:{table_checksum(settings.database_url)}")
    if not result.cache_invalidated:
        err_console.print("[yellow]warning:[/] Redis did not answer, so cached pages were not "
                          "invalidated; they expire within 66 s")


# What --benchmark leaves alone: it seeds a scratch database of its own, with --reset.
NOT_WITH_BENCHMARK = ("--reset", "--force", "--batch-size", "--checksum")


def refuse_what_does_not_apply(given: set[str]) -> None:
    """A flag that would change nothing here is refused, so it is never silently ignored."""
    if "--benchmark" in given:
        flag = next((flag for flag in NOT_WITH_BENCHMARK if flag in given), None)
        if flag is not None:
            raise InvalidOption(flag, f"{flag} does not apply to --benchmark, which seeds a "
                                "scratch database of its own")
    elif "--rounds" in given:
        raise InvalidOption("--rounds", "--rounds counts the rounds of --benchmark only",
                            "add --benchmark")


def _print_benchmark(result: SeedBenchmark) -> None:
    from rich.table import Table

    rounds = len(result.ratios)
    table = Table(title=f"seeding {result.count:,} rows against PostgreSQL's floor "
                        f"({rounds} round{'s' if rounds > 1 else ''}, seconds)")
    table.add_column("measure")
    for number in range(1, rounds + 1):
        table.add_column(f"round {number}", justify="right")

    def row(name: str, values: tuple[float, ...]) -> None:
        table.add_row(name, *(f"{v:.2f}" for v in values))

    row("alumnos seed --reset (generate + COPY + key + indexes + ANALYZE)", result.seed_seconds)
    row("floor: COPY of the same rows from a file", result.floor_copy_seconds)
    row("floor: primary key + 3 unique indexes", result.floor_index_seconds)
    row("floor total", result.floor_seconds)
    row("ratio seed / floor", result.ratios)
    console.print(table)
    console.print(f"median ratio seed / floor: [bold]{result.ratio:.2f}[/]; peak RSS: seeding "
                  f"process {result.peak_rss_mib:.0f} MiB, generator process "
                  f"{result.generator_peak_rss_mib:.0f} MiB")
