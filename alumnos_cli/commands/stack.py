"""alumnos up, down and status."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.table import Table

from alumnos_cli.commands.common import (
    DatabaseUrl,
    RedisUrl,
    StateDir,
    console,
    handle_errors,
    resolve_settings,
)
from alumnos_cli.errors import AlumnosError
from alumnos_cli.stack import local


@handle_errors
def up(
    port: Annotated[int, typer.Option("--port", help="Port the service listens on.")] = 8080,
    host: Annotated[str, typer.Option("--host", help="Address to bind (keep it local).")]
    = "127.0.0.1",
    workers: Annotated[int, typer.Option("--workers", help="Granian worker processes.")]
    = os.cpu_count() or 1,
    blocking_threads: Annotated[int, typer.Option(
        "--blocking-threads", help="Granian blocking threads per worker.")] = 4,
    cache: Annotated[bool, typer.Option("--cache/--no-cache", help="Redis cache in the service.")]
    = True,
    database_url: DatabaseUrl = None,
    redis_url: RedisUrl = None,
    state_dir: StateDir = None,
) -> None:
    """Start the service under Granian (and a private PostgreSQL if none answers).

    Example: alumnos up --workers 2 --port 8080
    """
    if not 1 <= workers <= 64:
        raise AlumnosError(f"--workers must be between 1 and 64, got {workers}")
    if not 1 <= blocking_threads <= 256:
        raise AlumnosError(f"--blocking-threads must be between 1 and 256, got {blocking_threads}")
    settings = resolve_settings(database_url=database_url, redis_url=redis_url,
                                state_dir=state_dir)
    options = local.ServiceOptions(host=host, port=port, workers=workers,
                                   blocking_threads=blocking_threads, cache=cache)
    with console.status("starting the service and waiting for /health ..."):
        result = local.up(settings, options)
    service = result.state.service
    if result.already_running:
        console.print(f"already running at [bold]{service.url}[/] (pid {service.process.pid}); "
                      "nothing changed. Use alumnos down to stop it.")
        return
    if result.started_postgres and result.state.postgres:
        console.print(f"PostgreSQL did not answer: started a private cluster at "
                      f"{result.state.postgres.url}")
    console.print(f"service up at [bold]{service.url}[/] ({service.workers} workers, cache "
                  f"{'on' if service.cache else 'off'}); try {service.url}"
                  "/api/v1/alumno/alumno?limit=100&offset=0")


@handle_errors
def down(state_dir: StateDir = None) -> None:
    """Stop what `alumnos up` started, and nothing else.

    Example: alumnos down
    """
    stopped = local.down(resolve_settings(state_dir=state_dir))
    if not stopped:
        console.print("nothing to stop: no stack started by alumnos up is running")
        return
    for item in stopped:
        console.print(f"stopped {item}")


@handle_errors
def status(
    database_url: DatabaseUrl = None,
    redis_url: RedisUrl = None,
    state_dir: StateDir = None,
) -> None:
    """Show each component of the stack and whether it answers.

    Example: alumnos status
    """
    settings = resolve_settings(database_url=database_url, redis_url=redis_url,
                                state_dir=state_dir)
    table = Table(title="alumnos stack")
    for column in ("component", "address", "answers", "detail"):
        table.add_column(column)
    for component in local.status(settings):
        mark = "[green]yes[/]" if component.answers else "[red]no[/]"
        table.add_row(component.name, component.address, mark, component.detail)
    console.print(table)
