"""A capacity sweep (`bench --sweep`): one run per load level, read into the figures per level,
the Universal Scalability Law fitted to them, the knee, and what reached its limit first.

The Universal Scalability Law (Gunther) gives throughput at concurrency N as
X(N) = λN / (1 + σ(N-1) + κN(N-1)): λ the throughput of one client alone, σ the share of the
work that waits its turn (contention), κ the cost of keeping N clients coherent (crosstalk),
which makes throughput fall past N* = sqrt((1-σ)/κ). Levels where the load generator was the
limit (report.checks) are left out of the fit: their throughput is k6's, not the service's.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# The fewest levels the fit takes (three parameters, and one to judge them by).
FIT_MIN_LEVELS = 4
# A peak beyond this multiple of the highest level measured is no peak within range.
PEAK_RANGE = 2.0


@dataclass(frozen=True)
class Usage:
    """What one component used at a level, against the limit it has."""

    component: str
    used: float
    limit: float
    unit: str  # "cores", "connections"

    @property
    def share(self) -> float:
        """How much of its limit it used."""
        return self.used / self.limit if self.limit else 0.0


@dataclass(frozen=True)
class SweepLevel:
    """One level of the sweep: its run and figures."""

    level: int  # VUs (closed model) or requests/s offered (open model)
    run: str  # the run folder's name, inside the sweep's folder
    concurrency: float  # N for the fit: the VUs, or in-flight requests (Little) when open
    requests_per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    avg_ms: float
    error_rate: float
    generator_limited: bool
    usage: tuple[Usage, ...] = ()
    queries_per_request: float | None = None  # page queries PostgreSQL counted, per request
    pg_waits: Mapping[str, float] = field(default_factory=dict)  # active backends by wait

    @property
    def busiest(self) -> Usage | None:
        """The component nearest its limit (the machine as a whole left out)."""
        parts = [u for u in self.usage if u.component != MACHINE]
        return max(parts, key=lambda u: u.share, default=None)


MACHINE = "machine"
STACK_CPUS = "stack CPUs"  # the replicas, the balancer and the breaker on `up --cpus`
BALANCER_SLOTS = "balancer slots"  # HAProxy's connections to the replicas, of their maxconn
BALANCER_QUEUE = "balancer queue"  # requests waiting at HAProxy, of what it queues before refusing
PG_CONNECTIONS = "PostgreSQL connections"  # the replicas', of their pools


@dataclass(frozen=True)
class UslFit:
    """The Universal Scalability Law fitted to the levels the generator did not limit."""

    lam: float  # λ: requests/s of one client alone
    sigma: float  # σ: contention
    kappa: float  # κ: coherency
    r_squared: float
    levels_used: tuple[int, ...]
    peak_concurrency: float | None  # N*; None when κ is about 0 (no peak)
    peak_throughput: float | None  # X(N*)
    peak_in_range: bool  # N* within PEAK_RANGE of the highest level measured

    def throughput(self, n: float) -> float:
        """X(N) by the fitted law."""
        return usl(n, self.lam, self.sigma, self.kappa)

    @property
    def ceiling(self) -> float | None:
        """The most the law lets through: its peak within range, else (κ about 0) λ/σ, the
        level it flattens towards; None when neither is finite or within range."""
        if self.peak_throughput is not None:
            return self.peak_throughput if self.peak_in_range else None
        return self.lam / self.sigma if self.sigma > 0 else None


@dataclass(frozen=True)
class Sweep:
    """A whole sweep, as the renderers show it."""

    name: str
    scenario: str
    model: str  # closed (--sweep, VUs) or open (--rate-sweep, requests/s)
    duration_seconds: int
    levels: tuple[SweepLevel, ...]
    planned: tuple[int, ...]  # every level asked for, run or not
    fit: UslFit | None
    fit_note: str | None  # why there is no fit, or what to make of it
    knee: int | None  # the last level before latency grew faster than throughput
    # Levels that ran and cannot be read: the line saying why, by level.
    problems: Mapping[int, str] = field(default_factory=dict)

    @property
    def best(self) -> SweepLevel | None:
        """The level with the highest throughput of those k6 did not limit (of all, when it
        limited every one)."""
        levels = [lv for lv in self.levels if not lv.generator_limited] or self.levels
        return max(levels, key=lambda lv: lv.requests_per_second, default=None)

    @property
    def at_knee(self) -> SweepLevel | None:
        """The knee's level, or the last level with no knee (None: no level was read)."""
        return next((lv for lv in self.levels if lv.level == self.knee), None) or (
            self.levels[-1] if self.levels else None)

    @property
    def first_limit(self) -> Usage | None:
        """What was nearest its limit at the knee (or the last level, with no knee): the
        component the load reached first, the machine as a whole left out."""
        at = self.at_knee
        return at.busiest if at else None


def usl(n: float, lam: float, sigma: float, kappa: float) -> float:
    """The Universal Scalability Law's throughput at concurrency n."""
    return lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


def knee(levels: Sequence[SweepLevel]) -> int | None:
    """The last level before latency grew faster than throughput (both as ratios from one
    level to the next), of the levels k6 did not limit (their latency and throughput are
    k6's); None while throughput kept pace to the end, or with no such levels."""
    for before, after in itertools.pairwise([lv for lv in levels if not lv.generator_limited]):
        if before.requests_per_second <= 0 or before.avg_ms <= 0:
            continue
        latency = after.avg_ms / before.avg_ms
        throughput = max(after.requests_per_second, 1e-9) / before.requests_per_second
        if latency > throughput:
            return before.level
    return None


def fit_levels(levels: Sequence[SweepLevel]) -> tuple[UslFit | None, str | None]:
    """The law fitted to the levels k6 did not limit, or why it could not be."""
    # A level with no throughput or no concurrency (an open level whose latency rounds to 0)
    # says nothing of the curve.
    usable = [lv for lv in levels if not lv.generator_limited and lv.requests_per_second > 0
              and lv.concurrency > 0]
    left_out = len(levels) - len(usable)
    if len(usable) < FIT_MIN_LEVELS:
        return None, (f"no fit: {len(usable)} level(s) the load generator did not limit, the "
                      f"fit needs {FIT_MIN_LEVELS}" + (f" ({left_out} left out, k6 was their "
                                                       "limit)" if left_out else ""))
    try:
        fit = _least_squares([lv.concurrency for lv in usable],
                             [lv.requests_per_second for lv in usable])
    except ImportError:
        return None, "no fit: it needs scipy (pip install 'alumnos[stack]')"
    except (RuntimeError, ValueError) as exc:
        return None, f"no fit: the least squares did not converge ({exc})"
    lam, sigma, kappa = fit
    n_star, x_star, in_range = _peak(lam, sigma, kappa, max(lv.concurrency for lv in usable))
    fitted = UslFit(lam=lam, sigma=sigma, kappa=kappa, r_squared=_r_squared(usable, fit),
                    levels_used=tuple(lv.level for lv in usable), peak_concurrency=n_star,
                    peak_throughput=x_star, peak_in_range=in_range)
    note = f"{left_out} level(s) left out: k6 was their limit" if left_out else None
    return fitted, note


def _least_squares(n: list[float], x: list[float]) -> tuple[float, float, float]:
    from scipy.optimize import OptimizeWarning, curve_fit

    lam0 = max(xi / ni for ni, xi in zip(n, x, strict=True))
    with warnings.catch_warnings():
        # Covariance that cannot be estimated (an exact fit) is not needed: only the values.
        warnings.simplefilter("ignore", OptimizeWarning)
        values, _ = curve_fit(usl, n, x, p0=(lam0, 0.05, 1e-4),
                              bounds=((0.0, 0.0, 0.0), (math.inf, 1.0, 1.0)), maxfev=20_000)
    lam, sigma, kappa = (float(v) for v in values)
    if not all(math.isfinite(v) for v in (lam, sigma, kappa)):
        raise ValueError("the parameters are not finite")
    return lam, sigma, kappa


def _r_squared(levels: Sequence[SweepLevel], fit: tuple[float, float, float]) -> float:
    measured = [lv.requests_per_second for lv in levels]
    mean = sum(measured) / len(measured)
    residual = sum((lv.requests_per_second - usl(lv.concurrency, *fit)) ** 2 for lv in levels)
    total = sum((x - mean) ** 2 for x in measured)
    if not total:  # every level the same: a perfect fit only if it hits them exactly
        return 1.0 if residual < 1e-9 * max(1.0, mean) ** 2 else 0.0
    return 1 - residual / total


def _peak(lam: float, sigma: float, kappa: float,
          highest: float) -> tuple[float | None, float | None, bool]:
    """N*, X(N*), and whether N* lies within PEAK_RANGE of the highest level measured."""
    if kappa <= 1e-12:
        return None, None, False
    n_star = math.sqrt(max(0.0, 1 - sigma) / kappa)
    return n_star, usl(n_star, lam, sigma, kappa), n_star <= PEAK_RANGE * highest
