"""What each part spent per request: CPU-seconds of the stack's components and of k6.

Measured from /proc around the load, whatever limited the run: two runs can then be compared
on what the service spent even when k6 capped both. PostgreSQL and Redis are counted by name
over the whole machine (a system server may also serve other clients, which is said); a
target this toolkit did not start has no stack CPU to report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from alumnos_cli.stack.components import cpu_ticks, service_processes, stack_processes
from alumnos_cli.stack.state import StackState

_TICKS = os.sysconf("SC_CLK_TCK")
# The components of a stack, as the report lists them; supervisord only watches.
STACK_COMPONENTS = ("replicas", "haproxy", "breaker")
SERVICE_COMPONENTS = ("postgresql", "redis")


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU ticks used so far by each component's processes."""

    ticks: dict[str, int]


def snapshot(state: StackState | None) -> CpuSnapshot:
    """Each component's CPU so far; nothing for a target this toolkit did not start."""
    if state is None:
        return CpuSnapshot({})
    processes = stack_processes(state) | service_processes()
    return CpuSnapshot({name: cpu_ticks(processes[name])
                        for name in (*STACK_COMPONENTS, *SERVICE_COMPONENTS)})


def run_costs(before: CpuSnapshot, after: CpuSnapshot, *, k6_cpu_seconds: float,
              requests: int, state: StackState | None) -> dict[str, Any]:
    """CPU-seconds per component over the run, and per 1,000 of its requests."""
    seconds = {name: round(max(0, after.ticks[name] - before.ticks.get(name, 0)) / _TICKS, 3)
               for name in after.ticks}
    seconds["k6"] = round(k6_cpu_seconds, 3)
    per_1000 = {name: round(1_000_000 * value / requests, 3) if requests else None
                for name, value in seconds.items()}
    # A private cluster started by `up` is ours alone; the system's servers are shared.
    shared = [name for name in SERVICE_COMPONENTS
              if name in seconds and not (name == "postgresql" and state and state.postgres)]
    return {"requests": requests, "cpu_seconds": seconds, "cpu_ms_per_1000_requests": per_1000,
            "stack_measured": state is not None, "shared": shared}
