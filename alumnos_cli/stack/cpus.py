"""Which CPUs a process may run on: lists as users write them, affinity, and cgroup cpusets.

On a machine shared by the stack and the load generator, giving each its own cores makes the
figures attributable: what one spends the other did not lose. Affinity is inherited by
every thread and child, so pinning supervisord pins every program it starts; where a cgroup v1
cpuset can be made (root, a mounted cpuset hierarchy), the processes also go into one, so no
later `sched_setaffinity` of theirs can leave it.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

from alumnos_cli.errors import InvalidOption

CPUSET_ROOT = Path("/sys/fs/cgroup/cpuset")
_RANGE = re.compile(r"(\d+)(?:-(\d+))?")


def parse_cpus(text: str, option: str) -> tuple[int, ...]:
    """CPUs from '0', '0,1' or '0-3,6'; every one must be a CPU this process may use."""
    cpus: set[int] = set()
    for part in text.split(","):
        match = _RANGE.fullmatch(part.strip())
        if match is None:
            raise InvalidOption(option, f"{option} takes CPU numbers such as 0, 0,1 or 0-3, "
                                f"got {text!r}")
        low = int(match[1])
        high = int(match[2]) if match[2] is not None else low
        if high < low:
            raise InvalidOption(option, f"{option}: the range {part.strip()!r} goes backwards")
        cpus.update(range(low, high + 1))
    usable = available_cpus()
    unknown = sorted(cpus - set(usable))
    if unknown:
        raise InvalidOption(option, f"{option}: no CPU {', '.join(map(str, unknown))} here",
                            f"this machine offers CPUs {format_cpus(usable)}")
    return tuple(sorted(cpus))


def available_cpus() -> tuple[int, ...]:
    """The CPUs this process may run on."""
    return tuple(sorted(os.sched_getaffinity(0)))


def format_cpus(cpus: Iterable[int]) -> str:
    """CPUs as a list such as 0,1."""
    return ",".join(str(cpu) for cpu in sorted(cpus))


def check_apart(stack: Iterable[int], generator: Iterable[int]) -> None:
    """Refuse a generator on CPUs the stack was given: the point is to keep them apart."""
    shared = sorted(set(stack) & set(generator))
    if shared:
        raise InvalidOption("--generator-cpus", f"--generator-cpus shares CPU "
                            f"{format_cpus(shared)} with the stack (alumnos up --cpus "
                            f"{format_cpus(stack)})", "give the load generator other CPUs")


def pinned(argv: list[str], cpus: tuple[int, ...] | None,
           cpuset: Path | None = None) -> list[str]:
    """`argv` made to run on `cpus` only (inside `cpuset` when given), or unchanged without.

    taskset sets the affinity before it executes the command, so every thread and child of
    it inherits the CPUs (setting them afterwards would miss the threads already started);
    the shell joins the cpuset first and then becomes the command, keeping its pid.
    """
    if not cpus:
        return argv
    command = ["taskset", "--cpu-list", format_cpus(cpus), *argv]
    if cpuset is None:
        return command
    return ["sh", "-c", 'echo $$ > "$0/tasks" && exec "$@"', str(cpuset), *command]


def allowed_cpus(pid: int) -> tuple[int, ...] | None:
    """The CPUs a running process may use, from the kernel; None when it is gone."""
    try:
        return tuple(sorted(os.sched_getaffinity(pid)))
    except OSError:
        return None


def make_cpuset(name: str, cpus: tuple[int, ...]) -> Path | None:
    """A cgroup v1 cpuset holding `cpus`, or None where none can be made (not root, no cpuset
    hierarchy mounted: affinity alone then keeps the processes there)."""
    if os.geteuid() != 0 or not (CPUSET_ROOT / "cpuset.cpus").exists():
        return None
    group = CPUSET_ROOT / name
    try:
        group.mkdir(exist_ok=True)
        (group / "cpuset.cpus").write_text(format_cpus(cpus))
        (group / "cpuset.mems").write_text((CPUSET_ROOT / "cpuset.mems").read_text().strip())
    except OSError:
        remove_cpuset(group)
        return None
    return group


def remove_cpuset(group: Path) -> None:
    """Remove a cpuset this toolkit made, once its processes are gone."""
    with contextlib.suppress(OSError):
        group.rmdir()
