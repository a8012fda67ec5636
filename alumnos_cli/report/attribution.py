"""What makes a run's figures attributable: how its answers were verified, what each part
spent, where each ran, and what an independent generator drove (typed, as runs record them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Verification:
    """How the answers were checked: in full before and after the load, cheaply on every
    response during it, and in full on one response in `sample` per VU."""

    sample: int
    before: str  # "passed", or what was wrong
    after: str
    checked_in_full: int | None = None  # responses k6 parsed and checked during the load
    wrong: int | None = None  # wrong answers k6 found during the load

    @property
    def passed(self) -> bool:
        """Right answers at both ends and none wrong in between."""
        return self.before == self.after == "passed" and not self.wrong

    def miss_chance(self, requests: int, share: float = 0.001) -> float:
        """The chance that a fault in `share` of the responses, one that keeps their status,
        type and size, is in none of the responses checked in full."""
        return float((1 - share / self.sample) ** requests)


@dataclass(frozen=True)
class Costs:
    """CPU-seconds each part spent over the run, and the requests they served."""

    requests: int
    cpu_seconds: Mapping[str, float]  # replicas, haproxy, breaker, postgresql, redis, k6
    stack_measured: bool  # False: the target was not started by alumnos up
    shared: tuple[str, ...] = ()  # system services that may also serve other clients

    def per_1000(self, component: str) -> float | None:
        """CPU milliseconds of a component per 1,000 requests."""
        seconds = self.cpu_seconds.get(component)
        if seconds is None or not self.requests:
            return None
        return 1_000_000 * seconds / self.requests

    @property
    def service_per_1000(self) -> float | None:
        """Everything but k6, per 1,000 requests: what serving them cost the stack."""
        parts = [name for name in self.cpu_seconds if name != "k6"]
        if not self.stack_measured or not parts or not self.requests:
            return None
        return 1_000_000 * sum(self.cpu_seconds[name] for name in parts) / self.requests


@dataclass(frozen=True)
class CrossCheck:
    """What an independent generator (wrk) drove on the same path, after the k6 run."""

    tool: str
    path: str
    connections: int
    threads: int
    seconds: int
    requests_per_second: float
    non_2xx: int = 0
    socket_errors: int = 0


@dataclass(frozen=True)
class Placement:
    """Which CPUs the stack and the load generator were given, and what was not pinned."""

    generator_cpus: tuple[int, ...] | None
    stack_cpus: tuple[int, ...] | None
    cpuset: str | None
    not_pinned: tuple[str, ...]


@dataclass(frozen=True)
class PageQueries:
    """The page statements PostgreSQL executed over the load's window (pg_stat_statements),
    or why they could not be counted."""

    page_queries: int | None
    exec_ms: float | None
    missing: str | None = None

    @classmethod
    def from_meta(cls, raw: Mapping[str, object] | None) -> PageQueries | None:
        """meta.json's `queries` (None: recorded before runs counted them)."""
        if not raw:
            return None
        if raw.get("missing"):
            return cls(None, None, str(raw["missing"]))
        queries, exec_ms = raw.get("page_queries"), raw.get("exec_ms")
        if not isinstance(queries, int) or not isinstance(exec_ms, int | float):
            return cls(None, None, "meta.json's queries are not as alumnos writes them")
        return cls(queries, float(exec_ms))

    def per_request(self, requests: int) -> float | None:
        """Page queries per request of the load."""
        return self.page_queries / requests if self.page_queries is not None and requests \
            else None

    @property
    def mean_ms(self) -> float | None:
        """Mean execution time of one page query, in PostgreSQL."""
        if not self.page_queries or self.exec_ms is None:
            return None
        return self.exec_ms / self.page_queries


@dataclass(frozen=True)
class DatabaseCeiling:
    """Page statements per second PostgreSQL served to pgbench alone (`bench --calibrate`),
    or why that was not measured."""

    queries_per_second: float | None
    clients: int = 0
    seconds: int = 0
    limit: int = 0
    protocol: str = "prepared"
    missing: str | None = None

    @classmethod
    def from_meta(cls, raw: Mapping[str, object] | None) -> DatabaseCeiling | None:
        """meta.json's `calibration.database` (None: not calibrated, or recorded before)."""
        if not raw:
            return None
        if raw.get("missing"):
            return cls(None, missing=str(raw["missing"]))
        rate, clients, seconds, limit = (raw.get(k) for k in
                                         ("queries_per_second", "clients", "seconds", "limit"))
        if not isinstance(rate, int | float) or not isinstance(clients, int) \
                or not isinstance(seconds, int) or not isinstance(limit, int):
            return cls(None, missing="meta.json's database ceiling is not as alumnos writes it")
        return cls(float(rate), clients, seconds, limit, str(raw.get("protocol") or "prepared"))

    def share(self, page_queries_per_second: float | None) -> float | None:
        """What share of this ceiling a run's page statements per second reached."""
        if not self.queries_per_second or page_queries_per_second is None:
            return None
        return page_queries_per_second / self.queries_per_second
