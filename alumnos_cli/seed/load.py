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

import psycopg2.errors
import redis
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from alumnos_cli.database import engine_for, ensure_database, unreachable
from alumnos_cli.errors import AlumnosError
from alumnos_cli.seed.generate import copy_chunks
from alumnos_cli.seed.request import DEFAULT_BATCH_ROWS, validate_request
from alumnos_cli.settings import Settings
from alumnos_service.cache import PROPAGATION_SECONDS, invalidate_all
from alumnos_service.config import DEFAULTS as SERVICE_DEFAULTS
from alumnos_service.schema import COLUMNS, UNIQUE_INDEXES, alumnos, metadata, seed_state

PRIMARY_KEY = "alumnos_pkey"
CACHE_PREFIX = str(SERVICE_DEFAULTS["CACHE_PREFIX"])
COPY_SQL = f"COPY {alumnos.name} ({', '.join(COLUMNS)}) FROM STDIN"

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

    @property
    def rows_loaded(self) -> int:
        return self.rows_after - self.rows_before

    @property
    def rows_per_second(self) -> float:
        return self.rows_loaded / self.seconds if self.seconds > 0 else 0.0


def seed_alumnos(settings: Settings, *, count: int, seed: int = 0, reset: bool = False,
                 batch_rows: int = DEFAULT_BATCH_ROWS, progress: Progress | None = None,
                 cache_prefix: str = CACHE_PREFIX) -> SeedResult:
    """Make the alumnos table hold exactly `count` generated rows for `seed`."""
    validate_request(count, seed, batch_rows)
    ensure_database(settings.database_url)
    started = time.perf_counter()
    engine = engine_for(settings.database_url)
    try:
        with engine.begin() as conn:
            before = _prepare(conn, count=count, seed=seed, reset=reset)
        if progress:
            progress(before, count)
        if before < count:
            _load(engine, seed=seed, start=before, stop=count, batch_rows=batch_rows,
                  progress=progress)
        with engine.begin() as conn:
            _finish(conn)
    except OperationalError as exc:
        raise unreachable(settings.database_url, exc) from None
    except SQLAlchemyError as exc:
        raise AlumnosError(f"seeding failed: {str(getattr(exc, 'orig', exc)).strip()}",
                           "nothing was marked complete; run the same command again to resume"
                           ) from None
    finally:
        engine.dispose()
    # ANALYZE (outside any transaction) gives the service's first queries good plans.
    # The data is final: bump the generation now, and let ANALYZE use up part of the wait
    # after which no worker still holds the old generation (see service/cache.py).
    bumped_at = time.monotonic()
    invalidated = invalidate_cache(settings.redis_url, cache_prefix)
    _analyze(settings.database_url)
    if invalidated:
        time.sleep(max(0.0, PROPAGATION_SECONDS - (time.monotonic() - bumped_at)))
    return SeedResult(before, count, time.perf_counter() - started, invalidated)


def _prepare(conn: Connection, *, count: int, seed: int, reset: bool) -> int:
    """Create or reset the tables, check the request against what is there; rows present."""
    if reset:
        seed_state.drop(conn, checkfirst=True)
        alumnos.drop(conn, checkfirst=True)
    metadata.create_all(conn, tables=[alumnos, seed_state])
    _check_schema_is_current(conn)
    state = conn.execute(select(seed_state).where(seed_state.c.id == 1)).mappings().first()
    present = int(conn.execute(text("SELECT count(*) FROM alumnos")).scalar_one())
    if state is None and present:
        raise AlumnosError("the alumnos table holds rows that `alumnos seed` did not write",
                           "add --reset to drop them and seed from scratch")
    if state is not None and int(state["seed"]) != seed:
        raise AlumnosError(f"the table was seeded with --seed {state['seed']}, not {seed}",
                           f"use --seed {state['seed']} to resume or grow it, or add --reset")
    if count < present:
        raise AlumnosError(f"the table already holds {present:,} rows, more than --count {count:,}",
                           "add --reset to reload it with fewer rows")
    if present < count:
        # The primary key and unique indexes are rebuilt after the load: measured on 1M rows,
        # maintaining the key alone during COPY cost 0.5 s, building it afterwards 0.3 s.
        conn.execute(text(f"ALTER TABLE alumnos DROP CONSTRAINT IF EXISTS {PRIMARY_KEY}"))
        for index in UNIQUE_INDEXES:
            index.drop(conn, checkfirst=True)
    values = {"seed": seed, "target_count": count, "row_count": present,
              "status": "complete" if present == count else "loading"}
    if state is None:
        conn.execute(seed_state.insert().values(id=1, **values))
    else:
        conn.execute(seed_state.update().where(seed_state.c.id == 1).values(**values))
    return present


def _check_schema_is_current(conn: Connection) -> None:
    """Refuse tables left by an older alumnos (no write-tracking triggers)."""
    triggers = conn.execute(text(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'alumnos'::regclass "
        "AND tgname LIKE 'alumnos_track_%'")).scalar_one()
    columns = {c["name"] for c in sa_inspect(conn).get_columns(seed_state.name)}
    if triggers != 4 or not {"row_count", "version"} <= columns:
        raise AlumnosError("the alumnos table was created by an older alumnos",
                           "add --reset to recreate it")


def _load(engine: Engine, *, seed: int, start: int, stop: int, batch_rows: int,
          progress: Progress | None) -> None:
    """COPY rows start+1..stop, one transaction per batch, generation overlapping the COPY."""
    loaded = start
    raw = engine.raw_connection()
    try:
        for rows, chunk in _prefetched(seed, start, stop, batch_rows):
            with closing(raw.cursor()) as cur:
                # The write-tracking triggers copy every row into a transition table; for our
                # own batches the count is known, so they are off inside this transaction only.
                altered = _triggers_off_in_transaction(cur)
                cur.copy_expert(COPY_SQL, io.BytesIO(chunk), size=1 << 20)
                loaded += rows
                cur.execute("UPDATE alumnos_seed_state SET row_count = %s, version = version + 1 "
                            "WHERE id = 1", (loaded,))
                if altered:
                    cur.execute("ALTER TABLE alumnos ENABLE TRIGGER USER")
            raw.commit()
            if progress:
                progress(loaded, stop)
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()


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


def _finish(conn: Connection) -> None:
    """Build the primary key and unique indexes, and mark the table complete."""
    has_key = conn.execute(text("SELECT 1 FROM pg_constraint WHERE conname = :name"),
                           {"name": PRIMARY_KEY}).scalar()
    if not has_key:
        conn.execute(text(f"ALTER TABLE alumnos ADD CONSTRAINT {PRIMARY_KEY} PRIMARY KEY (id)"))
    for index in UNIQUE_INDEXES:
        index.create(conn, checkfirst=True)
    conn.execute(seed_state.update().where(seed_state.c.id == 1).values(status="complete"))


def _analyze(url: str) -> None:
    engine = engine_for(url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("ANALYZE alumnos"))
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
