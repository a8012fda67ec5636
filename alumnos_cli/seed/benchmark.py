"""The seeder against its floor: PostgreSQL copying the same rows from a file and indexing them."""

from __future__ import annotations

import resource
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import make_url, text

from alumnos_cli.database import create_database, drop_database, engine_for
from alumnos_cli.seed.generate import copy_chunks
from alumnos_cli.seed.load import COPY_SQL, seed_alumnos
from alumnos_cli.seed.request import DEFAULT_BATCH_ROWS, validate_request, validate_rounds
from alumnos_cli.seed.table import PRIMARY_KEY
from alumnos_cli.settings import Settings
from alumnos_service.schema import UNIQUE_INDEXES

Phase = Callable[[str], None]


@dataclass(frozen=True)
class SeedBenchmark:
    """Wall times of each round, seed then floor, and the peak memory."""

    count: int
    seed_seconds: tuple[float, ...]
    floor_copy_seconds: tuple[float, ...]
    floor_index_seconds: tuple[float, ...]
    peak_rss_mib: float
    generator_peak_rss_mib: float

    @property
    def floor_seconds(self) -> tuple[float, ...]:
        """COPY plus indexes, per round."""
        return tuple(c + i for c, i in zip(self.floor_copy_seconds, self.floor_index_seconds,
                                           strict=True))

    @property
    def ratios(self) -> tuple[float, ...]:
        """Seed over floor in each round (the two run back to back)."""
        return tuple(s / f for s, f in zip(self.seed_seconds, self.floor_seconds, strict=True))

    @property
    def ratio(self) -> float:
        """The median round's ratio: 1.0 would be PostgreSQL's own speed."""
        return statistics.median(self.ratios)


# PostgreSQL cuts longer names to this many bytes: a longer scratch name could be yours.
MAX_NAME_BYTES = 63
SCRATCH_MARK = "_seedbench_"


def scratch_url(url: str) -> str:
    """A new throw-away database beside the configured one, never its name: the configured
    name cut so that a random suffix fits in PostgreSQL's 63 bytes."""
    parsed = make_url(url)
    suffix = f"{SCRATCH_MARK}{secrets.token_hex(4)}"
    base = (parsed.database or "alumnos").encode()[:MAX_NAME_BYTES - len(suffix)]
    name = base.decode(errors="ignore") + suffix
    return parsed.set(database=name).render_as_string(hide_password=False)


def benchmark_seed(settings: Settings, *, count: int, seed: int = 0, rounds: int = 1,
                   phase: Phase | None = None) -> SeedBenchmark:
    """Time `alumnos seed --reset` and then the floor on the same rows, `rounds` times, in a
    scratch database; on a shared machine the median round says more than any single one."""
    validate_request(count, seed, DEFAULT_BATCH_ROWS)
    validate_rounds(rounds)
    say = phase or (lambda _message: None)
    scratch = settings.with_database_url(scratch_url(settings.database_url))
    scratch_name = make_url(scratch.database_url).database or ""
    # Created here or refused: the benchmark drops only the database it made.
    create_database(settings.database_url, scratch_name)
    seeds, copies, indexes = [], [], []
    try:
        with tempfile.TemporaryDirectory() as folder:
            rows = Path(folder) / "alumnos.tsv"
            say("writing the rows to a file for the floor (not timed)")
            with rows.open("w") as out:
                for _, chunk in copy_chunks(seed, 0, count, 50_000):
                    out.write(chunk)
            for round_number in range(1, rounds + 1):
                say(f"round {round_number}/{rounds}: alumnos seed --reset, {count:,} rows")
                started = time.perf_counter()
                seed_alumnos(scratch, count=count, seed=seed, reset=True,
                             cache_prefix="alumnos_bench")
                seeds.append(time.perf_counter() - started)
                say(f"round {round_number}/{rounds}: floor, COPY from the file + the same "
                    "key and unique indexes")
                copy_seconds, index_seconds = _floor(scratch.database_url, rows)
                copies.append(copy_seconds)
                indexes.append(index_seconds)
    finally:
        drop_database(settings.database_url, scratch_name)
    return SeedBenchmark(count=count, seed_seconds=tuple(seeds),
                         floor_copy_seconds=tuple(copies), floor_index_seconds=tuple(indexes),
                         peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                         generator_peak_rss_mib=resource.getrusage(
                             resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


def _floor(url: str, rows: Path) -> tuple[float, float]:
    """COPY seconds and index-building seconds into a bare table shaped like alumnos."""
    engine = engine_for(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alumnos_floor"))
            # Same columns, types and collations, and the stored JSON PostgreSQL renders as
            # each row comes in (part of the table, so part of the floor); no key, index or
            # trigger.
            conn.execute(text("CREATE TABLE alumnos_floor (LIKE alumnos INCLUDING GENERATED)"))
        raw = engine.raw_connection()
        try:
            started = time.perf_counter()
            with closing(raw.cursor()) as cur, rows.open("rb") as source:
                cur.copy_expert(COPY_SQL.replace("COPY alumnos", "COPY alumnos_floor"),
                                source, size=1 << 20)
            raw.commit()
            copied = time.perf_counter()
            with closing(raw.cursor()) as cur:
                cur.execute(f"ALTER TABLE alumnos_floor ADD CONSTRAINT {PRIMARY_KEY}_floor "
                            "PRIMARY KEY (id)")
                for index in UNIQUE_INDEXES:
                    column = next(iter(index.columns)).name
                    cur.execute(f"CREATE UNIQUE INDEX {index.name}_floor "
                                f"ON alumnos_floor ({column})")
            raw.commit()
            indexed = time.perf_counter()
        finally:
            raw.close()
        return copied - started, indexed - copied
    finally:
        engine.dispose()
