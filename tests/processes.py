"""Stopping what a test started: SIGTERM, then SIGKILL if it has not ended in time."""

from __future__ import annotations

import os
import signal
import subprocess


def stop(process: subprocess.Popen[bytes], timeout: float, *, group: bool = False) -> None:
    """End `process`; `group` also kills what it forked (a process started in its own session,
    such as Granian and its workers) when SIGTERM was not enough."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
        process.wait(timeout=timeout)
