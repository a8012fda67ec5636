"""Seeding against the real PostgreSQL: counts, constraints, determinism, resume, refusals."""

from __future__ import annotations

import pytest
import redis
from sqlalchemy import create_engine, text

from alumnos_cli.errors import AlumnosError, ServiceUnreachable
from alumnos_cli.seed.load import seed_alumnos
from alumnos_cli.settings import Settings
from alumnos_service.cache import generation_key
from alumnos_service.db import driver_url

CHECKSUM_SQL = "SELECT md5(string_agg(a::text, '|' ORDER BY id)) FROM alumnos a"


def _scalar(url: str, sql: str) -> object:
    engine = create_engine(driver_url(url))
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar()
    finally:
        engine.dispose()


def test_seed_loads_exact_count_with_unique_indexes(settings: Settings) -> None:
    result = seed_alumnos(settings, count=3_000, seed=5, batch_rows=1_000)
    url = settings.database_url
    assert (result.rows_before, result.rows_after) == (0, 3_000)
    assert _scalar(url, "SELECT count(*) FROM alumnos") == 3_000
    assert _scalar(url, "SELECT min(id) || '-' || max(id) FROM alumnos") == "1-3000"
    indexes = _scalar(url, "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes "
                           "WHERE tablename = 'alumnos'")
    assert indexes == ("alumnos_email_key,alumnos_nro_documento_key,alumnos_nro_legajo_key,"
                       "alumnos_pkey")
    assert _scalar(url, "SELECT status || ':' || row_count FROM alumnos_seed_state") == \
        "complete:3000"


def test_same_seed_gives_identical_table_whatever_the_batch_size(settings: Settings) -> None:
    seed_alumnos(settings, count=2_500, seed=9, batch_rows=2_500)
    first = _scalar(settings.database_url, CHECKSUM_SQL)
    seed_alumnos(settings, count=2_500, seed=9, batch_rows=333, reset=True)
    assert _scalar(settings.database_url, CHECKSUM_SQL) == first
    seed_alumnos(settings, count=2_500, seed=10, reset=True)
    assert _scalar(settings.database_url, CHECKSUM_SQL) != first


def test_interrupted_seed_resumes_to_exact_count(settings: Settings) -> None:
    def interrupt_after_first_batch(loaded: int, _wanted: int) -> None:
        if loaded >= 1_000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        seed_alumnos(settings, count=4_000, seed=3, batch_rows=1_000,
                     progress=interrupt_after_first_batch)
    url = settings.database_url
    assert _scalar(url, "SELECT status FROM alumnos_seed_state") == "loading"
    assert _scalar(url, "SELECT count(*) FROM alumnos") == 1_000

    result = seed_alumnos(settings, count=4_000, seed=3, batch_rows=1_000)
    assert result.rows_before == 1_000
    assert _scalar(url, "SELECT count(DISTINCT id) FROM alumnos") == 4_000
    resumed = _scalar(url, CHECKSUM_SQL)
    seed_alumnos(settings, count=4_000, seed=3, reset=True)
    assert _scalar(url, CHECKSUM_SQL) == resumed


def test_growing_appends_and_shrinking_is_refused(settings: Settings) -> None:
    seed_alumnos(settings, count=1_000, seed=1)
    grown = seed_alumnos(settings, count=1_500, seed=1)
    assert (grown.rows_before, grown.rows_after) == (1_000, 1_500)
    with pytest.raises(AlumnosError, match="already holds 1,500 rows"):
        seed_alumnos(settings, count=500, seed=1)
    with pytest.raises(AlumnosError, match="seeded with --seed 1"):
        seed_alumnos(settings, count=2_000, seed=2)
    assert _scalar(settings.database_url, "SELECT count(*) FROM alumnos") == 1_500
    again = seed_alumnos(settings, count=1_500, seed=1)
    assert again.rows_loaded == 0


@pytest.mark.parametrize("count", [-5, 0, 10**9])
def test_absurd_counts_are_refused_before_touching_the_database(settings: Settings,
                                                                count: int) -> None:
    with pytest.raises(AlumnosError, match="--count must be between"):
        seed_alumnos(settings, count=count)
    assert _scalar(settings.database_url, "SELECT to_regclass('alumnos')::text") is None


def test_unreachable_database_is_a_clear_error(settings: Settings) -> None:
    dead = Settings.resolve(env={}, database_url="postgresql://postgres@127.0.0.1:1/alumnos",
                            redis_url=settings.redis_url)
    with pytest.raises(ServiceUnreachable, match=r"127\.0\.0\.1:1/alumnos is unreachable"):
        seed_alumnos(dead, count=10)


def test_seed_bumps_the_cache_generation(settings: Settings, redis_client: redis.Redis,
                                         cache_prefix: str) -> None:
    redis_client.set(generation_key(cache_prefix), 41)
    result = seed_alumnos(settings, count=100, cache_prefix=cache_prefix)
    assert result.cache_invalidated
    assert int(redis_client.get(generation_key(cache_prefix)) or 0) == 42
