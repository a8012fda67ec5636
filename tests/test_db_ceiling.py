"""The database's ceiling by pgbench: on the service's database, its password never on the
command line, and every way it can fail said in one line."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from alumnos_cli.bench.db_ceiling import (
    _command,
    _environment,
    database_ceiling_record,
    page_script,
)
from alumnos_cli.seed.load import seed_alumnos
from alumnos_cli.settings import Settings
from alumnos_service.db import driver_url


def test_pgbench_gets_the_url_without_its_password_and_the_password_by_environment() -> None:
    url = "postgresql+psycopg2://ana:s3cret@db.internal:6543/alumnos?sslmode=require"
    command = _command(Path("/usr/bin/pgbench"), url, Path("page.sql"), 8, 10)
    assert command[-1] == "postgresql://ana@db.internal:6543/alumnos?sslmode=require"
    assert not any("s3cret" in part for part in command)
    environment = _environment(url)
    assert environment["PGPASSWORD"] == "s3cret"
    assert "plan_cache_mode=force_generic_plan" in environment["PGOPTIONS"]
    assert "statement_timeout=" in environment["PGOPTIONS"]


def test_a_ceiling_that_cannot_be_measured_is_one_line(tmp_path: Path) -> None:
    assert database_ceiling_record(None, tmp_path)["missing"].startswith(
        "no database is known for this target")
    unreachable = database_ceiling_record("postgresql://postgres@127.0.0.1:1/alumnos", tmp_path)
    assert unreachable["missing"].startswith("the alumnos table could not be read: ")
    assert list(tmp_path.iterdir()) == []  # nothing written for a run that measured nothing


def test_an_empty_table_is_told_to_be_seeded(tmp_path: Path, settings: Settings,
                                             cache_prefix: str) -> None:
    folder = _seeded_then(settings, cache_prefix, tmp_path, rows=1, change="DELETE FROM alumnos")
    assert database_ceiling_record(settings.database_url, folder) == {
        "missing": "the alumnos table is empty: seed it first (alumnos seed)"}


def test_the_ceiling_runs_the_statement_the_service_runs_on_that_table(
        tmp_path: Path, settings: Settings, cache_prefix: str) -> None:
    """pgbench reads the stored JSON the service joins, and on a table an older alumnos seeded
    (no stored JSON) renders each page as the service then does: never a statement that fails."""
    stored = page_script(1, 300)
    assert "string_agg(p.as_json" in stored and "json_agg" not in stored
    folder = _seeded_then(settings, cache_prefix, tmp_path, rows=300,
                          change="ALTER TABLE alumnos DROP COLUMN as_json")
    record = database_ceiling_record(settings.database_url, folder, seconds=1)
    assert "missing" not in record, record
    script = (folder / "page.sql").read_text()
    assert "json_agg(p ORDER BY p.id)" in script and "as_json" not in script


def _seeded_then(settings: Settings, cache_prefix: str, tmp_path: Path, *, rows: int,
                 change: str) -> Path:
    """Seed `rows`, then change the table; the folder a calibration writes to."""
    seed_alumnos(settings, count=rows, seed=1, cache_prefix=cache_prefix)
    engine = create_engine(driver_url(settings.database_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(change))
    finally:
        engine.dispose()
    folder = tmp_path / "calibration"
    folder.mkdir()
    return folder
