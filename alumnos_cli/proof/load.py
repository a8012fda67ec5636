"""The proofs' k6 loads: the endpoint scenario on the first page, through the balancer."""

from __future__ import annotations

from pathlib import Path

from alumnos_cli.bench.k6 import THRESHOLDS_FAILED, find_k6
from alumnos_cli.bench.request import BenchRequest
from alumnos_cli.bench.run import run_scenario
from alumnos_cli.bench.scenarios import SCENARIOS, scripts_dir
from alumnos_cli.errors import AlumnosError
from alumnos_cli.files import read_json
from alumnos_cli.report.model import RunFigures
from alumnos_cli.report.summary import summary_figures
from alumnos_cli.runfolder import SUMMARY_FILE
from alumnos_cli.stack.patterns import PatternsSpec
from alumnos_cli.stack.state import StackState
from alumnos_service.paths import FIRST_PAGE

# One loopback address per VU when the rate limit is on, from this range (254 addresses).
LOAD_ADDRESSES = "127.0.4.{}"
MAX_ADDRESSES = 254


def k6_load(state: StackState, vus: int, seconds: int, folder: Path) -> RunFigures:
    """A constant-VU k6 load on the first page through the local stack's balancer."""
    return k6_load_at(state.service.url, state.service.patterns, vus, seconds, folder)


def k6_load_at(url: str, spec: PatternsSpec, vus: int, seconds: int,
               folder: Path) -> RunFigures:
    """A constant-VU k6 load on the first page through the balancer at url; its figures."""
    folder.mkdir(parents=True, exist_ok=True)
    extra_args: tuple[str, ...] = ()
    extra_env: dict[str, str] = {}
    if spec.rate_limit:
        # Distinct users, not one client: one loopback address per VU, each paced under the
        # per-address limit, so the rate limit never answers in place of the pattern tested.
        last = LOAD_ADDRESSES.format(min(vus, MAX_ADDRESSES))
        extra_args = ("--local-ips", f"{LOAD_ADDRESSES.format(1)}-{last}")
        per_address = spec.rate_limit_average / spec.rate_limit_period_s
        vus_per_address = -(-vus // MAX_ADDRESSES)
        extra_env["PACING_S"] = f"{vus_per_address / (0.8 * per_address):.4f}"
    request = BenchRequest(scenario="endpoint", vus=vus, duration_seconds=seconds,
                           path=FIRST_PAGE, timeseries=False)
    outcome = run_scenario(find_k6(), scripts_dir() / SCENARIOS["endpoint"].script, request,
                           url, folder, extra_env=extra_env,
                           extra_args=extra_args)
    summary = folder / SUMMARY_FILE
    if outcome.exit_code not in (0, THRESHOLDS_FAILED) or not summary.exists():
        raise AlumnosError(f"k6 failed with exit code {outcome.exit_code}",
                           f"see {outcome.log}")
    return summary_figures(read_json(summary), str(summary))


def failed_requests(figures: RunFigures) -> int:
    """How many of a load's requests failed."""
    return round(figures.error_rate * figures.requests)


def p95_p99(figures: RunFigures) -> str:
    """The tail latencies as the proof table shows them."""
    return f"{figures.latency.p95:.0f} / {figures.latency.p99:.0f} ms"
