"""The resilience patterns in front of the service: one specification, its Traefik labels, checks.

The compose file, the report and the tests read their numbers from here, so they never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

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
        """Middleware names in the order the router runs them."""
        return (self.rate_limit_middleware, self.circuit_breaker_middleware, self.retry_middleware)

    @property
    def circuit_breaker_expression(self) -> str:
        """The breaker's trip condition, in Traefik's expression language."""
        quantile = float(self.circuit_breaker_quantile)
        return f"LatencyAtQuantileMS({quantile}) > {self.circuit_breaker_latency_ms}"


@dataclass(frozen=True)
class GranianSpec:
    """How each replica serves the WSGI app: the reference report's Granian command."""

    target: str = "wsgi:app"
    host: str = "0.0.0.0"
    port: int = 5000
    workers: int = 4
    blocking_threads: int = 4
    backlog: int = 2048

    def argv(self) -> list[str]:
        """The command line, in the exec form the Dockerfile's CMD uses."""
        return [
            "granian",
            "--interface", "wsgi",
            "--host", self.host,
            "--port", str(self.port),
            "--workers", str(self.workers),
            "--blocking-threads", str(self.blocking_threads),
            "--backlog", str(self.backlog),
            self.target,
        ]  # fmt: skip


def traefik_labels(spec: PatternsSpec = PatternsSpec()) -> dict[str, str]:
    """Docker labels that route, balance and protect the service, one middleware per pattern."""
    router = f"traefik.http.routers.{spec.router}"
    service = f"traefik.http.services.{spec.service}.loadbalancer"
    rl = f"traefik.http.middlewares.{spec.rate_limit_middleware}.ratelimit"
    cb = f"traefik.http.middlewares.{spec.circuit_breaker_middleware}.circuitbreaker"
    retry = f"traefik.http.middlewares.{spec.retry_middleware}.retry"
    return {
        # The compose Traefik runs with exposedByDefault=false: without this it ignores us.
        "traefik.enable": "true",
        f"{router}.rule": f"Host(`{spec.host}`)",
        f"{router}.entrypoints": spec.entrypoint,
        f"{router}.service": spec.service,
        # Middlewares run only when the router lists them, in this order.
        f"{router}.middlewares": ",".join(spec.middleware_chain),
        f"{service}.server.port": str(spec.service_port),
        f"{service}.healthcheck.path": spec.health_path,
        f"{rl}.average": str(spec.rate_limit_average),
        f"{rl}.period": f"{spec.rate_limit_period_s}s",
        f"{rl}.burst": str(spec.rate_limit_burst),
        f"{cb}.expression": spec.circuit_breaker_expression,
        f"{retry}.attempts": str(spec.retry_attempts),
        f"{retry}.initialinterval": f"{spec.retry_initial_interval_ms}ms",
    }


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


def label_problems(labels: Mapping[str, str]) -> list[str]:
    """What keeps Traefik from applying these labels as intended; empty when they are sound."""
    types = middleware_types(labels)
    chains = router_chains(labels)
    problems: list[str] = []
    attached = {name for chain in chains.values() for name in chain}
    for name in sorted(types.keys() - attached):
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
