"""Verifying the target in full, before the load and right after it.

During the load k6 checks every response cheaply and a sample in full (k6/lib/verify.js);
here the service must answer right at both ends: a page of alumnos with the database's row
count, the rows at their offset with their ids. A wrong answer before the load refuses the
run; after it, fails the run.
"""

from __future__ import annotations

import json
from typing import Any

from alumnos_cli.errors import AlumnosError, ServiceUnreachable
from alumnos_cli.settings import mask_password
from alumnos_cli.stack.http import http_get
from alumnos_service.paths import PAGE_PATH

PAGE_LIMIT = 100


class WrongAnswer(AlumnosError):
    """The target answered, but not what the alumnos service must answer."""


def _get_json(url: str, path: str) -> Any:
    answer = http_get(f"{url}{path}", timeout=5.0)
    shown = mask_password(url)
    if answer is None:
        raise ServiceUnreachable(f"nothing answers at {shown}",
                                 "start the stack with alumnos up, or check --url")
    status, body = answer
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if status != 200 or not isinstance(document, dict) or "items" not in document:
        raise ServiceUnreachable(f"{shown} is not a working alumnos service (HTTP {status})",
                                 "check --url; if the table is empty, run alumnos seed")
    return document


def page_problem(document: dict[str, Any], offset: int, total: int,
                 first_id: int | None) -> str | None:
    """Why a page is wrong (as k6/lib/verify.js judges it), or None when it is right.

    `first_id` is the first row's id when the ids are dense (offset o is id first_id + o).
    """
    items = document.get("items")
    if not isinstance(items, list):
        return "no items"
    if len(items) != max(0, min(PAGE_LIMIT, total - offset)):
        return "wrong number of rows"
    if document.get("total") != total:
        return "wrong total"
    if document.get("offset") != offset:
        return "rows from the wrong offset"
    ids = [item.get("id") if isinstance(item, dict) else None for item in items]
    expected = ([first_id + offset + i for i in range(len(ids))] if first_id is not None
                else sorted(set(ids), key=lambda value: (value is None, value)))
    if ids != expected or None in ids:
        return "wrong ids"
    return None


def verify_target(url: str, expected_total: int | None = None) -> None:
    """Refuse a target that is not a healthy, seeded alumnos service answering right pages
    (with the rows the database holds, when we know which database it serves).

    `url` may hold credentials (sent as Basic auth); messages show it with the password masked.
    """
    shown = mask_password(url)
    first = _get_json(url, f"{PAGE_PATH}?limit=1&offset=0")
    total = first.get("total")
    if not total:
        raise AlumnosError(f"{shown} serves no alumnos", "run alumnos seed first")
    if expected_total is not None and total != expected_total:
        raise ServiceUnreachable(
            f"{shown} reports {total:,} alumnos but its database holds "
            f"{expected_total:,}", "is the URL the stack alumnos up started? is a seed running?")
    last = _get_json(url, f"{PAGE_PATH}?limit=1&offset={total - 1}")
    first_id = _dense_first_id(first, last, total)
    page = _get_json(url, f"{PAGE_PATH}?limit={PAGE_LIMIT}&offset=0")
    problem = page_problem(page, 0, total, first_id)
    if problem is not None:
        raise WrongAnswer(f"{shown} serves a wrong first page: {problem}",
                          "the service is not answering what its contract says")


def _dense_first_id(first: dict[str, Any], last: dict[str, Any], total: int) -> int | None:
    """The first id when ids run without gaps (what `alumnos seed` writes), else None."""
    try:
        low, high = first["items"][0]["id"], last["items"][0]["id"]
    except (KeyError, IndexError, TypeError):
        return None
    return int(low) if high - low == total - 1 else None
