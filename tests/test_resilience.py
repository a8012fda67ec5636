"""The cache under a stampede and a dying Redis; the service through a PostgreSQL restart."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from alumnos_cli.database import is_reachable
from alumnos_cli.seed.load import seed_alumnos
from alumnos_cli.settings import Settings
from alumnos_cli.stack.ports import free_port
from alumnos_cli.stack.postgres import cluster_root, start_private_cluster, stop_private_cluster
from alumnos_service.cache import GENERATION_MAX_AGE

PAGE = "/api/v1/alumno/alumno"


@pytest.fixture
def seeded(settings: Settings, cache_prefix: str) -> Settings:
    seed_alumnos(settings, count=400, seed=12, cache_prefix=cache_prefix)
    return settings


AppFor = Callable[..., Flask]


@pytest.fixture
def app_for(make_app: Callable[[dict[str, object]], Flask]) -> AppFor:
    """An app on the given database and Redis, closed after the test."""

    def build(settings: Settings, **config: object) -> Flask:
        return make_app({"DATABASE_URL": settings.database_url,
                         "REDIS_URL": settings.redis_url, **config})

    return build


def test_stampede_on_a_cold_key_sends_one_database_query(
        app_for: AppFor, seeded: Settings,
                                                         cache_prefix: str) -> None:
    app = app_for(seeded, CACHE_PREFIX=cache_prefix, DB_POOL_SIZE=20)
    repository = app.extensions["alumnos.repository"]
    before = repository.queries
    barrier = threading.Barrier(40)
    results: list[tuple[int, str, bytes]] = []

    def cold_request() -> None:
        client = app.test_client()
        barrier.wait()
        response = client.get(f"{PAGE}?limit=50&offset=77")
        results.append((response.status_code, response.headers["X-Cache"], response.data))

    threads = [threading.Thread(target=cold_request) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {status for status, _, _ in results} == {200}
    assert len({body for _, _, body in results}) == 1
    assert [cache for _, cache, _ in results].count("MISS") == 1
    assert repository.queries - before == 1
    counters = app.extensions["alumnos.cache"].counters
    assert counters.misses == 1
    assert counters.waited_hits + counters.redis_hits + counters.near_hits == 39


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Redis server of the test's own, which the test may kill."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port(16400)
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    client = redis.Redis.from_url(url)
    for _ in range(50):
        try:
            client.ping()
            break
        except redis.RedisError:
            time.sleep(0.1)
    client.close()
    yield url, server
    server.kill()
    server.wait()


def test_redis_dying_mid_test_never_fails_a_request(
        app_for: AppFor,
        seeded: Settings, private_redis: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, server = private_redis
    app = app_for(seeded, REDIS_URL=url, REDIS_RETRY_AFTER_SECONDS=0.5)
    client = app.test_client()
    query = f"{PAGE}?limit=5&offset=10"
    expected = client.get(query).get_json()["items"]
    assert client.get(query).headers["X-Cache"] == "HIT"
    server.kill()
    server.wait()
    # Past the generation's freshness bound the near cache can no longer prove its pages current.
    time.sleep(GENERATION_MAX_AGE * 1.5)
    cache = app.extensions["alumnos.cache"]
    for _ in range(20):
        response = client.get(query)
        assert response.status_code == 200
        assert response.headers["X-Cache"] == "BYPASS"
        assert response.get_json()["items"] == expected
    # After the first failure Redis is skipped, not asked (and waited for) by every request.
    assert not cache.available
    assert cache.counters.bypassed == 20


class PrivatePostgres:
    """A private cluster with 30 alumnos, which a test may stop and start again on its port."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.record = start_private_cluster(state_dir)

    def stop(self) -> None:
        stop_private_cluster(self.record)

    def start_again(self) -> None:
        url = self.record.url
        self.record = start_private_cluster(self.state_dir)
        assert self.record.url == url, "the cluster came back on another port"


@pytest.fixture
def private_postgres(tmp_path: Path, settings: Settings,
                     cache_prefix: str) -> Iterator[tuple[PrivatePostgres, Settings]]:
    state_dir = tmp_path / "pg"
    root = cluster_root(state_dir)
    cluster = PrivatePostgres(state_dir)
    try:
        private = settings.with_database_url(cluster.record.url)
        seed_alumnos(private, count=30, cache_prefix=cache_prefix)
        yield cluster, private
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_postgres_down_gives_503_and_the_service_recovers_without_restart(
        app_for: AppFor, private_postgres: tuple[PrivatePostgres, Settings]) -> None:
    cluster, private = private_postgres
    client = app_for(private, CACHE="off").test_client()
    assert client.get(f"{PAGE}?limit=2").status_code == 200
    cluster.stop()
    down = client.get(f"{PAGE}?limit=2")
    assert down.status_code == 503
    assert down.mimetype == "application/problem+json"
    assert down.headers["Retry-After"] == "5"
    assert client.get("/ready").status_code == 503
    assert client.get("/health").status_code == 200
    cluster.start_again()
    assert is_reachable(private.database_url)
    back = client.get(f"{PAGE}?limit=2")
    assert back.status_code == 200
    assert back.get_json()["total"] == 30


def test_a_request_after_a_postgres_restart_is_served_on_a_fresh_connection(
        app_for: AppFor, private_postgres: tuple[PrivatePostgres, Settings]) -> None:
    """No ping per checkout: the request that finds its pooled connection dropped tries once
    more on a fresh one, so a restart between two requests costs no error."""
    cluster, private = private_postgres
    client = app_for(private, CACHE="off").test_client()
    assert client.get(f"{PAGE}?limit=2").status_code == 200
    assert client.get(f"{PAGE}/7").status_code == 200
    cluster.stop()
    cluster.start_again()
    page = client.get(f"{PAGE}?limit=2&offset=4")
    assert page.status_code == 200, page.get_data(as_text=True)
    assert [row["id"] for row in page.get_json()["items"]] == [5, 6]
    assert client.get(f"{PAGE}/7").get_json()["id"] == 7
    assert client.get("/ready").status_code == 200


def test_metrics_count_requests_cache_and_queries(
        app_for: AppFor, seeded: Settings, cache_prefix: str) -> None:
    app = app_for(seeded, CACHE_PREFIX=cache_prefix)
    client = app.test_client()
    for _ in range(3):
        client.get(f"{PAGE}?limit=3")
    client.get(f"{PAGE}?limit=-1")
    text = client.get("/metrics").get_data(as_text=True)
    # prometheus-client writes labels in name order.
    assert 'method="GET",route="/api/v1/alumno/alumno",status="200"} 3' in text
    assert 'method="GET",route="/api/v1/alumno/alumno",status="400"} 1' in text
    assert 'le="+Inf",route="/api/v1/alumno/alumno"} 4' in text
    assert 'event="misses"} 1' in text
    assert 'event="near_hits"} 2' in text
    assert "alumnos_db_queries_total" in text
