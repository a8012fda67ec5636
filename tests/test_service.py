"""The service against the real PostgreSQL and Redis, through Flask's test client."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from alumnos_cli.seed.load import seed_alumnos
from alumnos_cli.settings import Settings
from alumnos_service.db import driver_url
from alumnos_service.paths import FIRST_PAGE, METRICS_PATH
from alumnos_service.schema import COLUMNS

ROWS = 250
PAGE = "/api/v1/alumno/alumno"


@pytest.fixture
def seeded(settings: Settings, cache_prefix: str) -> Settings:
    seed_alumnos(settings, count=ROWS, seed=4, cache_prefix=cache_prefix)
    return settings


AppFor = Callable[..., Flask]


@pytest.fixture
def app_for(make_app: Callable[[dict[str, object]], Flask]) -> AppFor:
    """An app on the given database and Redis namespace, closed after the test."""

    def build(settings: Settings, prefix: str, **extra: object) -> Flask:
        return make_app({"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
                         "CACHE_PREFIX": prefix, **extra})

    return build


@pytest.fixture
def client(app_for: AppFor, seeded: Settings, cache_prefix: str) -> FlaskClient:
    return app_for(seeded, cache_prefix).test_client()


def _sql_rows(url: str, sql: str) -> list[dict[str, object]]:
    engine = create_engine(driver_url(url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(sql)).mappings().all()
    finally:
        engine.dispose()
    return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()}
            for r in rows]


def test_page_has_the_documented_shape_and_equals_sql(client: FlaskClient,
                                                      seeded: Settings) -> None:
    response = client.get(f"{PAGE}?limit=100&offset=0")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert list(body) == ["items", "limit", "offset", "total", "next"]
    assert (body["limit"], body["offset"], body["total"]) == (100, 0, ROWS)
    assert body["next"] == f"{PAGE}?limit=100&offset=100"
    assert [list(item) for item in body["items"]] == [list(COLUMNS)] * 100
    expected = _sql_rows(seeded.database_url,
                         f"SELECT {', '.join(COLUMNS)} FROM alumnos ORDER BY id LIMIT 100")
    assert body["items"] == expected


def test_pages_do_not_overlap_or_skip(client: FlaskClient) -> None:
    ids: list[int] = []
    url: str | None = f"{PAGE}?limit=70&offset=0"
    while url:
        body = client.get(url).get_json()
        ids += [item["id"] for item in body["items"]]
        url = body["next"]
    assert ids == list(range(1, ROWS + 1))


def test_offset_past_the_end_is_an_empty_last_page(client: FlaskClient) -> None:
    body = client.get(f"{PAGE}?limit=10&offset={ROWS + 5}").get_json()
    assert (body["items"], body["next"], body["total"]) == ([], None, ROWS)
    last = client.get(f"{PAGE}?limit=10&offset={ROWS - 10}").get_json()
    assert [i["id"] for i in last["items"]] == list(range(ROWS - 9, ROWS + 1))
    assert last["next"] is None


def test_keyset_pagination_walks_every_row(client: FlaskClient) -> None:
    ids: list[int] = []
    url: str | None = f"{PAGE}?limit=100&after=0"
    while url:
        body = client.get(url).get_json()
        ids += [item["id"] for item in body["items"]]
        url = body["next"]
    assert ids == list(range(1, ROWS + 1))


@pytest.mark.parametrize(("query", "parameter"), [
    ("limit=-1", "limit"), ("limit=abc", "limit"), ("limit=1e3", "limit"), ("limit=", "limit"),
    ("limit=0", "limit"), ("limit=1001", "limit"), ("offset=-1", "offset"),
    ("offset=99999999999999999999", "offset"), ("limit=5&limit=6", "limit"),
    ("offset=1.5", "offset"), ("after=x", "after"), ("after=-3", "after"),
])
def test_bad_parameters_get_a_400_problem(client: FlaskClient, query: str,
                                          parameter: str) -> None:
    response = client.get(f"{PAGE}?{query}")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert set(problem) == {"type", "title", "status", "detail"}
    assert problem["status"] == 400
    assert f"'{parameter}'" in problem["detail"]


def test_repeated_equal_parameters_and_unknown_ones_are_accepted(client: FlaskClient) -> None:
    response = client.get(f"{PAGE}?limit=5&limit=5&colour=blue")
    assert response.status_code == 200
    assert len(response.get_json()["items"]) == 5


def test_single_alumno_and_404(client: FlaskClient) -> None:
    assert client.get(f"{PAGE}/17").get_json()["id"] == 17
    missing = client.get(f"{PAGE}/{ROWS + 1}")
    assert missing.status_code == 404
    assert missing.mimetype == "application/problem+json"


def test_wrong_method_and_unknown_path_are_problems(client: FlaskClient) -> None:
    wrong = client.post(PAGE)
    assert wrong.status_code == 405
    assert wrong.mimetype == "application/problem+json"
    assert "GET" in wrong.headers["Allow"]
    unknown = client.get("/api/v1/nope")
    assert unknown.status_code == 404
    assert unknown.get_json()["status"] == 404


def test_second_request_is_a_cache_hit_with_the_same_bytes(client: FlaskClient) -> None:
    first = client.get(f"{PAGE}?limit=3&offset=9")
    second = client.get(f"{PAGE}?limit=3&offset=9")
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    assert first.data == second.data
    assert second.headers["X-Served-By"].endswith(f":{__import__('os').getpid()}")


def test_reseed_invalidates_cached_pages(client: FlaskClient, seeded: Settings,
                                         cache_prefix: str) -> None:
    before = client.get(f"{PAGE}?limit=2&offset=0").get_json()
    assert client.get(f"{PAGE}?limit=2&offset=0").headers["X-Cache"] == "HIT"
    seed_alumnos(seeded, count=ROWS, seed=99, reset=True, cache_prefix=cache_prefix)
    after = client.get(f"{PAGE}?limit=2&offset=0")
    assert after.headers["X-Cache"] == "MISS"
    assert after.get_json()["items"] != before["items"]


def test_cache_off_bypasses_redis(
        app_for: AppFor, seeded: Settings, cache_prefix: str,
                                  redis_client: redis.Redis) -> None:
    app = app_for(seeded, cache_prefix, CACHE="off")
    client = app.test_client()
    for _ in range(2):
        assert client.get(f"{PAGE}?limit=2").headers["X-Cache"] == "BYPASS"
    assert list(redis_client.scan_iter(f"{cache_prefix}:g*:*")) == []


def test_redis_down_still_answers_from_postgres(
        app_for: AppFor, seeded: Settings, cache_prefix: str) -> None:
    app = app_for(seeded, cache_prefix, REDIS_URL="redis://127.0.0.1:1/0")
    client = app.test_client()
    for _ in range(3):
        response = client.get(f"{PAGE}?limit=4&offset=4")
        assert response.status_code == 200
        assert response.headers["X-Cache"] == "BYPASS"
        assert [i["id"] for i in response.get_json()["items"]] == [5, 6, 7, 8]
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.get_json()["checks"] == {"postgresql": "ok", "redis": "down"}


def test_unseeded_database_is_a_503_not_a_500(
        app_for: AppFor, settings: Settings, cache_prefix: str) -> None:
    client = app_for(settings, cache_prefix).test_client()
    response = client.get(PAGE)
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert "alumnos seed" in response.get_json()["detail"]


def test_postgres_down_is_a_503_with_retry_after(
        app_for: AppFor, settings: Settings, cache_prefix: str) -> None:
    client = app_for(settings, cache_prefix,
                  DATABASE_URL="postgresql://postgres@127.0.0.1:1/x").test_client()
    response = client.get(PAGE)
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "5"
    assert client.get("/health").status_code == 200


def test_unexpected_error_is_a_500_problem_without_internals(client: FlaskClient) -> None:
    app = client.application

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals")

    response = client.get("/boom")
    assert response.status_code == 500
    assert "secret" not in response.get_data(as_text=True)
    assert json.loads(response.data)["title"] == "Internal Server Error"


def test_ping_and_health(client: FlaskClient) -> None:
    assert client.get("/api/v1/ping").get_json() == {"pong": True}
    assert client.get("/health").get_json() == {"status": "ok"}
    assert client.get("/ready").status_code == 200


def _problem(response: object, status: int, slug: str) -> dict[str, object]:
    assert response.status_code == status, response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert response.headers["Content-Type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    assert response.headers.get("Retry-After")  # type: ignore[attr-defined]
    document = response.get_json()  # type: ignore[attr-defined]
    assert document["type"].endswith(f"/problems/{slug}")
    return dict(document)


def test_a_query_past_the_statement_timeout_is_a_503_and_frees_its_connection(
        app_for: AppFor, seeded: Settings, cache_prefix: str) -> None:
    app = app_for(seeded, cache_prefix, CACHE="off", DB_POOL_SIZE=1,
                  DB_STATEMENT_TIMEOUT_MS=300)
    client = app.test_client()
    assert client.get(f"{PAGE}?limit=5&offset=0").status_code == 200
    blocker = create_engine(driver_url(seeded.database_url))
    try:
        with blocker.connect() as conn:
            # Another session holds the table: the page query waits, and PostgreSQL cuts it.
            conn.execute(text("LOCK TABLE alumnos IN ACCESS EXCLUSIVE MODE"))
            document = _problem(client.get(f"{PAGE}?limit=5&offset=10"), 503,
                                "database-timeout")
            assert "longer than 300 ms" in str(document["detail"])
            conn.rollback()
    finally:
        blocker.dispose()
    # The one pooled connection came back in working order.
    assert client.get(f"{PAGE}?limit=5&offset=10").status_code == 200


def test_an_exhausted_pool_is_a_503_not_a_hang_or_a_500(
        app_for: AppFor, seeded: Settings, cache_prefix: str) -> None:
    app = app_for(seeded, cache_prefix, CACHE="off", DB_POOL_SIZE=1, DB_POOL_TIMEOUT_S=0.2)
    client = app.test_client()
    engine = app.extensions["alumnos.repository"].engine
    # Stuck requests hold every connection the pool may give (its size and its overflow).
    held = [engine.connect() for _ in range(2)]
    try:
        document = _problem(client.get(f"{PAGE}?limit=5&offset=0"), 503, "database-busy")
        assert "0.2 s" in str(document["detail"])
    finally:
        for conn in held:
            conn.close()
    assert client.get(f"{PAGE}?limit=5&offset=0").status_code == 200


def test_after_with_an_offset_counts_from_that_ids_place(
        app_for: AppFor, seeded: Settings, cache_prefix: str) -> None:
    app = app_for(seeded, cache_prefix, CACHE="off", DB_STATEMENT_TIMEOUT_MS=1000)
    client = app.test_client()
    far = client.get(f"{PAGE}?limit=5&after=3&offset=9000000000000000000")
    assert far.status_code == 200 and far.get_json()["items"] == []
    near = client.get(f"{PAGE}?limit=3&after=3&offset=2").get_json()
    assert [item["id"] for item in near["items"]] == [6, 7, 8]


def test_unknown_methods_share_one_metrics_label(client: FlaskClient) -> None:
    for index in range(5):
        client.open(FIRST_PAGE, method=f"BREW{index}")
    exposition = client.get(METRICS_PATH).get_data(as_text=True)
    assert 'method="OTHER"' in exposition
    assert "BREW" not in exposition  # before: one new series per invented method


def test_a_page_and_a_row_are_exactly_the_bytes_postgresql_renders(
        client: FlaskClient, seeded: Settings) -> None:
    """The service splices PostgreSQL's JSON into the envelope untouched: names with accents
    come out as PostgreSQL wrote them, byte for byte, for a page and for one alumno."""
    fields = ", ".join(COLUMNS)
    items = _sql_text(seeded.database_url,
                      f"SELECT json_agg(p ORDER BY p.id)::text FROM (SELECT {fields} FROM "
                      f"alumnos ORDER BY id LIMIT 240 OFFSET 1) p")
    page = client.get(f"{PAGE}?limit=240&offset=1")
    assert page.data == (
        b'{"items": ' + items.encode() + b', "limit": 240, "offset": 1, "total": 250, '
        b'"next": "/api/v1/alumno/alumno?limit=240&offset=241"}')
    assert not page.data.isascii()  # es_AR names: UTF-8 as PostgreSQL wrote it, not \\u escapes
    row = _sql_text(seeded.database_url, f"SELECT row_to_json(p)::text FROM (SELECT {fields} "
                                         f"FROM alumnos WHERE id = 41) p")
    assert client.get(f"{PAGE}/41").data == row.encode()


def _sql_text(url: str, sql: str) -> str:
    engine = create_engine(driver_url(url))
    try:
        with engine.connect() as conn:
            return str(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def test_a_prepared_statement_the_server_let_go_is_prepared_again(
        app_for: AppFor, seeded: Settings, cache_prefix: str) -> None:
    client = app_for(seeded, cache_prefix, CACHE="off").test_client()
    assert client.get(f"{PAGE}?limit=3&offset=6").status_code == 200
    assert client.get(f"{PAGE}/9").status_code == 200
    engine = client.application.extensions["alumnos.repository"].engine
    # The one pooled connection the test client's requests share forgets its statements.
    pooled = engine.raw_connection()
    try:
        with pooled.cursor() as cursor:
            cursor.execute("DEALLOCATE ALL")
    finally:
        pooled.close()
    page = client.get(f"{PAGE}?limit=3&offset=6")
    assert page.status_code == 200, page.get_data(as_text=True)
    assert [row["id"] for row in page.get_json()["items"]] == [7, 8, 9]
    assert client.get(f"{PAGE}/9").get_json()["id"] == 9


def _execute(url: str, sql: str) -> None:
    engine = create_engine(driver_url(url))
    try:
        with engine.begin() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def _pages_equal_json_agg(client: FlaskClient, url: str, *, limit: int, offset: int) -> None:
    """The service's page is json_agg's rendering of the same rows, byte for byte."""
    items = _sql_text(url, f"SELECT json_agg(p ORDER BY p.id)::text FROM (SELECT "
                           f"{', '.join(COLUMNS)} FROM alumnos ORDER BY id LIMIT {limit} "
                           f"OFFSET {offset}) p")
    page = client.get(f"{PAGE}?limit={limit}&offset={offset}")
    assert page.status_code == 200, page.get_data(as_text=True)
    assert page.data.startswith(b'{"items": ' + items.encode() + b', "limit": ')


# What a JSON writer must escape, and what it must not: quotes, backslashes, control
# characters, accents, a character beyond the BMP.
AWKWARD = "O'Brien \"el\" \\ Tab\tLF\nCR\r\x01\x1f ñandú 🎓"


def test_rows_any_writer_adds_or_changes_carry_row_to_json_bytes(
        app_for: AppFor, seeded: Settings, cache_prefix: str) -> None:
    """Each row's JSON is stored beside it: written by PostgreSQL on every write path, not by
    the seeder alone, so an INSERT or UPDATE from elsewhere is served as it now reads."""
    url = seeded.database_url
    _execute(url, f"INSERT INTO alumnos ({', '.join(COLUMNS)}) VALUES (1000, "
                  f"$q${AWKWARD}$q$, 'Zoë', 1, 'DNI', '0099-12-31', 'X', 2, "
                  f"'2024-02-29', 'x@example.org')")
    _execute(url, f"UPDATE alumnos SET nombre = $q${AWKWARD}$q$ WHERE id = 7")
    stale = _sql_text(url, f"SELECT count(*) FROM alumnos a WHERE as_json IS DISTINCT FROM "
                           f"(SELECT row_to_json(p)::text FROM (SELECT {', '.join(COLUMNS)} "
                           f"FROM alumnos b WHERE b.id = a.id) p)")
    assert stale == "0"
    client = app_for(seeded, cache_prefix, CACHE="off").test_client()
    _pages_equal_json_agg(client, url, limit=5, offset=4)  # the updated row 7
    _pages_equal_json_agg(client, url, limit=3, offset=ROWS - 1)  # the inserted row 1000
    assert client.get(f"{PAGE}/1000").get_json()["apellido"] == AWKWARD


def test_a_table_an_older_alumnos_seeded_is_served_the_same_bytes(
        app_for: AppFor, seeded: Settings, cache_prefix: str) -> None:
    """A table seeded before pages were stored keeps no JSON column: its pages are rendered
    per request, as they were then, not refused as unseeded; also when the column goes while
    the service runs (no write trigger says so)."""
    client = app_for(seeded, cache_prefix, CACHE="off").test_client()
    _pages_equal_json_agg(client, seeded.database_url, limit=5, offset=0)  # from as_json
    _execute(seeded.database_url, "ALTER TABLE alumnos DROP COLUMN as_json")
    _pages_equal_json_agg(client, seeded.database_url, limit=100, offset=17)
    _pages_equal_json_agg(client, seeded.database_url, limit=10, offset=ROWS - 4)
    # A plain column of that name is not the stored JSON: its NULLs would drop rows.
    _execute(seeded.database_url, "ALTER TABLE alumnos ADD COLUMN as_json text")
    fresh = app_for(seeded, cache_prefix, CACHE="off").test_client()
    _pages_equal_json_agg(fresh, seeded.database_url, limit=100, offset=3)


def test_the_service_connections_plan_once_and_never_compile(
        app_for: AppFor, seeded: Settings, cache_prefix: str) -> None:
    """Generic plans, and no JIT: at 20,000,000 rows the page's generic plan is costed past
    jit_above_cost, and compiling it on every call served 7 times fewer pages."""
    client = app_for(seeded, cache_prefix, CACHE="off").test_client()
    engine = client.application.extensions["alumnos.repository"].engine
    pooled = engine.raw_connection()
    try:
        with pooled.cursor() as cursor:
            cursor.execute("SELECT current_setting('plan_cache_mode'), current_setting('jit')")
            assert cursor.fetchone() == (b"force_generic_plan", b"off")
    finally:
        pooled.close()
