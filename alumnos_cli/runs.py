"""Run folders: one per benchmark run, holding k6's summary and the run's metadata."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alumnos_cli.errors import RunFolderError

META_FILE = "meta.json"
SUMMARY_FILE = "summary.json"
K6_LOG_FILE = "k6.log"


def new_run_dir(results_dir: Path, scenario: str | None = None,
                now: datetime | None = None) -> Path:
    """A fresh folder named by UTC time (and scenario, when given), sortable by name."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    results_dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(100):
        name = stamp + (f"-{scenario}" if scenario else "") + (f"-{attempt}" if attempt else "")
        path = results_dir / name
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RunFolderError(f"cannot create a run folder in {results_dir}")


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON atomically, so a crash never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any]:
    """Read a run file, with an error naming the file when it is missing or corrupt."""
    if not path.exists():
        raise RunFolderError(f"{path} is missing",
                             "the run did not finish; run alumnos bench again")
    try:
        payload = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise RunFolderError(f"{path} is not valid JSON ({exc})",
                             "the file is corrupt; run alumnos bench again") from None
    if not isinstance(payload, dict):
        raise RunFolderError(f"{path} does not hold a JSON object")
    return payload


@dataclass(frozen=True)
class StoredRun:
    """A run folder's two documents."""

    path: Path
    meta: dict[str, Any]
    summary: dict[str, Any]
    calibration: dict[str, Any] | None = None  # k6 summary of the same load on the ceiling


def list_runs(results_dir: Path) -> list[Path]:
    """Run folders, oldest first."""
    if not results_dir.is_dir():
        return []
    return sorted(p for p in results_dir.iterdir() if p.is_dir() and (p / META_FILE).exists())


def resolve_run(results_dir: Path, name: str | None) -> Path:
    """A run folder by name or path, or the newest one."""
    if name:
        for candidate in (Path(name), results_dir / name):
            if candidate.is_dir():
                return candidate
        raise RunFolderError(f"no run folder named {name!r} in {results_dir}",
                             "alumnos report --list shows the stored runs")
    runs = list_runs(results_dir)
    if not runs:
        raise RunFolderError(f"no benchmark runs in {results_dir}",
                             "run alumnos bench first, or point --results-dir at your results")
    return runs[-1]


def load_run(path: Path) -> StoredRun:
    """Read a run folder, refusing one whose run failed or never finished."""
    meta = read_json(path / META_FILE)
    status = meta.get("status")
    if status != "finished":
        raise RunFolderError(f"run {path.name} has status {status!r}, not 'finished'",
                             f"see {path / K6_LOG_FILE}; run alumnos bench again")
    calibration = None
    if meta.get("calibration"):
        calibration = read_json(path / meta["calibration"]["folder"] / SUMMARY_FILE)
    return StoredRun(path=path, meta=meta, summary=read_json(path / SUMMARY_FILE),
                     calibration=calibration)
