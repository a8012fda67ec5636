"""How each replica serves the WSGI app: one Granian command line for the image and local mode.

The Dockerfile's CMD is this spec's argv() with its defaults (the reference report's
command; the tests hold the two equal); local mode runs the same command with its own host,
port and sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

WSGI_TARGET = "alumnos_service.wsgi:app"


@dataclass(frozen=True)
class GranianSpec:
    """Granian's options for one replica."""

    target: str = WSGI_TARGET
    host: str = "0.0.0.0"
    port: int = 5000
    workers: int = 4
    blocking_threads: int = 4
    backlog: int = 2048

    def argv(self, launcher: tuple[str, ...] = ("granian",)) -> list[str]:
        """The command line, in the exec form the Dockerfile's CMD uses."""
        return [
            *launcher,
            "--interface", "wsgi",
            "--host", self.host,
            "--port", str(self.port),
            "--workers", str(self.workers),
            "--blocking-threads", str(self.blocking_threads),
            "--backlog", str(self.backlog),
            self.target,
        ]  # fmt: skip
