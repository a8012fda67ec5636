"""JSON files the toolkit writes and reads back: written whole or not at all."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alumnos_cli.errors import RunFolderError


def write_json(path: Path, payload: Mapping[str, Any] | list[Any], *,
               mode: int | None = None) -> None:
    """Write JSON atomically: a reader (or a crash) never sees half a file."""
    write_text(path, json.dumps(payload, indent=2) + "\n", mode=mode)


def write_text(path: Path, text: str, *, mode: int | None = None) -> None:
    """Write text atomically: a temporary file in the same folder, then os.replace.

    Replacing the name never follows a link planted at `path`. The file gets `mode`, or
    what a plain open() would give under the process's umask.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.chmod(tmp, _default_mode() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object, with an error naming the file when it is missing or corrupt."""
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


def _default_mode() -> int:
    """0666 less the umask, as open() would create the file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
