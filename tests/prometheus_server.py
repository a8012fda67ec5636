"""A throwaway Prometheus for tests: the stack's command line, a free port, a temporary folder.

    with running_prometheus() as url:  # http://127.0.0.1:PORT, ready for k6's writes
        ...

It is stopped and its data removed on the way out, whatever happened inside.
"""

from __future__ import annotations

import itertools
import json
import random
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from alumnos_cli.stack.ports import free_port
from alumnos_cli.stack.prometheus_args import (
    MINIMAL_CONFIG,
    PROMETHEUS_BINARY,
    WRITE_FLAGS,
    prometheus_argv,
)
from tests.processes import stop

# Ready in about a second here; a loaded machine may take longer to replay an empty WAL.
READY_TIMEOUT_SECONDS = 30.0


def prometheus_installed() -> bool:
    """Whether the Prometheus the stack runs is on this machine."""
    return Path(PROMETHEUS_BINARY).is_file()


@contextmanager
def running_prometheus(start_port: int = 19090, *, accept_writes: bool = True) -> Iterator[str]:
    """A Prometheus on a free 127.0.0.1 port that accepts remote writes and native
    histograms (unless told not to: what a plain Prometheus is); yields its base URL."""
    folder = Path(tempfile.mkdtemp(prefix="alumnos-prometheus-"))
    try:
        config = folder / "prometheus.yml"
        config.write_text(MINIMAL_CONFIG)
        port = free_port(start_port)
        argv = prometheus_argv(config, folder / "data", port)
        if not accept_writes:
            argv = [arg for arg in argv if arg not in WRITE_FLAGS]
        with (folder / "prometheus.log").open("wb") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url, process, folder / "prometheus.log")
            yield url
        finally:
            stop(process, 30)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {process.returncode}: "
                               f"{log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass  # not listening yet, or still replaying its WAL (503)
        time.sleep(0.1)
    raise RuntimeError(f"prometheus at {url} not ready after {READY_TIMEOUT_SECONDS:g} s")


def query(url: str, promql: str) -> list[dict[str, Any]]:
    """The result vector of an instant PromQL query, evaluated now."""
    address = f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(address, timeout=10) as response:
        answer = json.load(response)
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def scalar(url: str, promql: str) -> float | None:
    """The one value of a query that aggregates to a single sample; None when it has none."""
    result = query(url, promql)
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else None


# A page that answers in a known spread of times: k6 waits on it, not on CPU, and its latency
# distribution has something to compare (tests/test_remote_write.py, the remote-write cost).
FASTEST_S, SLOWEST_S = 0.005, 0.050


# Under this path every FLAKY_EVERY-th answer (never the first: setup's) is a 503, so a run
# has errors of a known status to break down (tests/test_breakdown_prometheus.py).
FLAKY_PATH, FLAKY_EVERY = "/flaky", 10


class SlowPage(BaseHTTPRequestHandler):
    """200 after a random 5-50 ms; HTTP/1.1 so k6 keeps its connections."""

    protocol_version = "HTTP/1.1"
    answered = itertools.count(1)
    served = 0  # every request, counted as the server sees them
    _counting = threading.Lock()

    def do_GET(self) -> None:
        with SlowPage._counting:
            SlowPage.served += 1
        time.sleep(random.uniform(FASTEST_S, SLOWEST_S))
        flaky = self.path.startswith(FLAKY_PATH) and next(self.answered) % FLAKY_EVERY == 0
        self.send_response(503 if flaky else 200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        """Quiet."""


@contextmanager
def slow_page(address: str = "127.0.0.1") -> Iterator[str]:
    """A SlowPage server on a free port of `address`; yields its base URL."""
    server = ThreadingHTTPServer((address, 0), SlowPage)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{address}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
