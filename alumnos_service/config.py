"""Service configuration: defaults, overridden by ALUMNOS_* environment, overridden by a mapping."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

# Where the service finds its databases unless told; the CLI's settings default to the same.
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/alumnos"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": DEFAULT_DATABASE_URL,
    "REDIS_URL": DEFAULT_REDIS_URL,
    "CACHE": "on",
    "CACHE_PREFIX": "alumnos",
    "CACHE_TTL_SECONDS": 60,
    "REDIS_TIMEOUT_SECONDS": 0.2,
    # After a Redis failure, requests skip Redis for this long instead of each paying the timeout.
    "REDIS_RETRY_AFTER_SECONDS": 5.0,
    "DB_POOL_SIZE": 8,
    # Every statement is cut after this long (PostgreSQL's statement_timeout): a request's
    # database work is bounded, and the balancer's server timeout is longer still.
    "DB_STATEMENT_TIMEOUT_MS": 3000,
    # How long a request waits for a pooled connection before it is answered 503 (SQLAlchemy
    # waits 30 s by default, then raises into a 500).
    "DB_POOL_TIMEOUT_S": 1.0,
    # Per-worker near cache over Redis; 32 MiB holds ~1,300 pages of 100 alumnos.
    "NEAR_CACHE_BYTES": 32 * 1024 * 1024,
    # Names this process in X-Served-By (the replica under a balancer); the host name if empty.
    "REPLICA": "",
    # Fault injection for `alumnos patterns`: refused unless switched on here.
    "FAULT_INJECTION": "off",
    "FAULT_FILE": "",
}


def load_config(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults < ALUMNOS_<KEY> environment variables < explicit overrides."""
    config = dict(DEFAULTS)
    for key, default in DEFAULTS.items():
        raw = os.environ.get(f"ALUMNOS_{key}")
        if raw:
            config[key] = type(default)(raw)
    config.update(overrides or {})
    return config


def is_on(value: object) -> bool:
    """A switch: off, false, 0, no and empty are off; anything else is on."""
    return str(value).strip().lower() not in {"off", "false", "0", "no", ""}


def is_true(value: object) -> bool:
    """A switch that must be meant: only on, true, 1 and yes are on (not "disabled")."""
    return str(value).strip().lower() in {"on", "true", "1", "yes"}


def cache_enabled(config: Mapping[str, Any]) -> bool:
    """ALUMNOS_CACHE=off (or false/0/no) turns the cache off for measurements."""
    return is_on(config["CACHE"])


def fault_file(config: Mapping[str, Any]) -> str | None:
    """The fault file to obey, when fault injection is switched on and a file is named."""
    # Strict: a fault switch left half-set in a shell must not slow a benchmark.
    if is_true(config["FAULT_INJECTION"]) and config["FAULT_FILE"]:
        return str(config["FAULT_FILE"])
    return None
