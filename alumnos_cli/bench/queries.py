"""Page queries per request, as PostgreSQL itself counted them (pg_stat_statements).

The page statements are read at both ends of the load's window; their change in calls and
execution time is the run's. Beside the service's own counter (alumnos_db_queries_total, read
from Prometheus), this proves what the cache saves: a warm cached run sends about no query
per request, an uncached one one. A server that does not load pg_stat_statements is told how
to, and the run goes on without the figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import make_url, text
from sqlalchemy.exc import SQLAlchemyError

from alumnos_cli.database import engine_for
from alumnos_service.db import PAGE_ORDER

_PRELOADED = text("SELECT 'pg_stat_statements' = ANY(string_to_array("
                  "replace(current_setting('shared_preload_libraries'), ' ', ''), ','))")
_CREATE = text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
# Every page statement of the service orders its page with PAGE_ORDER: how they are found.
_PAGE_STATEMENTS = text(
    "SELECT coalesce(sum(calls), 0), coalesce(sum(total_exec_time), 0) FROM "
    "pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
    "WHERE d.datname = current_database() AND s.query LIKE :marker")
HOW_TO_ENABLE = ("add shared_preload_libraries = 'pg_stat_statements' to its postgresql.conf "
                 "and restart it (the private cluster alumnos up starts, and the compose "
                 "stack's PostgreSQL, load it)")


class StatementsUnreadable(Exception):
    """pg_stat_statements cannot be read on this server; the message says how to enable it."""


@dataclass(frozen=True)
class PageStatements:
    """The page statements' calls and execution time so far, in the database they were
    counted in."""

    calls: int
    exec_ms: float
    database_url: str


def page_statements(database_url: str) -> PageStatements:
    """The page statements PostgreSQL has executed in the run's database so far."""
    engine = engine_for(database_url)
    where = make_url(database_url)
    shown = f"PostgreSQL at {where.host or 'localhost'}:{where.port or 5432}"
    try:
        with engine.connect() as conn:
            if not conn.execute(_PRELOADED).scalar_one():
                raise StatementsUnreadable(f"{shown} does not load pg_stat_statements: "
                                           f"{HOW_TO_ENABLE}")
            conn.execute(_CREATE)
            conn.commit()
            calls, exec_ms = conn.execute(_PAGE_STATEMENTS,
                                          {"marker": f"%{PAGE_ORDER}%"}).one()
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise StatementsUnreadable(f"{shown} cannot give pg_stat_statements ({reason}): create "
                                   "the extension as a superuser (CREATE EXTENSION "
                                   "pg_stat_statements)") from None
    finally:
        engine.dispose()
    return PageStatements(int(calls), float(exec_ms), database_url)


def start_counting(database_url: str | None) -> PageStatements | str:
    """The counts at the window's start, or why there will be none."""
    if database_url is None:
        return ("a stack alumnos up did not start (--url): its PostgreSQL is not ours to read, "
                "so no queries per request")
    try:
        return page_statements(database_url)
    except StatementsUnreadable as exc:
        return str(exc)


def queries_record(start: PageStatements | str) -> dict[str, Any]:
    """What meta.json says of the page queries over the window (its end read now)."""
    if isinstance(start, str):
        return {"missing": start}
    try:
        end = page_statements(start.database_url)
    except StatementsUnreadable as exc:
        return {"missing": str(exc)}
    if end.calls < start.calls:
        return {"missing": "pg_stat_statements was reset during the run"}
    return {"source": "pg_stat_statements", "page_queries": end.calls - start.calls,
            "exec_ms": round(end.exec_ms - start.exec_ms, 3)}
