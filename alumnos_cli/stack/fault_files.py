"""Faults left in place: a replica still slowed or failing after an interrupted `patterns`.

`up` starts every stack without fault files, and `patterns` clears the fault it injected; only
an interrupted proof (Ctrl-C, a killed terminal) leaves one behind, which would silently slow
every later benchmark. `bench` refuses such a stack and `status` shows it.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from alumnos_cli.errors import AlumnosError
from alumnos_cli.stack.state import StackState
from alumnos_service.faults import Fault, read_fault


def injected_faults(state: StackState) -> dict[str, Fault]:
    """The replicas whose fault file is in place, when the stack lets faults take effect."""
    if not state.service.fault_injection:
        return {}
    return {replica.name: read_fault(Path(replica.fault_file))
            for replica in state.service.replicas if Path(replica.fault_file).exists()}


def describe_fault(fault: Fault) -> str:
    """A fault in a few words: 'delay 300 ms', 'errors 50%'."""
    parts = ([f"delay {fault.delay_ms:g} ms"] if fault.delay_ms else []) + (
        [f"errors {fault.error_rate:.0%}"] if fault.error_rate else [])
    return ", ".join(parts) or "no effect"


def refuse_injected_faults(state: StackState) -> None:
    """Refuse to measure a stack where a fault file is still in place."""
    faults = injected_faults(state)
    if not faults:
        return
    files = [next(r.fault_file for r in state.service.replicas if r.name == name)
             for name in faults]
    described = "; ".join(f"{name}: {describe_fault(fault)}" for name, fault in faults.items())
    raise AlumnosError(f"a fault is still injected ({described}), left by an interrupted "
                       "alumnos patterns: a benchmark now would measure the fault",
                       f"remove it with: rm {' '.join(shlex.quote(f) for f in files)}")
