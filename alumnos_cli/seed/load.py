"""Fill the alumnos table with COPY, in committed batches that make the load resumable."""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import multiprocessing.process
import multiprocessing.queues
import queue
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg2
import psycopg2.errors
import redis
from sqlalchemy import Engine, select, text
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.exc import SQLAlchemyError

from alumnos_cli.database import engine_for, ensure_database, unreachable
from alumnos_cli.errors import AlumnosError
from alumnos_cli.seed.generate import copy_chunks
from alumnos_cli.seed.request import DEFAULT_BATCH_ROWS, validate_request, validate_reset
from alumnos_cli.seed.space import check_room, table_bytes
from alumnos_cli.seed.table import Prepared, finish, prepare
from alumnos_cli.settings import Settings
from alumnos_service.cache import PROPAGATION_SECONDS, invalidate_all
from alumnos_service.config import DEFAULTS as SERVICE_DEFAULTS
from alumnos_service.schema import COLUMNS, alumnos, seed_state

CACHE_PREFIX = str(SERVICE_DEFAULTS["CACHE_PREFIX"])
COPY_SQL = f"COPY {alumnos.name} ({', '.join(COLUMNS)}) FROM STDIN"
# psycopg2's own errors (the batches go through a raw connection) and SQLAlchemy's.
DATABASE_ERRORS = (psycopg2.Error, SQLAlchemyError)

Progress = Callable[[int, int], None]  # (rows loaded so far, rows wanted)
Chunk = tuple[int, bytes]  # (rows, their COPY text)
if TYPE_CHECKING:
    # What the generator process hands over: chunks, then None; or the error that stopped it.
    ChunkQueue = multiprocessing.queues.Queue[Chunk | BaseException | None]


@dataclass(frozen=True)
class SeedResult:
    """What a seed did."""

    rows_before: int
    rows_after: int
    seconds: float
    cache_invalidated: bool
    dropped_foreign_rows: int | None = None  # --reset --force on a table seed did not write

    @property
    def rows_loaded(self) -> int:
        return self.rows_after - self.rows_before

    @property
    def rows_per_second(self) -> float:
        return self.rows_loaded / self.seconds if self.seconds > 0 else 0.0


def seed_alumnos(settings: Settings, *, count: int, seed: int = 0, reset: bool = False,
                 force: bool = False, batch_rows: int = DEFAULT_BATCH_ROWS,
                 progress: Progress | None = None,
                 cache_prefix: str = CACHE_PREFIX) -> SeedResult:
    """Make the alumnos table hold exactly `count` generated rows for `seed`."""
    validate_request(count, seed, batch_rows)
    validate_reset(reset=reset, force=force)
    ensure_database(settings.database_url)
    started = time.perf_counter()
    engine = engine_for(settings.database_url)
    try:
        prepared = _prepare(engine, settings.database_url, count=count, seed=seed,
                            reset=reset, force=force)
        if progress:
            progress(prepared.rows, count)
        if prepared.rows < count:
            _load(engine, seed=seed, start=prepared.rows, stop=count, batch_rows=batch_rows,
                  progress=progress)
        _finish(engine)
    finally:
        engine.dispose()
    # ANALYZE (outside any transaction) gives the service's first queries good plans.
    # The data is final: bump the generation now, and let ANALYZE use up part of the wait
    # after which no worker still holds the old generation (see service/cache.py).
    bumped_at = time.monotonic()
    invalidated = invalidate_cache(settings.redis_url, cache_prefix)
    _analyze(settings.database_url, count)
    if invalidated:
        time.sleep(max(0.0, PROPAGATION_SECONDS - (time.monotonic() - bumped_at)))
    return SeedResult(prepared.rows, count, time.perf_counter() - started, invalidated,
                      prepared.dropped_foreign_rows)


def _cause(exc: BaseException) -> str:
    """The first line of the server's message: the why, without libpq's DETAIL and HINT."""
    message = str(getattr(exc, "orig", None) or exc).strip()
    return message.splitlines()[0] if message else type(exc).__name__


def _prepare(engine: Engine, url: str, *, count: int, seed: int, reset: bool,
             force: bool) -> Prepared:
    """Check and ready the table in one transaction: a failure here changes nothing."""
    try:
        connection = engine.connect()
    except SQLAlchemyError as exc:
        raise unreachable(url, exc) from None
    try:
        with connection, connection.begin():
            freed = table_bytes(connection) if reset else 0
            prepared = prepare(connection, count=count, seed=seed, reset=reset, force=force)
            # Refused here, the whole transaction is rolled back: the table is as it was.
            check_room(connection, url, rows_to_load=count - prepared.rows, rows_after=count,
                       freed=freed)
            return prepared
    except SQLAlchemyError as exc:
        raise AlumnosError(f"seeding failed: {_cause(exc)}",
                           "nothing was changed; run the same command again once that is fixed"
                           ) from None


def _finish(engine: Engine) -> None:
    try:
        with engine.begin() as conn:
            finish(conn)
    except SQLAlchemyError as exc:
        raise AlumnosError(f"seeding stopped while building the key and indexes: {_cause(exc)}",
                           "the table keeps all its rows, marked loading; run the same command "
                           "again to build them") from None


def _load(engine: Engine, *, seed: int, start: int, stop: int, batch_rows: int,
          progress: Progress | None) -> None:
    """COPY rows start+1..stop, one transaction per batch, generation overlapping the COPY."""
    committed = start
    try:
        raw = engine.raw_connection()
    except SQLAlchemyError as exc:
        raise _stopped(engine, exc, committed) from None
    try:
        for rows, chunk in _prefetched(seed, start, stop, batch_rows):
            with closing(raw.cursor()) as cur:
                # The write-tracking triggers copy every row into a transition table; for our
                # own batches the count is known, so they are off inside this transaction only.
                altered = _triggers_off_in_transaction(cur)
                cur.copy_expert(COPY_SQL, io.BytesIO(chunk), size=1 << 20)
                cur.execute("UPDATE alumnos_seed_state SET row_count = %s, version = version + 1 "
                            "WHERE id = 1", (committed + rows,))
                if altered:
                    cur.execute("ALTER TABLE alumnos ENABLE TRIGGER USER")
            raw.commit()
            committed += rows
            if progress:
                progress(committed, stop)
    except BaseException as exc:
        # Closing the connection ends its open batch; a rollback on a connection the server
        # dropped would raise an error of its own and hide the cause.
        raw.invalidate()
        if isinstance(exc, DATABASE_ERRORS):
            raise _stopped(engine, exc, committed) from None
        raise
    finally:
        raw.close()


def _stopped(engine: Engine, exc: BaseException, committed: int) -> AlumnosError:
    """A load cut short by the database: its cause, and what the table kept."""
    return AlumnosError(f"seeding stopped: {_cause(exc)}",
                        f"the table keeps its {_rows_kept(engine, committed):,} committed rows; "
                        "run the same command again to resume")


def _rows_kept(engine: Engine, committed: int) -> int:
    """The committed row count as the table's bookkeeping says (a COMMIT cut off by a dropped
    connection may or may not have landed); what this process saw committed if it cannot say."""
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(seed_state.c.row_count)
                                    .where(seed_state.c.id == 1)).scalar_one())
    except SQLAlchemyError:
        return committed


def _produce(seed: int, start: int, stop: int, chunk_rows: int,
             out: ChunkQueue) -> None:
    """Producer process: generate COPY chunks as bytes; None ends the stream."""
    try:
        for rows, text_chunk in copy_chunks(seed, start, stop, chunk_rows):
            out.put((rows, text_chunk.encode()))
        out.put(None)
    except BaseException as exc:  # handed to the consumer, which re-raises it
        out.put(AlumnosError(f"row generation failed: {exc!r}"))


def _triggers_off_in_transaction(cur: DBAPICursor) -> bool:
    """Silence user triggers until commit: a session setting for superusers (no catalog change,
    no lock), else ALTER TABLE; True when the caller must re-enable them before commit."""
    try:
        cur.execute("SAVEPOINT replica")
        cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute("RELEASE SAVEPOINT replica")
        return False
    except psycopg2.errors.InsufficientPrivilege:
        cur.execute("ROLLBACK TO SAVEPOINT replica")
        cur.execute("ALTER TABLE alumnos DISABLE TRIGGER USER")
        return True


def _next_chunk(chunks: ChunkQueue, producer: multiprocessing.process.BaseProcess,
                ) -> Chunk | BaseException | None:
    """The next item from the producer, or an error if it died without saying why."""
    while True:
        try:
            return chunks.get(timeout=1.0)
        except queue.Empty:
            if not producer.is_alive():
                raise AlumnosError(f"the row generator process died (exit code "
                                   f"{producer.exitcode})",
                                   "committed batches are kept; run the same command again"
                                   ) from None


def _prefetched(seed: int, start: int, stop: int, chunk_rows: int,
                depth: int = 2) -> Iterator[tuple[int, bytes]]:
    """Generate chunks in another process while this one feeds COPY: the two overlap on two
    cores, where a thread would share the GIL with the copy loop (measured: no overlap).
    Forked, not spawned: a spawned child re-imports the whole CLI first (about 0.5 s)."""
    context = multiprocessing.get_context("fork")
    chunks = context.Queue(maxsize=depth)  # bounded: memory stays at depth chunks
    producer = context.Process(target=_produce, args=(seed, start, stop, chunk_rows, chunks),
                               name="alumnos-generator", daemon=True)
    producer.start()
    try:
        while (item := _next_chunk(chunks, producer)) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
        producer.join(timeout=10)
    finally:
        if producer.is_alive():
            producer.terminate()
            producer.join(timeout=5)
        chunks.close()
        chunks.join_thread()


def _analyze(url: str, count: int) -> None:
    engine = engine_for(url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("ANALYZE alumnos"))
    except SQLAlchemyError as exc:
        raise AlumnosError(f"the table is complete ({count:,} rows) but ANALYZE failed: "
                           f"{_cause(exc)}", "run the same command again to analyze it") from None
    finally:
        engine.dispose()


def invalidate_cache(redis_url: str, prefix: str = CACHE_PREFIX) -> bool:
    """Bump the cache generation; the caller waits PROPAGATION_SECONDS before reporting done."""
    client = redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)
    try:
        invalidate_all(client, prefix)
    except redis.RedisError:
        return False
    finally:
        client.close()
    return True


class _Digest:
    """A write-only file that hashes what COPY writes to it (copy_expert only calls write)."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return len(data)


def table_checksum(url: str) -> str:
    """SHA-256 of the table's rows in id order, as COPY writes them: equal means byte-identical."""
    engine = engine_for(url)
    raw = engine.raw_connection()
    digest = _Digest()
    try:
        with closing(raw.cursor()) as cur:
            cur.copy_expert(f"COPY (SELECT {', '.join(COLUMNS)} FROM alumnos ORDER BY id) "
                            "TO STDOUT", digest)
    except Exception as exc:
        raise AlumnosError(f"cannot read the alumnos table: {str(exc).strip()}",
                           "seed it first: alumnos seed") from None
    finally:
        raw.close()
        engine.dispose()
    return digest.hash.hexdigest()
