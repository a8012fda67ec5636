"""The resilience patterns in front of the service: one specification of their numbers.

HAProxy's configuration (local mode), the compose file's Traefik labels (stack/traefik.py), run
metadata and the tests read their numbers from here, so they never disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class PatternsSpec:
    """Routing, balancing and resilience numbers for the replicated service behind Traefik."""

    host: str = "alumnos.universidad.localhost"
    router: str = "alumnos"
    service: str = "alumnos"
    entrypoint: str = "web"
    service_port: int = 5000
    health_path: str = "/health"
    replicas: int = 3
    # burst equal to average: one client may spend a whole second's budget at once; without
    # burst Traefik uses 1, and concurrent requests from one IP get 429 far below the average.
    rate_limit_average: int = 100
    rate_limit_period_s: int = 1
    rate_limit_burst: int = 100
    # Trips on the median, not on a tail: one slow request must not open the breaker.
    circuit_breaker_quantile: float = 50.0
    circuit_breaker_latency_ms: int = 100
    # Traefik counts the first try in attempts: 4 means up to 3 retries on other replicas.
    retry_attempts: int = 4
    retry_initial_interval_ms: int = 100
    # Traefik's defaults, written out so both balancers read the same numbers.
    circuit_breaker_check_period_ms: int = 100
    circuit_breaker_fallback_s: int = 10
    circuit_breaker_recovery_s: int = 10
    # Active health checks: Traefik polls every interval; HAProxy also wants fall/rise counts.
    health_interval_ms: int = 1000
    health_fall: int = 2
    health_rise: int = 2
    # Which patterns run. The compose file carries all of them (the reference's deployment);
    # `alumnos up` leaves the rate limit off unless asked, since a benchmark is one client.
    retry: bool = True
    rate_limit: bool = True
    circuit_breaker: bool = True
    # Local breaker only (HAProxy has no latency breaker): the median is taken per replica over
    # this sliding window, and never on fewer samples (Traefik trips on tiny samples).
    circuit_breaker_window_s: float = 2.0
    circuit_breaker_min_samples: int = 5
    # Outlier ejection, as Envoy's: a replica trips only when it is worse than its peers (its
    # median over the threshold and this many times theirs, or this share of its answers
    # failing and twice theirs). When every replica is slow the stack is overloaded, and
    # ejecting replicas would only remove the capacity left.
    circuit_breaker_peer_factor: float = 2.0
    circuit_breaker_error_share: float = 0.5
    # At most this share of the replicas out at once (one always may be, so one slow replica of
    # two can go), and never the last one serving.
    circuit_breaker_max_ejected_share: float = 1 / 3
    # Consecutive failed connections to a replica that take it out at once (HAProxy's
    # `observe layer4 error-limit`, Traefik's passiveHealthCheck.maxFailedAttempts), for a
    # replica that died between two health checks.
    dead_after_failures: int = 3
    # Admission control (local mode): each replica gets a few requests per thread it runs at
    # once (Granian workers x blocking threads); the rest waits in HAProxy's queue, at most
    # queue_timeout_s, and a queue longer than queue_per_slot requests per slot is refused at
    # once (503, Retry-After). Exactly one per thread cost 16% of the cached page's
    # throughput (HAProxy dispatches from its queue once per response, and a thread idles
    # meanwhile); four per thread are as fast as sixty-four (benchmarks/admission_cost.py,
    # README "Overload").
    admitted_per_slot: int = 4
    queue_timeout_s: int = 2
    queue_per_slot: int = 50
    # The database's bounds, which the balancer's server timeout must exceed (see the service's
    # DB_STATEMENT_TIMEOUT_MS and DB_POOL_TIMEOUT_S): a request is never cut while PostgreSQL
    # may still answer it.
    server_timeout_s: int = 10

    @property
    def rate_limit_middleware(self) -> str:
        """Name of the rate-limit middleware."""
        return f"{self.router}-rl"

    @property
    def circuit_breaker_middleware(self) -> str:
        """Name of the circuit-breaker middleware."""
        return f"{self.router}-cb"

    @property
    def retry_middleware(self) -> str:
        """Name of the retry middleware."""
        return f"{self.router}-retry"

    @property
    def admission_middleware(self) -> str:
        """Name of the in-flight limit (admission control) middleware."""
        return f"{self.router}-inflight"

    @property
    def middleware_chain(self) -> tuple[str, ...]:
        """Names of the enabled middlewares, in the order the router runs them.

        The breaker is no middleware: Traefik's circuitbreaker trips for the whole router,
        which turns overload into an outage; replicas are ejected by the load balancer's
        passive health check instead (traefik_labels)."""
        enabled = ((self.rate_limit, self.rate_limit_middleware),
                   (True, self.admission_middleware),
                   (self.retry, self.retry_middleware))
        return tuple(name for on, name in enabled if on)

    def in_flight_limit(self, slots: int) -> int:
        """Requests the whole stack holds at once before it refuses: what its replicas run
        (`slots` each, admitted_per_slot per slot) and what may wait for them (queue_per_slot
        per slot), as HAProxy admits and queues them."""
        return self.replicas * slots * (self.admitted_per_slot + self.queue_per_slot)

    @property
    def rate_limit_text(self) -> str:
        """The rate limit as the --rate-limit flag writes it (100/s), or off."""
        if not self.rate_limit:
            return "off"
        period = "s" if self.rate_limit_period_s == 1 else f"{self.rate_limit_period_s}s"
        return f"{self.rate_limit_average}/{period}"

    @property
    def circuit_breaker_expression(self) -> str:
        """The breaker's trip condition, in Traefik's expression language."""
        quantile = float(self.circuit_breaker_quantile)
        return f"LatencyAtQuantileMS({quantile}) > {self.circuit_breaker_latency_ms}"


_RATE = re.compile(r"(\d+)\s*/\s*(\d*)\s*(s|m)")


def parse_rate_limit(text: str) -> tuple[int, int] | None:
    """(requests, period in seconds) from '100/s', '50/10s' or '600/m'; None for 'off'."""
    cleaned = text.strip().lower()
    if cleaned in {"off", "no", "none", "0", ""}:
        return None
    match = _RATE.fullmatch(cleaned)
    if match is None or int(match.group(1)) < 1 or match.group(2) == "0":
        raise ValueError(f"a rate limit looks like 100/s, 50/10s or 600/m (or off), got {text!r}")
    count, multiplier, unit = int(match.group(1)), int(match.group(2) or 1), match.group(3)
    return count, multiplier * (60 if unit == "m" else 1)
