"""A Docker engine of the tests' own: its socket and data root in a private folder, loopback
and private networks only (no iptables rules, no docker0), stopped when the tests end.

The data root is kept between sessions, so images built once (`alumnos images --offline`) are
reused on this machine; a clean CI machine builds them once per run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from alumnos_cli.stack.images import mounts_below

HOME = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "alumnos" / "test-docker"


def _answers(host: str) -> bool:
    result = subprocess.run(["docker", "--host", host, "version", "--format",
                             "{{.Server.Version}}"], capture_output=True, text=True,
                            check=False, timeout=20)
    return result.returncode == 0


def _unavailable(why: str) -> None:
    # On CI the engine is part of what is tested: its absence fails, never skips.
    if os.environ.get("CI"):
        pytest.fail(f"compose mode cannot be tested: {why}")
    pytest.skip(f"compose mode needs a Docker engine: {why}")


@contextmanager
def private_engine() -> Iterator[str]:
    """DOCKER_HOST of a running engine of our own; started here, stopped on the way out
    (an engine already answering on our socket is used and left running)."""
    dockerd = shutil.which("dockerd") or ("/usr/sbin/dockerd"
                                          if Path("/usr/sbin/dockerd").exists() else None)
    if dockerd is None or shutil.which("docker") is None:
        _unavailable("dockerd or docker is not installed (bash scripts/system-packages)")
    if os.geteuid() != 0:
        _unavailable("starting dockerd needs root")
    HOME.mkdir(parents=True, exist_ok=True)
    HOME.chmod(0o700)
    host = f"unix://{HOME / 'docker.sock'}"
    if _answers(host):
        yield host
        return
    log = (HOME / "dockerd.log").open("ab")
    process = subprocess.Popen(
        [str(dockerd), "--host", host, "--data-root", str(HOME / "data"),
         "--exec-root", str(HOME / "exec"), "--pidfile", str(HOME / "dockerd.pid"),
         "--iptables=false", "--ip-masq=false", "--bridge=none"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not _answers(host):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = (HOME / "dockerd.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"dockerd did not start:\n{tail}")
            time.sleep(0.5)
        yield host
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
        _unmount_below(HOME / "exec")


def _unmount_below(folder: Path) -> None:
    """Unmount what the stopped engine left mounted (its network namespace files)."""
    for point in mounts_below(folder):
        subprocess.run(["umount", point], check=False, capture_output=True)
