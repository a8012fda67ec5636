"""The test hosts of scripts/testhosts as the distributed tests see them: what runs in each
namespace, what a run could leave behind, and a host made to die mid-run."""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path


def namespace_processes() -> dict[str, list[str]]:
    """What runs in each test host: command names by namespace."""
    found: dict[str, list[str]] = {}
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                            check=False).stdout.split()
    for namespace in (n for n in listed if n.startswith("alumnos-th")):
        pids = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True,
                              text=True, check=False).stdout.split()
        found[namespace] = [name for pid in pids if (name := _command_name(pid))]
    return found


def _command_name(pid: str) -> str | None:
    """A process's command name; None once it has ended (between listing and reading)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError):
        return None


def left_behind() -> list[str]:
    """k6 processes or run folders of ours still on the hosts (they share /tmp with us)."""
    k6 = [f"{ns}: {name}" for ns, names in namespace_processes().items() for name in names
          if name != "sshd"]
    folders = [str(p) for p in Path("/tmp").glob("alumnos-k6.*")]
    # On this side: no ssh master or forward of a run (their control sockets are in a
    # private alumnos-gen-* folder), nor that folder.
    masters = subprocess.run(["pgrep", "-af", "alumnos-gen-"], capture_output=True,
                             text=True, check=False).stdout.split("\n")
    ours = [line for line in masters if line.strip() and "pgrep" not in line]
    return k6 + folders + ours + [str(p) for p in Path(tempfile.gettempdir()).glob(
        "alumnos-gen-*")]


def kill_k6_in(namespace: str, once_served: Callable[[], bool]) -> threading.Thread:
    """A thread that kills (SIGKILL) the k6 running in `namespace` once `once_served` says
    the load is under way: a host dying mid-run."""
    def kill() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pids = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True,
                                  text=True, check=False).stdout.split()
            k6 = [p for p in pids if _command_name(p) == "k6"]
            if k6 and once_served():
                subprocess.run(["kill", "-KILL", *k6], check=False)
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill)
    killer.start()
    return killer
