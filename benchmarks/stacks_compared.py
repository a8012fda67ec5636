"""The reference test on both stacks, like for like: local mode (HAProxy, processes) against
compose mode (Traefik, containers on a Docker engine).

Both stacks run the same service with the same Granian settings (the image's: 4 workers x 4
blocking threads per replica, 3 replicas), the same patterns (retry and breaker on, rate limit
off) and the same 2,000,000 seeded rows (local: the PostgreSQL at ALUMNOS_DATABASE_URL; compose:
its own container, seeded with the same seed). The script starts both, then alternates the
reference test (`alumnos bench --vus 200`, the spike scenario) between them for every round,
so the machine's noise spreads over both, and stops them. Prints each stack's median with its
range, and compose's ratio to local:

    DOCKER_HOST=unix:///path/to/docker.sock \\
        .venv/bin/python benchmarks/stacks_compared.py --rounds 5 --duration 30s

Needs `alumnos images --offline` (or a registry), the local table seeded, nothing running on
8080-8083 or the compose ports; seeds the compose database on first use (about 20 s).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from alumnos_cli.bench.request import BenchRequest, parse_duration
from alumnos_cli.bench.run import run_bench
from alumnos_cli.database import row_count
from alumnos_cli.report.read import read_record
from alumnos_cli.seed.load import seed_alumnos
from alumnos_cli.settings import Settings
from alumnos_cli.stack import compose, local
from alumnos_cli.stack.granian import GranianSpec
from alumnos_cli.stack.options import LOCAL_PATTERNS, ServiceOptions

console = Console(width=140)
ROWS = 2_000_000
STACKS = ("local (HAProxy)", "compose (Traefik)")


@dataclass(frozen=True)
class Figures:
    """What one run of the reference test gave."""

    requests: int
    rate: float
    p95_ms: float
    errors: int


def measure(settings: Settings, vus: int, seconds: int) -> Figures:
    """One reference test against the stack whose state is in settings.state_dir."""
    request = BenchRequest(scenario="spike", vus=vus, duration_seconds=seconds)
    figures = read_record(run_bench(settings, request).run_dir).figures
    return Figures(figures.requests, figures.requests_per_second, figures.latency.p95,
                   round(figures.error_rate * figures.requests))


def start(local_settings: Settings, compose_dir: Path) -> Settings:
    """Both stacks up; the compose stack's settings (seeded if its table is short)."""
    image = GranianSpec()
    local.up(local_settings, ServiceOptions(workers=image.workers,
                                            blocking_threads=image.blocking_threads))
    record = compose.up(compose_dir, LOCAL_PATTERNS, 3, cache=True,
                        say=lambda message: console.print(f"compose: {message}"))
    compose_settings = replace(local_settings, state_dir=compose_dir,
                               database_url=record.database_url, redis_url=record.redis_url)
    if (row_count(record.database_url) or 0) < ROWS:
        console.print(f"seeding the compose database with {ROWS:,} rows ...")
        seed_alumnos(compose_settings, count=ROWS)
    return compose_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--vus", type=int, default=200)
    parser.add_argument("--duration", default="30s")
    args = parser.parse_args()
    seconds = parse_duration(args.duration)
    work = Path(tempfile.mkdtemp(prefix="alumnos-stacks-"))
    local_settings = replace(Settings.resolve(), state_dir=work / "local",
                             results_dir=work / "results")
    figures: dict[str, list[Figures]] = {name: [] for name in STACKS}
    try:
        compose_settings = start(local_settings, work / "compose")
        for round_number in range(1, args.rounds + 1):
            for name, settings in zip(STACKS, (local_settings, compose_settings), strict=True):
                console.print(f"round {round_number}: {name}")
                figures[name].append(measure(settings, args.vus, seconds))
    finally:
        local.down(local_settings)
        compose.down(work / "compose")
    show(figures, args)


def show(figures: dict[str, list[Figures]], args: argparse.Namespace) -> None:
    """One row per stack: medians with ranges, and the ratio to local mode."""
    reference = statistics.median(f.rate for f in figures[STACKS[0]])
    table = Table(title=f"spike (the reference test), {args.vus} VUs, {args.duration}, "
                        f"{args.rounds} alternating rounds")
    for column in ("stack", "requests", "req/s median", "req/s range", "p95 ms median",
                   "errors", "ratio to local"):
        table.add_column(column, justify="right")
    for name, runs in figures.items():
        rates = [f.rate for f in runs]
        table.add_row(name, f"{statistics.median(f.requests for f in runs):,.0f}",
                      f"{statistics.median(rates):,.0f}", f"{min(rates):,.0f}-{max(rates):,.0f}",
                      f"{statistics.median(f.p95_ms for f in runs):,.0f}",
                      f"{sum(f.errors for f in runs):,}",
                      f"{statistics.median(rates) / reference:.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
