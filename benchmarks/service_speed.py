"""The service's speed as shares of this machine's ceiling, measured in one session.

For each stack (cache on, then cache off) it starts the service, measures the ping endpoint
(the ceiling: same app and middleware, no I/O) and then the pages, all with the same k6 load
(constant VUs, status checks only), and samples each Granian worker's RSS during every run.

    .venv/bin/python benchmarks/service_speed.py --vus 200 --duration 2m

The table holds req/s, p95, errors, the ratio to the ping of the same stack, and peak worker RSS.
Needs the alumnos table seeded (alumnos seed --count 2000000) and no stack running.
"""

from __future__ import annotations

import argparse
import json
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from alumnos_cli.bench.request import BenchRequest, parse_duration
from alumnos_cli.bench.run import run_bench
from alumnos_cli.database import row_count
from alumnos_cli.report.read import read_record
from alumnos_cli.settings import Settings
from alumnos_cli.stack import local, supervisor
from alumnos_cli.stack.http import http_get
from alumnos_cli.stack.options import ServiceOptions
from alumnos_service.paths import PAGE_PATH, PING_PATH

PAGE = PAGE_PATH + "?limit=100&offset={offset}"
console = Console()


@dataclass(frozen=True)
class Case:
    """One measured endpoint."""

    stack: str
    name: str
    path: str
    requests_per_second: float = 0.0
    p95_ms: float = 0.0
    error_rate: float = 0.0
    ratio_to_ping: float = 0.0
    peak_worker_rss_mib: float = 0.0
    run: str = ""


class RssSampler:
    """Peak resident memory of each process in a process group, sampled twice a second."""

    def __init__(self, group: int) -> None:
        self.group = group
        self.peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit():
                    continue
                try:
                    stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                    if int(stat[2]) != self.group:
                        continue
                    rss_pages = int((proc / "statm").read_text().split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                mib = rss_pages * 4096 / 2**20
                pid = int(proc.name)
                self.peaks[pid] = max(self.peaks.get(pid, 0.0), mib)

    def peak_worker(self) -> float:
        """The largest worker's peak (the group leader, Granian's supervisor, excluded)."""
        workers = [mib for pid, mib in self.peaks.items() if pid != self.group]
        return max(workers, default=0.0)


def replica_group(settings: Settings) -> int:
    """The process group of the only replica: Granian's main process and its workers."""
    programs = supervisor.programs_info(settings.state_dir.resolve())
    return next(p.pid for p in programs if p.name == "replica-1")


def measure(settings: Settings, stack: str, cases: list[tuple[str, str]], args: argparse.Namespace
            ) -> list[Case]:
    """Start a stack, measure each (name, path) with the same load, stop the stack."""
    # The service alone: one replica on the port, no balancer in between.
    options = ServiceOptions(port=args.port, replicas=1, balancer=False,
                                   workers=args.workers, blocking_threads=args.blocking_threads,
                                   cache=stack == "cache on")
    state = local.up(settings, options).state
    measured: list[Case] = []
    try:
        for name, path in cases:
            http_get(f"{state.service.url}{path}")  # warm: the first fill is not the steady state
            console.print(f"[bold]{stack}[/]: {name} ({path}), {args.vus} VUs, {args.duration}")
            request = BenchRequest(scenario="endpoint", vus=args.vus, path=path,
                                   duration_seconds=parse_duration(args.duration))
            with RssSampler(replica_group(settings)) as rss:
                result = run_bench(settings, request)
            run = read_record(result.run_dir).figures
            measured.append(Case(stack=stack, name=name, path=path,
                                 requests_per_second=run.requests_per_second,
                                 p95_ms=run.latency.p95, error_rate=run.error_rate,
                                 peak_worker_rss_mib=rss.peak_worker(), run=result.run_dir.name))
    finally:
        local.down(settings)
    ping = measured[0].requests_per_second
    return [Case(**{**asdict(c), "ratio_to_ping": c.requests_per_second / ping if ping else 0})
            for c in measured]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vus", type=int, default=200)
    parser.add_argument("--duration", default="30s")
    parser.add_argument("--workers", type=int, default=ServiceOptions().workers)
    parser.add_argument("--blocking-threads", type=int,
                        default=ServiceOptions().blocking_threads)
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    settings = Settings.resolve()
    rows = row_count(settings.database_url)
    console.print(f"alumnos rows: {rows:,}" if rows else "alumnos table missing: seed it first")
    deep = max(0, (rows or 0) - 100)
    results = measure(settings, "cache on", [("ping", PING_PATH),
                                             ("page, cache warm", PAGE.format(offset=0))], args)
    results += measure(settings, "cache off", [("ping", PING_PATH),
                                               ("page, no cache", PAGE.format(offset=0)),
                                               ("deep page, no cache", PAGE.format(offset=deep))],
                       args)
    table = Table(title=f"service speed: {args.vus} VUs, {args.duration} each, "
                        f"{args.workers} workers x {args.blocking_threads} threads, {rows:,} rows")
    table.add_column("stack")
    table.add_column("endpoint")
    for column in ("req/s", "p95 ms", "errors", "ratio to ping", "peak worker RSS"):
        table.add_column(column, justify="right")
    for c in results:
        table.add_row(c.stack, c.name, f"{c.requests_per_second:,.0f}", f"{c.p95_ms:,.1f}",
                      f"{c.error_rate:.2%}", f"{c.ratio_to_ping:.2f}",
                      f"{c.peak_worker_rss_mib:,.0f} MiB")
    console.print(table)
    uncached = next(c for c in results if c.name == "page, no cache").requests_per_second
    deep_case = next(c for c in results if c.name.startswith("deep"))
    console.print(f"deep page / page without cache: {deep_case.requests_per_second / uncached:.2f}")
    out = settings.results_dir / f"speed-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"vus": args.vus, "duration": args.duration, "rows": rows,
                               "workers": args.workers,
                               "blocking_threads": args.blocking_threads,
                               "cases": [asdict(c) for c in results]}, indent=2))
    console.print(f"saved {out}")


if __name__ == "__main__":
    main()
