"""The database's own ceiling for the service's page statement, measured in the same session.

`bench --calibrate` runs it after the ping load: pgbench sends the statement the service
prepares (alumnos_service.db.page_sql) with a random first id per call, prepared (the page's
limit and skip written in) and planned once as the service's is, from as many clients as the
default service has database threads (2 workers x 4). The report then says what share of it
the run reached.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import make_url, text
from sqlalchemy.exc import SQLAlchemyError

from alumnos_cli.database import engine_for
from alumnos_cli.report.attribution import DatabaseCeiling
from alumnos_service.db import PLAN_OPTION, STORED_JSON_SQL, page_sql
from alumnos_service.params import DEFAULT_LIMIT

CLIENTS = 8
SECONDS = 10
_SCRIPT = "page.sql"
_TPS = re.compile(r"^tps = ([0-9.]+)", re.MULTILINE)
_ID_RANGE = text(f"SELECT min(id), max(id), {STORED_JSON_SQL} FROM alumnos")
INSTALL_HINT = "install PostgreSQL's client tools (Debian: apt-get install postgresql-client)"


def find_pgbench() -> Path | None:
    """pgbench on PATH, else the newest PostgreSQL's own."""
    found = shutil.which("pgbench")
    if found:
        return Path(found)
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"),
                      key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    return versions[-1] if versions else None


def page_script(first_id: int, last_id: int, limit: int = DEFAULT_LIMIT, *,
                stored_json: bool = True) -> str:
    """pgbench's script: the service's page statement from a random id, no rows skipped (the
    one it runs on this table: joining stored JSON, or rendering on an older alumnos's)."""
    statement = (page_sql(stored_json=stored_json).replace("$1", ":start")
                 .replace("$2", "0").replace("$3", str(limit)))
    return f"\\set start random({first_id}, {last_id})\n{statement};\n"


def database_ceiling_record(database_url: str | None, folder: Path, *,
                            clients: int = CLIENTS, seconds: int = SECONDS) -> dict[str, Any]:
    """meta.json's calibration.database: the ceiling, or why it was not measured."""
    if database_url is None:
        return {"missing": "no database is known for this target (bench --url names only "
                           "the service)"}
    pgbench = find_pgbench()
    if pgbench is None:
        return {"missing": f"pgbench was not found: {INSTALL_HINT}"}
    try:
        first, last, stored_json = _table_range(database_url)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return {"missing": f"the alumnos table could not be read: {reason}"}
    if first is None:
        return {"missing": "the alumnos table is empty: seed it first (alumnos seed)"}
    script = folder / _SCRIPT
    script.write_text(page_script(first, last, stored_json=stored_json))
    try:
        # No terminal and no input: a server that wants a password the URL lacks fails fast
        # instead of pgbench asking for one.
        done = subprocess.run(_command(pgbench, database_url, script, clients, seconds),
                              env=_environment(database_url), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, start_new_session=True,
                              timeout=seconds + 30, check=False)
    except subprocess.TimeoutExpired:
        return {"missing": f"pgbench did not finish within {seconds + 30} s"}
    except OSError as exc:
        return {"missing": f"pgbench could not run: {exc}"}
    (folder / "pgbench.log").write_text(done.stdout + done.stderr)
    found = _TPS.search(done.stdout)
    if done.returncode != 0 or found is None:
        last_line = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"missing": f"pgbench failed (exit {done.returncode}): {last_line}"}
    ceiling = DatabaseCeiling(queries_per_second=float(found.group(1)), clients=clients,
                              seconds=seconds, limit=DEFAULT_LIMIT)
    return {k: v for k, v in asdict(ceiling).items() if k != "missing"}


def _table_range(database_url: str) -> tuple[int | None, int, bool]:
    """The table's first and last ids, and whether it stores each row's JSON."""
    engine = engine_for(database_url)
    try:
        with engine.connect() as conn:
            first, last, stored_json = conn.execute(_ID_RANGE).one()
    finally:
        engine.dispose()
    return (None, 0, False) if first is None else (int(first), int(last), bool(stored_json))


def _command(pgbench: Path, database_url: str, script: Path, clients: int,
             seconds: int) -> list[str]:
    """pgbench on the database the service uses: the URL itself (libpq reads it as the
    service's driver does: host or socket, port, user, options), its password left out."""
    # URL is a named tuple: _replace is its public way to drop a field (set() ignores None).
    target = make_url(database_url)._replace(drivername="postgresql", password=None)
    return [str(pgbench), "--no-vacuum", "--protocol=prepared", f"--client={clients}",
            f"--jobs={min(clients, os.cpu_count() or 1)}", f"--time={seconds}",
            f"--file={script}", target.render_as_string(hide_password=False)]


def _environment(database_url: str) -> dict[str, str]:
    """The password through the environment, never on a command line anyone can list."""
    # A statement held up by a lock (a seed under way) ends in seconds, not at the timeout.
    env = dict(os.environ, PGOPTIONS=f"{PLAN_OPTION} -c statement_timeout=3000",
               PGCONNECT_TIMEOUT="3")
    password = make_url(database_url).password
    if password:
        env["PGPASSWORD"] = str(password)
    return env
