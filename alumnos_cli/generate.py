"""Deterministic fake alumnos: row n depends only on (seed, n), never on batch size."""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from faker import Faker

# Rows are generated in fixed blocks, each from its own RNG seeded by (seed, block), so that any
# row can be regenerated without the rows before it: the key to resuming and to batch-size
# independence.
BLOCK_ROWS = 10_000
POOL_SIZE = 4_000

# Uniqueness without look-ups: n -> (a*n + b) mod M is a bijection of [0, M) when gcd(a, M) = 1.
DOCUMENT_BASE, DOCUMENT_SPACE = 10_000_000, 90_000_000  # DNI-like, 8 digits
DOCUMENT_A, DOCUMENT_B = 48_271, 7_340_033
LEGAJO_BASE, LEGAJO_SPACE = 100_000_000, 900_000_000
LEGAJO_A, LEGAJO_B = 69_621, 123_457
MAX_ROWS = DOCUMENT_SPACE

# A fixed reference day keeps the data identical whatever day it is generated on.
REFERENCE_DAY = date(2026, 3, 1).toordinal()
DAYS_PER_YEAR = 365.2425
MIN_AGE, MAX_AGE = 17, 60
EMAIL_DOMAIN = "alumnos.universidad.edu.ar"


@dataclass(frozen=True)
class NamePools:
    """Names drawn once from Faker es_AR (keeping its frequencies), then picked per row."""

    male: tuple[tuple[str, str], ...]  # (display name, ascii slug for the e-mail)
    female: tuple[tuple[str, str], ...]
    surnames: tuple[tuple[str, str], ...]


def ascii_slug(text: str) -> str:
    """'Peña Núñez' -> 'penanunez', for e-mail addresses."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain.lower() if ch.isalnum())


def name_pools(seed: int) -> NamePools:
    """Sample first names by sex and surnames from Faker es_AR, deterministically."""
    fake = Faker("es_AR")
    fake.seed_instance(seed)

    def pool(draw: object) -> tuple[tuple[str, str], ...]:
        names = [" ".join(draw().split()) for _ in range(POOL_SIZE)]  # type: ignore[operator]
        return tuple((name, ascii_slug(name)) for name in names)

    return NamePools(
        male=pool(fake.first_name_male),
        female=pool(fake.first_name_female),
        surnames=pool(fake.last_name),
    )


def document_number(n: int) -> int:
    """A unique DNI-like number for row n (0-based)."""
    return DOCUMENT_BASE + (DOCUMENT_A * n + DOCUMENT_B) % DOCUMENT_SPACE


def legajo_number(n: int) -> int:
    """A unique file number for row n (0-based)."""
    return LEGAJO_BASE + (LEGAJO_A * n + LEGAJO_B) % LEGAJO_SPACE


def block_lines(seed: int, block: int, pools: NamePools) -> list[str]:
    """The COPY text lines of one block of rows, ids block*BLOCK_ROWS+1 onwards."""
    rng = random.Random(f"alumnos:{seed}:{block}")
    lines = []
    first_id = block * BLOCK_ROWS + 1
    youngest = REFERENCE_DAY - int(MIN_AGE * DAYS_PER_YEAR)
    age_span = int((MAX_AGE - MIN_AGE) * DAYS_PER_YEAR)
    adult_offset = int(MIN_AGE * DAYS_PER_YEAR)
    for row_id in range(first_id, first_id + BLOCK_ROWS):
        n = row_id - 1
        female = rng.random() < 0.52
        nombre, nombre_slug = rng.choice(pools.female if female else pools.male)
        apellido, apellido_slug = rng.choice(pools.surnames)
        born = youngest - rng.randrange(age_span)
        adult = born + adult_offset
        admitted = adult + rng.randrange(REFERENCE_DAY - adult + 1)
        tipo = "DNI" if rng.random() < 0.97 else "PAS"
        email = f"{nombre_slug}.{apellido_slug}.{row_id}@{EMAIL_DOMAIN}"
        lines.append(
            f"{row_id}\t{apellido}\t{nombre}\t{document_number(n)}\t{tipo}\t"
            f"{date.fromordinal(born).isoformat()}\t{'F' if female else 'M'}\t"
            f"{legajo_number(n)}\t{date.fromordinal(admitted).isoformat()}\t{email}\n"
        )
    return lines


def copy_chunks(seed: int, start: int, stop: int, chunk_rows: int) -> Iterator[tuple[int, str]]:
    """COPY text for rows with ids start+1..stop, in chunks of chunk_rows: (rows, text)."""
    pools = name_pools(seed)
    pending: list[str] = []
    row = start
    while row < stop:
        block, skip = divmod(row, BLOCK_ROWS)
        lines = block_lines(seed, block, pools)[skip:]
        lines = lines[: stop - row]
        row += len(lines)
        pending.extend(lines)
        while len(pending) >= chunk_rows or (row >= stop and pending):
            chunk, pending = pending[:chunk_rows], pending[chunk_rows:]
            yield len(chunk), "".join(chunk)
