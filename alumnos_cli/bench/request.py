"""What a benchmark run is asked to do, checked before anything starts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from alumnos_cli.bench.crosscheck import validate as validate_cross_check
from alumnos_cli.bench.generators.spec import Generator
from alumnos_cli.bench.remote_write import validate_url as validate_prometheus_url
from alumnos_cli.bench.scenarios import SCENARIOS
from alumnos_cli.errors import AlumnosError, InvalidOption
from alumnos_cli.settings import Settings, mask_password
from alumnos_cli.stack.cpus import check_apart
from alumnos_cli.stack.state import load_state

MAX_VUS = 5_000
MAX_DURATION_SECONDS = 6 * 3600
MAX_REPEAT = 100
MAX_RATE = 1_000_000
MAX_SAMPLE = 1_000_000
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(text: str) -> int:
    """Seconds in '2m', '90s', '1m30s' or '1h'; a usage error otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise InvalidOption("--duration", f"--duration must look like 30s, 2m or 1m30s, got "
                            f"{text!r}")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if not 1 <= total <= MAX_DURATION_SECONDS:
        raise InvalidOption("--duration", f"--duration must be between 1s and 6h, got {text!r}")
    return total


@dataclass(frozen=True)
class BenchRequest:
    """One benchmark run to make."""

    scenario: str
    vus: int
    duration_seconds: int
    url: str | None = None
    path: str | None = None  # endpoint scenario: the path to load
    calibrate: bool = False  # also run the same load on the ping endpoint
    rate: int | None = None  # open model: iterations per second (VUs become the pool)
    p95_ms: float | None = None  # threshold on the p95 latency
    max_error_rate: float | None = None  # threshold on the share of failed requests
    timeseries: bool = True  # record per-second aggregates (k6's dashboard recording)
    verify_sample: int | None = None  # one response in N per VU checked in full
    generator_cpus: tuple[int, ...] | None = None  # k6 (and wrk) run on these CPUs only
    cross_check: bool = False  # after k6, a short wrk load on the same path
    prometheus_url: str | None = None  # k6 also writes its metrics there (remote_write.py)
    generators: tuple[Generator, ...] = ()  # k6 hosts splitting the load (generators/)
    ssh_config: str | None = None  # the ssh_config they are reached with

    @property
    def model(self) -> str:
        """closed (VUs loop) or open (a fixed arrival rate)."""
        return "open" if self.rate else "closed"


def check_generator_apart(settings: Settings, request: BenchRequest) -> None:
    """Refuse --generator-cpus that overlap the CPUs the running stack was given."""
    if not request.generator_cpus:
        return
    try:
        state = load_state(settings.state_dir)
    except AlumnosError:
        return  # a corrupt state file: the run itself says so
    if state is not None and state.service.cpus:
        check_apart(state.service.cpus, request.generator_cpus)


def validate(request: BenchRequest, repeat: int = 1) -> None:
    """Refuse a scenario, load, target or threshold that cannot run."""
    if request.scenario not in SCENARIOS:
        raise InvalidOption("--scenario", f"unknown scenario {request.scenario!r}",
                            f"choose one of: {', '.join(sorted(SCENARIOS))}")
    if not 1 <= request.vus <= MAX_VUS:
        raise InvalidOption("--vus", f"--vus must be between 1 and {MAX_VUS}, got {request.vus}")
    if request.url is not None and not re.match(r"https?://", request.url):
        raise InvalidOption("--url", f"--url must start with http:// or https://, got "
                            f"{mask_password(request.url)!r}")
    if request.path is not None and not request.path.startswith("/"):
        raise InvalidOption("--path", f"--path must start with /, got {request.path!r}")
    if request.path is not None and request.scenario != "endpoint":
        raise InvalidOption("--path", "--path applies to the endpoint scenario only",
                            "add --scenario endpoint")
    if request.rate is not None and not 1 <= request.rate <= MAX_RATE:
        raise InvalidOption("--rate", f"--rate must be between 1 and 1,000,000 requests/s, "
                            f"got {request.rate}")
    if request.p95_ms is not None and not 0 < request.p95_ms <= 600_000:
        raise InvalidOption("--p95", f"--p95 must be a latency in ms above 0, got "
                            f"{request.p95_ms}")
    if request.max_error_rate is not None and not 0 < request.max_error_rate <= 1:
        raise InvalidOption("--max-error-rate", "--max-error-rate is a share between 0 and 1 "
                            f"(0.01 is 1%), got {request.max_error_rate}")
    if request.verify_sample is not None and not 1 <= request.verify_sample <= MAX_SAMPLE:
        raise InvalidOption("--verify-sample", "--verify-sample is N in one response in N "
                            f"checked in full, from 1 (every one) to {MAX_SAMPLE:,}, got "
                            f"{request.verify_sample}")
    if request.prometheus_url is not None:
        validate_prometheus_url(request.prometheus_url)
    if request.cross_check:
        validate_cross_check(request.scenario, request.rate)
    if request.generators:
        _validate_generators(request)
    if not 1 <= repeat <= MAX_REPEAT:
        raise InvalidOption("--repeat", f"--repeat must be between 1 and {MAX_REPEAT}, got "
                            f"{repeat}")


def _validate_generators(request: BenchRequest) -> None:
    """What a load split over generator hosts cannot do yet: pin k6 on this machine's CPUs,
    calibrate (its ping load would run from here alone), cross-check with wrk (from here)."""
    for flag, given in (("--generator-cpus", request.generator_cpus),
                        ("--calibrate", request.calibrate),
                        ("--cross-check", request.cross_check)):
        if given:
            raise InvalidOption(flag, f"{flag} does not apply to --generator: it runs from "
                                "this machine alone", "leave it out")
    if request.ssh_config is not None and not Path(request.ssh_config).is_file():
        raise InvalidOption("--ssh-config", f"--ssh-config names no file: {request.ssh_config}")
