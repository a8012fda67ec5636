"""The alumnos table around a load: whose it is, resetting it, its key and unique indexes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select, text
from sqlalchemy import inspect as sa_inspect

from alumnos_cli.errors import AlumnosError
from alumnos_service.db import STORED_JSON_SQL
from alumnos_service.schema import UNIQUE_INDEXES, alumnos, metadata, seed_state

PRIMARY_KEY = "alumnos_pkey"
ANOTHER_DATABASE = "seed another database with --database-url"


@dataclass(frozen=True)
class Prepared:
    """The table, ready to load: rows already there, and what --reset --force destroyed."""

    rows: int
    dropped_foreign_rows: int | None = None  # rows of a table `alumnos seed` did not write


def prepare(conn: Connection, *, count: int, seed: int, reset: bool,
            force: bool = False) -> Prepared:
    """Create or reset the tables, check the request against what is there."""
    existed = _has_table(conn, alumnos.name)
    dropped = _reset(conn, force=force) if reset else None
    if existed and not reset and not _written_by_us(conn):
        raise _not_ours(_rows(conn))
    metadata.create_all(conn, tables=[alumnos, seed_state])
    _check_schema_is_current(conn)
    state = conn.execute(select(seed_state).where(seed_state.c.id == 1)).mappings().first()
    present = _rows(conn)
    if state is not None and int(state["seed"]) != seed:
        raise AlumnosError(f"the table was seeded with --seed {state['seed']}, not {seed}",
                           f"use --seed {state['seed']} to resume or grow it, or add --reset")
    if count < present:
        raise AlumnosError(f"the table already holds {present:,} rows, more than --count {count:,}",
                           "add --reset to reload it with fewer rows")
    if present == 0:
        # A fresh load: nothing to read yet, so the key and indexes go and are built after
        # COPY (measured on 1M rows: maintaining the key alone during COPY cost 0.5 s, building
        # it afterwards 0.3 s). A table with rows keeps them: readers never lose their indexes,
        # and an interrupted first load, which already lost them, gets them back at the end.
        _drop_key_and_indexes(conn)
    values = {"seed": seed, "target_count": count, "row_count": present,
              "status": "complete" if present == count else "loading"}
    if state is None:
        conn.execute(seed_state.insert().values(id=1, **values))
    else:
        conn.execute(seed_state.update().where(seed_state.c.id == 1).values(**values))
    return Prepared(present, dropped)


def finish(conn: Connection) -> None:
    """Build the primary key and unique indexes if missing, and mark the table complete."""
    has_key = conn.execute(text("SELECT 1 FROM pg_constraint WHERE conname = :name "
                                "AND conrelid = 'alumnos'::regclass"),
                           {"name": PRIMARY_KEY}).scalar()
    if not has_key:
        conn.execute(text(f"ALTER TABLE alumnos ADD CONSTRAINT {PRIMARY_KEY} PRIMARY KEY (id)"))
    for index in UNIQUE_INDEXES:
        index.create(conn, checkfirst=True)
    conn.execute(seed_state.update().where(seed_state.c.id == 1).values(status="complete"))


def _reset(conn: Connection, *, force: bool) -> int | None:
    """Drop the tables for a reload; one `alumnos seed` did not write only with --force.
    Returns how many rows of such a table were dropped."""
    foreign = None
    if _has_table(conn, alumnos.name) and not _written_by_us(conn):
        if not force:
            raise _not_ours(_rows(conn), reset=True)
        # Locked first, so the count we report is the count we drop.
        conn.execute(text("LOCK TABLE alumnos IN ACCESS EXCLUSIVE MODE"))
        foreign = _rows(conn)
    seed_state.drop(conn, checkfirst=True)
    alumnos.drop(conn, checkfirst=True)
    return foreign


def _written_by_us(conn: Connection) -> bool:
    """Our bookkeeping says `alumnos seed` wrote the table: alumnos_seed_state has its row."""
    if not _has_table(conn, seed_state.name):
        return False
    return conn.execute(text(f"SELECT 1 FROM {seed_state.name} WHERE id = 1")).scalar() == 1


def _not_ours(rows: int, *, reset: bool = False) -> AlumnosError:
    """The refusal for a table `alumnos seed` did not write: what --reset --force destroys."""
    if reset:
        return AlumnosError(f"--reset --force drops table alumnos and its {rows:,} rows, which "
                            "`alumnos seed` did not write; refused without --force",
                            f"add --force only if those rows may go, or {ANOTHER_DATABASE}")
    return AlumnosError(f"the alumnos table ({rows:,} rows) was not written by `alumnos seed` "
                        "(it has no alumnos_seed_state)",
                        f"{ANOTHER_DATABASE}; `--reset --force` would drop table alumnos and "
                        f"its {rows:,} rows for good")


def _check_schema_is_current(conn: Connection) -> None:
    """Refuse tables left by an older alumnos (no write-tracking triggers, no stored JSON)."""
    triggers = conn.execute(text(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'alumnos'::regclass "
        "AND tgname LIKE 'alumnos_track_%'")).scalar_one()
    columns = {c["name"] for c in sa_inspect(conn).get_columns(seed_state.name)}
    stored_json = conn.execute(text(f"SELECT {STORED_JSON_SQL}")).scalar_one()
    if triggers != 4 or not {"row_count", "version"} <= columns or not stored_json:
        raise AlumnosError("the alumnos table was created by an older alumnos",
                           "add --reset to recreate it")


def _drop_key_and_indexes(conn: Connection) -> None:
    conn.execute(text(f"ALTER TABLE alumnos DROP CONSTRAINT IF EXISTS {PRIMARY_KEY}"))
    for index in UNIQUE_INDEXES:
        index.drop(conn, checkfirst=True)


def _has_table(conn: Connection, name: str) -> bool:
    return bool(sa_inspect(conn).has_table(name))


def _rows(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM alumnos")).scalar_one())
