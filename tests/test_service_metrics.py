"""GET /metrics: one app's figures in a test process, a replica's totals under real Granian."""

from __future__ import annotations

import contextlib
import http.client
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from alumnos_cli.seed.load import seed_alumnos
from alumnos_cli.settings import Settings
from alumnos_cli.stack.ports import free_port
from alumnos_service.paths import FIRST_PAGE, HEALTH_PATH, METRICS_PATH, PAGE_PATH, PING_PATH
from tests.processes import stop

ROOT = Path(__file__).resolve().parents[1]
WORKERS = 2
PINGS = 40  # at least; more until every worker has answered some
PAGES = 30
SCRAPES = 6  # at least; more until every worker has answered one
MOST_REQUESTS = 2_000  # gives up on "every worker served some" after this many


def samples(exposition: str, name: str, **labels: str) -> list[float]:
    """The values of every series called name whose labels include labels."""
    return [sample.value for family in text_string_to_metric_families(exposition)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()]


def value(exposition: str, name: str, **labels: str) -> float:
    """The one series called name with labels: a second one would be a per-worker split."""
    found = samples(exposition, name, **labels)
    assert len(found) == 1, f"{name}{labels}: {found}"
    return found[0]


@pytest.fixture
def seeded(settings: Settings, cache_prefix: str) -> Settings:
    seed_alumnos(settings, count=120, seed=7, cache_prefix=cache_prefix)
    return settings


def test_one_process_counts_requests_without_a_worker_label(
        make_app: Callable[[dict[str, object]], Flask], seeded: Settings,
        cache_prefix: str) -> None:
    config = {"DATABASE_URL": seeded.database_url, "REDIS_URL": seeded.redis_url,
              "CACHE_PREFIX": cache_prefix}
    client = make_app(config).test_client()
    for _ in range(3):
        assert client.get(FIRST_PAGE).status_code == 200
    client.get(PING_PATH)
    exposition = client.get(METRICS_PATH).get_data(as_text=True)
    assert "worker=" not in exposition  # before: every series carried the worker's pid
    assert value(exposition, "alumnos_http_requests_total", route=PAGE_PATH, method="GET",
                 status="200") == 3
    assert value(exposition, "alumnos_http_request_duration_seconds_count", route=PING_PATH) == 1
    assert value(exposition, "alumnos_cache_events_total", event="misses") == 1
    assert value(exposition, "alumnos_cache_events_total", event="near_hits") == 2
    assert value(exposition, "alumnos_db_queries_total") == 1


def test_each_app_counts_apart_and_the_global_registry_stays_empty(
        make_app: Callable[[dict[str, object]], Flask], database_url: str) -> None:
    first, second = (make_app({"DATABASE_URL": database_url, "CACHE": "off"}).test_client()
                     for _ in range(2))
    first.get(PING_PATH)
    first.get(PING_PATH)
    second.get(PING_PATH)
    scraped = [client.get(METRICS_PATH).get_data(as_text=True) for client in (first, second)]
    counts = [value(text, "alumnos_http_requests_total", route=PING_PATH) for text in scraped]
    assert counts == [2, 1]
    assert not [family.name for family in REGISTRY.collect()
                if family.name.startswith("alumnos_")]


# --- a replica for real: Granian with several workers and a multiprocess folder ------------


@dataclass(frozen=True)
class Replica:
    """A running Granian on 127.0.0.1."""

    port: int
    process: subprocess.Popen[bytes]


@dataclass(frozen=True)
class Answer:
    """A response read whole over its own connection."""

    status: int
    worker: str  # the pid part of X-Served-By
    body: str


def get(port: int, path: str) -> Answer:
    """GET path over a fresh connection, so the replica may hand it to any worker."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        body = response.read().decode()
        served_by = response.getheader("X-Served-By", "")
        return Answer(response.status, served_by.rpartition(":")[2], body)
    finally:
        connection.close()


def _wait_until_healthy(replica: Replica, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if replica.process.poll() is not None:
            pytest.fail(f"granian exited: {log.read_text(errors='replace')}")
        with contextlib.suppress(OSError):  # not listening yet
            if get(replica.port, HEALTH_PATH).status == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"granian never answered {HEALTH_PATH}: {log.read_text(errors='replace')}")


@pytest.fixture
def replica(seeded: Settings, cache_prefix: str, tmp_path: Path) -> Iterator[Replica]:
    """Granian with WORKERS workers sharing a fresh PROMETHEUS_MULTIPROC_DIR; stopped after."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    port = free_port(18900)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder),
           "ALUMNOS_DATABASE_URL": seeded.database_url, "ALUMNOS_REDIS_URL": seeded.redis_url,
           "ALUMNOS_CACHE_PREFIX": cache_prefix, "ALUMNOS_REPLICA": "metrics-test"}
    log = tmp_path / "granian.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "granian", "--interface", "wsgi", "--workers", str(WORKERS),
             "--host", "127.0.0.1", "--port", str(port), "alumnos_service.wsgi:app"],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    running = Replica(port, process)
    try:
        _wait_until_healthy(running, log)
        yield running
    finally:
        stop(process, 15, group=True)  # its own session: Granian and its workers


def _spread(port: int, path: str, least: int) -> tuple[int, set[str]]:
    """GET path at least `least` times, and on until every worker answered one."""
    workers: set[str] = set()
    sent = 0
    while sent < least or (len(workers) < WORKERS and sent < MOST_REQUESTS):
        answer = get(port, path)
        assert answer.status == 200, answer.body
        workers.add(answer.worker)
        sent += 1
    return sent, workers


@pytest.mark.slow
def test_every_worker_reports_the_replicas_totals(replica: Replica) -> None:
    pings, ping_workers = _spread(replica.port, PING_PATH, PINGS)
    pages, page_workers = _spread(replica.port, FIRST_PAGE, PAGES)
    assert len(ping_workers | page_workers) == WORKERS  # else the test proves nothing
    scraped_by: set[str] = set()
    scrapes = 0
    while scrapes < SCRAPES or (len(scraped_by) < WORKERS and scrapes < MOST_REQUESTS):
        answer = get(replica.port, METRICS_PATH)
        scraped_by.add(answer.worker)
        scrapes += 1
        text = answer.body
        assert "worker=" not in text
        # Before: each worker answered with its own share, a different one per scrape.
        assert value(text, "alumnos_http_requests_total", route=PING_PATH) == pings
        assert value(text, "alumnos_http_requests_total", route=PAGE_PATH, status="200") == pages
        assert value(text, "alumnos_http_request_duration_seconds_count", route=PING_PATH) == pings
        assert value(text, "alumnos_http_request_duration_seconds_bucket", route=PING_PATH,
                     le="+Inf") == pings
        # Sequential requests: the first page is built once, every later one is a hit.
        assert sum(samples(text, "alumnos_cache_events_total")) == pages
        assert value(text, "alumnos_cache_events_total", event="misses") == 1
        assert value(text, "alumnos_db_queries_total") == 1
    assert len(scraped_by) == WORKERS
