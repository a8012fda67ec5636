"""Server-side figures while a benchmark runs: what the stack did, next to what k6 saw.

Once a second, on the local stack that `up` started: CPU and memory of the service's
processes (found by the stack id in their environment), requests per replica and cache
outcomes as HAProxy counted them, and PostgreSQL's connections. Written to `server.json` in
the run folder; the report reads it back (the format is report.model's ServerSide).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import asdict
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from alumnos_cli.bench.balancer import watcher_view
from alumnos_cli.errors import AlumnosError
from alumnos_cli.files import write_json
from alumnos_cli.report.model import ServerSample, ServerSummary
from alumnos_cli.runfolder import SERVER_FILE
from alumnos_cli.stack import haproxy
from alumnos_cli.stack.components import stack_processes
from alumnos_cli.stack.state import StackState
from alumnos_service.db import driver_url

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_MIB = os.sysconf("SC_PAGE_SIZE") / 2**20


def _service_processes(state: StackState) -> list[int]:
    # Granian replicas, not HAProxy, the breaker or supervisord.
    return stack_processes(state)["replicas"]


def _cpu_and_rss(pids: list[int]) -> tuple[int, float]:
    ticks, rss = 0, 0.0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
            rss += int(fields[21]) * _PAGE_MIB
    return ticks, rss


class ServerSampler:
    """Samples the stack each second in a thread while k6 runs."""

    def __init__(self, state: StackState, interval: float = 1.0) -> None:
        self.state = state
        self.interval = interval
        self.samples: list[ServerSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._engine = create_engine(driver_url(state.database_url), pool_size=1,
                                     max_overflow=0, connect_args={"connect_timeout": 2})
        self._outcomes_before = self._outcomes()
        self._requests_before = self._requests()
        self._refused_before = self._refused()

    def __enter__(self) -> ServerSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._engine.dispose()

    def _loop(self) -> None:
        started = time.monotonic()
        pids = _service_processes(self.state)
        last_ticks, _ = _cpu_and_rss(pids)
        last = started
        while not self._stop.wait(self.interval):
            now = time.monotonic()
            if not pids or not all(Path(f"/proc/{pid}").exists() for pid in pids):
                # A replica restarted: find its new processes (a scan of every process's
                # environment, so not every second).
                pids = _service_processes(self.state) or pids
            ticks, rss = _cpu_and_rss(pids)
            cores = max(0.0, (ticks - last_ticks) / _TICKS / (now - last))
            last_ticks, last = ticks, now
            self.samples.append(ServerSample(
                t=round(now - started, 1), service_cores=round(cores, 3),
                service_rss_mib=round(rss, 1), pg_connections=self._pg_connections(),
                requests=self._requests(), refused=self._refused_since_start()))

    def _pg_connections(self) -> int | None:
        try:
            with self._engine.connect() as conn:
                return int(conn.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                )).scalar_one())
        except SQLAlchemyError:
            return None

    def _requests(self) -> dict[str, int]:
        socket = self.state.service.runtime_socket
        if not socket:
            return {}
        try:
            return {s.name: s.requests for s in haproxy.server_stats(Path(socket))}
        except AlumnosError:
            return {}

    def _refused(self) -> int | None:
        """Every request the balancer answered itself, as the breaker's watcher counted them."""
        view = watcher_view(self.state)
        return sum(view.refused.values()) if view else None

    def _refused_since_start(self) -> int | None:
        now, start = self._refused(), self._refused_before
        return None if now is None else counted_since(start or 0, now)

    def _outcomes(self) -> dict[str, int]:
        socket = self.state.service.runtime_socket
        if not socket:
            return {}
        try:
            return haproxy.cache_outcomes(Path(socket))
        except AlumnosError:
            return {}

    def write(self, folder: Path) -> ServerSummary:
        """Save the samples and their summary in the run folder."""
        outcomes_after = self._outcomes()
        outcomes = {k: v - self._outcomes_before.get(k, 0) for k, v in outcomes_after.items()}
        summary = summarize(self.samples, outcomes, self._requests_before, self._requests())
        write_json(folder / SERVER_FILE, {"summary": asdict(summary),
                                          "samples": [asdict(s) for s in self.samples]})
        return summary


def counted_since(start: int, now: int) -> int:
    """What a counter counted since `start`; below it the counter restarted (HAProxy or the
    watcher did), and what it counted since its restart is the floor."""
    return now - start if now >= start else now


def summarize(samples: list[ServerSample], outcomes: dict[str, int], before: dict[str, int],
              after: dict[str, int]) -> ServerSummary:
    """Totals over the run: counters read before and after it, and the per-second samples."""
    first = before
    final = after or (samples[-1].requests if samples else {})
    by_replica = {name: counted_since(first.get(name, 0), count) for name, count in final.items()}
    hits, misses = outcomes.get("HIT", 0), outcomes.get("MISS", 0)
    cores = [s.service_cores for s in samples]
    connections = [s.pg_connections for s in samples if s.pg_connections is not None]
    return ServerSummary(
        requests_by_replica=by_replica,
        cache_hit_ratio=hits / (hits + misses) if hits + misses else None,
        cache_outcomes=outcomes,
        service_cores_avg=round(sum(cores) / len(cores), 3) if cores else 0.0,
        service_cores_max=max(cores, default=0.0),
        service_rss_mib_max=max((s.service_rss_mib for s in samples), default=0.0),
        pg_connections_max=max(connections) if connections else None)
