"""What the balancer and its patterns cost, measured in one session with the same k6 load.

Each configuration is started, loaded with constant VUs on the cached page (and on ping), and
stopped; ratios are to the first configuration, the service alone (one Granian replica, no
balancer), so the machine's noise of the day cancels out:

    .venv/bin/python benchmarks/balancer_cost.py --vus 200 --duration 30s

Needs the alumnos table seeded and no stack running. Prints a table; each k6 run is also kept
as a run folder under results/.
"""

from __future__ import annotations

import argparse
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
PAGE = FIRST_PAGE
NO_PATTERNS = replace(LOCAL_PATTERNS, retry=False, circuit_breaker=False)


def configurations(port: int, workers: int) -> dict[str, ServiceOptions]:
    """The stacks compared, the first being the reference."""
    base = ServiceOptions(port=port, workers=workers)
    return {
        f"1 replica x {workers}, no balancer": replace(base, replicas=1, balancer=False),
        f"HAProxy, 1 replica x {workers}, no patterns": replace(base, replicas=1,
                                                               patterns=NO_PATTERNS),
        f"HAProxy, 3 replicas x {workers}, no patterns": replace(base, patterns=NO_PATTERNS),
        f"HAProxy, 3 replicas x {workers}, retry + breaker (default)": base,
    }


def measure(settings: Settings, options: ServiceOptions, path: str, vus: int,
            seconds: int) -> tuple[float, float, float]:
    """req/s, p95 ms and error rate of one load on a freshly started stack."""
    state = local.up(settings, options).state
    try:
        http_get(f"{state.service.url}{path}")  # fill the cache first
        request = BenchRequest(scenario="endpoint", vus=vus, path=path,
                               duration_seconds=seconds)
        run = read_record(run_bench(settings, request).run_dir).figures
        return run.requests_per_second, run.latency.p95, run.error_rate
    finally:
        local.down(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vus", type=int, default=200)
    parser.add_argument("--duration", default="30s")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8190)
    parser.add_argument("--path", default=PAGE)
    args = parser.parse_args()
    settings = Settings.resolve()
    seconds = parse_duration(args.duration)
    table = Table(title=f"{args.path}, {args.vus} VUs, {args.duration} per configuration")
    for column in ("configuration", "req/s", "p95 ms", "errors", "ratio"):
        table.add_column(column, justify="left" if column == "configuration" else "right")
    reference = None
    for name, options in configurations(args.port, args.workers).items():
        console.print(f"measuring: {name}")
        rate, p95, errors = measure(settings, options, args.path, args.vus, seconds)
        reference = reference or rate
        table.add_row(name, f"{rate:,.0f}", f"{p95:,.1f}", f"{errors:.2%}",
                      f"{rate / reference:.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
