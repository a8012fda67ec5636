"""How much of what k6 can drive `alumnos bench` reports: its scenarios against a bare k6 script.

Alternates, round after round on the running stack and the same page: a bare k6 script
(constant VUs, one GET, a status check, bodies discarded: benchmarks/k6/bare.js), then
`alumnos bench` as a user runs it (the spike scenario, the reference test, with its checks,
time series, live progress and p99), then `alumnos bench --scenario endpoint`. Each bench
run's throughput is divided by the bare script's of the same round; the table gives every
round, and the median ratio with its spread:

    .venv/bin/python benchmarks/generator_cost.py --vus 200 --duration 15s --rounds 5

Needs a running stack (alumnos up) with the table seeded; about a minute per round.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from alumnos_cli.bench.k6 import find_k6
from alumnos_cli.report.read import read_record
from alumnos_cli.runfolder import list_runs
from alumnos_cli.settings import Settings
from alumnos_cli.stack.state import running_state
from alumnos_service.paths import FIRST_PAGE

BARE_SCRIPT = Path(__file__).parent / "k6" / "bare.js"
console = Console()


def bare(url: str, vus: int, duration: str) -> tuple[float, float]:
    """(req/s, k6 CPU ms per 1,000 requests) of the bare script."""
    with tempfile.TemporaryDirectory() as folder:
        summary = Path(folder) / "summary.json"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([str(find_k6()), "run", "--quiet", "-e", f"VUS={vus}", "-e",
                        f"DURATION={duration}", "-e", f"BASE_URL={url}", "-e",
                        f"TARGET_PATH={FIRST_PAGE}", "-e", f"SUMMARY_PATH={summary}",
                        str(BARE_SCRIPT)], check=True, capture_output=True,
                       env=dict(os.environ, K6_NO_USAGE_REPORT="true"))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        requests = json.loads(summary.read_text())["metrics"]["http_reqs"]["values"]
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return float(requests["rate"]), 1_000_000 * cpu / requests["count"]


def bench(settings: Settings, vus: int, duration: str, *extra: str) -> tuple[float, float]:
    """(req/s, k6 CPU ms per 1,000 requests) of an `alumnos bench` run, as a user runs it."""
    subprocess.run([sys.executable, "-m", "alumnos_cli.main", "bench", "--vus", str(vus),
                    "--duration", duration, "--results-dir", str(settings.results_dir),
                    *extra], check=True, capture_output=True)
    record = read_record(list_runs(settings.results_dir)[-1])
    costs = record.meta.costs
    return record.figures.requests_per_second, (costs.per_1000("k6") or 0.0) if costs else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vus", type=int, default=200)
    parser.add_argument("--duration", default="15s")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    settings = Settings.resolve()
    state = running_state(settings.state_dir)
    if state is None:
        sys.exit("no running stack: alumnos up first")
    kinds = {"bare k6 script": lambda: bare(state.service.url, args.vus, args.duration),
             "alumnos bench (spike)": lambda: bench(settings, args.vus, args.duration),
             "alumnos bench --scenario endpoint": lambda: bench(
                 settings, args.vus, args.duration, "--scenario", "endpoint")}
    rates: dict[str, list[float]] = {kind: [] for kind in kinds}
    cpu: dict[str, list[float]] = {kind: [] for kind in kinds}
    for round_number in range(1, args.rounds + 1):
        for kind, run in kinds.items():
            console.print(f"round {round_number}/{args.rounds}: {kind}")
            rate, per_1000 = run()
            rates[kind].append(rate)
            cpu[kind].append(per_1000)
    show(rates, cpu, args)


def show(rates: dict[str, list[float]], cpu: dict[str, list[float]],
         args: argparse.Namespace) -> None:
    """Every round, and each kind's median ratio to the bare script with its spread."""
    table = Table(title=f"{FIRST_PAGE}, {args.vus} VUs, {args.duration} per run, "
                        f"{args.rounds} alternating rounds")
    for column in ("generator", "req/s per round", "ratio to bare per round",
                   "median ratio (min-max)", "k6 CPU ms per 1,000 requests (median)"):
        table.add_column(column)
    bare_rates = rates["bare k6 script"]
    for kind in rates:
        ratios = [rate / base for rate, base in zip(rates[kind], bare_rates, strict=True)]
        table.add_row(kind, ", ".join(f"{r:,.0f}" for r in rates[kind]),
                      ", ".join(f"{r:.2f}" for r in ratios),
                      f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})",
                      f"{statistics.median(cpu[kind]):,.0f}")
    console.print(table)


if __name__ == "__main__":
    main()
