"""A run split over several k6 hosts (`bench --generator`): each host's share, as bench
recorded it in meta.json's `load_generator.generators`, and whether it was the limit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alumnos_cli.report.breakdown import optional_number

# A generator host counts as saturated as this machine's k6 does (report.checks): its machine
# at least this busy while k6 took at least this share of its cores.
SATURATED = 0.9
GENERATOR_SHARE = 0.15


@dataclass(frozen=True)
class GeneratorHost:
    """One generator's part of the run: its segment of the load, what it sent and saw (its
    own p95, not the run's), what its k6 spent, and how busy its machine was."""

    name: str
    segment: str
    requests: int
    requests_per_s: float
    p95_ms: float | None
    cpu_seconds: float | None
    cores_used: float | None
    cores: int | None
    machine_busy: float | None

    @property
    def saturated(self) -> bool:
        """Its machine was busy and k6 took a real share of it: more load from this host
        would not have come, so the run's figures are a lower bound."""
        if self.machine_busy is None or self.cores_used is None or not self.cores:
            return False
        return self.machine_busy >= SATURATED and self.cores_used >= GENERATOR_SHARE * self.cores


def parse_hosts(rows: list[Mapping[str, Any]] | None) -> tuple[GeneratorHost, ...]:
    """The generator rows of meta.json (none for a run from this machine alone)."""
    return tuple(GeneratorHost(
        name=str(row["name"]), segment=str(row["segment"]), requests=int(row["requests"]),
        requests_per_s=float(row["requests_per_s"]), p95_ms=optional_number(row.get("p95_ms")),
        cpu_seconds=optional_number(row.get("cpu_seconds")),
        cores_used=optional_number(row.get("cores_used")),
        cores=None if row.get("cores") is None else int(row["cores"]),
        machine_busy=optional_number(row.get("machine_busy"))) for row in rows or ())
