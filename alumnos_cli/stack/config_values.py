"""Values that `up` writes into generated configurations (supervisord, HAProxy).

Neither format can quote everything: supervisord's `environment=` keeps quotes as they are and
reads a line break as the next setting (a `\r` in --state-dir once added a whole program), and
HAProxy expands `$` inside double quotes. So a value holding a control character, a quote, a
backslash, `$` or a backtick is refused before anything starts; the rest is quoted where the
format allows it.
"""

from __future__ import annotations

from pathlib import Path

from alumnos_cli.errors import AlumnosError

REFUSED = frozenset("\"'\\$`")


def unsafe_characters(value: str) -> list[str]:
    """The characters of value that no generated configuration may hold, as repr()s."""
    return sorted({repr(c) for c in value if c in REFUSED or ord(c) < 0x20 or ord(c) == 0x7F})


def checked_value(value: str, what: str) -> str:
    """value, when it can go into a generated configuration; else one error naming `what`."""
    unsafe = unsafe_characters(value)
    if unsafe:
        raise AlumnosError(f"{what} holds {', '.join(unsafe)}, which a generated configuration "
                           f"cannot hold safely: {value!r}",
                           "choose a value without quotes, backslashes, $, ` or control "
                           "characters")
    return value


def check_state_dir(state_dir: Path) -> None:
    """Refuse a --state-dir whose path would end up unquoted in supervisord's or HAProxy's
    configuration (checked before `up` starts anything)."""
    checked_value(str(state_dir.resolve()), "--state-dir (ALUMNOS_STATE_DIR)")
