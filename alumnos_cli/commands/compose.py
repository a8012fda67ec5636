"""Compose mode's side of up, status and logs, and `alumnos images`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from alumnos_cli.commands.common import console, handle_errors, requires
from alumnos_cli.errors import AlumnosError, InvalidOption
from alumnos_cli.stack.patterns import PatternsSpec

if TYPE_CHECKING:
    from alumnos_cli.stack.compose import ComposeRecord


def describe_traefik_patterns(spec: PatternsSpec) -> str:
    """One line: the patterns as Traefik runs them."""
    retry = f"retry x{spec.retry_attempts} (failed connections)" if spec.retry else "retry off"
    breaker = (f"breaker: out after {spec.dead_after_failures} failed attempts in "
               f"{spec.circuit_breaker_fallback_s} s" if spec.circuit_breaker else "breaker off")
    return f"{retry}, rate limit {spec.rate_limit_text}, {breaker}"


def compose_up(state_dir: Path, spec: PatternsSpec, replicas: int, *, cache: bool,
               fault_injection: bool = False, prometheus: bool = True) -> None:
    """Build, start and wait for the compose stack; print where it answers."""
    from alumnos_cli.stack import compose
    from alumnos_cli.stack.state import running_state

    existing = compose.load(state_dir)
    if existing is not None:
        raise AlumnosError(f"a compose stack is already up here ({existing.url})",
                           "alumnos down first, or use it as it is")
    local = running_state(state_dir)
    if local is not None:
        # One stack per state directory: seed, bench and status must know which one is meant.
        raise AlumnosError(f"a local stack runs from this state directory ({local.service.url})",
                           "alumnos down first, or give compose mode its own --state-dir")
    with console.status("compose mode ...") as status:
        record = compose.up(state_dir, spec, replicas, cache=cache,
                            fault_injection=fault_injection, prometheus=prometheus,
                            say=lambda message: status.update(message))
    images = ("local images (alumnos images --offline)" if record.images == "offline"
              else "registry images")
    console.print(f"compose stack up behind Traefik at [bold]{record.url}[/] ({record.replicas} "
                  f"replicas; {describe_traefik_patterns(record.patterns)}; {images})")
    console.print(f"PostgreSQL at {record.database_url.rsplit('@', 1)[-1]} (alumnos seed uses "
                  f"it now), Traefik's API at {record.api_url}/api/overview; all on loopback")
    if record.prometheus_url:
        console.print(f"Prometheus at {record.prometheus_url} (loopback only: its remote-write "
                      "receiver takes anything from anyone), scraping Traefik, every replica "
                      "and the exporters; bench reads the server side there")
    console.print(f"try alumnos seed, then alumnos bench (k6 connects to 127.0.0.1 and sends "
                  f"Host: {record.patterns.host})")


def compose_status(record: ComposeRecord) -> None:
    """The project's containers with their health, and Traefik's view of each replica."""
    from rich.table import Table

    from alumnos_cli.stack import compose_view, engine

    client = engine.connect(record.docker_host)
    try:
        rows = compose_view.containers(client, record.project)
    finally:
        client.close()
    servers = compose_view.traefik_servers(record)
    table = Table(title=f"alumnos stack (compose, {record.url})")
    for column in ("component", "container", "state", "health", "in Traefik"):
        table.add_column(column)
    for row in rows:
        color = "green" if row.ready else "red"
        seen = "-" if row.service != "alumnos" else (
            "no answer from its API" if servers is None else compose_view.server_of(servers, row))
        seen_color = "green" if seen == "UP" or seen == "-" else "red"
        table.add_row(row.component, row.name, f"[{color}]{row.state}[/]", row.health,
                      f"[{seen_color}]{seen}[/]")
    console.print(table)
    if not rows:
        console.print("[red]no container of the project exists[/]: alumnos down forgets it, "
                      "alumnos up --mode compose starts it again")
    console.print(f"patterns: {describe_traefik_patterns(record.patterns)}; fault injection "
                  f"{'on' if record.fault_injection else 'off'}")
    console.print(f"Traefik's API: {record.api_url}/api/overview (loopback only)")
    console.print(f"Prometheus: {describe_prometheus(record)}")


def describe_prometheus(record: ComposeRecord) -> str:
    """Where the stack's Prometheus answers and whether it scrapes every target."""
    from alumnos_cli.stack.monitoring import target_health, targets_not_up

    monitoring = record.monitoring
    if monitoring is None:
        return "not running (alumnos up --mode compose --no-prometheus)"
    health = target_health(monitoring)
    if health is None:
        return f"[red]no answer at {monitoring.url}[/] (alumnos logs prometheus)"
    down = targets_not_up(health)
    expected = monitoring.target_count
    color = "green" if not down and len(health) == expected else "red"
    text = f"{monitoring.url}, [{color}]{len(health) - len(down)} of {expected} targets up[/]"
    return text + (f"; not up: {', '.join(down)}" if down else "")


def compose_logs(state_dir: Path, component: str | None, lines: int, *, follow: bool) -> None:
    """The logs of the compose stack's containers."""
    from rich.text import Text

    from alumnos_cli.stack import compose, compose_view, engine

    record = compose.load(state_dir)
    if record is None:
        return
    client = engine.connect(record.docker_host)
    try:
        rows = {row.component: row for row in compose_view.containers(client, record.project)}
        if component is not None and component not in rows:
            raise AlumnosError(f"no component named {component!r}",
                               f"choose one of: {', '.join(rows)}")
        chosen = [rows[component]] if component else list(rows.values())
        if follow and len(chosen) != 1:
            raise AlumnosError("--follow follows one container in compose mode",
                               f"name one: {', '.join(rows)}")
        for row in chosen:
            if follow:
                for chunk in compose_view.follow_logs(client, row.name, lines):
                    console.print(Text(chunk.rstrip("\n")), highlight=False, soft_wrap=True)
                continue
            for line in compose_view.container_logs(client, row.name, lines).splitlines():
                prefix = (f"{row.component:>12} | ", "cyan") if len(chosen) > 1 else ("", "")
                console.print(Text.assemble(prefix, line), highlight=False, soft_wrap=True)
    except KeyboardInterrupt:
        pass
    finally:
        client.close()


@handle_errors
def images(
    offline: Annotated[bool, typer.Option(
        "--offline", help="Build local equivalents of every image docker-compose.yml uses "
        "(needs root for debootstrap, Debian's mirror and PyPI, no container registry).")]
    = False,
    rebuild: Annotated[bool, typer.Option(
        "--rebuild", help="Build again the images already there.")] = False,
) -> None:
    """List the images compose mode uses, or build them where no registry answers.

    Example: alumnos images --offline
    """
    if rebuild and not offline:
        raise InvalidOption("--rebuild", "--rebuild goes with --offline, which builds the "
                            "images", "alumnos images --offline --rebuild")
    with requires("stack"):
        from alumnos_cli.stack import engine
        from alumnos_cli.stack import images as offline_images
    client = engine.connect()
    try:
        if offline:
            with console.status("building ...") as status:
                built = offline_images.build_offline(
                    client, rebuild=rebuild, say=lambda message: status.update(message))
            for image in built:
                how = "already there" if image.reused else f"built in {image.seconds:.0f} s"
                console.print(f"{image.name}: {image.what} ({how})")
            console.print("compose mode now uses these: alumnos up --mode compose")
            return
        present = offline_images.offline_images_present(client)
    finally:
        client.close()
    names = ", ".join([offline_images.BASE_IMAGE, *offline_images.OFFLINE_IMAGES.values()])
    if present:
        console.print(f"local images present ({names}): compose mode uses them")
    else:
        console.print(f"no local images ({names}): compose mode pulls from the registry; "
                      "where none answers, alumnos images --offline builds them")
