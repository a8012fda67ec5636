"""What recording the per-second time series costs k6, measured in one session.

Alternates runs with and without the recording (k6's web-dashboard aggregates, 1 s period)
on the same endpoint with the same VUs, and compares the median throughput of each:

    .venv/bin/python benchmarks/timeseries_cost.py --vus 200 --duration 20s --rounds 3

Needs a running stack (alumnos up) with the table seeded. The target is the ping endpoint by
default: the cheaper the request, the more a cost in k6 shows.
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
from alumnos_service.paths import PING_PATH

console = Console()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vus", type=int, default=200)
    parser.add_argument("--duration", default="20s")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--path", default=PING_PATH)
    args = parser.parse_args()
    settings = Settings.resolve()
    base = BenchRequest(scenario="endpoint", vus=args.vus, path=args.path,
                        duration_seconds=parse_duration(args.duration))
    rates: dict[bool, list[float]] = {True: [], False: []}
    for round_number in range(1, args.rounds + 1):
        for recording in (False, True):
            console.print(f"round {round_number}: time series {'on' if recording else 'off'}")
            result = run_bench(settings, replace(base, timeseries=recording))
            rates[recording].append(read_record(result.run_dir).figures.requests_per_second)
    table = Table(title=f"{args.path}, {args.vus} VUs, {args.duration} per run")
    for column in ("time series", "req/s per round", "median req/s"):
        table.add_column(column)
    for recording in (False, True):
        table.add_row("on" if recording else "off",
                      ", ".join(f"{r:,.0f}" for r in rates[recording]),
                      f"{statistics.median(rates[recording]):,.0f}")
    console.print(table)
    cost = 1 - statistics.median(rates[True]) / statistics.median(rates[False])
    console.print(f"cost of the recording: {cost:.1%} of k6's throughput (median against median)")


if __name__ == "__main__":
    main()
