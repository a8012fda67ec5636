"""Room on disk for a seed, checked before a single row is written.

Only a server whose data directory is on this machine can be checked: its postmaster.pid,
found where the server says its data lives, must name the port alumnos connects to. That takes
a role allowed to read the setting (a superuser, or pg_read_all_settings) and an OS user who may
read the folder (root, or the server's own); others, and servers of a container or another
host, are seeded without the check.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, make_url, text
from sqlalchemy.exc import SQLAlchemyError

from alumnos_cli.errors import AlumnosError
from alumnos_service.schema import alumnos

# Measured on 2,000,000 seeded rows: 415 bytes a row in the table (146 of them the fields,
# the rest the row's stored JSON), 143 in its four indexes.
TABLE_BYTES_PER_ROW = 415
INDEX_BYTES_PER_ROW = 143
# The write-ahead log a load leaves between checkpoints: about the rows themselves, up to
# max_wal_size (1 GB by default), after which PostgreSQL recycles it.
WAL_BYTES_AT_MOST = 1 << 30
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}


@dataclass(frozen=True)
class Space:
    """Bytes a seed needs where the server keeps its data, and bytes free there."""

    where: Path
    needed: int
    free: int


def bytes_needed(rows_to_load: int, rows_after: int) -> int:
    """The new rows with their share of the indexes, the index rebuild's sort over every row,
    and the write-ahead log of the load."""
    return (rows_to_load * (TABLE_BYTES_PER_ROW + INDEX_BYTES_PER_ROW)
            + rows_after * INDEX_BYTES_PER_ROW
            + min(WAL_BYTES_AT_MOST, rows_to_load * TABLE_BYTES_PER_ROW))


def local_data_directory(conn: Connection, url: str) -> Path | None:
    """The server's data directory when it is on this machine (its postmaster.pid names the
    URL's port), else None."""
    parsed = make_url(url)
    host = parsed.host or str(parsed.query.get("host") or "")
    if host not in _LOCAL_HOSTS and not host.startswith("/"):
        return None
    try:
        # In a savepoint: the seed's own transaction goes on when the server says no.
        with conn.begin_nested():
            found = conn.execute(text("SELECT current_setting('data_directory')")).scalar_one()
    except SQLAlchemyError:  # not allowed to read it (neither superuser nor pg_read_all_settings)
        return None
    where = Path(str(found))
    try:
        lines = (where / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    return where if len(lines) > 3 and lines[3].strip() == str(parsed.port or 5432) else None


def table_bytes(conn: Connection) -> int:
    """What the alumnos table and its indexes take on disk now (0 when there is none): the
    room a --reset gives back once its transaction commits."""
    size = conn.execute(text(
        f"SELECT coalesce(pg_total_relation_size(to_regclass('{alumnos.name}')), 0)"))
    return int(size.scalar_one())


def check_room(conn: Connection, url: str, *, rows_to_load: int, rows_after: int,
               freed: int = 0) -> None:
    """Refuse, naming the space needed, when the server's disk cannot hold the seed; `freed`
    is what the same transaction dropped (still on disk until it commits)."""
    if rows_to_load <= 0:
        return
    where = local_data_directory(conn, url)
    if where is None:
        return
    space = Space(where, bytes_needed(rows_to_load, rows_after),
                  shutil.disk_usage(where).free + freed)
    if space.free < space.needed:
        raise AlumnosError(
            f"not enough free disk for {rows_to_load:,} more alumnos: about "
            f"{_gib(space.needed)} needed in {space.where}, {_gib(space.free)} free",
            "free space there, or seed fewer rows (--count); nothing was changed")


def _gib(size: int) -> str:
    return f"{size / 2**30:,.1f} GiB"
