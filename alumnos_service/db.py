"""PostgreSQL access for the service: pages and rows rendered as JSON by PostgreSQL itself."""

from __future__ import annotations

import bisect
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import URL, Connection, Engine, create_engine, make_url, text
from sqlalchemy.exc import ProgrammingError

from alumnos_service.schema import COLUMNS, alumnos, seed_state

_FIELDS = ", ".join(COLUMNS)
_STATE = seed_state.name

# PostgreSQL builds the JSON array: dates come out as ISO strings, and Python never touches a
# row. The same statement reads the table's version and exact row count, so one round trip
# both serves the page and proves the offset bookmarks it relied on are still valid.
_PAGE_FROM_SQL = text(
    f"SELECT s.version, s.row_count, (SELECT coalesce(json_agg(p ORDER BY p.id), '[]')::text "
    f"FROM (SELECT {_FIELDS} FROM {alumnos.name} WHERE id >= :start ORDER BY id "
    f"LIMIT :limit OFFSET :skip) p) FROM {_STATE} s WHERE s.id = 1"
)
# Rows from a bookmark up to an id: at most one bookmark's stretch.
_RANK_SQL = text(
    f"SELECT count(*) FROM (SELECT 1 FROM {alumnos.name} WHERE id >= :low AND id <= :after "
    f"LIMIT :every) r"
)
_SHAPE_SQL = text(
    f"SELECT s.version, s.row_count, (SELECT min(id) FROM {alumnos.name}), "
    f"(SELECT max(id) FROM {alumnos.name}) FROM {_STATE} s WHERE s.id = 1"
)
_BOOKMARKS_SQL = text(
    f"SELECT id FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS position "
    f"FROM {alumnos.name}) t WHERE position % :every = 0 ORDER BY id"
)
_ROW_SQL = text(f"SELECT row_to_json(p)::text FROM (SELECT {_FIELDS} FROM {alumnos.name} "
                f"WHERE id = :id) p")
# Tables without the seeder's bookkeeping (loaded by other means): plain OFFSET, and a count(*)
# shared by the requests of a few seconds.
_PLAIN_PAGE_SQL = text(
    f"SELECT coalesce(json_agg(p ORDER BY p.id), '[]')::text FROM "
    f"(SELECT {_FIELDS} FROM {alumnos.name} ORDER BY id LIMIT :limit OFFSET :offset) p"
)
_PLAIN_KEYSET_SQL = text(
    f"SELECT coalesce(json_agg(p ORDER BY p.id), '[]')::text FROM "
    f"(SELECT {_FIELDS} FROM {alumnos.name} WHERE id > :after ORDER BY id "
    f"LIMIT :limit OFFSET :offset) p"
)
_COUNT_SQL = text(f"SELECT count(*) FROM {alumnos.name}")
COUNT_CACHE_SECONDS = 5.0

# One bookmark every 256 rows: a deep page skips at most 255 index entries instead of millions.
BOOKMARK_EVERY = 256


def driver_url(url: str | URL) -> URL:
    """Pin psycopg2: SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which we don't ship."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg2") if parsed.drivername == "postgresql" \
        else parsed


def make_engine(url: str, pool_size: int, *, statement_timeout_ms: int,
                pool_timeout_s: float) -> Engine:
    """A pooled engine; pre-ping so that a restarted PostgreSQL is picked up without a restart.

    Every statement is bounded by `statement_timeout_ms` (PostgreSQL cancels it) and the wait
    for a pooled connection by `pool_timeout_s`: both end in a 503, never in a hang.
    """
    return create_engine(
        driver_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout_s,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 3, "application_name": "alumnos-service",
                      "options": f"-c statement_timeout={int(statement_timeout_ms)}"},
    )


class TableMissing(Exception):
    """The alumnos table does not exist yet: the database was never seeded."""


@dataclass(frozen=True)
class TableShape:
    """Where each offset starts, valid for one version of the table."""

    version: int
    row_count: int
    first_id: int | None
    dense: bool  # ids are exactly first_id..first_id+row_count-1
    bookmarks: array[int]  # id at positions 0, N, 2N, ... (sparse tables)

    def locate(self, offset: int) -> tuple[int, int]:
        """(first id to scan from, rows to skip from there) for a 0-based offset."""
        if self.first_id is None or offset >= self.row_count:
            return 2**63 - 1, 0  # past the end: an empty page
        if self.dense:
            return self.first_id + offset, 0
        slot = offset // BOOKMARK_EVERY
        return self.bookmarks[slot], offset - slot * BOOKMARK_EVERY


class AlumnosRepository:
    """Reads pages, single alumnos and the exact total."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._queries = 0
        self._queries_lock = threading.Lock()
        # Told of each query as it is sent: /metrics counts it where every worker's count is
        # summed (a scrape cannot read the other workers' totals).
        self.on_query: Callable[[], None] | None = None
        self._shape: TableShape | None = None
        self._shape_lock = threading.Lock()
        self._counted: tuple[float, int] | None = None

    @property
    def queries(self) -> int:
        """Page and row queries sent so far, for /metrics and the stampede test."""
        return self._queries

    def _count_query(self) -> None:
        with self._queries_lock:
            self._queries += 1
        if self.on_query is not None:
            self.on_query()

    def page(self, *, limit: int, offset: int = 0, after: int | None = None) -> tuple[str, int]:
        """A JSON array of rows in id order (from offset, or after an id) and the exact total."""
        self._count_query()
        with self._connect() as conn:
            for _ in range(3):
                shape = self._shape or self._refresh_shape(conn, None)
                if shape is None:
                    return self._plain_page(conn, limit=limit, offset=offset, after=after)
                # After an id, offset counts from that id's place: the same position lookup,
                # so no combination walks more than BOOKMARK_EVERY index entries.
                position = offset if after is None else self._rank(conn, shape, after) + offset
                start, skip = shape.locate(position)
                row = conn.execute(_PAGE_FROM_SQL, {"start": start, "skip": skip,
                                                    "limit": limit}).one()
                version, total, items = row
                if (version, total) == (shape.version, shape.row_count):
                    return str(items), int(total)
                # The table changed since the bookmarks were taken: rebuild, then ask again.
                self._refresh_shape(conn, shape)
        raise RuntimeError("the alumnos table keeps changing; no stable page could be read")

    def _rank(self, conn: Connection, shape: TableShape, after: int) -> int:
        """How many rows have an id up to `after`: from the id range when the ids are dense,
        else from the nearest bookmark and at most BOOKMARK_EVERY rows counted."""
        if shape.first_id is None or after < shape.first_id:
            return 0
        if shape.dense:
            return min(after - shape.first_id + 1, shape.row_count)
        slot = bisect.bisect_right(shape.bookmarks, after) - 1
        counted = conn.execute(_RANK_SQL, {"low": shape.bookmarks[slot], "after": after,
                                           "every": BOOKMARK_EVERY}).scalar_one()
        return slot * BOOKMARK_EVERY + int(counted)

    def row_json(self, alumno_id: int) -> str | None:
        """One alumno as a JSON object, or None."""
        self._count_query()
        with self._connect() as conn:
            value = conn.execute(_ROW_SQL, {"id": alumno_id}).scalar_one_or_none()
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

    def _refresh_shape(self, conn: Connection, stale: TableShape | None) -> TableShape | None:
        """Read the table's version, count and id range; bookmark it when ids have gaps."""
        with self._shape_lock:
            if self._shape is not stale:  # another thread refreshed it meanwhile
                return self._shape
            try:
                state = conn.execute(_SHAPE_SQL).one_or_none()
            except ProgrammingError:  # no bookkeeping table: a table loaded by other means
                conn.rollback()
                return None
            if state is None:
                return None
            version, row_count, first_id, last_id = state
            dense = first_id is not None and last_id - first_id + 1 == row_count
            marks = array("q")
            if not dense and row_count:
                marks.extend(r[0] for r in conn.execute(_BOOKMARKS_SQL,
                                                        {"every": BOOKMARK_EVERY}))
            self._shape = TableShape(version=version, row_count=row_count, first_id=first_id,
                                     dense=dense, bookmarks=marks)
            return self._shape

    def _plain_page(self, conn: Connection, *, limit: int, offset: int,
                    after: int | None) -> tuple[str, int]:
        if after is None:
            items = conn.execute(_PLAIN_PAGE_SQL, {"limit": limit, "offset": offset}).scalar_one()
        else:
            items = conn.execute(_PLAIN_KEYSET_SQL, {"limit": limit, "after": after,
                                                     "offset": offset}).scalar_one()
        now = time.monotonic()
        if not self._counted or now - self._counted[0] >= COUNT_CACHE_SECONDS:
            self._counted = (now, int(conn.execute(_COUNT_SQL).scalar_one()))
        return str(items), self._counted[1]
