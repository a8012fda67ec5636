"""Processes that `up` started: recorded with their start time so `down` never kills a stranger."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def start_ticks(pid: int) -> int | None:
    """The process start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; fields after it start past the last ')'.
    return int(stat.rsplit(")", 1)[1].split()[19])


@dataclass(frozen=True)
class RecordedProcess:
    """A process leader we started, identified by pid and start time."""

    pid: int
    started: int

    @classmethod
    def of(cls, pid: int) -> RecordedProcess:
        """Record a just-started process."""
        return cls(pid=pid, started=start_ticks(pid) or 0)

    def alive(self) -> bool:
        """True while this very process (not a reused pid) runs and is not a zombie."""
        if start_ticks(self.pid) != self.started:
            return False
        try:
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        return state != "Z"

    def stop(self, timeout: float = 15.0) -> bool:
        """SIGTERM its process group, SIGKILL after timeout; True when it was running."""
        if not self.alive():
            return False
        _signal_group(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reap(self.pid)
            if not self.alive():
                return True
            time.sleep(0.1)
        _signal_group(self.pid, signal.SIGKILL)
        reap(self.pid)
        return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def reap(pid: int) -> None:
    """Collect a child's exit status, when the caller is its parent (tests, one-process use)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def log_tail(path: Path, lines: int = 5) -> str:
    """The last lines of a log, joined for a one-line error message."""
    if not path.exists():
        return ""
    return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])


def is_marked(pid: int, name: str, value: str) -> bool:
    """True when process pid's environment holds name=value (one `up`'s marker)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{name}={value}".encode() in environ.split(b"\0")


# Lines of a failed command's or container's log that an error shows.
LOG_TAIL = 15


def output_tail(result: subprocess.CompletedProcess[str], lines: int = LOG_TAIL) -> str:
    """The last lines of what a finished command printed (stdout, then stderr), for an error
    that shows the end of its log."""
    return "\n".join((result.stdout + result.stderr).strip().splitlines()[-lines:])


def marked_processes(name: str, value: str) -> list[int]:
    """Live processes whose environment holds name=value (what one `up` started, whoever
    their parent is now)."""
    return [process.pid for process in _marked(name, value)]


def _marked(name: str, value: str) -> list[RecordedProcess]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        process = RecordedProcess.of(int(entry.name))
        if is_marked(process.pid, name, value) and process.alive():
            found.append(process)
    return found


def signal_if_same(process: RecordedProcess, sig: signal.Signals, *, group: bool = False,
                   marker: tuple[str, str] | None = None) -> bool:
    """Signal a recorded process (its group with `group`) only while it is still that very
    process (same start time) and, given a marker, still carries it: a pid read seconds ago may
    belong to a stranger by now. True when the signal was sent."""
    if not process.alive() or (marker is not None and not is_marked(process.pid, *marker)):
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        (os.killpg if group else os.kill)(process.pid, sig)
        return True
    return False


def stop_marked(name: str, value: str, timeout: float = 10.0) -> list[int]:
    """SIGTERM every process marked name=value, SIGKILL what remains after timeout."""
    processes = _marked(name, value)
    for process in processes:
        signal_if_same(process, signal.SIGTERM, marker=(name, value))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _marked(name, value):
        for process in processes:
            reap(process.pid)
        time.sleep(0.1)
    for process in _marked(name, value):
        signal_if_same(process, signal.SIGKILL, marker=(name, value))
        reap(process.pid)
    return [process.pid for process in processes]
