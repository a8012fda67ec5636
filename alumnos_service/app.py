"""The alumnos service: a Flask application factory."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, g
from flask.json.provider import DefaultJSONProvider
from psycopg2.errors import QueryCanceled
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from alumnos_service import faults, metrics
from alumnos_service.api import bp as api_bp
from alumnos_service.cache import PageCache
from alumnos_service.config import cache_enabled, fault_file, load_config
from alumnos_service.db import AlumnosRepository, TableMissing, make_engine
from alumnos_service.health import bp as health_bp
from alumnos_service.openapi import bp as openapi_bp
from alumnos_service.problems import BadParameter, problem

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

HOSTNAME = socket.gethostname()


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: configuration, PostgreSQL and Redis clients, blueprints, error handlers."""
    app = Flask(__name__)
    app.config.update(load_config(config))
    json_provider = DefaultJSONProvider(app)
    json_provider.sort_keys = False  # fields in the order the contract gives them
    app.json = json_provider
    engine = make_engine(app.config["DATABASE_URL"], int(app.config["DB_POOL_SIZE"]),
                         statement_timeout_ms=int(app.config["DB_STATEMENT_TIMEOUT_MS"]),
                         pool_timeout_s=float(app.config["DB_POOL_TIMEOUT_S"]))
    app.extensions["alumnos.repository"] = AlumnosRepository(engine)
    cache = _build_cache(app.config) if cache_enabled(app.config) else None
    app.extensions["alumnos.cache"] = cache
    app.register_blueprint(api_bp)
    app.register_blueprint(health_bp)
    metrics.install(app)
    if (faults_path := fault_file(app.config)) is not None:
        faults.install(app, Path(faults_path))
    app.register_blueprint(openapi_bp)
    _register_error_handlers(app)
    # Flask's way to add WSGI middleware; its stubs type wsgi_app as a method.
    app.wsgi_app = whole_responses(app.wsgi_app)  # type: ignore[method-assign,assignment]
    replica = app.config["REPLICA"] or HOSTNAME

    @app.after_request
    def identify(response: Response) -> Response:
        """Say which replica and process served the request, and what the cache did."""
        response.headers["X-Served-By"] = f"{replica}:{os.getpid()}"
        response.headers["X-Cache"] = g.get("cache_status", "BYPASS")
        return response

    return app


def whole_responses(wsgi_app: WSGIApplication) -> WSGIApplication:
    """Hand the server each response as one piece of bytes, never as an iterator.

    Every response here is small and already in memory. Given a list, Granian sends status,
    headers and body together; given Flask's iterator it sends the head first and the body
    after, and a replica that dies in between leaves the balancer a truncated response it
    cannot retry (seen as rare client errors when a replica was killed under load).
    """

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        chunks = wsgi_app(environ, start_response)
        try:
            return [b"".join(chunks)]
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    return app


def _build_cache(config: Mapping[str, Any]) -> PageCache:
    return PageCache(
        config["REDIS_URL"],
        prefix=config["CACHE_PREFIX"],
        ttl=float(config["CACHE_TTL_SECONDS"]),
        timeout=float(config["REDIS_TIMEOUT_SECONDS"]),
        retry_after=float(config["REDIS_RETRY_AFTER_SECONDS"]),
        near_bytes=int(config["NEAR_CACHE_BYTES"]),
    )


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(BadParameter)
    def bad_parameter(exc: BadParameter) -> Response:
        return problem(400, "Bad Request", exc.detail, slug="invalid-parameter")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        headers = {}
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            headers["Allow"] = ", ".join(exc.valid_methods)
        slug = (exc.name or "error").lower().replace(" ", "-")
        return problem(exc.code or 500, exc.name, exc.description or exc.name, slug=slug,
                       headers=headers)

    @app.errorhandler(TableMissing)
    def not_seeded(_exc: TableMissing) -> Response:
        return problem(503, "Service Unavailable",
                       "the alumnos table does not exist yet; run `alumnos seed`",
                       slug="not-seeded", headers={"Retry-After": "30"})

    @app.errorhandler(OperationalError)
    def database_down(exc: DBAPIError) -> Response:
        if isinstance(exc.orig, QueryCanceled):  # statement_timeout: the connection is freed
            limit = int(app.config["DB_STATEMENT_TIMEOUT_MS"])
            return problem(503, "Service Unavailable", f"the database took longer than "
                           f"{limit} ms for this request; retry shortly",
                           slug="database-timeout", headers={"Retry-After": "1"})
        return problem(503, "Service Unavailable", "PostgreSQL is unreachable; retry shortly",
                       slug="database-unavailable", headers={"Retry-After": "5"})

    @app.errorhandler(PoolTimeout)
    def database_busy(_exc: PoolTimeout) -> Response:
        wait = float(app.config["DB_POOL_TIMEOUT_S"])
        return problem(503, "Service Unavailable", f"every database connection stayed busy for "
                       f"{wait:g} s; retry shortly", slug="database-busy",
                       headers={"Retry-After": "1"})

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        app.logger.exception("unexpected error", exc_info=exc)
        return problem(500, "Internal Server Error", "an unexpected error occurred",
                       slug="internal-error")
