"""One frozen settings object: command-line flag > ALUMNOS_* environment > default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

from alumnos_service.config import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL

DEFAULTS: dict[str, str] = {
    "database_url": DEFAULT_DATABASE_URL,
    "redis_url": DEFAULT_REDIS_URL,
    "results_dir": "./results",
    "state_dir": "./.alumnos",
}


@dataclass(frozen=True)
class Settings:
    """Where the toolkit finds its services and keeps its files."""

    database_url: str
    redis_url: str
    results_dir: Path
    state_dir: Path

    @classmethod
    def resolve(
        cls,
        env: Mapping[str, str] | None = None,
        recorded: Mapping[str, str] | None = None,
        **flags: str | Path | None,
    ) -> Settings:
        """Build settings: flag (None = not given) > recorded by `up` > environment > default.

        `up` records a URL only when it had to start a private PostgreSQL because the
        configured one did not answer; while that stack runs, the private one is the database.
        """
        env = os.environ if env is None else env
        recorded = recorded or {}
        values: dict[str, str | Path] = {}
        for field in fields(cls):
            candidates = (
                flags.get(field.name),
                recorded.get(field.name),
                env.get(f"ALUMNOS_{field.name.upper()}"),
                DEFAULTS[field.name],
            )
            values[field.name] = next(c for c in candidates if c)
        unknown = set(flags) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"unknown settings: {sorted(unknown)}")
        return cls(
            database_url=str(values["database_url"]),
            redis_url=str(values["redis_url"]),
            results_dir=Path(values["results_dir"]),
            state_dir=Path(values["state_dir"]),
        )

    def with_database_url(self, url: str) -> Settings:
        """The same settings pointing at another database (a private cluster started by `up`)."""
        return replace(self, database_url=url)

    def public(self) -> dict[str, str]:
        """The settings as plain strings, passwords masked, for run metadata."""
        return {
            "database_url": mask_password(self.database_url),
            "redis_url": mask_password(self.redis_url),
            "results_dir": str(self.results_dir),
            "state_dir": str(self.state_dir),
        }


def mask_password(url: str) -> str:
    """Hide the password of a URL such as postgresql://user:secret@host/db."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
