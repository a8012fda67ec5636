"""RFC 9457 problem details: every error the API returns has this shape."""

from __future__ import annotations

import json

from flask import Response

PROBLEM_TYPE_BASE = "https://alumnos.universidad.localhost/problems/"


def problem(
    status: int, title: str, detail: str, *, slug: str, headers: dict[str, str] | None = None
) -> Response:
    """An application/problem+json response."""
    body = {"type": PROBLEM_TYPE_BASE + slug, "title": title, "status": status, "detail": detail}
    response = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


class BadParameter(Exception):
    """A query parameter that is not acceptable; becomes a 400 problem."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(detail)
        self.name = name
        self.detail = detail
