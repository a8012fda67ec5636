"""alumnos: seed, run, load-test and report on the alumnos student-records service."""

from __future__ import annotations

import functools


@functools.cache
def package_version() -> str:
    """The installed version; "0.0.0" in a source tree that was never installed."""
    # Imported here: importlib.metadata alone cost 23-74 ms of every start, Tab completion
    # included (python -X importtime, 2026-11-28).
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("alumnos")
    except PackageNotFoundError:
        return "0.0.0"


def __getattr__(name: str) -> str:
    """`alumnos_cli.__version__`, read only when asked for."""
    if name == "__version__":
        return package_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
