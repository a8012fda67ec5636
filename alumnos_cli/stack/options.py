"""What `alumnos up` is asked to run locally, checked before anything starts."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum

from alumnos_cli.errors import InvalidOption
from alumnos_cli.stack.patterns import PatternsSpec

# The local default: a benchmark is one client address, which a rate limit would throttle.
LOCAL_PATTERNS = PatternsSpec(rate_limit=False)
LOOPBACK = "127.0.0.1"
# In the environment of every process one `up` starts, so `down` finds them all.
STACK_ID_VARIABLE = "ALUMNOS_STACK_ID"


@dataclass(frozen=True)
class ServiceOptions:
    """How to run the replicas and the balancer."""

    host: str = "127.0.0.1"
    port: int = 8080
    replicas: int = 3
    workers: int = 1  # per replica: with 3 replicas, more processes than cores already
    blocking_threads: int = 4
    backlog: int = 2048
    cache: bool = True
    balancer: bool = True
    fault_injection: bool = False
    patterns: PatternsSpec = field(default_factory=lambda: LOCAL_PATTERNS)
    cpus: tuple[int, ...] | None = None  # every process of the stack on these CPUs only
    prometheus: bool = True  # Prometheus and the exporters beside the stack
    prometheus_port: int = 9090  # Prometheus's own, on 127.0.0.1

    @property
    def replica_host(self) -> str:
        """Where replicas listen: loopback behind the balancer (only the balancer is reachable
        on --host), the host itself when one replica is the service alone."""
        return LOOPBACK if self.balancer else self.host

    def replica_ports(self) -> list[int]:
        """Replicas listen just above the balancer's port; alone, a replica takes the port."""
        if not self.balancer:
            return [self.port]
        return [self.port + i for i in range(1, self.replicas + 1)]


def validate_options(options: ServiceOptions) -> None:
    """Refuse combinations that cannot run."""
    try:
        ipaddress.ip_address(options.host)
    except ValueError:
        # Also keeps anything but an address out of the generated haproxy.cfg.
        raise InvalidOption("--host", f"--host must be an IP address such as 127.0.0.1, got "
                            f"{options.host!r}") from None
    if not 1 <= options.replicas <= 32:
        raise InvalidOption("--replicas", f"--replicas must be between 1 and 32, got "
                            f"{options.replicas}")
    if not 1 <= options.workers <= 64:
        raise InvalidOption("--workers", f"--workers must be between 1 and 64, got "
                            f"{options.workers}")
    if not 1 <= options.blocking_threads <= 256:
        raise InvalidOption("--blocking-threads", "--blocking-threads must be between 1 and "
                            f"256, got {options.blocking_threads}")
    if not options.balancer and options.replicas != 1:
        raise InvalidOption("--replicas", "without a balancer only one replica can take "
                            "the port", "use --replicas 1 with --no-balancer, or keep the "
                            "balancer")
    if not 1 <= options.port <= 65535 - options.replicas:
        raise InvalidOption("--port", "--port must leave room for the replicas above it, got "
                            f"{options.port}")


class Mode(StrEnum):
    """Where `alumnos up` runs the stack (local is the default: an engine that answers never
    changes what `alumnos up` means)."""

    LOCAL = "local"  # supervisord and HAProxy on this machine
    COMPOSE = "compose"  # docker compose and Traefik on a Docker engine
