"""The checked-in sample runs, copies of them with a changed meta.json or grouped as repeats,
and the golden files their renderings are held to."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

RUNS = Path(__file__).parent / "data" / "runs"
GOLDEN = Path(__file__).parent / "data" / "golden"


def run_with_meta(into: Path, name: str, change: Callable[[dict[str, Any]], None]) -> str:
    """Copy the sample run `name` into `into`, its meta.json changed in place by `change`;
    returns the run's name."""
    shutil.copytree(RUNS / name, into / name)
    meta_path = into / name / "meta.json"
    meta = json.loads(meta_path.read_text())
    change(meta)
    meta_path.write_text(json.dumps(meta))
    return name


def copy_as_group(into: Path, source: str, names: list[str], scale: float) -> None:
    """Copies of the sample run `source`, one per name, as one --repeat group; each run's
    throughput is the sample's times `scale`, and 1% more per run, so repeats differ."""
    for index, name in enumerate(names, start=1):
        run = into / name
        shutil.copytree(RUNS / source, run)
        meta = json.loads((run / "meta.json").read_text())
        meta["repeat"] = {"group": names[0], "index": index, "of": len(names)}
        (run / "meta.json").write_text(json.dumps(meta))
        summary = json.loads((run / "summary.json").read_text())
        summary["metrics"]["http_reqs"]["values"]["rate"] *= scale * (1 + index / 100)
        (run / "summary.json").write_text(json.dumps(summary))


def golden(name: str, text: str) -> None:
    """`text` must be the golden file `name`; ALUMNOS_UPDATE_GOLDEN=1 rewrites it instead."""
    path = GOLDEN / name
    if os.environ.get("ALUMNOS_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden file {path}: run with ALUMNOS_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name} changed; review, then ALUMNOS_UPDATE_GOLDEN=1"
