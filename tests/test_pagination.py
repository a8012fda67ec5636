"""Exact offset and keyset semantics at any depth, on a table whose ids have gaps."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from alumnos_cli.seed.load import seed_alumnos
from alumnos_cli.settings import Settings
from alumnos_service.db import BOOKMARK_EVERY, driver_url

ROWS = 3_000
MakeApp = Callable[[dict[str, object]], Flask]
PAGE = "/api/v1/alumno/alumno"


def _execute(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(driver_url(url))
    try:
        with engine.begin() as conn:
            result = conn.execute(text(sql))
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


@pytest.fixture
def gapped(settings: Settings, cache_prefix: str,
           make_app: MakeApp) -> tuple[FlaskClient, list[int]]:
    """3,000 seeded rows minus every 7th id and a block of 400: a sparse id range."""
    seed_alumnos(settings, count=ROWS, seed=6, cache_prefix=cache_prefix)
    _execute(settings.database_url,
             "DELETE FROM alumnos WHERE id % 7 = 0 OR id BETWEEN 1200 AND 1599")
    ids = [r[0] for r in _execute(settings.database_url, "SELECT id FROM alumnos ORDER BY id")]
    # Cache off: these tests are about PostgreSQL's answers, not Redis'.
    app = make_app({"DATABASE_URL": settings.database_url, "CACHE": "off"})
    return app.test_client(), ids


def _ids(client: FlaskClient, query: str) -> tuple[list[int], dict[str, object]]:
    response = client.get(f"{PAGE}?{query}")
    assert response.status_code == 200, response.data
    body = response.get_json()
    return [item["id"] for item in body["items"]], body


# The fixture's database is only read by the examples, so sharing it between them is sound.
PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@settings(PROPERTY, max_examples=150)
@given(limit=st.integers(1, 1000), offset=st.integers(0, ROWS + 50))
def test_offset_pages_equal_sql_offset(gapped: tuple[FlaskClient, list[int]], limit: int,
                                       offset: int) -> None:
    client, ids = gapped
    got, body = _ids(client, f"limit={limit}&offset={offset}")
    assert got == ids[offset:offset + limit]
    assert body["total"] == len(ids)
    assert (body["next"] is None) == (offset + limit >= len(ids))


@settings(PROPERTY, max_examples=100)
@given(limit=st.integers(1, 1000), after=st.integers(0, ROWS + 50),
       offset=st.one_of(st.none(), st.integers(0, ROWS)))
def test_keyset_pages_equal_sql_keyset(gapped: tuple[FlaskClient, list[int]], limit: int,
                                       after: int, offset: int | None) -> None:
    client, ids = gapped
    query = f"limit={limit}&after={after}" + ("" if offset is None else f"&offset={offset}")
    got, _ = _ids(client, query)
    skip = offset or 0
    assert got == [i for i in ids if i > after][skip:skip + limit]


def test_sparse_table_uses_bookmarks_and_follows_later_writes(
        gapped: tuple[FlaskClient, list[int]], settings: Settings) -> None:
    client, ids = gapped
    deep = len(ids) - 5
    assert _ids(client, f"limit=3&offset={deep}")[0] == ids[deep:deep + 3]
    shape = client.application.extensions["alumnos.repository"]._shape
    assert not shape.dense
    assert len(shape.bookmarks) == -(-len(ids) // BOOKMARK_EVERY)
    # A write from outside the service changes the version: the next page must see it.
    _execute(settings.database_url, f"DELETE FROM alumnos WHERE id = {ids[deep]}")
    after_delete = ids[:deep] + ids[deep + 1:]
    got, body = _ids(client, f"limit=3&offset={deep}")
    assert got == after_delete[deep:deep + 3]
    assert body["total"] == len(after_delete)


def test_dense_table_needs_no_bookmarks(
        make_app: MakeApp, settings: Settings) -> None:
    seed_alumnos(settings, count=1_000, seed=1)
    app = make_app({"DATABASE_URL": settings.database_url, "CACHE": "off"})
    client = app.test_client()
    assert _ids(client, "limit=5&offset=995")[0] == [996, 997, 998, 999, 1000]
    shape = app.extensions["alumnos.repository"]._shape
    assert shape.dense and len(shape.bookmarks) == 0


def test_table_without_bookkeeping_falls_back_to_plain_offset(
        make_app: MakeApp, settings: Settings) -> None:
    seed_alumnos(settings, count=600, seed=1)
    for operation in ("insert", "delete", "update", "truncate"):
        _execute(settings.database_url, f"DROP TRIGGER alumnos_track_{operation} ON alumnos")
    _execute(settings.database_url, "DROP TABLE alumnos_seed_state")
    _execute(settings.database_url, "DELETE FROM alumnos WHERE id % 2 = 0")
    app = make_app({"DATABASE_URL": settings.database_url, "CACHE": "off"})
    client = app.test_client()
    got, body = _ids(client, "limit=4&offset=250")
    assert got == [501, 503, 505, 507]
    assert body["total"] == 300
