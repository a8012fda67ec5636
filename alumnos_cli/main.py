"""The alumnos command: one Typer app composed of one module per subcommand."""

from __future__ import annotations

from typing import Annotated

import typer

from alumnos_cli import package_version
from alumnos_cli.commands import bench, compose, patterns, report, seed, stack
from alumnos_cli.errors import EXIT_CODES_HELP

app = typer.Typer(
    name="alumnos",
    help="Seed, run, load-test and report on the alumnos student-records service.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.command()(seed.seed)
app.command()(stack.up)
app.command()(stack.down)
app.command()(stack.status)
app.command()(stack.logs)
app.command()(compose.images)
app.command()(patterns.patterns)
app.command()(bench.bench)
app.command()(report.report)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"alumnos {package_version()}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True, help="Show the version and exit.")]
    = False,
) -> None:
    """Seed, run, load-test and report on the alumnos student-records service."""


def run() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    run()
