"""What Prometheus, the exporters and the scraping cost during the reference test.

Alternates the default local stack with and without Prometheus (`alumnos up` /
`alumnos up --no-prometheus`), each time running the reference test (spike scenario, 200 VUs),
and prints per round: the CPU seconds that Prometheus and the exporters used during the load
(their processes' own utime + stime, from /proc) as a share of the machine's CPU over the same
wall time (cores x seconds), and the throughput of both arms (what the cost takes from the
service). With Prometheus, k6 also writes into it, as `bench` does by default.

    alumnos seed --count 2000000
    .venv/bin/python -m benchmarks.monitoring_cost --rounds 5 --duration 30s

It starts and stops the stack itself on the default ports (8080..., 9090): nothing else may
hold them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from alumnos_cli.bench.request import BenchRequest, parse_duration
from alumnos_cli.bench.run import run_bench
from alumnos_cli.files import read_json
from alumnos_cli.settings import Settings
from alumnos_cli.stack import local, supervisor
from alumnos_cli.stack.options import ServiceOptions

MONITORING = ("prometheus", "node-exporter", "postgres-exporter", "redis-exporter",
              "process-exporter")
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total


def one_round(settings: Settings, *, prometheus: bool, request: BenchRequest,
              ) -> tuple[float, float, float]:
    """(requests/s, monitoring share of the machine's CPU, machine busy) of one run."""
    local.up(settings, ServiceOptions(prometheus=prometheus))
    try:
        pids = [p.pid for p in supervisor.programs_info(settings.state_dir.resolve())
                if p.name in MONITORING]
        before = _cpu_ticks(pids)
        result = run_bench(settings, request)
        spent = (_cpu_ticks(pids) - before) / TICKS
    finally:
        local.down(settings)
    meta = read_json(result.run_dir / "meta.json")
    generator = meta["load_generator"]
    capacity = float(generator["wall_seconds"]) * int(generator["cpu_count"])
    summary = read_json(result.run_dir / "summary.json")
    rate = float(summary["metrics"]["http_reqs"]["values"]["rate"])
    return rate, (spent / capacity if prometheus else 0.0), float(generator["machine_busy"])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", default="30s")
    parser.add_argument("--vus", type=int, default=200)
    args = parser.parse_args()
    request = BenchRequest(scenario="spike", vus=args.vus,
                           duration_seconds=parse_duration(args.duration))
    rates: dict[bool, list[float]] = {False: [], True: []}
    shares: list[float] = []
    with tempfile.TemporaryDirectory(prefix="monitoring-cost-") as scratch:
        settings = Settings.resolve(results_dir=Path(scratch) / "results",
                                    state_dir=Path(scratch) / "state")
        for round_number in range(1, args.rounds + 1):
            # Alternating which arm goes first, so drift on the machine falls on both.
            for prometheus in (False, True) if round_number % 2 else (True, False):
                rate, share, busy = one_round(settings, prometheus=prometheus, request=request)
                rates[prometheus].append(rate)
                if prometheus:
                    shares.append(share)
                print(f"round {round_number}, Prometheus {'on ' if prometheus else 'off'}: "
                      f"{rate:,.0f} req/s, machine busy {busy:.0%}"
                      + (f", Prometheus and exporters {share:.2%} of the machine's CPU"
                         if prometheus else ""), flush=True)
    print(f"\n{args.vus} VUs, spike, {args.duration} per run, {args.rounds} alternating rounds")
    print(f"Prometheus and exporters: median {statistics.median(shares):.2%} of the machine's "
          f"CPU (min {min(shares):.2%}, max {max(shares):.2%})")
    ratios = [on / off for on, off in zip(rates[True], rates[False], strict=True)]
    print(f"throughput with / without: median {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}); medians "
          f"{statistics.median(rates[True]):,.0f} / {statistics.median(rates[False]):,.0f} "
          "req/s")


if __name__ == "__main__":
    main()
