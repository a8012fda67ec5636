"""The resilience patterns in front of the service: one specification, its Traefik labels, checks.

HAProxy's configuration (local mode), the compose file's Traefik labels, run metadata and the
tests read their numbers from here, so they never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Order in which a router must chain the pattern middlewares: rejected requests (429) never
# feed the breaker, and each retry goes back through the balancer to another replica.
CHAIN_ORDER: tuple[str, ...] = ("ratelimit", "circuitbreaker", "retry")

_MIDDLEWARE_KEY = re.compile(r"^traefik\.http\.middlewares\.([^.]+)\.([^.]+)(?:\..+)?$")
_ROUTER_MIDDLEWARES_KEY = re.compile(r"^traefik\.http\.routers\.([^.]+)\.middlewares$")
# LatencyAtQuantileMS takes a float; Traefik rejects the expression when given an integer.
_INTEGER_QUANTILE = re.compile(r"LatencyAtQuantileMS\(\s*\d+\s*\)")


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
    def middleware_chain(self) -> tuple[str, ...]:
        """Names of the enabled middlewares, in the order the router runs them."""
        enabled = ((self.rate_limit, self.rate_limit_middleware),
                   (self.circuit_breaker, self.circuit_breaker_middleware),
                   (self.retry, self.retry_middleware))
        return tuple(name for on, name in enabled if on)

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


def traefik_labels(spec: PatternsSpec = PatternsSpec()) -> dict[str, str]:
    """Docker labels that route, balance and protect the service, one middleware per pattern.

    Only enabled patterns get a middleware; the router chains them in CHAIN_ORDER.
    """
    router = f"traefik.http.routers.{spec.router}"
    service = f"traefik.http.services.{spec.service}.loadbalancer"
    rl = f"traefik.http.middlewares.{spec.rate_limit_middleware}.ratelimit"
    cb = f"traefik.http.middlewares.{spec.circuit_breaker_middleware}.circuitbreaker"
    retry = f"traefik.http.middlewares.{spec.retry_middleware}.retry"
    labels = {
        # The compose Traefik runs with exposedByDefault=false: without this it ignores us.
        "traefik.enable": "true",
        f"{router}.rule": f"Host(`{spec.host}`)",
        f"{router}.entrypoints": spec.entrypoint,
        f"{router}.service": spec.service,
        # Middlewares run only when the router lists them, in this order.
        f"{router}.middlewares": ",".join(spec.middleware_chain),
        f"{service}.server.port": str(spec.service_port),
        f"{service}.healthcheck.path": spec.health_path,
        f"{service}.healthcheck.interval": f"{spec.health_interval_ms}ms",
    }
    if spec.rate_limit:
        labels |= {f"{rl}.average": str(spec.rate_limit_average),
                   f"{rl}.period": f"{spec.rate_limit_period_s}s",
                   f"{rl}.burst": str(spec.rate_limit_burst)}
    if spec.circuit_breaker:
        labels |= {f"{cb}.expression": spec.circuit_breaker_expression,
                   f"{cb}.checkperiod": f"{spec.circuit_breaker_check_period_ms}ms",
                   f"{cb}.fallbackduration": f"{spec.circuit_breaker_fallback_s}s",
                   f"{cb}.recoveryduration": f"{spec.circuit_breaker_recovery_s}s"}
    if spec.retry:
        labels |= {f"{retry}.attempts": str(spec.retry_attempts),
                   f"{retry}.initialinterval": f"{spec.retry_initial_interval_ms}ms"}
    return labels


_EXPRESSION = re.compile(r"LatencyAtQuantileMS\(\s*([\d.]+)\s*\)\s*>\s*(\d+)")
_DURATION = re.compile(r"(\d+)(ms|s)")


def _milliseconds(text: str) -> int:
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a duration Traefik writes as 100ms or 10s: {text!r}")
    return int(match.group(1)) * (1 if match.group(2) == "ms" else 1000)


def spec_from_labels(labels: Mapping[str, str], router: str = "alumnos") -> PatternsSpec:
    """Read the patterns back from Traefik labels, so they can be compared with HAProxy's."""
    lowered = {key.lower(): value for key, value in labels.items()}
    types = middleware_types(lowered)
    chain = router_chains(lowered).get(router, [])
    kinds = {next(iter(types[name])): name for name in chain if len(types.get(name, ())) == 1}
    service = next((key.split(".")[3] for key in lowered
                    if key.startswith("traefik.http.services.")), router)
    base = f"traefik.http.services.{service}.loadbalancer"
    values: dict[str, Any] = {
        "router": router, "service": service,
        "service_port": int(lowered[f"{base}.server.port"]),
        "health_path": lowered[f"{base}.healthcheck.path"],
        "rate_limit": "ratelimit" in kinds, "circuit_breaker": "circuitbreaker" in kinds,
        "retry": "retry" in kinds,
    }
    if f"{base}.healthcheck.interval" in lowered:
        values["health_interval_ms"] = _milliseconds(lowered[f"{base}.healthcheck.interval"])
    if "ratelimit" in kinds:
        prefix = f"traefik.http.middlewares.{kinds['ratelimit']}.ratelimit"
        values |= {"rate_limit_average": int(lowered[f"{prefix}.average"]),
                   "rate_limit_period_s": _milliseconds(lowered[f"{prefix}.period"]) // 1000,
                   "rate_limit_burst": int(lowered.get(f"{prefix}.burst", "1"))}
    if "circuitbreaker" in kinds:
        prefix = f"traefik.http.middlewares.{kinds['circuitbreaker']}.circuitbreaker"
        match = _EXPRESSION.fullmatch(lowered[f"{prefix}.expression"].strip())
        if match is None:
            raise ValueError(f"not a latency expression: {lowered[f'{prefix}.expression']!r}")
        values |= {"circuit_breaker_quantile": float(match.group(1)),
                   "circuit_breaker_latency_ms": int(match.group(2))}
        for option, field_name in (("checkperiod", "circuit_breaker_check_period_ms"),):
            if f"{prefix}.{option}" in lowered:
                values[field_name] = _milliseconds(lowered[f"{prefix}.{option}"])
        for option, field_name in (("fallbackduration", "circuit_breaker_fallback_s"),
                                   ("recoveryduration", "circuit_breaker_recovery_s")):
            if f"{prefix}.{option}" in lowered:
                values[field_name] = _milliseconds(lowered[f"{prefix}.{option}"]) // 1000
    if "retry" in kinds:
        prefix = f"traefik.http.middlewares.{kinds['retry']}.retry"
        values["retry_attempts"] = int(lowered[f"{prefix}.attempts"])
        if f"{prefix}.initialinterval" in lowered:
            values["retry_initial_interval_ms"] = _milliseconds(
                lowered[f"{prefix}.initialinterval"])
    return PatternsSpec(**values)


def labels_as_dict(labels: Mapping[str, object] | Iterable[str]) -> dict[str, str]:
    """Compose labels, written as a mapping or as a list of key=value, as one dict."""
    if isinstance(labels, Mapping):
        return {str(key): _label_text(value) for key, value in labels.items()}
    pairs = (item.partition("=") for item in labels)
    return {key: value for key, _, value in pairs}


def _label_text(value: object) -> str:
    """A YAML scalar as Compose passes it to Docker: booleans in lower case, null as empty."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def middleware_types(labels: Mapping[str, str]) -> dict[str, set[str]]:
    """Each middleware defined in the labels, with the types (ratelimit, retry...) it holds."""
    types: dict[str, set[str]] = {}
    for key in labels:
        match = _MIDDLEWARE_KEY.match(key.lower())
        if match:
            types.setdefault(match.group(1), set()).add(match.group(2))
    return types


def router_chains(labels: Mapping[str, str]) -> dict[str, list[str]]:
    """Each router that lists middlewares, with their names in the order it runs them."""
    chains: dict[str, list[str]] = {}
    for key, value in labels.items():
        match = _ROUTER_MIDDLEWARES_KEY.match(key.lower())
        if match:
            # Compared in lower case, as Traefik reads label keys without regard to case.
            names = (name.strip() for name in value.lower().split(","))
            # "@docker" is the provider these labels come from; other providers are not ours.
            chains[match.group(1)] = [name.removesuffix("@docker") for name in names if name]
    return chains


def label_problems(labels: Mapping[str, str],
                   switched_off: frozenset[str] = frozenset()) -> list[str]:
    """What keeps Traefik from applying these labels as intended; empty when they are sound.

    `switched_off` names middlewares detached on purpose (an override that turns a pattern
    off cannot delete the base file's labels), which are then not reported as never attached.
    """
    types = middleware_types(labels)
    chains = router_chains(labels)
    problems: list[str] = []
    attached = {name for chain in chains.values() for name in chain}
    for name in sorted(types.keys() - attached - switched_off):
        problems.append(
            f"middleware {name!r} is never attached: no router lists it in "
            f"traefik.http.routers.<router>.middlewares, so it never runs"
        )
    for name, kinds in sorted(types.items()):
        if len(kinds) > 1:
            problems.append(
                f"middleware {name!r} holds several types ({', '.join(sorted(kinds))}): "
                f"Traefik rejects it (multi-types middleware not supported) and drops its router"
            )
    for router, chain in sorted(chains.items()):
        problems.extend(_chain_problems(router, chain, types))
    problems.extend(_option_problems(labels, types))
    return problems


def _chain_problems(router: str, chain: list[str], types: Mapping[str, set[str]]) -> list[str]:
    """Undefined middlewares and pattern order on one router."""
    problems = [
        f"router {router!r} lists middleware {name!r}, which no label defines"
        for name in chain
        if "@" not in name and name not in types
    ]
    ranks = [
        CHAIN_ORDER.index(kind)
        for name in chain
        for kind in sorted(types.get(name, ()))
        if kind in CHAIN_ORDER
    ]
    if ranks != sorted(ranks):
        problems.append(
            f"router {router!r} chains its middlewares out of order: "
            f"expected {' -> '.join(CHAIN_ORDER)}"
        )
    return problems


def _option_problems(labels: Mapping[str, str], types: Mapping[str, set[str]]) -> list[str]:
    """Options whose Traefik default or syntax defeats the pattern."""
    lowered = {key.lower(): value for key, value in labels.items()}
    problems: list[str] = []
    for name, kinds in sorted(types.items()):
        prefix = f"traefik.http.middlewares.{name}"
        if "ratelimit" in kinds and f"{prefix}.ratelimit.burst" not in lowered:
            problems.append(
                f"middleware {name!r} sets no ratelimit.burst: Traefik uses 1, so concurrent "
                f"requests from one client get 429 far below the average"
            )
        expression = lowered.get(f"{prefix}.circuitbreaker.expression", "")
        if _INTEGER_QUANTILE.search(expression):
            problems.append(
                f"middleware {name!r}: LatencyAtQuantileMS needs a float quantile, such as 50.0"
            )
    return problems
