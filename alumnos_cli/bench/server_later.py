"""A run's server side read after the run: `alumnos report RUN --prometheus URL`.

`bench` reads the server side right after the load. A run against a stack someone else runs,
bench without `--prometheus`, or a Prometheus that did not answer then, leaves the run without
it; meta.json keeps the load's window, the run's database and the stack's series, so the same
window can be read later from a Prometheus that still holds it, and kept in the run folder as
if bench had read it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from alumnos_cli.bench.server_prometheus import (
    ServerScope,
    Window,
    record_server_side,
    scraped_by,
)
from alumnos_cli.errors import AlumnosError
from alumnos_cli.files import read_json, write_json
from alumnos_cli.runfolder import META_FILE, PROMETHEUS_FILE, SERVER_FILE


def read_server_side_later(base: str, run_dir: Path) -> str | None:
    """Read the run's load window from the Prometheus at `base` into the run folder and say so
    in meta.json: None once read, else what could not be read (the run folder unchanged)."""
    meta = read_json(run_dir / META_FILE)
    recorded: dict[str, Any] = meta.get("server_side") or {}
    if (run_dir / SERVER_FILE).exists():
        when = "later" if recorded.get("read_by") == "report" else "during the run"
        raise AlumnosError(f"run {run_dir.name} already has its server side, read from "
                           f"{recorded.get('url') or 'Prometheus'} {when}",
                           "report it without --prometheus")
    window = recorded.get("window")
    if not isinstance(window, dict):
        raise AlumnosError(f"run {run_dir.name} does not say when its load ran (it was "
                           "recorded before runs kept their load's window, or stopped before "
                           "its load)", "bench again, with --prometheus URL to read it then")
    scope = recorded.get("scope") or {}
    # Read into a folder of its own: the run's files change only once everything was read.
    with tempfile.TemporaryDirectory(dir=run_dir, prefix=".server-side.") as scratch:
        read = record_server_side(
            base, Window(float(window["start"]), float(window["end"])), recorded.get("database"),
            Path(scratch), "", ServerScope(**scope) if scope else None, settle=scraped_by)
        if not (Path(scratch) / SERVER_FILE).exists():
            return str(read["missing"])
        for name in (PROMETHEUS_FILE, SERVER_FILE):
            os.replace(Path(scratch) / name, run_dir / name)
    write_json(run_dir / META_FILE, {**meta, "server_side": {**read, "read_by": "report"}})
    return None
