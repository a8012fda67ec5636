"""A plain GET with a timeout: how the stack's health and the bench target are probed."""

from __future__ import annotations

import urllib.error
import urllib.request


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes] | None:
    """(status, body) of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return None
