"""Strict parsing of query parameters: anything but a plain decimal integer in range is a 400."""

from __future__ import annotations

import re

from werkzeug.datastructures import MultiDict

from alumnos_service.problems import BadParameter

_DIGITS = re.compile(r"[0-9]{1,19}")
MAX_BIGINT = 2**63 - 1
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


def int_param(args: MultiDict[str, str], name: str, *, default: int | None, low: int,
              high: int = MAX_BIGINT) -> int | None:
    """One integer parameter in [low, high]; repeated values must agree."""
    values = set(args.getlist(name))
    if not values:
        return default
    if len(values) > 1:
        raise BadParameter(name, f"'{name}' is given more than once with different values")
    raw = values.pop()
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise BadParameter(name, f"'{name}' must be an integer from {low} to {high}, got {raw!r}")
    return int(raw)


def page_params(args: MultiDict[str, str]) -> tuple[int, int, int | None]:
    """limit (1..1000, default 100), offset (>= 0, default 0), after (an id >= 0, optional).

    With after, offset counts rows past that id: `after=500&offset=20` skips the first 20
    rows whose id is above 500.
    """
    limit = int_param(args, "limit", default=DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
    offset = int_param(args, "offset", default=0, low=0)
    after = int_param(args, "after", default=None, low=0)
    assert limit is not None and offset is not None
    return limit, offset, after
