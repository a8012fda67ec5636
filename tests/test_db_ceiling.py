"""The database's ceiling by pgbench: on the service's database, its password never on the
command line, and every way it can fail said in one line."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from alumnos_cli.bench.db_ceiling import _command, _environment, database_ceiling_record
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
    seed_alumnos(settings, count=1, seed=1, cache_prefix=cache_prefix)
    engine = create_engine(driver_url(settings.database_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("DELETE FROM alumnos"))
    finally:
        engine.dispose()
    folder = tmp_path / "calibration"
    folder.mkdir()
    assert database_ceiling_record(settings.database_url, folder) == {
        "missing": "the alumnos table is empty: seed it first (alumnos seed)"}
