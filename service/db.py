"""PostgreSQL access for the service: pages and rows rendered as JSON by PostgreSQL itself."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import URL, Connection, Engine, create_engine, make_url, text
from sqlalchemy.exc import ProgrammingError

from service.schema import COLUMNS, alumnos, seed_state

_FIELDS = ", ".join(COLUMNS)

# PostgreSQL builds the JSON array: dates come out as ISO strings, and Python never touches a
# row. Measured on 100-row pages this is several times cheaper than ORM objects + jsonify.
PAGE_SQL = text(
    f"SELECT coalesce(json_agg(p ORDER BY p.id), '[]')::text FROM "
    f"(SELECT {_FIELDS} FROM {alumnos.name} ORDER BY id LIMIT :limit OFFSET :offset) p"
)
KEYSET_SQL = text(
    f"SELECT coalesce(json_agg(p ORDER BY p.id), '[]')::text FROM "
    f"(SELECT {_FIELDS} FROM {alumnos.name} WHERE id > :after ORDER BY id LIMIT :limit) p"
)
ROW_SQL = text(f"SELECT row_to_json(p)::text FROM (SELECT {_FIELDS} FROM {alumnos.name} "
               f"WHERE id = :id) p")
SEEDED_TOTAL_SQL = text(f"SELECT loaded_count FROM {seed_state.name} WHERE id = 1")
COUNT_SQL = text(f"SELECT count(*) FROM {alumnos.name}")

# Without a seeder record (a table filled by other means), count(*) is cached this long.
COUNT_CACHE_SECONDS = 5.0


def driver_url(url: str | URL) -> URL:
    """Pin psycopg2: SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which we don't ship."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg2") if parsed.drivername == "postgresql" \
        else parsed


def make_engine(url: str, pool_size: int) -> Engine:
    """A pooled engine; pre-ping so that a restarted PostgreSQL is picked up without a restart."""
    return create_engine(
        driver_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 3, "application_name": "alumnos-service"},
    )


class TableMissing(Exception):
    """The alumnos table does not exist yet: the database was never seeded."""


class AlumnosRepository:
    """Reads pages, single alumnos and the exact total."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._counted: tuple[float, int] | None = None

    def page(self, *, limit: int, offset: int = 0, after: int | None = None) -> tuple[str, int]:
        """A JSON array of rows in id order (from offset, or after an id) and the exact total."""
        with self._connect() as conn:
            if after is None:
                params = {"limit": limit, "offset": offset}
                items = conn.execute(PAGE_SQL, params).scalar_one()
            else:
                items = conn.execute(KEYSET_SQL, {"limit": limit, "after": after}).scalar_one()
            return str(items), self._total(conn)

    def row_json(self, alumno_id: int) -> str | None:
        """One alumno as a JSON object, or None."""
        with self._connect() as conn:
            value = conn.execute(ROW_SQL, {"id": alumno_id}).scalar_one_or_none()
        return None if value is None else str(value)

    def ping(self) -> None:
        """Raise unless PostgreSQL answers."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except ProgrammingError as exc:
            if "does not exist" in str(exc.orig):
                raise TableMissing(str(exc.orig).splitlines()[0]) from exc
            raise

    def _total(self, conn: Connection) -> int:
        """The seeder's exact record when there is one, else a briefly cached count(*)."""
        try:
            seeded = conn.execute(SEEDED_TOTAL_SQL).scalar_one_or_none()
        except ProgrammingError:  # a table loaded by other means has no seeder record
            conn.rollback()
            seeded = None
        if seeded is not None:
            return int(seeded)
        now = time.monotonic()
        if self._counted and now - self._counted[0] < COUNT_CACHE_SECONDS:
            return self._counted[1]
        count = int(conn.execute(COUNT_SQL).scalar_one())
        self._counted = (now, count)
        return count
