"""The OpenAPI document, kept beside the code it describes and checked against it by tests."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from alumnos_service.params import DEFAULT_LIMIT, MAX_BIGINT, MAX_LIMIT
from alumnos_service.paths import (
    HEALTH_PATH,
    METRICS_PATH,
    OPENAPI_PATH,
    PAGE_PATH,
    PING_PATH,
    READY_PATH,
)

bp = Blueprint("openapi", __name__)

_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_HEADERS = {
    "X-Served-By": {"description": "host:pid of the worker that answered",
                    "schema": {"type": "string"}},
    "X-Cache": {"description": "HIT, MISS or BYPASS",
                "schema": {"type": "string", "enum": ["HIT", "MISS", "BYPASS"]}},
}


def _problem(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    headers = dict(_HEADERS)
    if retry_after:
        headers["Retry-After"] = {"description": "seconds to wait", "schema": {"type": "string"}}
    return {"description": description, "headers": headers,
            "content": {"application/problem+json": {"schema": _PROBLEM}}}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "headers": _HEADERS,
            "content": {"application/json": {"schema": schema}}}


def _integer(name: str, description: str, minimum: int, maximum: int,
             default: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "minimum": minimum, "maximum": maximum}
    if default is not None:
        schema["default"] = default
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}


ALUMNO = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "apellido", "nombre", "nro_documento", "tipo_documento",
                 "fecha_nacimiento", "sexo", "nro_legajo", "fecha_ingreso", "email"],
    "properties": {
        "id": {"type": "integer"},
        "apellido": {"type": "string"},
        "nombre": {"type": "string"},
        "nro_documento": {"type": "integer"},
        "tipo_documento": {"type": "string"},
        "fecha_nacimiento": {"type": "string", "format": "date"},
        "sexo": {"type": "string", "enum": ["F", "M"]},
        "nro_legajo": {"type": "integer"},
        "fecha_ingreso": {"type": "string", "format": "date"},
        "email": {"type": "string"},
    },
}
PAGE = {
    "type": "object",
    "required": ["items", "limit", "total", "next"],
    "properties": {
        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Alumno"}},
        "limit": {"type": "integer"},
        "offset": {"type": "integer", "description": "present in offset mode"},
        "after": {"type": "integer", "description": "present in keyset mode"},
        "total": {"type": "integer", "description": "exact number of alumnos"},
        "next": {"type": "string", "nullable": True,
                 "description": "relative URL of the next page, null on the last one"},
    },
}
PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                   "status": {"type": "integer"}, "detail": {"type": "string"}},
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "alumnos", "version": "1.0.0",
             "description": "Student records, paginated by offset or by id (keyset)."},
    "paths": {
        PAGE_PATH: {"get": {
            "operationId": "listAlumnos",
            "summary": "A page of alumnos in id order",
            "parameters": [
                _integer("limit", "page size", 1, MAX_LIMIT, DEFAULT_LIMIT),
                _integer("offset", "rows to skip (past `after` when it is given)", 0, MAX_BIGINT,
                         0),
                _integer("after", "keyset: only rows with id > after", 0, MAX_BIGINT),
            ],
            "responses": {
                "200": _json("the page", {"$ref": "#/components/schemas/Page"}),
                "400": _problem("a parameter is not an integer in range, or is repeated with "
                                "different values"),
                "503": _problem("PostgreSQL is unreachable or not seeded", retry_after=True),
            },
        }},
        f"{PAGE_PATH}/{{alumno_id}}": {"get": {
            "operationId": "getAlumno",
            "summary": "One alumno",
            "parameters": [{"name": "alumno_id", "in": "path", "required": True,
                            "schema": {"type": "integer", "minimum": 0}}],
            "responses": {
                "200": _json("the alumno", {"$ref": "#/components/schemas/Alumno"}),
                "404": _problem("no alumno has this id"),
                "503": _problem("PostgreSQL is unreachable or not seeded", retry_after=True),
            },
        }},
        PING_PATH: {"get": {
            "operationId": "ping", "summary": "No I/O: the machine's ceiling",
            "responses": {"200": _json("pong", {
                "type": "object", "required": ["pong"],
                "properties": {"pong": {"type": "boolean"}}})},
        }},
        HEALTH_PATH: {"get": {
            "operationId": "health", "summary": "Liveness",
            "responses": {"200": _json("alive", {
                "type": "object", "required": ["status"],
                "properties": {"status": {"type": "string"}}})},
        }},
        READY_PATH: {"get": {
            "operationId": "ready", "summary": "PostgreSQL and Redis reachable",
            "responses": {
                "200": _json("ready", {"$ref": "#/components/schemas/Readiness"}),
                "503": _json("not ready", {"$ref": "#/components/schemas/Readiness"}),
            },
        }},
        METRICS_PATH: {"get": {
            "operationId": "metrics",
            "summary": "Prometheus text metrics: the replica's totals over its workers",
            "responses": {"200": {"description": "metrics",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}}},
        }},
        OPENAPI_PATH: {"get": {
            "operationId": "openapi", "summary": "This document",
            "responses": {"200": {"description": "OpenAPI 3.0 document",
                                  "content": {"application/json": {
                                      "schema": {"type": "object"}}}}},
        }},
    },
    "components": {"schemas": {
        "Alumno": ALUMNO,
        "Page": PAGE,
        "Problem": PROBLEM,
        "Readiness": {"type": "object", "required": ["status", "checks"],
                      "properties": {"status": {"type": "string"},
                                     "checks": {"type": "object",
                                                "additionalProperties": {"type": "string"}}}},
    }},
}


@bp.get(OPENAPI_PATH)
def openapi() -> Response:
    """The OpenAPI document."""
    return jsonify(DOCUMENT)
