"""The same load from this machine alone, from one generator host and from two: throughput,
p95, errors and what each host's k6 spent, in alternating rounds.

Needs the test hosts and a stack on their bridge (README, "Beyond one machine"):

    scripts/testhosts up 2
    alumnos up --host 10.213.0.1
    .venv/bin/python benchmarks/generators_compared.py --vus 200 --duration 15s --rounds 5
    alumnos down; scripts/testhosts down

Each round runs `alumnos bench` three ways, in turn: without --generator (k6 here, as
usual), with one host (10.213.0.11), with two (10.213.0.11 and .12); the table gives the
median of each arm with its range. The namespaces are this machine's, so the hosts share its
two cores with the stack: this shows what splitting costs and that the figures agree, not
what a second real machine would add.
"""

from __future__ import annotations

import argparse
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

HOSTS = ("ssh://root@10.213.0.11", "ssh://root@10.213.0.12")
SSH_CONFIG = "/run/alumnos-testhosts/ssh_config"
URL = "http://10.213.0.1:8080"
console = Console()


def one_run(results: Path, vus: int, duration: str, hosts: tuple[str, ...]) -> dict[str, float]:
    """One `alumnos bench` run; its throughput, p95, error rate and generators' k6 CPU."""
    generators = [arg for host in hosts for arg in ("--generator", f"{host}?k6={find_k6()}")]
    done = subprocess.run([sys.executable, "-m", "alumnos_cli.main", "bench", "--url", URL,
                           "--vus", str(vus), "--duration", duration, "--results-dir",
                           str(results), "--ssh-config", SSH_CONFIG, *generators],
                          capture_output=True, text=True, check=False)
    if done.returncode not in (0, 99):
        sys.exit(f"alumnos bench failed: {done.stderr[-2000:]}")
    record = read_record(list_runs(results)[-1])
    figures = record.figures
    meta = record.recorded_meta.get("load_generator") or {}
    cpu = sum(row.get("cpu_seconds") or 0 for row in meta.get("generators", [])) \
        or meta.get("k6_cpu_seconds", 0)
    return {"rps": figures.requests_per_second, "p95": figures.latency.p95,
            "errors": figures.error_rate, "k6_cpu_per_1000": 1_000_000 * cpu / figures.requests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vus", type=int, default=200)
    parser.add_argument("--duration", default="15s")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    arms = {"this machine": (), "1 host": HOSTS[:1], "2 hosts": HOSTS}
    found: dict[str, list[dict[str, float]]] = {arm: [] for arm in arms}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(1, args.rounds + 1):
            for arm, hosts in arms.items():
                found[arm].append(one_run(Path(folder), args.vus, args.duration, hosts))
                latest = found[arm][-1]
                console.print(f"round {round_} {arm}: {latest['rps']:,.0f} req/s, p95 "
                              f"{latest['p95']:.1f} ms")
    show(found)


def show(found: dict[str, list[dict[str, float]]]) -> None:
    table = Table(title="the same load from this machine, one host, two hosts "
                  "(median, range)")
    for column in ("from", "req/s", "p95 ms", "errors", "k6 CPU ms / 1,000 req"):
        table.add_column(column, justify="right")
    for arm, runs in found.items():
        cells = [_median(runs, key, digits) for key, digits in
                 (("rps", 0), ("p95", 1), ("errors", 4), ("k6_cpu_per_1000", 0))]
        table.add_row(arm, *cells)
    console.print(table)


def _median(runs: list[dict[str, float]], key: str, digits: int) -> str:
    values = [run[key] for run in runs]
    return (f"{statistics.median(values):,.{digits}f} ({min(values):,.{digits}f}-"
            f"{max(values):,.{digits}f})")


if __name__ == "__main__":
    main()
