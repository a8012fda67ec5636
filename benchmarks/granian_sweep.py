"""How Granian's WSGI options move the figures: workers x blocking threads (x backpressure).

Each combination starts the service without cache, measures the ping endpoint and the first
page with the same k6 load, and stops it; the table gives both and their ratio.

    .venv/bin/python benchmarks/granian_sweep.py --workers 1 2 4 --threads 2 4 8 --duration 20s
"""

from __future__ import annotations

import argparse
import itertools

from rich.console import Console
from rich.table import Table

from alumnos_cli.bench.request import BenchRequest, parse_duration
from alumnos_cli.bench.run import run_bench
from alumnos_cli.report.read import read_record
from alumnos_cli.settings import Settings
from alumnos_cli.stack import local
from alumnos_cli.stack.options import ServiceOptions
from alumnos_service.paths import FIRST_PAGE, PING_PATH

console = Console()
PATHS = {"ping": PING_PATH, "page": FIRST_PAGE}


def measure(settings: Settings, options: ServiceOptions, vus: int,
            duration: int) -> dict[str, tuple[float, float]]:
    """req/s and p95 of ping and of an uncached page on one configuration."""
    local.up(settings, options)
    try:
        measured = {}
        for name, path in PATHS.items():
            request = BenchRequest(scenario="endpoint", vus=vus, path=path,
                                   duration_seconds=duration)
            run = read_record(run_bench(settings, request).run_dir).figures
            measured[name] = (run.requests_per_second, run.latency.p95)
        return measured
    finally:
        local.down(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--vus", type=int, default=200)
    parser.add_argument("--duration", default="20s")
    parser.add_argument("--port", type=int, default=8091)
    args = parser.parse_args()
    settings = Settings.resolve()
    table = Table(title=f"Granian sweep, cache off, {args.vus} VUs, {args.duration} per run")
    for column in ("workers", "blocking threads", "ping req/s", "page req/s", "page p95 ms",
                   "page / ping"):
        table.add_column(column, justify="right")
    for workers, threads in itertools.product(args.workers, args.threads):
        console.print(f"workers {workers}, blocking threads {threads}")
        options = ServiceOptions(port=args.port, replicas=1, balancer=False,
                                       workers=workers, blocking_threads=threads, cache=False)
        result = measure(settings, options, args.vus, parse_duration(args.duration))
        ping, page = result["ping"], result["page"]
        table.add_row(str(workers), str(threads), f"{ping[0]:,.0f}", f"{page[0]:,.0f}",
                      f"{page[1]:,.1f}", f"{page[0] / ping[0]:.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
