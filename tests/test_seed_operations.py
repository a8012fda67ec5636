"""Seeding as an operation: realistic data at 100k rows, checksums, a killed process, permissions,
and the benchmark command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from sqlalchemy import create_engine, make_url, text
from typer.testing import CliRunner

from alumnos_cli.database import create_database, drop_database, ensure_database
from alumnos_cli.errors import AlumnosError
from alumnos_cli.main import app
from alumnos_cli.seed.benchmark import MAX_NAME_BYTES, SCRATCH_MARK, scratch_url
from alumnos_cli.seed.load import seed_alumnos, table_checksum
from alumnos_cli.settings import Settings
from alumnos_service.db import driver_url

runner = CliRunner()


def _query(url: str, sql: str) -> tuple[object, ...]:
    engine = create_engine(driver_url(url))
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(text(sql)).one())
    finally:
        engine.dispose()


def test_100k_rows_are_unique_and_plausible(settings: Settings) -> None:
    seed_alumnos(settings, count=100_000, seed=21)
    url = settings.database_url
    counts = _query(url, "SELECT count(*), count(DISTINCT nro_documento), "
                         "count(DISTINCT nro_legajo), count(DISTINCT email) FROM alumnos")
    assert counts == (100_000,) * 4
    bad = _query(url, """
        SELECT
          count(*) FILTER (WHERE date_part('year', age(DATE '2026-03-01', fecha_nacimiento))
                                 NOT BETWEEN 17 AND 60),
          count(*) FILTER (WHERE fecha_ingreso < fecha_nacimiento + INTERVAL '17 years'
                             OR fecha_ingreso > DATE '2026-03-01'),
          count(*) FILTER (WHERE sexo NOT IN ('F', 'M') OR tipo_documento NOT IN ('DNI', 'PAS')),
          count(*) FILTER (WHERE nro_documento NOT BETWEEN 10000000 AND 99999999),
          count(*) FILTER (WHERE email !~
                           '^[a-z]+\\.[a-z]+\\.[0-9]+@alumnos\\.universidad\\.edu\\.ar$')
        FROM alumnos""")
    assert bad == (0, 0, 0, 0, 0)
    # The e-mail is derived from the name: its first part is the ASCII form of nombre.
    mismatched = _query(url, """
        SELECT count(*) FROM alumnos WHERE split_part(email, '.', 1) <>
          regexp_replace(lower(translate(nombre, 'áéíóúàèìòùâêîôûüñç',
                                                  'aeiouaeiouaeiouunc')),
                         '[^a-z0-9]', '', 'g')""")
    assert mismatched == (0,)
    women = _query(url, "SELECT avg((sexo = 'F')::int)::float FROM alumnos")[0]
    assert 0.45 < women < 0.6  # type: ignore[operator]


def test_checksum_proves_byte_identical_tables(settings: Settings) -> None:
    seed_alumnos(settings, count=7_000, seed=5, batch_rows=7_000)
    first = table_checksum(settings.database_url)
    seed_alumnos(settings, count=7_000, seed=5, batch_rows=999, reset=True)
    assert table_checksum(settings.database_url) == first
    seed_alumnos(settings, count=7_000, seed=6, reset=True)
    assert table_checksum(settings.database_url) != first
    result = runner.invoke(app, ["seed", "--count", "7000", "--seed", "6", "--checksum",
                                 "--database-url", settings.database_url,
                                 "--redis-url", settings.redis_url,
                                 "--state-dir", str(settings.state_dir)])
    assert result.exit_code == 0, result.output
    assert f"checksum sha256:{table_checksum(settings.database_url)}" in result.output


@pytest.mark.slow
def test_killed_seed_process_resumes_to_the_same_table(settings: Settings) -> None:
    env = dict(os.environ, ALUMNOS_DATABASE_URL=settings.database_url,
               ALUMNOS_REDIS_URL=settings.redis_url, ALUMNOS_STATE_DIR=str(settings.state_dir))
    command = [sys.executable, "-m", "alumnos_cli.main", "seed", "--count", "300000",
               "--seed", "4", "--batch-size", "10000"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    loaded = 0
    while time.monotonic() < deadline and process.poll() is None:
        try:
            loaded = int(_query(settings.database_url,
                                "SELECT row_count FROM alumnos_seed_state")[0])  # type: ignore[arg-type]
        except Exception:  # the table may not exist yet
            loaded = 0
        if loaded >= 30_000:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the seed finished before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    state = _query(settings.database_url,
                   "SELECT status, row_count, (SELECT count(*) FROM alumnos) "
                   "FROM alumnos_seed_state")
    assert state[0] == "loading"
    assert state[1] == state[2] and 0 < state[2] < 300_000  # type: ignore[operator]

    result = seed_alumnos(settings, count=300_000, seed=4, batch_rows=10_000)
    assert result.rows_before == state[2]
    assert _query(settings.database_url,
                  "SELECT count(*), count(DISTINCT id), max(id) FROM alumnos") == \
        (300_000, 300_000, 300_000)
    resumed = table_checksum(settings.database_url)
    seed_alumnos(settings, count=300_000, seed=4, reset=True)
    assert table_checksum(settings.database_url) == resumed


def test_role_without_create_permission_gets_a_clear_error(settings: Settings) -> None:
    role = f"alumnos_ro_{uuid.uuid4().hex[:8]}"
    admin = create_engine(driver_url(settings.database_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(text("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
    try:
        url = make_url(settings.database_url).set(username=role).render_as_string(
            hide_password=False)
        result = runner.invoke(app, ["seed", "--count", "10", "--database-url", url,
                                     "--state-dir", str(settings.state_dir)])
        assert result.exit_code == 1
        assert "permission denied" in result.output
        assert "Traceback" not in result.output
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


def test_benchmark_command_prints_both_times_and_cleans_up(settings: Settings) -> None:
    result = runner.invoke(app, ["seed", "--benchmark", "--count", "20000", "--rounds", "2",
                                 "--database-url", settings.database_url,
                                 "--redis-url", settings.redis_url,
                                 "--state-dir", str(settings.state_dir)],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for line in ("alumnos seed --reset", "floor: COPY of the same rows", "floor total",
                 "round 2", "median ratio seed / floor", "peak RSS: seeding process"):
        assert line in result.output
    prefix = make_url(settings.database_url).database
    exists = _query(settings.database_url, "SELECT count(*) FROM pg_database WHERE datname "
                    f"LIKE '{prefix}{SCRATCH_MARK}%'")
    assert exists == (0,)
    # The user's own table was never touched.
    assert _query(settings.database_url, "SELECT to_regclass('alumnos') IS NULL") == (True,)


def test_non_superuser_seeds_with_triggers_switched_per_batch(settings: Settings) -> None:
    role = f"alumnos_owner_{uuid.uuid4().hex[:8]}"
    admin = create_engine(driver_url(settings.database_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(text(f"GRANT CREATE ON SCHEMA public TO {role}"))
    try:
        url = make_url(settings.database_url).set(username=role).render_as_string(
            hide_password=False)
        seed_alumnos(settings.with_database_url(url), count=3_000, batch_rows=1_000)
        assert _query(url, "SELECT row_count, status FROM alumnos_seed_state") == \
            (3_000, "complete")
        # Every write-tracking trigger is enabled again once the load is over.
        assert _query(url, "SELECT string_agg(DISTINCT tgenabled::text, '') FROM pg_trigger "
                           "WHERE tgname LIKE 'alumnos_track_%'") == ("O",)
        with create_engine(driver_url(url)).begin() as conn:
            conn.execute(text("DELETE FROM alumnos WHERE id <= 10"))
        assert _query(url, "SELECT row_count FROM alumnos_seed_state") == (2_990,)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


def test_the_scratch_database_is_never_the_users_even_at_63_bytes() -> None:
    name = "a" * 63  # PostgreSQL cuts "<name>_seedbench" back to this very name
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    first, second = (make_url(scratch_url(url)).database or "" for _ in range(2))
    for scratch in (first, second):
        assert scratch != name
        assert len(scratch.encode()) <= MAX_NAME_BYTES
        assert SCRATCH_MARK in scratch
    assert first != second  # a new one each run, never one that is there already
    accented = make_url(scratch_url(f"postgresql://h/{'é' * 40}")).database or ""
    assert len(accented.encode()) <= MAX_NAME_BYTES  # cut on a character, not inside one


def test_an_existing_database_is_refused_and_kept(settings: Settings) -> None:
    name = make_url(settings.database_url).database or ""
    with pytest.raises(AlumnosError, match="already exists"):
        create_database(settings.database_url, name)
    assert _query(settings.database_url, "SELECT current_database()") == (name,)


def test_database_names_are_quoted_by_the_driver(settings: Settings) -> None:
    # Before: CREATE DATABASE "x" TEMPLATE "template0" -- a second clause from the name.
    name = f"alumnos_q{uuid.uuid4().hex[:6]}\" TEMPLATE \"template0"
    url = make_url(settings.database_url).set(database=name).render_as_string(False)
    try:
        ensure_database(url)
        found = _query(settings.database_url,
                       "SELECT count(*) FROM pg_database WHERE datname = "
                       f"'{name.replace(chr(39), chr(39) * 2)}'")
        assert found == (1,)
    finally:
        drop_database(settings.database_url, name)
    assert _query(settings.database_url, "SELECT count(*) FROM pg_database WHERE datname = "
                  f"'{name}'") == (0,)
