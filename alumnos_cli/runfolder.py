"""The run folder: one per benchmark run, written by `bench` and `patterns`, read by `report`.

This module owns the layout (file names, folder names, where proofs go); what each file holds
is written by the bench package and read into a typed report by the report package.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alumnos_cli.errors import RunFolderError

META_FILE = "meta.json"
SUMMARY_FILE = "summary.json"
K6_LOG_FILE = "k6.log"
SERVER_FILE = "server.json"
PROMETHEUS_FILE = "prometheus.json"  # what bench read from Prometheus for the load's window
BREAKDOWN_FILE = "breakdown.json"  # per endpoint, status and error type, from k6's copy there
TIMESERIES_FILE = "timeseries.ndjson.gz"
CALIBRATION_DIR = "calibration"  # the same load on the ping endpoint, inside the run folder
PROOFS_DIR = "patterns"  # `alumnos patterns` results, under the results folder
PROOF_FILE = "patterns.json"
HTML_REPORT_FILE = "report.html"
GENERATORS_DIR = "generators"  # a split run's hosts, one folder each (bench --generator)
K6_REPORT_FILE = "k6-report.html"  # k6's own web-dashboard report, beside ours
SWEEP_FILE = "sweep.json"  # a sweep's folder (bench --sweep): its levels and their runs


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


def proof_files(results_dir: Path) -> list[Path]:
    """Saved `alumnos patterns` results, oldest first."""
    root = results_dir / PROOFS_DIR
    return sorted(root.glob(f"*/{PROOF_FILE}")) if root.is_dir() else []
