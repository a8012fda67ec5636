"""alumnos patterns: prove the resilience patterns on the running stack."""

from __future__ import annotations

from typing import Annotated

import typer

from alumnos_cli.commands.common import (
    ResultsDir,
    StateDir,
    console,
    given_flags,
    handle_errors,
    requires,
    resolve_settings,
)
from alumnos_cli.errors import ExitCode, InvalidOption
from alumnos_cli.proof.options import (
    FAIL,
    PASS,
    PATTERNS,
    Pattern,
    ProofOptions,
    refuse_unused_flags,
    validate,
)

VERDICT_STYLE = {PASS: "[bold green]pass[/]", FAIL: "[bold red]FAIL[/]"}


@handle_errors
def patterns(
    ctx: typer.Context,
    only: Annotated[list[Pattern] | None, typer.Argument(
        metavar="PATTERN", help="Patterns to prove (all when omitted).", show_default=False)]
    = None,
    vus: Annotated[int, typer.Option("--vus", help="VUs of the load while a replica is "
                                     "killed.")] = 200,
    retry_seconds: Annotated[int, typer.Option("--retry-seconds", help="Length of that load "
                                               "(the replica dies at a third of it).")] = 15,
    breaker_vus: Annotated[int, typer.Option("--breaker-vus", help="VUs while a replica is "
                                             "slow.")] = 50,
    breaker_phase_seconds: Annotated[int, typer.Option(
        "--breaker-phase-seconds", help="Length of each load phase of the breaker proof.")] = 5,
    victim: Annotated[str | None, typer.Option("--victim", help="Replica to kill or slow "
                                               "(default replica-2).")] = None,
    overload_vus: Annotated[int, typer.Option(
        "--overload-vus", help="VUs of the overload proof (needs alumnos up --no-cache).")] = 300,
    overload_seconds: Annotated[int, typer.Option(
        "--overload-seconds", help="Length of each of its two loads (breaker on, then "
        "paused).")] = 30,
    results_dir: ResultsDir = None,
    state_dir: StateDir = None,
) -> None:
    """Prove load balancing, retry, rate limit, circuit breaker, cache and overload handling.

    Example: alumnos patterns   (after alumnos up --rate-limit 100/s --fault-injection)
             alumnos patterns overload   (after alumnos up --no-cache)

    Exit codes: 0 every proof held (or was skipped), 1 error, 2 usage error, 3 a proof failed.
    """
    for option, value, low, high in (("--vus", vus, 1, 5000), ("--breaker-vus", breaker_vus, 1,
                                      5000), ("--retry-seconds", retry_seconds, 3, 600),
                                     ("--breaker-phase-seconds", breaker_phase_seconds, 2, 120),
                                     ("--overload-vus", overload_vus, 1, 5000),
                                     ("--overload-seconds", overload_seconds, 3, 600)):
        if not low <= value <= high:
            raise InvalidOption(option, f"{option} must be between {low} and {high}, got "
                                f"{value}")
    options = ProofOptions(only=tuple(p.value for p in only) if only else PATTERNS, vus=vus,
                           retry_seconds=retry_seconds, breaker_vus=breaker_vus,
                           breaker_phase_seconds=breaker_phase_seconds, victim=victim,
                           overload_vus=overload_vus, overload_seconds=overload_seconds)
    validate(options)
    refuse_unused_flags(given_flags(ctx), options.only)
    with requires("stack"):
        from alumnos_cli.proof.run import prove
    settings = resolve_settings(results_dir=results_dir, state_dir=state_dir)
    with console.status("proving ...") as status:

        def progress(text: str) -> None:
            console.log(text)
            status.update(text)

        report = prove(settings, options, progress=progress)
    from rich.table import Table

    table = Table(title="resilience patterns, proven on the running stack", show_lines=True)
    for column in ("pattern", "what was done", "what was observed", "verdict"):
        table.add_column(column, overflow="fold")
    for result in report.results:
        table.add_row(result.pattern, result.action, result.observed,
                      VERDICT_STYLE.get(result.verdict, f"[yellow]{result.verdict}[/]"))
    console.print(table)
    for result in report.results:
        hint = result.evidence.get("hint")
        if hint:
            console.print(f"[yellow]{result.pattern} skipped:[/] {hint}")
    console.print(f"saved in {report.path}")
    if not report.ok:
        raise typer.Exit(ExitCode.PROOF_FAILED)
