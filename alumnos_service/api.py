"""The API blueprint: pages of alumnos, one alumno, and a trivial ping for the ceiling."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, g, request

from alumnos_service.cache import PageCache
from alumnos_service.db import AlumnosRepository
from alumnos_service.params import MAX_BIGINT, page_params
from alumnos_service.paths import API_PREFIX, PAGE_PATH, PING_PATH
from alumnos_service.problems import problem

bp = Blueprint("api", __name__, url_prefix=API_PREFIX)

JSON = "application/json"


def _repository() -> AlumnosRepository:
    repository: AlumnosRepository = current_app.extensions["alumnos.repository"]
    return repository


def _cache() -> PageCache | None:
    cache: PageCache | None = current_app.extensions["alumnos.cache"]
    return cache


def cached_response(key: str, build: Callable[[], bytes | None]) -> Response:
    """Serve key from the cache, or build the body (None means 404) and cache it."""
    cache = _cache()
    lookup = cache.get(key) if cache else None
    if lookup is None:
        g.cache_status = "BYPASS"
        body = build()
    elif lookup.body is not None:
        g.cache_status = "HIT"
        body = lookup.body
    else:
        assert cache is not None
        body, built = cache.fill(key, lookup.generation, build)
        g.cache_status = "MISS" if built else "HIT"
    if body is None:
        return problem(404, "Not Found", f"no alumno with id {key.split(':')[-1]}",
                       slug="not-found")
    return Response(body, mimetype=JSON)


@bp.get(PAGE_PATH.removeprefix(API_PREFIX))
def list_alumnos() -> Response:
    """A page of alumnos in id order, by offset or after an id (keyset)."""
    limit, offset, after = page_params(request.args)
    if after is None:
        return cached_response(f"page:{limit}:{offset}", lambda: _offset_page(limit, offset))
    return cached_response(f"after:{limit}:{after}:{offset}",
                           lambda: _keyset_page(limit, after, offset))


def _offset_page(limit: int, offset: int) -> bytes:
    items, total = _repository().page(limit=limit, offset=offset)
    has_next = offset + limit < total
    next_url = f"{PAGE_PATH}?{urlencode({'limit': limit, 'offset': offset + limit})}"
    return _envelope(items, {"limit": limit, "offset": offset, "total": total,
                             "next": next_url if has_next else None})


def _keyset_page(limit: int, after: int, offset: int) -> bytes:
    items, total = _repository().page(limit=limit, offset=offset, after=after)
    rows = json.loads(items)
    next_url = None
    if len(rows) == limit:
        next_url = f"{PAGE_PATH}?{urlencode({'limit': limit, 'after': rows[-1]['id']})}"
    fields = {"limit": limit, "after": after, "offset": offset, "total": total, "next": next_url}
    return _envelope(items, fields)


def _envelope(items_json: bytes, fields: Mapping[str, object]) -> bytes:
    # The items arrive as JSON bytes from PostgreSQL; splice instead of parse + re-serialise.
    tail = json.dumps(fields)[1:]
    return b"".join((b'{"items": ', items_json, b", ", tail.encode()))


@bp.get(f"{PAGE_PATH.removeprefix(API_PREFIX)}/<int:alumno_id>")
def get_alumno(alumno_id: int) -> Response:
    """One alumno by id; 404 problem when absent."""
    if alumno_id > MAX_BIGINT:  # no such id can exist; PostgreSQL would reject the number
        return problem(404, "Not Found", f"no alumno with id {alumno_id}", slug="not-found")

    def build() -> bytes | None:
        return _repository().row_json(alumno_id)

    return cached_response(f"row:{alumno_id}", build)


@bp.get(PING_PATH.removeprefix(API_PREFIX))
def ping() -> Response:
    """The trivial endpoint: same app and middleware, no I/O. Its req/s is the ceiling."""
    g.cache_status = "BYPASS"
    return Response(b'{"pong": true}', mimetype=JSON)
