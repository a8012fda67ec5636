"""Prometheus metrics of a replica: requests, latencies, cache and database work.

Granian runs several worker processes per replica, and a scrape reaches any one of them. With
PROMETHEUS_MULTIPROC_DIR set (the stack gives each replica a fresh folder on every `up`; it must
be set before the process starts), every worker writes its values to its own files there and
GET /metrics on any worker sums the whole folder: the replica's totals, with no per-process
label. A restarted worker writes new files and its predecessor's stay and keep counting, so the
replica's counters never go backwards and nothing needs wiping. That holds because there are
counters and histograms only: a gauge would need mark_process_dead when a worker exits.
Without the variable (tests, one process), each app counts in a registry of its own.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from alumnos_service.cache import CACHE_EVENTS, PageCache
from alumnos_service.db import AlumnosRepository
from alumnos_service.paths import METRICS_PATH

MULTIPROCESS_FOLDER = "PROMETHEUS_MULTIPROC_DIR"
# Upper bounds in seconds: fine where this service lives (milliseconds), coarse beyond.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Any token is a method to HTTP: unknown ones share one label value, so a client cannot make
# the series grow without bound.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

bp = Blueprint("metrics", __name__)


@dataclass(frozen=True)
class ServiceMetrics:
    """The service's metric objects."""

    requests: Counter
    latency: Histogram
    cache_events: Counter
    db_queries: Counter
    cache_responses: Counter


def _metrics(registry: CollectorRegistry | None) -> ServiceMetrics:
    return ServiceMetrics(
        requests=Counter("alumnos_http_requests_total", "Requests answered, by route and status.",
                         ("route", "method", "status"), registry=registry),
        latency=Histogram("alumnos_http_request_duration_seconds", "Time to build a response.",
                          ("route",), buckets=BUCKETS, registry=registry),
        cache_events=Counter("alumnos_cache_events_total",
                             "Cache outcomes: hits by layer, misses, bypasses.", ("event",),
                             registry=registry),
        db_queries=Counter("alumnos_db_queries_total",
                           "Page and row queries sent to PostgreSQL.", registry=registry),
        # What each response's X-Cache said, as the balancer counts it: the run's cache
        # outcomes from Prometheus (HAProxy's exporter does not export its stick tables).
        cache_responses=Counter("alumnos_cache_responses_total",
                                "Responses by their X-Cache header (HIT, MISS, BYPASS).",
                                ("outcome",), registry=registry),
    )


@functools.cache
def _process_metrics() -> ServiceMetrics:
    """Multiprocess mode: one set per process, however many apps it builds; two objects for
    one series would each write their own total over the other's in the process's file."""
    return _metrics(None)


def _choose_metrics() -> tuple[ServiceMetrics, CollectorRegistry]:
    """(where requests are counted, what a scrape reads)."""
    exposed = CollectorRegistry()
    # prometheus-client picks its mode from the same variable when it is first imported.
    if MULTIPROCESS_FOLDER in os.environ:
        folder = os.environ[MULTIPROCESS_FOLDER]
        # Raises at start-up when the folder is missing, not at the first scrape. (The
        # library leaves this and disable_created_metrics unannotated.)
        MultiProcessCollector(exposed, path=folder)  # type: ignore[no-untyped-call]
        return _process_metrics(), exposed
    return _metrics(exposed), exposed


def install(app: Flask) -> None:
    """Time every request, count cache and database work, and expose GET /metrics."""
    # No *_created series: a timestamp per series that nothing here reads.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    metrics, exposed = _choose_metrics()
    app.extensions["alumnos.metrics"] = exposed
    _count_work(app, metrics)

    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def record(response: Response) -> Response:
        route = request.url_rule.rule if request.url_rule else "unmatched"
        method = request.method if request.method in KNOWN_METHODS else "OTHER"
        metrics.requests.labels(route, method, str(response.status_code)).inc()
        metrics.latency.labels(route).observe(
            time.perf_counter() - g.get("started", time.perf_counter()))
        # As the X-Cache header says it (app.py): BYPASS unless the cache served or filled it.
        metrics.cache_responses.labels(g.get("cache_status", "BYPASS")).inc()
        return response

    app.register_blueprint(bp)


def _count_work(app: Flask, metrics: ServiceMetrics) -> None:
    """Count cache events and queries as they happen (a scrape sees only its own worker)."""
    repository: AlumnosRepository = app.extensions["alumnos.repository"]
    repository.on_query = metrics.db_queries.inc
    cache: PageCache | None = app.extensions["alumnos.cache"]
    if cache is None:
        return
    for event in CACHE_EVENTS:  # every outcome is a series from the start, at 0
        metrics.cache_events.labels(event)
    cache.counters.on_event = lambda event: metrics.cache_events.labels(event).inc()


@bp.get(METRICS_PATH)
def metrics_text() -> Response:
    """Prometheus text: the replica's totals over its workers (one app's, in one process)."""
    exposed: CollectorRegistry = current_app.extensions["alumnos.metrics"]
    return Response(generate_latest(exposed), content_type=CONTENT_TYPE_PLAIN_0_0_4)
