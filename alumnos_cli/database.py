"""PostgreSQL plumbing shared by the commands: reachability, creation, facts for metadata."""

from __future__ import annotations

from psycopg2 import sql
from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError

from alumnos_cli.errors import AlumnosError, ServiceUnreachable
from alumnos_cli.settings import mask_password
from alumnos_service.db import driver_url

CONNECT_TIMEOUT_SECONDS = 3


def engine_for(url: str | URL) -> Engine:
    """An engine with a short connect timeout, so an unreachable server fails fast."""
    return create_engine(driver_url(url), connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS})


def unreachable(url: str, exc: Exception) -> ServiceUnreachable:
    """The one error for a PostgreSQL that does not answer."""
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    return ServiceUnreachable(
        f"PostgreSQL at {mask_password(url)} is unreachable: {reason}",
        "start PostgreSQL, or point ALUMNOS_DATABASE_URL / --database-url at a running server",
    )


def ensure_database(url: str) -> None:
    """Create the database named in url when it does not exist yet."""
    target = make_url(url)
    maintenance = engine_for(target.set(database="postgres")).execution_options(
        isolation_level="AUTOCOMMIT"
    )
    try:
        with maintenance.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": target.database},
            ).scalar()
            if not exists:
                conn.exec_driver_sql(f"CREATE DATABASE {quoted(conn, target.database or '')}")
    except OperationalError as exc:
        raise unreachable(url, exc) from None
    except ProgrammingError as exc:
        raise ServiceUnreachable(
            f"cannot create database {target.database!r}: {str(exc.orig).strip()}",
            "create it yourself or use a role with CREATEDB",
        ) from None
    finally:
        maintenance.dispose()


def quoted(conn: Connection, name: str) -> str:
    """An identifier quoted by the driver itself (a name may hold quotes, never SQL)."""
    raw = conn.connection.dbapi_connection
    return sql.Identifier(name).as_string(raw)  # type: ignore[arg-type]


def create_database(admin_url: str, name: str) -> None:
    """Create a new database; refuse (never reuse) one that already exists."""
    engine = engine_for(make_url(admin_url).set(database="postgres")).execution_options(
        isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                            {"name": name}).scalar():
                raise AlumnosError(f"a database named {name!r} already exists, and this "
                                   "command only works in one it creates",
                                   "run it again (it picks another name), or drop that one")
            conn.exec_driver_sql(f"CREATE DATABASE {quoted(conn, name)}")
    finally:
        engine.dispose()


def drop_database(admin_url: str, name: str) -> None:
    """Drop a database this run created (its sessions ended first)."""
    engine = engine_for(make_url(admin_url).set(database="postgres")).execution_options(
        isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted(conn, name)} WITH (FORCE)")
    finally:
        engine.dispose()


def _ask(url: str, sql: str) -> object | None:
    """The single value sql returns, or None when the server, database or table is missing."""
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            value: object = conn.execute(text(sql)).scalar_one()
            return value
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()


def is_reachable(url: str) -> bool:
    """True when a connection to url succeeds now."""
    return _ask(url, "SELECT 1") == 1


def server_reachable(url: str) -> bool:
    """True when the server answers, even if the database in url does not exist yet."""
    maintenance = make_url(url).set(database="postgres").render_as_string(hide_password=False)
    return is_reachable(url) or is_reachable(maintenance)


def server_version(url: str) -> str | None:
    """PostgreSQL's version string, or None when it does not answer."""
    version = _ask(url, "SHOW server_version")
    return None if version is None else str(version)


def row_count(url: str) -> int | None:
    """Rows in the alumnos table (exact), or None when the table or server is missing."""
    count = _ask(url, "SELECT count(*) FROM alumnos")
    return count if isinstance(count, int) else None
