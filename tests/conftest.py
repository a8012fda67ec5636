"""Fixtures that give each test a clean PostgreSQL database and a private Redis namespace."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from alumnos_cli.seed.load import seed_alumnos
from alumnos_cli.settings import Settings
from alumnos_cli.stack import local
from alumnos_cli.stack.options import ServiceOptions
from alumnos_service.app import create_app
from alumnos_service.db import driver_url

# A server to create throw-away databases on; never the user's `alumnos` database.
SERVER_URL = os.environ.get("ALUMNOS_TEST_SERVER_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("ALUMNOS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _admin_engine():  # type: ignore[no-untyped-def]
    return create_engine(driver_url(SERVER_URL), isolation_level="AUTOCOMMIT",
                         connect_args={"connect_timeout": 3})


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL server tests use; skip (locally) when none answers. CI always has one."""
    engine = _admin_engine()
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {SERVER_URL}: {exc.orig}")
    finally:
        engine.dispose()
    return SERVER_URL


@pytest.fixture
def database_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"alumnos_test_{uuid.uuid4().hex[:12]}"
    engine = _admin_engine()
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """A Redis client on the test database index; skip locally when Redis is down."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    yield client
    client.close()


@pytest.fixture
def cache_prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A Redis key namespace for one test, deleted afterwards."""
    prefix = f"alumnos_test_{uuid.uuid4().hex[:12]}"
    yield prefix
    for key in redis_client.scan_iter(f"{prefix}:*"):
        redis_client.delete(key)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings pointing at the test database, test Redis and temporary folders."""
    return Settings.resolve(env={}, database_url=database_url, redis_url=REDIS_URL,
                            results_dir=tmp_path / "results", state_dir=tmp_path / "state")


@pytest.fixture
def make_app() -> Iterator[Callable[[dict[str, object]], Flask]]:
    """create_app for tests: every app's PostgreSQL pool and Redis client closed afterwards."""
    apps: list[Flask] = []

    def build(config: dict[str, object]) -> Flask:
        app = create_app(config)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["alumnos.repository"].engine.dispose()
        cache = app.extensions["alumnos.cache"]
        if cache is not None:
            cache.client.close()


@pytest.fixture
def stack(settings: Settings, options: ServiceOptions) -> Iterator[local.UpResult]:
    """A local stack up on the test's `options` (each stack test module defines them) over a
    seeded test database; down afterwards."""
    seed_alumnos(settings, count=300, seed=2)
    result = local.up(settings, options)
    yield result
    local.down(settings)
