"""The seeder never loses the user's data: tables it did not write, live tables it grows, and
database errors in the middle of a load."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from typer.testing import CliRunner

from alumnos_cli.database import create_database, drop_database
from alumnos_cli.errors import AlumnosError
from alumnos_cli.main import app
from alumnos_cli.seed.load import seed_alumnos, table_checksum
from alumnos_cli.settings import Settings
from alumnos_service.db import driver_url
from alumnos_service.schema import COLUMNS
from tests.conftest import SERVER_URL

runner = CliRunner()
KEY_AND_INDEXES = ("alumnos_email_key", "alumnos_nro_documento_key", "alumnos_nro_legajo_key",
                   "alumnos_pkey")
DROPPED = r"(server closed the connection unexpectedly|terminating connection due to " \
          r"administrator command)"


def _engine(url: str) -> Engine:
    return create_engine(driver_url(url), isolation_level="AUTOCOMMIT")


def _query(url: str, sql: str) -> tuple[object, ...]:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(text(sql)).one())
    finally:
        engine.dispose()


def _execute(url: str, *statements: str) -> None:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def _cli(settings: Settings, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["seed", *args, "--database-url", settings.database_url,
                                 "--redis-url", settings.redis_url,
                                 "--state-dir", str(settings.state_dir)],
                           env={"COLUMNS": "200"})
    return result.exit_code, result.output


def _their_table(url: str) -> None:
    """A table named alumnos that someone else made, with three rows of theirs."""
    _execute(url, "CREATE TABLE alumnos (id bigint PRIMARY KEY, nombre text)",
             "INSERT INTO alumnos VALUES (1, 'Ana'), (2, 'Luis'), (3, 'Sol')")


def _key_and_indexes(url: str) -> tuple[object, ...]:
    return _query(url, "SELECT coalesce(string_agg(indexname, ',' ORDER BY indexname), ''), "
                       "(SELECT count(*) FROM pg_constraint WHERE conname = 'alumnos_pkey' "
                       " AND contype = 'p') FROM pg_indexes WHERE tablename = 'alumnos'")


# --- point 2: --reset drops only what alumnos seed wrote -------------------------------------

def test_reset_refuses_a_table_seed_did_not_write_and_keeps_its_rows(settings: Settings) -> None:
    url = settings.database_url
    _their_table(url)
    with pytest.raises(AlumnosError) as refused:
        seed_alumnos(settings, count=100, reset=True)
    assert "--reset --force drops table alumnos and its 3 rows" in refused.value.message
    assert "did not write" in refused.value.message
    assert _query(url, "SELECT string_agg(nombre, ',' ORDER BY id) FROM alumnos") == \
        ("Ana,Luis,Sol",)

    with pytest.raises(AlumnosError) as plain:
        seed_alumnos(settings, count=100)
    assert "not written by `alumnos seed`" in plain.value.message
    # The way out names --force and what it destroys, never a bare --reset.
    assert "`--reset --force` would drop table alumnos and its 3 rows" in plain.value.hint
    assert _query(url, "SELECT count(*) FROM alumnos") == (3,)


def test_reset_force_drops_their_table_and_says_how_many_rows(settings: Settings) -> None:
    _their_table(settings.database_url)
    result = seed_alumnos(settings, count=100, seed=2, reset=True, force=True)
    assert result.dropped_foreign_rows == 3
    assert _query(settings.database_url, "SELECT count(*), min(id), max(id) FROM alumnos") == \
        (100, 1, 100)
    # Now the table is ours: a plain --reset needs no --force, and drops nothing of theirs.
    again = seed_alumnos(settings, count=50, seed=2, reset=True)
    assert again.dropped_foreign_rows is None
    assert _query(settings.database_url, "SELECT row_count FROM alumnos_seed_state") == (50,)


def test_cli_reset_on_their_table_is_one_error_line_and_force_needs_reset(
        settings: Settings) -> None:
    _their_table(settings.database_url)
    code, output = _cli(settings, "--count", "100", "--reset")
    assert code == 1, output
    assert "error: --reset --force drops table alumnos and its 3 rows" in output
    assert "Traceback" not in output
    assert _query(settings.database_url, "SELECT count(*) FROM alumnos") == (3,)

    code, output = _cli(settings, "--count", "100", "--force")
    assert code == 2, output
    assert "Invalid value for '--force': only goes with --reset" in output

    code, output = _cli(settings, "--count", "100", "--reset", "--force")
    assert code == 0, output
    assert "dropped table alumnos and its 3 rows" in output
    assert _query(settings.database_url, "SELECT count(*) FROM alumnos") == (100,)


# --- point 3: growing a live table keeps its key and indexes ---------------------------------

def test_growing_a_live_table_never_drops_its_key_or_indexes(settings: Settings) -> None:
    url = settings.database_url
    seed_alumnos(settings, count=2_000, seed=7, batch_rows=1_000)
    seen: list[tuple[int, tuple[object, ...]]] = []

    def check_between_batches(loaded: int, _wanted: int) -> None:
        seen.append((loaded, _key_and_indexes(url)))  # another connection, as the service

    seed_alumnos(settings, count=5_000, seed=7, batch_rows=1_000,
                 progress=check_between_batches)
    assert [loaded for loaded, _ in seen] == [2_000, 3_000, 4_000, 5_000]
    for loaded, found in seen:
        assert found == (",".join(KEY_AND_INDEXES), 1), f"after {loaded:,} rows: {found}"
    grown = table_checksum(url)
    seed_alumnos(settings, count=5_000, seed=7, reset=True)
    assert table_checksum(url) == grown


def test_interrupted_first_load_resumes_and_rebuilds_the_key_and_indexes(
        settings: Settings) -> None:
    url = settings.database_url

    def interrupt(loaded: int, _wanted: int) -> None:
        if loaded >= 1_000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        seed_alumnos(settings, count=3_000, seed=8, batch_rows=1_000, progress=interrupt)
    assert _key_and_indexes(url) == ("", 0)  # a fresh load builds them after COPY
    seed_alumnos(settings, count=3_000, seed=8, batch_rows=1_000)
    assert _key_and_indexes(url) == (",".join(KEY_AND_INDEXES), 1)
    assert _query(url, "SELECT count(*), status FROM alumnos, alumnos_seed_state "
                       "GROUP BY status") == (3_000, "complete")


# --- point 4: a database error is one line with its cause, and the load resumes -------------

def _terminate_other_sessions(url: str) -> int:
    """End every other session on the test database, waiting until each one is gone."""
    found = _query(url, "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    return int(found[0])  # type: ignore[call-overload]


def test_a_dropped_connection_is_one_error_with_its_cause_and_resumes(
        settings: Settings) -> None:
    url = settings.database_url
    terminated: list[int] = []

    def drop_the_connection(loaded: int, _wanted: int) -> None:
        if loaded == 1_000:
            terminated.append(_terminate_other_sessions(url))

    with pytest.raises(AlumnosError) as stopped:
        seed_alumnos(settings, count=4_000, seed=3, batch_rows=1_000,
                     progress=drop_the_connection)
    assert terminated and terminated[0] >= 1
    assert re.fullmatch(f"seeding stopped: {DROPPED}", stopped.value.message)
    assert stopped.value.hint == ("the table keeps its 1,000 committed rows; run the same "
                                  "command again to resume")
    assert _query(url, "SELECT s.row_count, (SELECT count(*) FROM alumnos), s.status "
                       "FROM alumnos_seed_state s") == (1_000, 1_000, "loading")

    resumed = seed_alumnos(settings, count=4_000, seed=3, batch_rows=1_000)
    assert resumed.rows_before == 1_000
    checksum = table_checksum(url)
    seed_alumnos(settings, count=4_000, seed=3, reset=True)
    assert table_checksum(url) == checksum


def test_cli_shows_a_dropped_connection_as_one_error_line(settings: Settings) -> None:
    url = settings.database_url
    seed_alumnos(settings, count=1_000, seed=4)
    # The seeding session ends itself when it writes the third thousand: a real dropped
    # connection at a known batch. ALWAYS: it fires even with session_replication_role=replica.
    _execute(url, "CREATE FUNCTION alumnos_test_hang_up() RETURNS trigger LANGUAGE plpgsql AS "
                  "$$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$",
             "CREATE TRIGGER alumnos_test_hang_up BEFORE UPDATE ON alumnos_seed_state FOR EACH "
             "ROW WHEN (NEW.row_count > 2000) EXECUTE FUNCTION alumnos_test_hang_up()",
             "ALTER TABLE alumnos_seed_state ENABLE ALWAYS TRIGGER alumnos_test_hang_up")
    code, output = _cli(settings, "--count", "4000", "--seed", "4", "--batch-size", "1000")
    assert code == 1, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    assert errors[0].startswith("error: seeding stopped: terminating connection") or \
        errors[0].startswith("error: seeding stopped: server closed the connection"), output
    assert "next: the table keeps its 2,000 committed rows; run the same command again to " \
           "resume" in output
    assert _query(url, "SELECT row_count, (SELECT count(*) FROM alumnos) "
                       "FROM alumnos_seed_state") == (2_000, 2_000)

    _execute(url, "DROP TRIGGER alumnos_test_hang_up ON alumnos_seed_state")
    code, output = _cli(settings, "--count", "4000", "--seed", "4", "--batch-size", "1000",
                        "--checksum")
    assert code == 0, output
    assert "seeded 2,000 rows (4,000 in all)" in output


def test_a_failed_index_build_is_one_line_with_its_cause(settings: Settings) -> None:
    url = settings.database_url

    def interrupt(loaded: int, _wanted: int) -> None:
        if loaded >= 1_000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        seed_alumnos(settings, count=2_000, seed=6, batch_rows=1_000, progress=interrupt)
    # Someone else's row repeats row 1's document number while the indexes are not there.
    _execute(url, "INSERT INTO alumnos SELECT 999999, apellido, nombre, nro_documento, "
                  "tipo_documento, fecha_nacimiento, sexo, 1, fecha_ingreso, 'x@y' "
                  "FROM alumnos WHERE id = 1")
    with pytest.raises(AlumnosError) as stopped:
        seed_alumnos(settings, count=2_000, seed=6, batch_rows=1_000)
    # The server's first line only: its DETAIL (the duplicated key) is not one line of ours.
    assert stopped.value.message == ("seeding stopped while building the key and indexes: "
                                     'could not create unique index "alumnos_nro_documento_key"')
    assert stopped.value.hint == ("the table keeps all its rows, marked loading; run the same "
                                  "command again to build them")
    assert _query(url, "SELECT count(*), (SELECT status FROM alumnos_seed_state) "
                       "FROM alumnos") == (2_000, "loading")


# --- a real full disk ------------------------------------------------------------------------

@pytest.fixture
def full_disk_tablespace(settings: Settings) -> Iterator[str]:
    """A 20 MB tmpfs as a tablespace; everything made here is dropped and unmounted after."""
    if os.geteuid() != 0:
        pytest.skip("a full disk needs root to mount a small tmpfs")
    data_directory = str(_query(settings.database_url, "SHOW data_directory")[0])
    if not Path(data_directory).is_dir():
        pytest.skip(f"PostgreSQL's data directory {data_directory} is not on this machine")
    owner = Path(data_directory).stat().st_uid
    mountpoint = Path(tempfile.mkdtemp(prefix="alumnos_full_disk_"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs",
                              str(mountpoint)], capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        mountpoint.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    name = f"alumnos_full_{uuid.uuid4().hex[:8]}"
    try:
        os.chown(mountpoint, owner, owner)
        _execute(SERVER_URL, f"CREATE TABLESPACE {name} LOCATION '{mountpoint}'")
        try:
            yield name
        finally:
            # The tablespace must be empty before it goes: the test database goes first.
            database = make_url(settings.database_url).database
            _execute(SERVER_URL, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
                     f"DROP TABLESPACE IF EXISTS {name}")
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)
        shutil.rmtree(mountpoint, ignore_errors=True)


def test_a_full_disk_is_one_error_with_its_cause_and_keeps_committed_rows(
        settings: Settings, full_disk_tablespace: str) -> None:
    url = settings.database_url
    small = settings.with_database_url(
        f"{url}?options=-c%20default_tablespace%3D{full_disk_tablespace}")
    with pytest.raises(AlumnosError) as stopped:
        seed_alumnos(small, count=300_000, seed=5, batch_rows=10_000)
    assert re.fullmatch(r'seeding stopped: could not extend file "[^"]+": No space left on '
                        r'device', stopped.value.message)
    kept, counted, status = _query(url, "SELECT s.row_count, (SELECT count(*) FROM alumnos), "
                                        "s.status FROM alumnos_seed_state s")
    assert kept == counted and status == "loading"
    assert 0 < kept < 300_000  # type: ignore[operator]
    assert stopped.value.hint == (f"the table keeps its {kept:,} committed rows; run the same "
                                  "command again to resume")
    # With room again (the table moved to the main tablespace) the same command resumes.
    _execute(url, "ALTER TABLE alumnos SET TABLESPACE pg_default",
             "ALTER TABLE alumnos_seed_state SET TABLESPACE pg_default",
             "ALTER INDEX alumnos_seed_state_pkey SET TABLESPACE pg_default")
    resumed = seed_alumnos(settings, count=300_000, seed=5, batch_rows=10_000)
    assert resumed.rows_before == kept
    checksum = table_checksum(url)
    seed_alumnos(settings, count=300_000, seed=5, reset=True)
    assert table_checksum(url) == checksum


def test_a_table_an_older_alumnos_seeded_is_refused_then_recreated_by_reset(
        settings: Settings) -> None:
    """A table seeded before each row's JSON was stored: growing it would leave the new rows'
    JSON and the old rows' apart, so seed says to reset it, keeps it as it is, and --reset
    rebuilds it with the column, the same rows included."""
    url = settings.database_url
    seed_alumnos(settings, count=40, seed=3)
    before = table_checksum(url)
    _execute(url, "ALTER TABLE alumnos DROP COLUMN as_json")
    code, output = _cli(settings, "--count", "60", "--seed", "3")
    assert code == 1
    assert "error: the alumnos table was created by an older alumnos" in output
    assert "next: add --reset to recreate it" in output and "Traceback" not in output
    assert _query(url, "SELECT count(*) FROM alumnos") == (40,)
    code, output = _cli(settings, "--count", "40", "--seed", "3", "--reset")
    assert code == 0, output
    assert table_checksum(url) == before
    assert _stored_json_as_row_to_json(url) == (40, 40)


def _stored_json_as_row_to_json(url: str) -> tuple[object, ...]:
    """(rows, rows whose stored JSON is row_to_json's rendering of their fields)."""
    fields = ", ".join(COLUMNS)
    return _query(url, f"SELECT count(*), count(*) FILTER (WHERE as_json = (SELECT "
                       f"row_to_json(p)::text FROM (SELECT {fields} FROM alumnos b "
                       f"WHERE b.id = a.id) p)) FROM alumnos a")


def test_a_dump_restores_and_any_search_path_writes_the_same_json(settings: Settings) -> None:
    """The stored JSON's function names its type with the schema: a restore (whose
    search_path is empty, and which computes the column again for every row) and a writer
    with another search_path store what row_to_json writes."""
    url = settings.database_url
    seed_alumnos(settings, count=30, seed=5)
    _execute(url, "SET search_path = ''; INSERT INTO public.alumnos (id, apellido, nombre, "
                  "nro_documento, tipo_documento, fecha_nacimiento, sexo, nro_legajo, "
                  "fecha_ingreso, email) VALUES (100, 'Paz', 'Ana', 1, 'DNI', '2000-01-02', "
                  "'F', 2, '2020-03-04', 'ana@example.org')")
    assert _stored_json_as_row_to_json(url) == (31, 31)
    copy = f"{make_url(url).database}_restored"
    create_database(SERVER_URL, copy)
    try:
        copy_url = make_url(url).set(database=copy).render_as_string(hide_password=False)
        dump = subprocess.run(["pg_dump", "--no-owner", _libpq(url)], capture_output=True,
                              check=True)
        restored = subprocess.run(["psql", "--quiet", "--set", "ON_ERROR_STOP=1",
                                   _libpq(copy_url)], input=dump.stdout, capture_output=True,
                                  check=False)
        assert restored.returncode == 0, restored.stderr.decode()
        assert _stored_json_as_row_to_json(copy_url) == (31, 31)
    finally:
        drop_database(SERVER_URL, copy)


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
