"""What `alumnos seed` is asked to do, checked before anything is touched."""

from __future__ import annotations

from alumnos_cli.errors import InvalidOption
from alumnos_cli.seed.generate import MAX_ROWS

DEFAULT_BATCH_ROWS = 50_000
MAX_BATCH_ROWS = 1_000_000
MAX_ROUNDS = 20


def validate_request(count: int, seed: int, batch_rows: int) -> None:
    """Refuse counts, seeds and batch sizes that make no sense, before touching anything."""
    if not 1 <= count <= MAX_ROWS:
        raise InvalidOption("--count", f"--count must be between 1 and {MAX_ROWS:,}, got "
                            f"{count:,}", "for example: alumnos seed --count 2000000")
    if seed < 0:
        raise InvalidOption("--seed", f"--seed must be zero or positive, got {seed}")
    if not 1 <= batch_rows <= MAX_BATCH_ROWS:
        raise InvalidOption("--batch-size", f"--batch-size must be between 1 and 1,000,000, "
                            f"got {batch_rows:,}")


def validate_reset(*, reset: bool, force: bool) -> None:
    """--force only widens --reset (to a table `alumnos seed` did not write); alone it is a slip."""
    if force and not reset:
        raise InvalidOption("--force", "--force only goes with --reset",
                            "--reset --force drops the alumnos table even when `alumnos seed` "
                            "did not write it")


def validate_rounds(rounds: int) -> None:
    """Refuse a --rounds the seed benchmark cannot run."""
    if not 1 <= rounds <= MAX_ROUNDS:
        raise InvalidOption("--rounds", f"--rounds must be between 1 and {MAX_ROUNDS}, got "
                            f"{rounds}")
