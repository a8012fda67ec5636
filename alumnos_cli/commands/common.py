"""What every command shares: settings options and the one place errors become messages."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from alumnos_cli.errors import AlumnosError
from alumnos_cli.settings import Settings
from alumnos_cli.stack.state import recorded_settings

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")

DatabaseUrl = Annotated[str | None, typer.Option(
    "--database-url", help="PostgreSQL URL (env ALUMNOS_DATABASE_URL)", show_default=False)]
RedisUrl = Annotated[str | None, typer.Option(
    "--redis-url", help="Redis URL (env ALUMNOS_REDIS_URL)", show_default=False)]
ResultsDir = Annotated[Path | None, typer.Option(
    "--results-dir", help="Where runs are stored (env ALUMNOS_RESULTS_DIR; default ./results)",
    show_default=False)]
StateDir = Annotated[Path | None, typer.Option(
    "--state-dir", help="Where `up` keeps its state and logs (env ALUMNOS_STATE_DIR; "
    "default ./.alumnos)", show_default=False)]


def resolve_settings(*, database_url: str | None = None, redis_url: str | None = None,
                     results_dir: Path | None = None, state_dir: Path | None = None) -> Settings:
    """Flags > the private cluster `up` recorded, if any > environment > defaults."""
    first = Settings.resolve(state_dir=state_dir)
    return Settings.resolve(recorded=recorded_settings(first.state_dir),
                            database_url=database_url, redis_url=redis_url,
                            results_dir=results_dir, state_dir=state_dir)


def handle_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn domain errors into one red line with the next step, and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except AlumnosError as exc:
            err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
            if exc.hint:
                err_console.print(f"[yellow]next:[/] {exc.hint}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper
