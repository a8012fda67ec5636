"""Processes that `up` started: recorded with their start time so `down` never kills a stranger."""

from __future__ import annotations

import contextlib
import os
import signal
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


def marked_processes(name: str, value: str) -> list[int]:
    """Live processes whose environment holds name=value (what one `up` started, whoever
    their parent is now)."""
    wanted = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if wanted in environ.split(b"\0") and RecordedProcess.of(int(entry.name)).alive():
            found.append(int(entry.name))
    return found


def stop_marked(name: str, value: str, timeout: float = 10.0) -> list[int]:
    """SIGTERM every process marked name=value, SIGKILL what remains after timeout."""
    pids = marked_processes(name, value)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and marked_processes(name, value):
        for pid in pids:
            reap(pid)
        time.sleep(0.1)
    for pid in marked_processes(name, value):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
        reap(pid)
    return pids
