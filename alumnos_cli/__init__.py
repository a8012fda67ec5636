"""alumnos: seed, run, load-test and report on the alumnos student-records service."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("alumnos")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
