"""What admission control costs: HAProxy's maxconn per replica, a few per slot or many.

The default stack admits `admitted_per_slot` requests per slot (Granian worker x blocking
thread) into each replica and queues the rest in HAProxy. Exactly one per slot keeps every
wait in HAProxy's queue, where it is seen and bounded, but a slot idles between a response and
HAProxy's next dispatch; many per slot (64 per replica before issue 12) hides the wait inside
Granian. Each round starts the default stack once per setting, loads the cached page with the
same k6 load, and stops it; settings alternate within every round, so the machine's noise
spreads over all of them. Prints each setting's median req/s with its range, and its ratio to
the default:

    .venv/bin/python benchmarks/admission_cost.py --rounds 5 --vus 200 --duration 20s

Needs the alumnos table seeded and no stack running; about 25 s per run.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace

from rich.console import Console
from rich.table import Table

from alumnos_cli.bench.request import BenchRequest, parse_duration
from alumnos_cli.bench.run import run_bench
from alumnos_cli.report.read import read_record
from alumnos_cli.settings import Settings
from alumnos_cli.stack import local
from alumnos_cli.stack.http import http_get
from alumnos_cli.stack.options import LOCAL_PATTERNS, ServiceOptions
from alumnos_service.paths import FIRST_PAGE

console = Console()
SETTINGS = (1, LOCAL_PATTERNS.admitted_per_slot, 16)  # requests admitted per slot


def measure(settings: Settings, options: ServiceOptions, vus: int, seconds: int) -> float:
    """req/s of one load on a freshly started stack (errors make the run count as 0)."""
    state = local.up(settings, options).state
    try:
        http_get(f"{state.service.url}{FIRST_PAGE}")  # the page cached before the load
        request = BenchRequest(scenario="endpoint", vus=vus, path=FIRST_PAGE,
                               duration_seconds=seconds)
        figures = read_record(run_bench(settings, request).run_dir).figures
        return figures.requests_per_second if figures.error_rate == 0 else 0.0
    finally:
        local.down(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--vus", type=int, default=200)
    parser.add_argument("--duration", default="20s")
    parser.add_argument("--port", type=int, default=8190)
    args = parser.parse_args()
    settings = Settings.resolve()
    seconds = parse_duration(args.duration)
    base = ServiceOptions(port=args.port)
    slots = base.workers * base.blocking_threads
    rates: dict[int, list[float]] = {admitted: [] for admitted in SETTINGS}
    for round_number in range(1, args.rounds + 1):
        for admitted in SETTINGS:
            console.print(f"round {round_number}: maxconn {slots * admitted} per replica")
            options = replace(base, patterns=replace(LOCAL_PATTERNS, admitted_per_slot=admitted))
            rates[admitted].append(measure(settings, options, args.vus, seconds))
    reference = statistics.median(rates[LOCAL_PATTERNS.admitted_per_slot])
    table = Table(title=f"{FIRST_PAGE} (cached), {args.vus} VUs, {args.duration}, "
                        f"{args.rounds} alternating rounds, {slots} slots per replica")
    for column in ("admitted per slot", "maxconn per replica", "req/s median",
                   "range", "ratio to default"):
        table.add_column(column, justify="right")
    for admitted, values in rates.items():
        median = statistics.median(values)
        table.add_row(str(admitted), str(slots * admitted), f"{median:,.0f}",
                      f"{min(values):,.0f}-{max(values):,.0f}", f"{median / reference:.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
