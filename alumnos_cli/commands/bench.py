"""alumnos bench."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from alumnos_cli.bench.scenarios import (
    SCENARIOS,
    ScenarioName,
    default_max_error_rate,
    default_p95_ms,
    default_verify_sample,
)
from alumnos_cli.commands.common import (
    ResultsDir,
    StateDir,
    console,
    err_console,
    given_flags,
    handle_errors,
    refuse_beside,
    requires,
    resolve_settings,
)
from alumnos_cli.errors import ExitCode, InvalidOption

if TYPE_CHECKING:
    from alumnos_cli.bench.request import BenchRequest
    from alumnos_cli.bench.run import BenchResult
    from alumnos_cli.bench.sweep import SweepPlan
    from alumnos_cli.settings import Settings

PROMETHEUS_ENV = "ALUMNOS_PROMETHEUS_URL"


@handle_errors
def bench(
    ctx: typer.Context,
    vus: Annotated[int, typer.Option("--vus", help="Peak virtual users (with --rate: the most "
                                     "VUs k6 may use to keep the rate).")] = 200,
    duration: Annotated[str, typer.Option("--duration", help="Test length: 30s, 2m, 1m30s.")]
    = "2m",
    scenario: Annotated[ScenarioName, typer.Option(
        "--scenario", help="What load, on which pages (see --list).")] = ScenarioName("spike"),
    url: Annotated[str | None, typer.Option(
        "--url", help="Base URL to load \\[default: the stack started by alumnos up].")] = None,
    path: Annotated[str | None, typer.Option(
        "--path", help="Path for the endpoint scenario, e.g. '/api/v1/alumno/alumno?offset=0'; "
                       "{offset} in it is a random page's offset per request.")]
    = None,
    calibrate: Annotated[bool, typer.Option(
        "--calibrate", help="Also run the same load on /api/v1/ping (the machine's ceiling), "
                            "then the page statement under pgbench (the database's).")]
    = False,
    rate: Annotated[int | None, typer.Option(
        "--rate", help="Open model: requests per second to start whatever the server does "
        "(k6 arrival-rate executors; late ones are counted as dropped).", show_default=False)]
    = None,
    p95: Annotated[float | None, typer.Option(
        "--p95", help=f"Threshold: p95 latency in ms \\[default: {default_p95_ms():g}].",
        show_default=False)]
    = None,
    max_error_rate: Annotated[float | None, typer.Option(
        "--max-error-rate", help="Threshold: share of failed requests \\[default: "
        f"{default_max_error_rate():g}].",
        show_default=False)] = None,
    repeat: Annotated[int, typer.Option("--repeat", help="Run it N times (for the noise "
                                        "verdict of report --compare).")] = 1,
    verify_sample: Annotated[int | None, typer.Option(
        "--verify-sample", help="Check one response in N per VU in full (rows, offset, ids, "
        "total); every response is checked cheaply (status, type, size) \\[default: "
        f"{default_verify_sample()}]. 1 checks every response in full.", show_default=False)]
    = None,
    generator_cpus: Annotated[str | None, typer.Option(
        "--generator-cpus", help="Run k6 (and wrk) on these CPUs only, e.g. 0; keep them apart "
        "from alumnos up --cpus.", envvar="ALUMNOS_GENERATOR_CPUS", show_default=False)] = None,
    cross_check: Annotated[bool, typer.Option(
        "--cross-check", help="After k6, a 10 s wrk load on the same path (spike, endpoint): "
        "what the stack served to a C generator, beside k6's figure.")] = False,
    timeseries: Annotated[bool, typer.Option(
        "--timeseries/--no-timeseries", help="Record per-second throughput, latency, errors "
        "and VUs (k6's dashboard aggregates).")] = True,
    prometheus: Annotated[str | None, typer.Option(
        "--prometheus", help="Also write k6's metrics into this Prometheus as the run goes "
        "(its URL, e.g. http://127.0.0.1:9090; remote write and native histograms on), each "
        "sample labelled run_id=<run folder>; by default the Prometheus of the stack alumnos "
        "up started, if any; off: nowhere.", envvar=PROMETHEUS_ENV, show_default=False)]
    = None,
    generator: Annotated[list[str] | None, typer.Option(
        "--generator", help="A k6 host to split the load over: ssh://user@host[:port], or "
        "local for this machine; repeat it for each host (each takes an equal share).",
        show_default=False)] = None,
    ssh_config: Annotated[str | None, typer.Option(
        "--ssh-config", help="The ssh_config to reach the generator hosts with (scripts/"
        "testhosts writes one) \\[default: your own].", envvar="ALUMNOS_SSH_CONFIG",
        show_default=False)] = None,
    sweep: Annotated[str | None, typer.Option(
        "--sweep", help="Capacity: one run per VU level, e.g. 25,50,100,200,400,800 (at "
        "least 4, increasing); then the levels, the Universal Scalability Law fitted to them, "
        "the knee and what was nearest its limit there. Exits 99 only on wrong answers: "
        "thresholds crossed past the knee are expected.", show_default=False)] = None,
    rate_sweep: Annotated[str | None, typer.Option(
        "--rate-sweep", help="As --sweep, in the open model: one run per rate in requests/s, "
        "e.g. 500,1000,2000,4000 (--vus is each level's pool).", show_default=False)] = None,
    cool_down: Annotated[int, typer.Option(
        "--cool-down", help="Seconds of rest between a sweep's levels.")] = 3,
    list_scenarios: Annotated[bool, typer.Option("--list", help="Describe the scenarios and "
                                                 "exit.")] = False,
    results_dir: ResultsDir = None,
    state_dir: StateDir = None,
) -> None:
    """Run a k6 scenario against the service and store the run.

    Example: alumnos bench --vus 200 --duration 2m --scenario spike --calibrate
             alumnos bench --sweep 25,50,100,200,400,800 --duration 15s

    Exit codes: 0 thresholds held, 1 error, 2 usage error, 99 thresholds crossed (as k6).
    """
    if list_scenarios:
        refuse_beside("--list", given_flags(ctx), "only describes the scenarios")
        _print_scenarios()
        return
    from alumnos_cli.bench.generators.spec import parse_generators
    from alumnos_cli.bench.request import (
        BenchRequest,
        check_generator_apart,
        parse_duration,
        validate,
    )
    from alumnos_cli.stack.cpus import parse_cpus

    request = BenchRequest(scenario=scenario.value, vus=vus,
                           duration_seconds=parse_duration(duration), url=url, path=path,
                           calibrate=calibrate, rate=rate, p95_ms=p95,
                           max_error_rate=max_error_rate, timeseries=timeseries,
                           verify_sample=verify_sample, cross_check=cross_check,
                           prometheus_url=prometheus,
                           generators=parse_generators(generator or []),
                           ssh_config=ssh_config if generator else None,
                           generator_cpus=parse_cpus(generator_cpus, "--generator-cpus")
                           if generator_cpus else None)
    validate(request, repeat)
    plan = sweep_plan(given_flags(ctx), sweep, rate_sweep, cool_down, scenario.value)
    settings = resolve_settings(results_dir=results_dir, state_dir=state_dir)
    check_generator_apart(settings, request)
    if plan is not None:
        _sweep(settings, request, plan)
        return
    with requires("stack"):
        from alumnos_cli.bench.run import run_repeated
    from alumnos_cli.commands.progress import LiveProgress, k6_bar

    with _stop_hosts_on_termination(bool(request.generators)), k6_bar(err_console) as bar:
        live = LiveProgress(bar, run_seconds=request.duration_seconds,
                            runs=2 if calibrate else 1, title=scenario.value)
        results = run_repeated(settings, request, repeat, live.on_sample,
                               on_run=lambda i: live.next_run(f"{scenario} {i}/{repeat}"
                                                              if repeat > 1 else scenario.value))
        live.finish()
    _print_results(results)


def sweep_plan(given: set[str], sweep: str | None, rate_sweep: str | None, cool_down: int,
               scenario: str) -> SweepPlan | None:
    """The sweep asked for, or None; flags that would fight its levels are refused."""
    if sweep is None and rate_sweep is None:
        if "--cool-down" in given:
            raise InvalidOption("--cool-down", "--cool-down applies to a sweep only",
                                "add --sweep or --rate-sweep")
        return None
    from alumnos_cli.bench.sweep import SweepPlan, parse_levels, validate_cool_down

    flag = "--sweep" if sweep is not None else "--rate-sweep"
    fighting = {"--sweep": ("--rate-sweep", "--vus", "--rate", "--repeat"),
                "--rate-sweep": ("--rate", "--repeat")}[flag]
    for other in fighting:
        if other in given:
            raise InvalidOption(other, f"{other} cannot go with {flag}, which sets each "
                                "level's load", "leave it out")
    for once in ("--calibrate", "--cross-check"):
        if once in given:
            raise InvalidOption(once, f"{once} cannot go with {flag}: run it once, in a plain "
                                "run", "leave it out")
    if scenario == "stress":
        raise InvalidOption(flag, f"{flag} does not apply to the stress scenario, which steps "
                            "its own load", "sweep spike, load, pagination, cache-cold or "
                            "endpoint")
    validate_cool_down(cool_down)
    levels = parse_levels(sweep if sweep is not None else str(rate_sweep), flag)
    return SweepPlan(levels, "closed" if flag == "--sweep" else "open", cool_down)


def _sweep(settings: Settings, request: BenchRequest, plan: SweepPlan) -> None:
    """Run every level with its progress, then show the sweep as `report` does."""
    with requires("stack"):
        from alumnos_cli.bench.sweep import run_sweep
    from alumnos_cli.commands.progress import LiveProgress, k6_bar
    from alumnos_cli.report.capacity_read import read_sweep
    from alumnos_cli.report.render.capacity import sweep_terminal

    count = len(plan.levels)
    with _stop_hosts_on_termination(bool(request.generators)), k6_bar(err_console) as bar:
        live = LiveProgress(bar, run_seconds=request.duration_seconds, runs=1,
                            title=request.scenario)
        folder, results = run_sweep(
            settings, request, plan, live.on_sample,
            on_level=lambda i, level: live.next_run(f"{request.scenario} {level} "
                                                    f"({i}/{count})"))
        live.finish()
    from rich.markup import escape

    for result in results:
        for line in result.missing:
            err_console.print(f"[yellow]not in level {result.run_dir.name}:[/] {escape(line)}")
    console.print(sweep_terminal(read_sweep(folder)))
    console.print(f"sweep stored in [bold]{escape(str(folder))}[/]; show it with: alumnos "
                  f"report {escape(folder.name)} --format html")
    # Past the knee thresholds are expected to break: said, not an error. Wrong answers are.
    crossed = [r.run_dir.name for r in results if not r.thresholds_ok and
               not r.verification_failed]
    if crossed:
        err_console.print(f"thresholds crossed at {len(crossed)} level(s): "
                          f"{escape(', '.join(crossed))}")
    wrong = [r for r in results if r.verification_failed]
    for result in wrong:
        err_console.print(f"[bold red]wrong answers after the load of "
                          f"{escape(result.run_dir.name)}:[/] "
                          f"{escape(result.verification_failed or '')}")
    if wrong:
        raise typer.Exit(ExitCode.THRESHOLDS_CROSSED)


@contextlib.contextmanager
def _stop_hosts_on_termination(split: bool) -> Iterator[None]:
    """While a split run lasts, SIGTERM or SIGHUP (a CI timeout, a closed terminal) end it as
    Ctrl-C does: k6 stopped on every host and nothing left there, instead of Python exiting
    at once. The handlers before are put back afterwards (a caller's, or the default)."""
    if not split:
        yield
        return
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    before = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _print_results(results: list[BenchResult]) -> None:
    from rich.markup import escape

    for result in results:
        console.print(f"run stored in [bold]{result.run_dir}[/]; show it with: alumnos report "
                      f"{result.run_dir.name}")
        for line in result.missing:
            err_console.print(f"[yellow]not in this run:[/] {escape(line)}")
        if result.verification_failed:
            err_console.print("[bold red]wrong answers after the load:[/] "
                              f"{escape(result.verification_failed)}")
    if not all(result.thresholds_ok for result in results):
        err_console.print("[bold red]thresholds failed[/] (see alumnos report)")
        raise typer.Exit(ExitCode.THRESHOLDS_CROSSED)


def _print_scenarios() -> None:
    from rich.table import Table

    table = Table(title="k6 scenarios (k6/)")
    for column in ("scenario", "script", "load shape", "what it measures"):
        table.add_column(column, overflow="fold")
    for item in SCENARIOS.values():
        table.add_row(item.name, item.script, item.shape, item.description)
    console.print(table)
    console.print("Closed model by default (--vus loop as fast as answers come); --rate N "
                  "switches any scenario to the open model (N requests/s, --vus the pool).")
