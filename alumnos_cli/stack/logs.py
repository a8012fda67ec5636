"""`alumnos logs`: where each component's log is, and reading its end or what is new."""

from __future__ import annotations

import os
from pathlib import Path

from alumnos_cli.settings import Settings
from alumnos_cli.stack.state import load_state


def log_files(settings: Settings) -> dict[str, Path]:
    """Each component's log file, by name; they outlive `down`."""
    state = load_state(settings.state_dir)
    log_dir = Path(state.service.log_dir) if state else settings.state_dir.resolve() / "logs"
    files = {}
    if log_dir.is_dir():
        files = {path.stem: path for path in sorted(log_dir.glob("*.log"))}
        if (log_dir / "supervisord.out").exists():
            # What supervisord printed before its own log opened (why it did not start).
            files["supervisord-start"] = log_dir / "supervisord.out"
    if state is not None and state.postgres is not None:
        files["postgres"] = Path(state.postgres.log)
    return files


def tail_lines(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of a log file (read from the end, so large logs stay cheap)."""
    if not path.exists():
        return []
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 256 * max(lines, 1) * 4))
        text = handle.read().decode(errors="replace")
    return text.splitlines()[-lines:] if lines > 0 else []


def new_lines(path: Path, offset: int) -> list[tuple[str, int]]:
    """Complete lines written after `offset`, each with the offset after it."""
    if not path.exists():
        return []
    if path.stat().st_size < offset:  # rotated: start again
        offset = 0
    with path.open("rb") as handle:
        handle.seek(offset)
        chunk = handle.read()
    result = []
    for raw in chunk.splitlines(keepends=True):
        if not raw.endswith(b"\n"):
            break
        offset += len(raw)
        result.append((raw.decode(errors="replace").rstrip("\n"), offset))
    return result
