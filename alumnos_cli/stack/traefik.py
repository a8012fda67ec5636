"""The patterns as Traefik labels (compose mode), read back from labels, and checked.

The numbers come from the PatternsSpec (stack/patterns.py) that HAProxy's configuration is made
from; the checker reports what keeps Traefik from applying labels as intended, including the
reference deployment's own mistakes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from alumnos_cli.stack.granian import GranianSpec
from alumnos_cli.stack.patterns import PatternsSpec

# Order in which a router must chain the pattern middlewares: a client over its rate limit is
# refused before it takes an admission slot, and each retry goes back through the balancer to
# another replica inside the slot its request was admitted to.
CHAIN_ORDER: tuple[str, ...] = ("ratelimit", "inflightreq", "circuitbreaker", "retry")
# Traefik's passiveHealthCheck has no switch: a count of failures no replica reaches turns it
# off in an override, which cannot delete the base file's labels.
NEVER_FAILS = 2**31 - 1

# What one replica of the image runs at once: its Granian workers x blocking threads.
IMAGE_SLOTS = GranianSpec().workers * GranianSpec().blocking_threads
_MIDDLEWARE_KEY = re.compile(r"^traefik\.http\.middlewares\.([^.]+)\.([^.]+)(?:\..+)?$")
_ROUTER_MIDDLEWARES_KEY = re.compile(r"^traefik\.http\.routers\.([^.]+)\.middlewares$")
# LatencyAtQuantileMS takes a float; Traefik rejects the expression when given an integer.
_INTEGER_QUANTILE = re.compile(r"LatencyAtQuantileMS\(\s*\d+\s*\)")


def traefik_labels(spec: PatternsSpec = PatternsSpec(),
                   slots: int = IMAGE_SLOTS) -> dict[str, str]:
    """Docker labels that route, balance and protect the service, as close to HAProxy's
    configuration as Traefik allows.

    The rate limit and retry are middlewares, chained in CHAIN_ORDER when enabled. Admission
    control is an in-flight limit for the whole stack (Traefik has no queue: beyond the limit it
    refuses at once, with 429 where HAProxy says 503). The breaker ejects replicas through the
    load balancer's passive health check, on failed connections only: Traefik cannot eject a
    replica for being slower than its peers, and its circuitbreaker middleware, which trips for
    the whole router, is left out. `slots` is what one replica runs at once (the image's Granian
    workers x blocking threads).
    """
    router = f"traefik.http.routers.{spec.router}"
    service = f"traefik.http.services.{spec.service}.loadbalancer"
    rl = f"traefik.http.middlewares.{spec.rate_limit_middleware}.ratelimit"
    inflight = f"traefik.http.middlewares.{spec.admission_middleware}.inflightreq"
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
    labels |= {f"{inflight}.amount": str(spec.in_flight_limit(slots)),
               # Every request carries the same Host: one count for the stack, not per client.
               f"{inflight}.sourcecriterion.requesthost": "true",
               # Out for the failure window after that many failed attempts in it.
               f"{service}.passivehealthcheck.failurewindow": f"{spec.circuit_breaker_fallback_s}s",
               f"{service}.passivehealthcheck.maxfailedattempts":
                   str(spec.dead_after_failures if spec.circuit_breaker else NEVER_FAILS)}
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
        "rate_limit": "ratelimit" in kinds, "retry": "retry" in kinds,
        "circuit_breaker": "circuitbreaker" in kinds or _passive_check_on(lowered, base),
    }
    values |= _passive_check(lowered, base)
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


def _passive_check_on(lowered: Mapping[str, str], base: str) -> bool:
    attempts = lowered.get(f"{base}.passivehealthcheck.maxfailedattempts")
    return attempts is not None and int(attempts) < NEVER_FAILS


def _passive_check(lowered: Mapping[str, str], base: str) -> dict[str, int]:
    """The breaker's numbers as the load balancer's passive health check carries them."""
    if not _passive_check_on(lowered, base):
        return {}
    values = {"dead_after_failures":
              int(lowered[f"{base}.passivehealthcheck.maxfailedattempts"])}
    window = lowered.get(f"{base}.passivehealthcheck.failurewindow")
    if window is not None:
        values["circuit_breaker_fallback_s"] = _milliseconds(window) // 1000
    return values


def in_flight_amount(labels: Mapping[str, str], spec: PatternsSpec) -> int | None:
    """The stack's in-flight limit as the labels set it, None without one."""
    lowered = {key.lower(): value for key, value in labels.items()}
    amount = lowered.get(f"traefik.http.middlewares.{spec.admission_middleware}.inflightreq"
                         ".amount")
    return None if amount is None else int(amount)


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
        if "latencyatquantilems" in expression.lower():
            problems.append(
                f"middleware {name!r} trips on latency for the whole router: when every "
                f"replica is slow together (overload) it answers 503 to every request for its "
                f"fallback duration, an outage; eject replicas with the load balancer's "
                f"passivehealthcheck, and bound the load with an inflightreq middleware"
            )
        if "inflightreq" in kinds and not any(
                key.startswith(f"{prefix}.inflightreq.sourcecriterion.") for key in lowered):
            problems.append(
                f"middleware {name!r} sets no inflightreq.sourcecriterion: Traefik counts the "
                f"requests of each client address apart, so it bounds no client's share of "
                f"the stack, not the stack (sourcecriterion.requesthost=true counts them all)"
            )
    return problems
