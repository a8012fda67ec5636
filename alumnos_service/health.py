"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from alumnos_service.paths import HEALTH_PATH, READY_PATH

bp = Blueprint("health", __name__)


@bp.get(HEALTH_PATH)
def health() -> Response:
    """Liveness: the process answers. No I/O, so a slow database never fails it."""
    return jsonify(status="ok")


@bp.get(READY_PATH)
def ready() -> tuple[Response, int]:
    """Readiness: PostgreSQL answers, and Redis too when the cache is on."""
    checks: dict[str, str] = {}
    try:
        current_app.extensions["alumnos.repository"].ping()
        checks["postgresql"] = "ok"
    except Exception as exc:  # any failure means not ready; the reason goes in the body
        checks["postgresql"] = f"down: {type(exc).__name__}"
    cache = current_app.extensions["alumnos.cache"]
    if cache is not None:
        checks["redis"] = "ok" if cache.ping() else "down"
    ok = all(v == "ok" for v in checks.values())
    return jsonify(status="ready" if ok else "not ready", checks=checks), 200 if ok else 503
