"""The service's speed as shares of this machine's ceiling, in alternating rounds of one session.

For each stack (cache on, then cache off) it starts the service alone (one replica, no
balancer) and, round after round, loads each endpoint with the same k6 load (the endpoint
scenario: constant VUs, status checks only, bodies discarded), the order reversed every other
round so that drift on a shared machine falls on every case alike. Each Granian worker's RSS is
sampled during every run. A case's ratio to ping is taken within its round; the table shows the
median of the rounds and their range.

    .venv/bin/python benchmarks/service_speed.py --rounds 5 --vus 50 --duration 15s

Cases: ping (the ceiling: same app and middleware, no I/O); with the cache on, a warm page;
with it off, random pages (a random offset of a full page per request), offset 0 and the
deepest full page. CPU per request, by component (the replica's processes, every PostgreSQL
process, k6), is each run's median. Needs the alumnos table seeded and no stack running.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

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

PAGE = PAGE_PATH + "?limit=100&offset={}"
RANDOM_PAGES = PAGE.format("{offset}")  # endpoint.js draws an offset per request
console = Console(width=150)


@dataclass(frozen=True)
class Sample:
    """One run of one case; CPU in milliseconds per request, by component."""

    requests_per_second: float
    p95_ms: float
    error_rate: float
    peak_worker_rss_mib: float
    run: str
    service_cpu_ms: float = 0.0
    postgres_cpu_ms: float = 0.0
    k6_cpu_ms: float = 0.0


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(group: int) -> dict[str, float]:
    """CPU seconds so far of the replica's processes (its process group) and of every
    PostgreSQL process."""
    totals = {"service": 0.0, "postgres": 0.0}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        comm, fields = stat[stat.index("(") + 1:stat.rindex(")")], stat.rsplit(")", 1)[1].split()
        key = "service" if int(fields[2]) == group else "postgres" if comm == "postgres" \
            else None
        if key is not None:
            totals[key] += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return totals


@dataclass(frozen=True)
class Spread:
    """The median of the rounds and their range."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))

    def shown(self, fmt: str) -> str:
        return f"{self.median:{fmt}} ({self.low:{fmt}}-{self.high:{fmt}})"


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


def run_case(settings: Settings, path: str, args: argparse.Namespace) -> Sample:
    """One k6 run of the endpoint scenario on path, the workers' memory sampled meanwhile."""
    request = BenchRequest(scenario="endpoint", vus=args.vus, path=path,
                           duration_seconds=parse_duration(args.duration))
    group = replica_group(settings)
    before = cpu_seconds(group)
    with RssSampler(group) as rss:
        result = run_bench(settings, request)
    after = cpu_seconds(group)
    record = read_record(result.run_dir)
    figures, requests = record.figures, max(record.figures.requests, 1)
    k6_seconds = record.meta.generator.k6_cores * record.meta.duration_seconds \
        if record.meta.generator else 0.0
    return Sample(figures.requests_per_second, figures.latency.p95, figures.error_rate,
                  rss.peak_worker(), result.run_dir.name,
                  service_cpu_ms=(after["service"] - before["service"]) * 1000 / requests,
                  postgres_cpu_ms=(after["postgres"] - before["postgres"]) * 1000 / requests,
                  k6_cpu_ms=k6_seconds * 1000 / requests)


def measure(settings: Settings, cases: dict[str, str], args: argparse.Namespace, *,
            cache: bool) -> dict[str, list[Sample]]:
    """Start a stack, run every case once per round in alternating order, stop the stack."""
    # The service alone: no balancer, and no Prometheus scraping it or taking k6's samples.
    options = ServiceOptions(port=args.port, replicas=1, balancer=False, workers=args.workers,
                             blocking_threads=args.blocking_threads, cache=cache,
                             prometheus=False)
    state = local.up(settings, options).state
    samples: dict[str, list[Sample]] = {name: [] for name in cases}
    try:
        for path in cases.values():  # warm: the first fill is not the steady state
            http_get(f"{state.service.url}{path.format(offset=0)}")
        for round_no in range(args.rounds):
            order = list(cases) if round_no % 2 == 0 else list(reversed(cases))
            for name in order:
                console.print(f"[bold]cache {'on' if cache else 'off'}[/], round "
                              f"{round_no + 1}/{args.rounds}: {name}")
                samples[name].append(run_case(settings, cases[name], args))
    finally:
        local.down(settings)
    return samples


def ratios(samples: dict[str, list[Sample]], case: str, base: str) -> Spread:
    """case / base, taken within each round."""
    return Spread.of([c.requests_per_second / b.requests_per_second
                      for c, b in zip(samples[case], samples[base], strict=True)])


def summary_rows(stack: str, samples: dict[str, list[Sample]]) -> list[dict[str, object]]:
    """One row per case: req/s, ratio to ping, p95, worst error rate, peak worker RSS."""
    rows: list[dict[str, object]] = []
    for name, runs in samples.items():
        rows.append({
            "stack": stack, "case": name,
            "requests_per_second": asdict(Spread.of([r.requests_per_second for r in runs])),
            "ratio_to_ping": asdict(ratios(samples, name, "ping")),
            "p95_ms": asdict(Spread.of([r.p95_ms for r in runs])),
            "max_error_rate": max(r.error_rate for r in runs),
            "cpu_ms_per_request": {part: statistics.median(getattr(r, f"{part}_cpu_ms")
                                                           for r in runs)
                                   for part in ("service", "postgres", "k6")},
            "peak_worker_rss_mib": max(r.peak_worker_rss_mib for r in runs),
            "runs": [asdict(r) for r in runs]})
    return rows


def show(rows: list[dict[str, object]], title: str) -> None:
    table = Table(title=title)
    for column in ("stack", "endpoint", "req/s", "ratio to ping", "p95 ms", "errors",
                   "peak worker RSS", "CPU ms/request: service, PostgreSQL, k6"):
        table.add_column(column, justify="left" if column in ("stack", "endpoint") else "right")
    for row in rows:
        rps, ratio, p95 = (Spread(**row[k]) for k in  # type: ignore[arg-type]
                           ("requests_per_second", "ratio_to_ping", "p95_ms"))
        table.add_row(str(row["stack"]), str(row["case"]), rps.shown(",.0f"),
                      ratio.shown(".2f"), p95.shown(",.1f"), f"{row['max_error_rate']:.2%}",
                      f"{row['peak_worker_rss_mib']:,.0f} MiB",
                      ", ".join(f"{ms:.2f}" for ms in cast(
                          dict[str, float], row["cpu_ms_per_request"]).values()))
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--vus", type=int, default=50)
    parser.add_argument("--duration", default="15s")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--blocking-threads", type=int,
                        default=ServiceOptions().blocking_threads)
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--stacks", choices=("both", "off", "on"), default="both",
                        help="which stacks to measure: cache on, cache off, or both")
    args = parser.parse_args()
    settings = Settings.resolve()
    rows_in_table = row_count(settings.database_url)
    if not rows_in_table:
        raise SystemExit("the alumnos table is missing or empty: run alumnos seed first")
    console.print(f"alumnos rows: {rows_in_table:,}")
    deep = max(0, rows_in_table - 100)
    rows: list[dict[str, object]] = []
    if args.stacks in ("both", "on"):
        rows += summary_rows("cache on", measure(settings, {
            "ping": PING_PATH, "page 0, cache warm": PAGE.format(0)}, args, cache=True))
    if args.stacks in ("both", "off"):
        off = measure(settings, {
            "ping": PING_PATH, "random pages": RANDOM_PAGES, "page 0": PAGE.format(0),
            f"page at {deep:,}": PAGE.format(deep)}, args, cache=False)
        rows += summary_rows("cache off", off)
        deep_ratio = ratios(off, f"page at {deep:,}", "page 0")
        console.print(f"deepest page / page 0, cache off: {deep_ratio.shown('.2f')}")
    show(rows, f"service speed: {args.rounds} rounds, {args.vus} VUs, {args.duration} each, "
               f"{args.workers} workers x {args.blocking_threads} threads, "
               f"{rows_in_table:,} rows (median of the rounds, range)")
    out = settings.results_dir / f"speed-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rounds": args.rounds, "vus": args.vus,
                               "duration": args.duration, "rows": rows_in_table,
                               "workers": args.workers,
                               "blocking_threads": args.blocking_threads, "cases": rows},
                              indent=2))
    console.print(f"saved {out}")


if __name__ == "__main__":
    main()
