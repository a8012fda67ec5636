"""What writing into Prometheus costs k6: its CPU seconds per 1,000 requests, with and without.

Alternates runs without and with k6's Prometheus remote write (native histograms, 1 s pushes,
as `alumnos bench --prometheus` runs it) on the same endpoint scenario and VUs, against a
throwaway page on 127.0.0.1 that answers in 5-50 ms, and a throwaway Prometheus:

    .venv/bin/python -m benchmarks.remote_write_cost --vus 20 --duration 10s --rounds 5

(from the repository root: it borrows the tests' Prometheus helper). Against a running stack and
its own Prometheus instead, with the reference test's scenario (spike, every body parsed):

    alumnos up && alumnos seed --count 2000000
    .venv/bin/python -m benchmarks.remote_write_cost --url http://127.0.0.1:8080 \
        --prometheus http://127.0.0.1:9090 --vus 200 --duration 20s --rounds 5
 k6's CPU is its own
rusage (start-up and summary included, the same in both arms); each remote-write run also
prints Prometheus' p95 beside k6's, as the smoke test (tests/test_remote_write.py) checks it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from alumnos_cli.bench.k6 import THRESHOLDS_FAILED, find_k6
from alumnos_cli.bench.request import BenchRequest, parse_duration
from alumnos_cli.bench.run import run_scenario
from alumnos_cli.bench.scenarios import SCENARIOS, scripts_dir
from alumnos_cli.files import read_json
from alumnos_cli.runfolder import SUMMARY_FILE
from tests.prometheus_server import running_prometheus, scalar, slow_page


def one_run(url: str, request: BenchRequest, folder: Path,
            prometheus: str | None) -> tuple[float, int, str]:
    """(k6 CPU seconds per 1,000 requests, requests, what Prometheus holds) of one run."""
    folder.mkdir()
    request = replace(request, prometheus_url=prometheus)
    outcome = run_scenario(find_k6(), scripts_dir() / SCENARIOS[request.scenario].script,
                           request, url, folder)
    if outcome.exit_code not in (0, THRESHOLDS_FAILED):
        raise SystemExit(f"k6 exited with {outcome.exit_code}: see {outcome.log}")
    metrics = read_json(folder / SUMMARY_FILE)["metrics"]
    requests = int(metrics["http_reqs"]["values"]["count"])
    held = ""
    if prometheus is not None:
        one = f'{{run_id="{folder.name}"}}'
        p95 = scalar(prometheus, f"histogram_quantile(0.95, sum(k6_http_req_duration_seconds"
                                 f"{one}))")
        counted = scalar(prometheus, f"sum(k6_http_reqs_total{one})")
        held = (f"\n    p95: k6 {metrics['http_req_duration']['values']['p(95)']:.2f} ms, "
                f"Prometheus {(p95 or 0) * 1000:.2f} ms; requests: k6 {requests}, "
                f"Prometheus {counted or 0:.0f}")
    return float(outcome.usage["k6_cpu_seconds"]) * 1000 / requests, requests, held


@contextmanager
def _prometheus(given: str | None) -> Iterator[str]:
    if given:
        yield given
        return
    with running_prometheus() as prometheus:
        yield prometheus


@contextmanager
def _target(given: str | None) -> Iterator[str]:
    if given:
        yield given
        return
    with slow_page() as url:
        yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--vus", type=int, default=20)
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--url", help="a running stack to load (spike scenario) instead of a "
                        "throwaway page")
    parser.add_argument("--prometheus", help="with --url: the Prometheus k6 writes into")
    args = parser.parse_args()
    duration = parse_duration(args.duration)
    base = (BenchRequest(scenario="spike", vus=args.vus, duration_seconds=duration)
            if args.url else BenchRequest(scenario="endpoint", vus=args.vus, path="/slow",
                                          duration_seconds=duration))
    costs: dict[bool, list[float]] = {False: [], True: []}
    with _prometheus(args.prometheus) as prometheus, _target(args.url) as url, \
            tempfile.TemporaryDirectory(prefix="remote-write-cost-") as scratch:
        for round_number in range(1, args.rounds + 1):
            for writing in (False, True):
                folder = Path(scratch) / f"round{round_number}-{'on' if writing else 'off'}"
                cost, requests, held = one_run(url, base, folder, prometheus if writing else None)
                costs[writing].append(cost)
                print(f"round {round_number}, remote write {'on ' if writing else 'off'}: "
                      f"{requests} requests, {cost:.3f} k6 CPU s per 1,000 requests{held}")
    print(f"\n{args.vus} VUs, {args.duration} per run, {args.rounds} alternating rounds")
    for writing in (False, True):
        values = costs[writing]
        print(f"remote write {'on ' if writing else 'off'}: median {statistics.median(values):.3f}"
              f" k6 CPU s per 1,000 requests (min {min(values):.3f}, max {max(values):.3f})")
    extra = statistics.median(costs[True]) / statistics.median(costs[False]) - 1
    print(f"remote write costs k6 {extra:+.1%} CPU per request (median against median)")


if __name__ == "__main__":
    main()
