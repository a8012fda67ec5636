"""alumnos up, down, status and logs."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from alumnos_cli.commands import compose as compose_commands
from alumnos_cli.commands.common import (
    DatabaseUrl,
    RedisUrl,
    StateDir,
    console,
    given_flags,
    handle_errors,
    requires,
    resolve_settings,
)
from alumnos_cli.errors import AlumnosError, InvalidOption
from alumnos_cli.settings import mask_password
from alumnos_cli.stack.cpus import format_cpus, parse_cpus
from alumnos_cli.stack.options import (
    LOCAL_PATTERNS,
    Mode,
    ServiceOptions,
    validate_options,
)
from alumnos_cli.stack.patterns import PatternsSpec, parse_rate_limit
from alumnos_service.paths import FIRST_PAGE

if TYPE_CHECKING:
    from alumnos_cli.stack.status import StackStatus


def patterns_from_flags(
        *, retry: bool, rate_limit: str, circuit_breaker: bool, breaker_latency_ms: int,
        breaker_fallback_s: int,
        breaker_max_ejected: float = LOCAL_PATTERNS.circuit_breaker_max_ejected_share,
) -> PatternsSpec:
    """The local patterns spec with the flags applied."""
    try:
        limit = parse_rate_limit(rate_limit)
    except ValueError as exc:
        raise InvalidOption("--rate-limit", f"--rate-limit: {exc}") from None
    if not 1 <= breaker_latency_ms <= 60_000:
        raise InvalidOption("--breaker-latency-ms", "--breaker-latency-ms must be between 1 "
                            f"and 60000, got {breaker_latency_ms}")
    if not 1 <= breaker_fallback_s <= 3600:
        raise InvalidOption("--breaker-fallback-s", "--breaker-fallback-s must be between 1 "
                            f"and 3600, got {breaker_fallback_s}")
    if not 0 < breaker_max_ejected < 1:
        raise InvalidOption("--breaker-max-ejected", "--breaker-max-ejected is the share of "
                            f"replicas that may be out at once, above 0 and below 1, got "
                            f"{breaker_max_ejected:g}")
    spec = replace(LOCAL_PATTERNS, retry=retry, circuit_breaker=circuit_breaker,
                   circuit_breaker_max_ejected_share=breaker_max_ejected,
                   circuit_breaker_latency_ms=breaker_latency_ms,
                   circuit_breaker_fallback_s=breaker_fallback_s,
                   circuit_breaker_recovery_s=breaker_fallback_s)
    if limit is None:
        return replace(spec, rate_limit=False)
    average, period = limit
    return replace(spec, rate_limit=True, rate_limit_average=average,
                   rate_limit_period_s=period, rate_limit_burst=average)


@handle_errors
def up(
    ctx: typer.Context,
    port: Annotated[int, typer.Option("--port", help="Port of the balancer (replicas take "
                                      "the ports just above it).")] = 8080,
    host: Annotated[str, typer.Option("--host", help="Address to bind (keep it local).")]
    = "127.0.0.1",
    replicas: Annotated[int, typer.Option("--replicas", help="Service replicas behind HAProxy.",
                                          envvar="ALUMNOS_REPLICAS")] = 3,
    workers: Annotated[int, typer.Option("--workers", help="Granian workers per replica.",
                                         envvar="ALUMNOS_WORKERS")] = 1,
    blocking_threads: Annotated[int, typer.Option(
        "--blocking-threads", help="Granian blocking threads per worker.")] = 4,
    cache: Annotated[bool, typer.Option("--cache/--no-cache", help="Redis cache in the service.")]
    = True,
    balancer: Annotated[bool, typer.Option(
        "--balancer/--no-balancer", help="HAProxy in front; without it one replica takes "
        "--port directly (for measuring the service alone).")] = True,
    retry: Annotated[bool, typer.Option("--retry/--no-retry", help="Retry on another replica.",
                                        envvar="ALUMNOS_RETRY")] = True,
    rate_limit: Annotated[str, typer.Option(
        "--rate-limit", help="Per-client-address limit such as 100/s, 50/10s or 600/m; off by "
        "default, since a benchmark is one client.", envvar="ALUMNOS_RATE_LIMIT")] = "off",
    circuit_breaker: Annotated[bool, typer.Option(
        "--circuit-breaker/--no-circuit-breaker", help="Take slow replicas out of rotation.",
        envvar="ALUMNOS_CIRCUIT_BREAKER")] = True,
    breaker_latency_ms: Annotated[int, typer.Option(
        "--breaker-latency-ms", help="Median server latency that trips a replica's breaker.",
        envvar="ALUMNOS_BREAKER_LATENCY_MS")] = 100,
    breaker_fallback_s: Annotated[int, typer.Option(
        "--breaker-fallback-s", help="Seconds a tripped replica stays out, and its recovery "
        "ramp.", envvar="ALUMNOS_BREAKER_FALLBACK_S")] = 10,
    breaker_max_ejected: Annotated[float, typer.Option(
        "--breaker-max-ejected", help="Share of the replicas the breaker may have out at once "
        "(one always may be; never the last one serving).",
        envvar="ALUMNOS_BREAKER_MAX_EJECTED", show_default="1/3",
    )] = LOCAL_PATTERNS.circuit_breaker_max_ejected_share,
    fault_injection: Annotated[bool, typer.Option(
        "--fault-injection/--no-fault-injection", help="Let `alumnos patterns` make a replica "
        "slow (refused otherwise).", envvar="ALUMNOS_UP_FAULT_INJECTION")] = False,
    cpus: Annotated[str | None, typer.Option(
        "--cpus", help="Run every process of the stack on these CPUs only, e.g. 1 or 2-3 "
        "(affinity, and a cgroup cpuset where one can be made); give the load generator the "
        "others with bench --generator-cpus.", envvar="ALUMNOS_CPUS", show_default=False)]
    = None,
    prometheus: Annotated[bool, typer.Option(
        "--prometheus/--no-prometheus", help="Run Prometheus (127.0.0.1 only) and the standard "
        "exporters beside the stack; k6 writes into it.", envvar="ALUMNOS_PROMETHEUS")] = True,
    prometheus_port: Annotated[int, typer.Option(
        "--prometheus-port", help="Prometheus's port on 127.0.0.1.",
        envvar="ALUMNOS_PROMETHEUS_PORT")] = ServiceOptions.prometheus_port,
    mode: Annotated[Mode, typer.Option(
        "--mode", help="local: supervisord and HAProxy on this machine; compose: docker "
        "compose and Traefik on a Docker engine (ports from ALUMNOS_COMPOSE_*).",
        envvar="ALUMNOS_MODE")] = Mode.LOCAL,
    database_url: DatabaseUrl = None,
    redis_url: RedisUrl = None,
    state_dir: StateDir = None,
) -> None:
    """Start the replicas under supervisord with HAProxy in front (and PostgreSQL if needed).

    Example: alumnos up --replicas 3 --workers 2 --rate-limit 100/s
    """
    spec = patterns_from_flags(retry=retry, rate_limit=rate_limit,
                               circuit_breaker=circuit_breaker,
                               breaker_latency_ms=breaker_latency_ms,
                               breaker_fallback_s=breaker_fallback_s,
                               breaker_max_ejected=breaker_max_ejected)
    options = ServiceOptions(host=host, port=port, replicas=replicas, workers=workers,
                             blocking_threads=blocking_threads, cache=cache, balancer=balancer,
                             fault_injection=fault_injection, patterns=spec,
                             cpus=parse_cpus(cpus, "--cpus") if cpus else None,
                             prometheus=prometheus, prometheus_port=prometheus_port)
    if mode is Mode.COMPOSE:
        refuse_local_only_flags(given_flags(ctx))
    validate_options(options)
    with requires("stack"):
        from alumnos_cli.stack import local
    from alumnos_cli.stack.state import COMPOSE_STATE_FILE
    settings = resolve_settings(database_url=database_url, redis_url=redis_url,
                                state_dir=state_dir)
    if mode is Mode.COMPOSE:
        compose_commands.compose_up(settings.state_dir, spec, replicas, cache=cache,
                                    fault_injection=fault_injection, prometheus=prometheus)
        return
    if (settings.state_dir / COMPOSE_STATE_FILE).exists():
        raise AlumnosError("a compose stack is up from this state directory",
                           "alumnos down first, or give local mode its own --state-dir")
    with console.status("starting replicas and balancer, waiting until all are healthy ..."):
        result = local.up(settings, options)
    service = result.state.service
    if result.already_running:
        console.print(f"already running at [bold]{service.url}[/] (supervisord pid "
                      f"{service.supervisor.pid}); nothing changed. Use alumnos down to stop it.")
        return
    if result.started_postgres and result.state.postgres:
        console.print(f"PostgreSQL did not answer: started a private cluster at "
                      f"{mask_password(result.state.postgres.url)}")
    front = "HAProxy" if service.balancer else "no balancer"
    console.print(f"up at [bold]{service.url}[/] ({front}; {len(service.replicas)} replica(s) x "
                  f"{service.workers} workers; cache {'on' if service.cache else 'off'}; "
                  f"{describe_patterns(service.patterns) if service.balancer else 'no patterns'})")
    if service.cpus:
        where = f"cpuset {service.cpuset}" if service.cpuset else "affinity only: no cpuset"
        console.print(f"every process of the stack on CPUs {format_cpus(service.cpus)} "
                      f"({where}); give k6 the others: alumnos bench --generator-cpus ...")
    if service.monitoring is not None:
        console.print(f"Prometheus at {service.monitoring.url} (127.0.0.1 only), scraping "
                      f"{', '.join(service.monitoring.targets)}")
    console.print(f"try {service.url}{FIRST_PAGE}, then alumnos status")


# What compose mode cannot honour: its ports come from ALUMNOS_COMPOSE_*, Granian's settings
# from the image's Dockerfile, and Traefik is always in front.
LOCAL_ONLY = {"--port": "its ports come from ALUMNOS_COMPOSE_* variables",
              "--prometheus-port": "its ports come from ALUMNOS_COMPOSE_* variables",
              "--host": "its ports are published on 127.0.0.1 only",
              "--workers": "Granian's settings are in the image's Dockerfile",
              "--blocking-threads": "Granian's settings are in the image's Dockerfile",
              "--balancer": "Traefik is always in front",
              "--cpus": "the Docker engine places its containers"}


def refuse_local_only_flags(given: set[str]) -> None:
    """A flag only local mode honours, typed beside --mode compose, is refused in one line
    rather than ignored."""
    refused = sorted(given & LOCAL_ONLY.keys())
    if refused:
        flag = refused[0]
        raise InvalidOption(flag, f"{flag} does not apply to --mode compose: {LOCAL_ONLY[flag]}",
                            "leave it out, or use --mode local")


def describe_fault_switch(report: StackStatus) -> str:
    """Whether `patterns` may inject faults, and which are in place now."""
    if not report.fault_injection:
        return "off"
    if not report.faults:
        return "on (alumnos patterns may slow or fail a replica; none now)"
    from rich.markup import escape

    now = "; ".join(f"{name}: {fault}" for name, fault in report.faults.items())
    return f"[bold red]on, injected now: {escape(now)}[/] (bench refuses this stack)"


def describe_patterns(spec: PatternsSpec) -> str:
    """One line: which patterns run, with their numbers."""
    retry = f"retry x{spec.retry_attempts}" if spec.retry else "retry off"
    breaker = (f"breaker: outliers past p{spec.circuit_breaker_quantile:g} > "
               f"{spec.circuit_breaker_latency_ms} ms" if spec.circuit_breaker
               else "breaker off")
    return f"{retry}, rate limit {spec.rate_limit_text}, {breaker}"


@handle_errors
def down(
    volumes: Annotated[bool, typer.Option(
        "--volumes", help="Compose mode: also remove the database volume (its data is lost).")]
    = False,
    state_dir: StateDir = None,
) -> None:
    """Stop what `alumnos up` started, and nothing else.

    Example: alumnos down
    """
    with requires("stack"):
        from alumnos_cli.stack import compose, local
    settings = resolve_settings(state_dir=state_dir)
    if volumes and compose.load(settings.state_dir) is None:
        # Local mode keeps no volume: its data is the user's PostgreSQL, or the private
        # cluster in the state directory, which down never deletes.
        raise InvalidOption("--volumes", "--volumes applies to a compose stack, and none is up "
                            f"from {settings.state_dir}", "alumnos down, without it")
    stopped = local.down(settings) + compose.down(settings.state_dir, volumes=volumes)
    if not stopped:
        console.print("nothing to stop: no stack started by alumnos up is running")
        return
    for item in stopped:
        console.print(f"stopped {item}")


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


@handle_errors
def status(
    database_url: DatabaseUrl = None,
    redis_url: RedisUrl = None,
    state_dir: StateDir = None,
) -> None:
    """Show each component, each replica as the balancer sees it, and the cache hit ratio.

    Example: alumnos status
    """
    with requires("stack"):
        from alumnos_cli.stack import compose
        from alumnos_cli.stack.status import stack_status
    from rich.table import Table
    from rich.text import Text

    settings = resolve_settings(database_url=database_url, redis_url=redis_url,
                                state_dir=state_dir)
    record = compose.load(settings.state_dir)
    if record is not None:
        compose_commands.compose_status(record)
        return
    report = stack_status(settings)
    table = Table(title="alumnos stack")
    for column in ("component", "address", "answers", "detail"):
        table.add_column(column)
    for component in report.components:
        mark = "[green]yes[/]" if component.answers else "[red]no[/]"
        table.add_row(component.name, component.address, mark, component.detail)
    console.print(table)
    if report.replicas:
        replicas = Table(title="replicas")
        replicas.add_column("replica", no_wrap=True, min_width=9)
        for column in ("process", "balancer", "breaker"):
            replicas.add_column(column, overflow="fold")
        for column in ("requests", "5xx", "retried", "avg ms"):
            replicas.add_column(column, justify="right")
        for r in report.replicas:
            color = "green" if r.balancer.startswith("UP") or r.balancer == "-" else "red"
            replicas.add_row(f"{r.name}\n[dim]:{r.url.rsplit(':', 1)[-1]}[/]", r.process,
                             f"[{color}]{r.balancer}[/]", r.breaker,
                             _count(r.requests), _count(r.errors_5xx), _count(r.retries),
                             _count(r.response_ms))
        console.print(replicas)
    if report.patterns is not None:
        console.print(f"patterns: {describe_patterns(report.patterns)}")
    if report.fault_injection is not None:
        console.print(f"fault injection: {describe_fault_switch(report)}")
    if report.refused is not None:
        console.print("answered by the balancer itself: " + ", ".join(
            f"{reason.replace('_', ' ')} {count:,}" for reason, count in report.refused.items()))
    for event in report.events or []:
        when = datetime.fromtimestamp(float(str(event.get("at"))), UTC).strftime("%H:%M:%S")
        console.print(Text(f"breaker {when} UTC: {event.get('replica')} {event.get('state')} "
                           f"({event.get('why')})"))
    if report.placement is not None:
        console.print("CPUs (as the kernel allows each process): " + "; ".join(
            f"{component} {' | '.join(format_cpus(cpus) for cpus in sets)}"
            for component, sets in report.placement.items()))
    ratio = report.cache_hit_ratio
    if report.cache_outcomes is not None:
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(report.cache_outcomes.items()))
        shown = "no cacheable requests yet" if ratio is None else f"{ratio:.1%}"
        console.print(f"cache hit ratio at the balancer: {shown}"
                      + (f" ({counts})" if counts else ""))


@handle_errors
def logs(
    component: Annotated[str | None, typer.Argument(
        help="replica-1, haproxy, breaker, supervisord, postgres... (compose mode: traefik, "
        "alumnos-1, postgres, redis); all when omitted")] = None,
    lines: Annotated[int, typer.Option("--lines", "-n", help="Lines from the end.")] = 40,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")]
    = False,
    state_dir: StateDir = None,
) -> None:
    """Show the logs of the stack's components (local mode's outlive `down`).

    Example: alumnos logs haproxy -n 20
    """
    from alumnos_cli.stack.logs import log_files, tail_lines
    from alumnos_cli.stack.state import COMPOSE_STATE_FILE

    settings = resolve_settings(state_dir=state_dir)
    if (settings.state_dir / COMPOSE_STATE_FILE).exists():
        compose_commands.compose_logs(settings.state_dir, component, lines, follow=follow)
        return
    files = log_files(settings)
    if not files:
        raise AlumnosError("no logs yet: nothing was started with alumnos up here",
                           "run alumnos up (or pass the --state-dir it used)")
    if component is not None and component not in files:
        raise AlumnosError(f"no component named {component!r}",
                           f"choose one of: {', '.join(files)}")
    chosen = {component: files[component]} if component else files
    for name, path in chosen.items():
        for line in tail_lines(path, lines):
            _print_line(name if len(chosen) > 1 else None, line)
    if follow:
        _follow(chosen)


def _print_line(name: str | None, line: str) -> None:
    """A log line as it is (no markup), prefixed by its component when several are shown."""
    from rich.text import Text

    text = Text(line)
    if name is not None:
        text = Text.assemble((f"{name:>12} | ", "cyan"), text)
    console.print(text, highlight=False, soft_wrap=True)


def _follow(files: dict[str, Path]) -> None:
    from alumnos_cli.stack.logs import new_lines

    offsets = {name: path.stat().st_size if path.exists() else 0 for name, path in files.items()}
    try:
        while True:
            for name, path in files.items():
                for line, offset in new_lines(path, offsets[name]):
                    offsets[name] = offset
                    _print_line(name if len(files) > 1 else None, line)
            time.sleep(0.5)
    except KeyboardInterrupt:
        return
