"""The checked-in sample runs, and copies of them with a changed meta.json."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

RUNS = Path(__file__).parent / "data" / "runs"


def run_with_meta(into: Path, name: str, change: Callable[[dict[str, Any]], None]) -> str:
    """Copy the sample run `name` into `into`, its meta.json changed in place by `change`;
    returns the run's name."""
    shutil.copytree(RUNS / name, into / name)
    meta_path = into / name / "meta.json"
    meta = json.loads(meta_path.read_text())
    change(meta)
    meta_path.write_text(json.dumps(meta))
    return name
