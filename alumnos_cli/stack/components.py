"""The processes behind each component of a stack, found in /proc: for CPU costs and pinning.

The stack's own processes carry its id in their environment (whoever their parent is now);
PostgreSQL and Redis are found by name, since a system service's processes are not ours to
mark (and may also serve other clients).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from alumnos_cli.errors import AlumnosError
from alumnos_cli.stack.cpus import allowed_cpus, format_cpus
from alumnos_cli.stack.options import STACK_ID_VARIABLE
from alumnos_cli.stack.processes import marked_processes
from alumnos_cli.stack.state import StackState

# Command names (/proc/PID/comm) of the services the stack uses, whoever started them.
SERVICE_NAMES = {"postgresql": ("postgres",), "redis": ("redis-server",)}


def command_name(pid: int) -> str:
    """/proc/PID/comm: the executable's name, cut to 15 characters by the kernel."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def stack_processes(state: StackState) -> dict[str, list[int]]:
    """The stack's own processes by component: replicas, haproxy, breaker, supervisord."""
    found: dict[str, list[int]] = {"replicas": [], "haproxy": [], "breaker": [],
                                   "supervisord": []}
    if not state.service.stack_id:
        return found
    for pid in marked_processes(STACK_ID_VARIABLE, state.service.stack_id):
        line = _command_line(pid)
        if b"granian" in line:
            found["replicas"].append(pid)
        elif command_name(pid) == "haproxy":
            found["haproxy"].append(pid)
        elif b"alumnos_cli.stack.watcher" in line:
            found["breaker"].append(pid)
        elif b"supervisord" in line:
            found["supervisord"].append(pid)
    return found


def service_processes() -> dict[str, list[int]]:
    """PostgreSQL's and Redis's processes on this machine, by name."""
    found: dict[str, list[int]] = {name: [] for name in SERVICE_NAMES}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        name = command_name(int(entry.name))
        for component, names in SERVICE_NAMES.items():
            if name in names:
                found[component].append(int(entry.name))
    return found


def cpu_ticks(pids: list[int]) -> int:
    """CPU clock ticks the processes used, with their children that already exited (a
    PostgreSQL backend that disconnected, a Granian worker that was replaced)."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks


def private_postgres_processes(state: StackState) -> list[int]:
    """The private cluster `up` started: its postmaster (from postmaster.pid) and children."""
    if state.postgres is None:
        return []
    try:
        postmaster = int((Path(state.postgres.data_dir) / "postmaster.pid").read_text()
                         .split("\n", 1)[0])
    except (OSError, ValueError):
        return []
    return [postmaster, *(pid for pid in _all_pids() if _parent(pid) == postmaster)]


def _all_pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def placement(state: StackState) -> dict[str, list[list[int]]]:
    """Where each component of the stack may run, as the kernel says: the distinct CPU sets
    of its processes (one set when all of them agree)."""
    processes = stack_processes(state)
    processes["postgresql"] = private_postgres_processes(state)
    places: dict[str, list[list[int]]] = {}
    for component, pids in processes.items():
        sets = {allowed for pid in pids if (allowed := allowed_cpus(pid)) is not None}
        if sets:
            places[component] = [list(cpus) for cpus in sorted(sets)]
    return places


def check_placement(state: StackState) -> None:
    """After `up --cpus`: every process of the stack may run on the asked CPUs only."""
    if not state.service.cpus:
        return
    wanted = list(state.service.cpus)
    astray = {component: sets for component, sets in placement(state).items()
              if sets != [wanted]}
    if astray:
        raise AlumnosError(f"these processes are not on CPUs {format_cpus(wanted)}: "
                           + "; ".join(f"{component} on {sets}"
                                       for component, sets in astray.items()),
                           "alumnos logs shows what started them")
