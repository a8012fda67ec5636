"""PostgreSQL access for the service: pages and rows rendered as JSON by PostgreSQL itself."""

from __future__ import annotations

import bisect
import threading
import time
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import psycopg2
from psycopg2.errors import InvalidSqlStatementName, UndefinedColumn, UndefinedTable
from psycopg2.extensions import BYTES, register_type
from psycopg2.extensions import cursor as Cursor
from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.pool import PoolProxiedConnection, QueuePool

from alumnos_service.schema import COLUMNS, ROW_JSON_COLUMN, alumnos, seed_state

_T = TypeVar("_T")
_FIELDS = ", ".join(COLUMNS)
_STATE = seed_state.name

# Each row's JSON is stored beside it (schema.row_json_ddl); PostgreSQL joins a page's
# 100 into an array, byte for byte what json_agg of the rows would give. The same statement
# reads the table's version and exact row count, so one round trip both serves the page and
# proves the offset bookmarks it relied on are still valid.
# $1: the first id to scan from, $2: rows to skip from there, $3: the page's limit.
# It is prepared once per connection and run by name on its generic plan (make_engine), so
# PostgreSQL parses, analyses and plans it once: its CPU per page here fell from 480-510 us
# (a plain statement) to 330-355 (445-452 when prepared but planned per call), and with the
# stored JSON PostgreSQL serves about twice the pages per second (pgbench).
# `bench --calibrate` runs the same statement under pgbench: the database's own ceiling.
PAGE_ORDER = "ORDER BY p.id"  # in every page statement: how pg_stat_statements finds them
_STORED_ITEMS = (f"coalesce('[' || string_agg(p.{ROW_JSON_COLUMN}, E', \\n ' {PAGE_ORDER}) "
                 f"|| ']', '[]')")
# Rows of subquery p rendered per request: a table an older alumnos seeded keeps no JSON, and
# tables without the seeder's bookkeeping (_PLAIN_PAGE_SQL) may not either.
_RENDERED_ITEMS = f"coalesce(json_agg(p {PAGE_ORDER}), '[]')::text"


def page_sql(*, stored_json: bool = True) -> str:
    """The page statement, on a table that stores each row's JSON or one that does not."""
    items, fields = ((_STORED_ITEMS, f"id, {ROW_JSON_COLUMN}") if stored_json
                     else (_RENDERED_ITEMS, _FIELDS))
    return (f"SELECT s.version, s.row_count, (SELECT {items} FROM (SELECT {fields} FROM "
            f"{alumnos.name} WHERE id >= $1 ORDER BY id LIMIT $3 OFFSET $2) p) FROM {_STATE} s "
            f"WHERE s.id = 1")


PAGE_SQL = page_sql()
# The service's connections plan a prepared statement once, whatever its parameters, and
# never compile it: the generic plan of a page at 20,000,000 rows is costed past
# jit_above_cost (its LIMIT unknown), and JIT then spent 6-25 ms on a statement that runs in
# 0.3 (random pages at 20M rows: 0.04 of ping with JIT, 0.32 without).
PLAN_OPTION = "-c plan_cache_mode=force_generic_plan -c jit=off"
_PAGE_STATEMENT = "alumnos_page"
_RENDERING_PAGE_STATEMENT = "alumnos_page_rendered"
_ROW_STATEMENT = "alumnos_row"
_PREPARES = {
    _PAGE_STATEMENT: f"PREPARE {_PAGE_STATEMENT}(bigint, bigint, bigint) AS {PAGE_SQL}",
    _RENDERING_PAGE_STATEMENT: (f"PREPARE {_RENDERING_PAGE_STATEMENT}(bigint, bigint, bigint) "
                                f"AS {page_sql(stored_json=False)}"),
    _ROW_STATEMENT: (
        f"PREPARE {_ROW_STATEMENT}(bigint) AS SELECT row_to_json(p)::text FROM "
        f"(SELECT {_FIELDS} FROM {alumnos.name} WHERE id = $1) p"),
}
_EXECUTES = {name: f"EXECUTE {name}(%(start)s, %(skip)s, %(limit)s)"
             for name in (_PAGE_STATEMENT, _RENDERING_PAGE_STATEMENT)}
_EXECUTES[_ROW_STATEMENT] = f"EXECUTE {_ROW_STATEMENT}(%(id)s)"
# Rows from a bookmark up to an id: at most one bookmark's stretch.
_RANK_SQL = (
    f"SELECT count(*) FROM (SELECT 1 FROM {alumnos.name} WHERE id >= %(low)s "
    f"AND id <= %(after)s LIMIT %(every)s) r"
)
# Whether the table stores each row's JSON (an older alumnos's does not): the generated
# column itself, never a plain column of that name whose NULLs string_agg would skip.
STORED_JSON_SQL = (f"EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '{alumnos.name}'"
                   f"::regclass AND attname = '{ROW_JSON_COLUMN}' AND attgenerated = 's' "
                   f"AND attnotnull AND NOT attisdropped)")
_SHAPE_SQL = (
    f"SELECT s.version, s.row_count, (SELECT min(id) FROM {alumnos.name}), "
    f"(SELECT max(id) FROM {alumnos.name}), {STORED_JSON_SQL} FROM {_STATE} s WHERE s.id = 1"
)
_BOOKMARKS_SQL = (
    f"SELECT id FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS position "
    f"FROM {alumnos.name}) t WHERE position %% %(every)s = 0 ORDER BY id"
)
# Tables without the seeder's bookkeeping (loaded by other means): plain OFFSET, and a count(*)
# shared by the requests of a few seconds.
_PLAIN_PAGE_SQL = (
    f"SELECT {_RENDERED_ITEMS} FROM "
    f"(SELECT {_FIELDS} FROM {alumnos.name} ORDER BY id LIMIT %(limit)s OFFSET %(offset)s) p"
)
_PLAIN_KEYSET_SQL = (
    f"SELECT {_RENDERED_ITEMS} FROM "
    f"(SELECT {_FIELDS} FROM {alumnos.name} WHERE id > %(after)s ORDER BY id "
    f"LIMIT %(limit)s OFFSET %(offset)s) p"
)
_COUNT_SQL = f"SELECT count(*) FROM {alumnos.name}"
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
    """A pooled engine whose connections cost one round trip per statement, nothing more.

    No ping on checkout and no rollback on return: a profile of an uncached request put 25%
    of its time in the ping and 15% in the rollback, each a round trip of its own. Every
    statement here reads, so the connections run in autocommit (no BEGIN, nothing to end),
    and a connection a restarted PostgreSQL dropped is found by the request that uses it,
    which lets it go and tries the next (AlumnosRepository._attempts). Prepared statements
    always run on their generic plan: the page's best plan (the primary key's index from the
    first id) is the same for every offset, and making one per call cost PostgreSQL a quarter
    of its time per page.

    Every statement is bounded by `statement_timeout_ms` (PostgreSQL cancels it) and the wait
    for a pooled connection by `pool_timeout_s`: both end in a 503, never in a hang.
    """
    engine = create_engine(
        driver_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout_s,
        pool_pre_ping=False,
        pool_reset_on_return=None,
        isolation_level="AUTOCOMMIT",
        # UTF-8 whatever the database's or the environment's encoding: pages go out as the
        # bytes PostgreSQL sends (_text_as_bytes), and the contract's JSON is UTF-8.
        connect_args={"connect_timeout": 3, "application_name": "alumnos-service",
                      "client_encoding": "utf8",
                      "options": f"-c statement_timeout={int(statement_timeout_ms)} "
                                 f"{PLAN_OPTION}"},
    )
    event.listen(engine, "connect", _text_as_bytes)
    return engine


def _text_as_bytes(dbapi_connection: Any, _record: object) -> None:
    """Text comes back as the bytes PostgreSQL sent: a page's JSON goes out as it came in,
    never decoded to str and encoded back (two copies of 25 KB a page)."""
    register_type(BYTES, dbapi_connection)


def _run_prepared(link: _Link, name: str, params: Mapping[str, int]) -> Cursor:
    """EXECUTE a statement of _PREPARES, preparing it first on a connection that has not.

    A prepared statement outlives a reseed: PostgreSQL analyses and plans it again when the
    tables it reads are dropped and made anew.
    """
    if name not in link.info:
        link.cursor.execute(_PREPARES[name])
        link.info[name] = True
    try:
        link.cursor.execute(_EXECUTES[name], params)
    except InvalidSqlStatementName:  # let go on the server (DEALLOCATE, DISCARD ALL)
        link.cursor.execute(_PREPARES[name])
        link.cursor.execute(_EXECUTES[name], params)
    return link.cursor


@dataclass(frozen=True)
class _Link:
    """A pooled connection lent to one request: its cursor, and what outlives the request
    on that connection (the statements prepared on it)."""

    cursor: Cursor
    info: dict[Any, Any]


class TableMissing(Exception):
    """The alumnos table does not exist yet: the database was never seeded."""


@dataclass(frozen=True)
class TableShape:
    """Where each offset starts, valid for one version of the table."""

    version: int
    row_count: int
    first_id: int | None
    dense: bool  # ids are exactly first_id..first_id+row_count-1
    stored_json: bool  # each row's JSON is kept beside it (not so if an older alumnos seeded)
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

    def page(self, *, limit: int, offset: int = 0,
             after: int | None = None) -> tuple[bytes, int]:
        """A JSON array of rows in id order (from offset, or after an id) and the exact total."""
        self._count_query()
        return self._attempts(lambda link: self._page(link, limit=limit, offset=offset,
                                                      after=after))

    def _page(self, link: _Link, *, limit: int, offset: int,
              after: int | None) -> tuple[bytes, int]:
        for _ in range(3):
            shape = self._shape or self._refresh_shape(link, None)
            if shape is None:
                return self._plain_page(link, limit=limit, offset=offset, after=after)
            # After an id, offset counts from that id's place: the same position lookup,
            # so no combination walks more than BOOKMARK_EVERY index entries.
            position = offset if after is None else self._rank(link, shape, after) + offset
            start, skip = shape.locate(position)
            statement = _PAGE_STATEMENT if shape.stored_json else _RENDERING_PAGE_STATEMENT
            try:
                version, total, items = _one(_run_prepared(
                    link, statement, {"start": start, "skip": skip, "limit": limit}))
            except UndefinedColumn:
                if not shape.stored_json:
                    raise
                # The stored JSON was dropped, which no write trigger tells: look again.
                refreshed = self._refresh_shape(link, shape)
                if refreshed is not None and refreshed.stored_json:
                    raise  # another column: not what a refresh mends
                continue
            if (version, total) == (shape.version, shape.row_count):
                return bytes(items), int(total)
            # The table changed since the bookmarks were taken: rebuild, then ask again.
            self._refresh_shape(link, shape)
        raise RuntimeError("the alumnos table keeps changing; no stable page could be read")

    def _rank(self, link: _Link, shape: TableShape, after: int) -> int:
        """How many rows have an id up to `after`: from the id range when the ids are dense,
        else from the nearest bookmark and at most BOOKMARK_EVERY rows counted."""
        if shape.first_id is None or after < shape.first_id:
            return 0
        if shape.dense:
            return min(after - shape.first_id + 1, shape.row_count)
        slot = bisect.bisect_right(shape.bookmarks, after) - 1
        link.cursor.execute(_RANK_SQL, {"low": shape.bookmarks[slot], "after": after,
                                        "every": BOOKMARK_EVERY})
        return slot * BOOKMARK_EVERY + int(_one(link.cursor)[0])

    def row_json(self, alumno_id: int) -> bytes | None:
        """One alumno as a JSON object, or None."""
        self._count_query()
        row = self._attempts(lambda link: _run_prepared(
            link, _ROW_STATEMENT, {"id": alumno_id}).fetchone())
        return None if row is None else bytes(row[0])

    def ping(self) -> None:
        """Raise unless PostgreSQL answers."""
        self._attempts(lambda link: link.cursor.execute("SELECT 1"))

    def _attempts(self, work: Callable[[_Link], _T]) -> _T:
        """work on a pooled connection; again on the next while PostgreSQL had dropped the one
        tried (each is then let go). After a restart every pooled connection is dropped, so
        the pool's whole capacity may be tried before a fresh connection is made; each failed
        try costs an immediate error, not a wait. Every statement here reads: retrying is safe."""
        capacity = self._capacity()
        for _ in range(capacity):
            try:
                return self._once(work)
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
        return self._once(work)

    def _capacity(self) -> int:
        """Connections the pool may hold: its size and as many again (make_engine's overflow)."""
        pool = self.engine.pool
        return 2 * pool.size() if isinstance(pool, QueuePool) else 1

    def _once(self, work: Callable[[_Link], _T]) -> _T:
        """work on a pooled connection's own cursor: the driver's, not SQLAlchemy's Connection
        (whose bookkeeping per statement cost about as much CPU as the driver's own work).
        Driver errors come out as SQLAlchemy's, as the rest of the service expects them."""
        try:
            pooled: PoolProxiedConnection = self.engine.raw_connection()
        except psycopg2.Error as exc:  # no connection could be made
            raise DBAPIError.instance(None, None, exc, psycopg2.Error,
                                      dialect=self.engine.dialect) from exc
        try:
            with cast(Cursor, pooled.cursor()) as cursor:
                return work(_Link(cursor, pooled.info))
        except psycopg2.Error as exc:
            raise self._translated(exc, pooled) from exc
        finally:
            pooled.close()  # back to the pool (or closed, once invalidated)

    def _translated(self, exc: psycopg2.Error, pooled: PoolProxiedConnection) -> Exception:
        """The driver's error as SQLAlchemy raises it; a dropped connection invalidated."""
        dropped = self.engine.dialect.is_disconnect(cast(Any, exc), pooled.dbapi_connection, None)
        if dropped:
            pooled.invalidate(exc)
        error = DBAPIError.instance(None, None, exc, psycopg2.Error,
                                    connection_invalidated=dropped, dialect=self.engine.dialect)
        if isinstance(error, ProgrammingError) and "does not exist" in str(exc):
            return TableMissing(str(exc).splitlines()[0])
        return error

    def _refresh_shape(self, link: _Link, stale: TableShape | None) -> TableShape | None:
        """Read the table's version, count and id range; bookmark it when ids have gaps."""
        with self._shape_lock:
            if self._shape is not stale:  # another thread refreshed it meanwhile
                return self._shape
            try:
                link.cursor.execute(_SHAPE_SQL)
            except UndefinedTable:  # no bookkeeping: loaded by other means
                return None
            state = link.cursor.fetchone()
            if state is None:
                return None
            version, row_count, first_id, last_id, stored_json = state
            dense = first_id is not None and last_id - first_id + 1 == row_count
            marks = array("q")
            if not dense and row_count:
                link.cursor.execute(_BOOKMARKS_SQL, {"every": BOOKMARK_EVERY})
                marks.extend(r[0] for r in link.cursor)
            self._shape = TableShape(version=version, row_count=row_count, first_id=first_id,
                                     dense=dense, stored_json=stored_json, bookmarks=marks)
            return self._shape

    def _plain_page(self, link: _Link, *, limit: int, offset: int,
                    after: int | None) -> tuple[bytes, int]:
        if after is None:
            link.cursor.execute(_PLAIN_PAGE_SQL, {"limit": limit, "offset": offset})
        else:
            link.cursor.execute(_PLAIN_KEYSET_SQL, {"limit": limit, "after": after,
                                                    "offset": offset})
        items = _one(link.cursor)[0]
        now = time.monotonic()
        if not self._counted or now - self._counted[0] >= COUNT_CACHE_SECONDS:
            link.cursor.execute(_COUNT_SQL)
            self._counted = (now, int(_one(link.cursor)[0]))
        return bytes(items), self._counted[1]


def _one(cursor: Cursor) -> tuple[Any, ...]:
    """The one row a statement returns."""
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("PostgreSQL returned no row where one is always returned")
    return tuple(row)
