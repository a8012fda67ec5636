"""One frozen settings object: command-line flag > ALUMNOS_* environment > default.

And the one way its URLs (and any text that may hold one) are shown or written: passwords
masked (mask_password, mask_secrets).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus, urlsplit, urlunsplit

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


MASK = "***"
# In any text (a message, a command line, `--flag=URL`), what may hold a password: a URL (a
# scheme, then everything up to a blank or a quote: a password never holds a blank
# unencoded), or a password=value word of its own, as in libpq's "host=h password=x".
_SECRETS = re.compile(r"(?P<url>[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+)"
                      r"|(?i:(?<![\w.-])(?P<name>[\w.-]*(?:password|passwd|pwd))=[^\s'\"]*)")
# What urlsplit cannot parse (a broken [IPv6] host): hide the whole user:password part.
_USERINFO = re.compile(r"(://[^/?#@:]*):[^/?#]*@")


def mask_password(url: str) -> str:
    """A URL with its password hidden: the user:password part (postgresql://u:***@h/db,
    redis://:***@h) and query parameters such as ?password= or &sslpassword=."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return _USERINFO.sub(rf"\1:{MASK}@", url)
    masked = parts._replace(query="&".join(_mask_parameter(p) for p in parts.query.split("&")))
    if password is not None:
        userinfo, _, host = parts.netloc.rpartition("@")  # a password may hold an @
        masked = masked._replace(netloc=f"{userinfo.split(':', 1)[0]}:{MASK}@{host}")
    # Rebuilt only when something was hidden: any other URL stays exactly as it was written.
    return url if masked == parts else urlunsplit(masked)


def _mask_parameter(parameter: str) -> str:
    name, equals, _ = parameter.partition("=")
    return f"{name}={MASK}" if equals and _is_password_name(unquote_plus(name)) else parameter


def _is_password_name(name: str) -> bool:
    """Whether a parameter named so holds a password (password, sslpassword, passwd, pwd)."""
    name = name.lower()
    return name == "pwd" or name.endswith(("password", "passwd"))


def mask_secrets(text: str) -> str:
    """Any text (a command line, a message) with the password of every URL in it hidden,
    and every password=value word."""
    return _SECRETS.sub(_mask_match, text)


def _mask_match(match: re.Match[str]) -> str:
    url = match.group("url")
    return mask_password(url) if url is not None else f"{match.group('name')}={MASK}"


def mask_document(value: Any) -> Any:
    """A JSON document (a run's meta.json) with mask_secrets applied to every string in it."""
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, dict):
        return {key: mask_document(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_document(item) for item in value]
    return value
