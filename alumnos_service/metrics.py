"""Prometheus text metrics, per worker process: requests, latencies, cache and database work."""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict

from flask import Blueprint, Flask, Response, current_app, g, request

from alumnos_service.paths import METRICS_PATH

# Upper bounds in seconds: fine where this service lives (milliseconds), coarse beyond.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

bp = Blueprint("metrics", __name__)
# Any token is a method to HTTP: unknown ones share one label value, so a client cannot make
# the series grow without bound.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics:
    """Counts and latency histograms by route, method and status."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.buckets: dict[str, list[int]] = defaultdict(lambda: [0] * len(BUCKETS))
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Record one request."""
        with self._lock:
            self.requests[(route, method, status)] += 1
            self.sums[route] += seconds
            self.counts[route] += 1
            row = self.buckets[route]
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    row[i] += 1
                    break

    def render(self) -> list[str]:
        """Prometheus exposition lines."""
        pid = os.getpid()
        lines = ["# HELP alumnos_http_requests_total Requests answered, by route and status.",
                 "# TYPE alumnos_http_requests_total counter"]
        with self._lock:
            for (route, method, status), count in sorted(self.requests.items()):
                lines.append(f'alumnos_http_requests_total{{worker="{pid}",route="{route}",'
                             f'method="{method}",status="{status}"}} {count}')
            lines += ["# HELP alumnos_http_request_duration_seconds Time to build a response.",
                      "# TYPE alumnos_http_request_duration_seconds histogram"]
            for route, row in sorted(self.buckets.items()):
                labels = f'worker="{pid}",route="{route}"'
                cumulative = 0
                for bound, count in zip(BUCKETS, row, strict=True):
                    cumulative += count
                    lines.append(f'alumnos_http_request_duration_seconds_bucket{{{labels},'
                                 f'le="{bound}"}} {cumulative}')
                lines.append(f'alumnos_http_request_duration_seconds_bucket{{{labels},'
                             f'le="+Inf"}} {self.counts[route]}')
                lines.append(f"alumnos_http_request_duration_seconds_sum{{{labels}}} "
                             f"{self.sums[route]:.6f}")
                lines.append(f"alumnos_http_request_duration_seconds_count{{{labels}}} "
                             f"{self.counts[route]}")
        return lines


def install(app: Flask) -> None:
    """Time every request and expose GET /metrics."""
    metrics = RequestMetrics()
    app.extensions["alumnos.metrics"] = metrics

    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def record(response: Response) -> Response:
        rule = request.url_rule.rule if request.url_rule else "unmatched"
        method = request.method if request.method in KNOWN_METHODS else "OTHER"
        metrics.observe(rule, method, response.status_code,
                        time.perf_counter() - g.get("started", time.perf_counter()))
        return response

    app.register_blueprint(bp)


@bp.get(METRICS_PATH)
def metrics_text() -> Response:
    """This worker's figures in Prometheus text format (each worker keeps its own)."""
    lines = current_app.extensions["alumnos.metrics"].render()
    pid = os.getpid()
    cache = current_app.extensions["alumnos.cache"]
    lines += ["# HELP alumnos_cache_events_total Cache outcomes: hits by layer, misses, "
              "bypasses.", "# TYPE alumnos_cache_events_total counter"]
    if cache is not None:
        for event, count in vars(cache.counters).items():
            lines.append(f'alumnos_cache_events_total{{worker="{pid}",event="{event}"}} {count}')
    repository = current_app.extensions["alumnos.repository"]
    lines += ["# HELP alumnos_db_queries_total Page and row queries sent to PostgreSQL.",
              "# TYPE alumnos_db_queries_total counter",
              f'alumnos_db_queries_total{{worker="{pid}"}} {repository.queries}']
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")
