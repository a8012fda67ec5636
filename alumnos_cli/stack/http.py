"""A plain GET with a timeout: how the stack's health and the bench target are probed.

Names under `.localhost` are loopback (RFC 6761), as browsers treat them, but this machine's
resolver does not know them: every client of ours (this GET, the proofs, k6, wrk) connects to
127.0.0.1 and sends the name as the Host header, which is what Traefik routes on.

A target behind HTTP Basic auth is given as http://user:password@host (as k6 takes it);
urllib ignores those credentials, so they are sent here as the Authorization header.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from urllib.parse import unquote, urlsplit, urlunsplit

LOOPBACK = "127.0.0.1"


def is_loopback_name(host: str) -> bool:
    """Whether a host name is one of the loopback names (localhost and *.localhost)."""
    host = host.lower().rstrip(".")
    return host == "localhost" or host.endswith(".localhost")


def loopback_target(url: str) -> tuple[str, str | None]:
    """(URL to connect to, Host header to send): a .localhost name becomes 127.0.0.1 with the
    name in the Host header; any other URL is returned as it is, with no header."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not is_loopback_name(host) or host == "localhost":
        return url, None
    netloc = LOOPBACK if parts.port is None else f"{LOOPBACK}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc)), parts.netloc


def split_credentials(url: str) -> tuple[str, str | None]:
    """(the URL without its user:password, the Basic Authorization header they make or None).

    As k6 (Go's net/http) does: a user without a password is sent with an empty one.
    """
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, None
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
    return urlunsplit(parts._replace(netloc=host)), f"Basic {token}"


def request_target(url: str) -> tuple[str, dict[str, str]]:
    """(URL to connect to, headers to send): credentials become the Authorization header,
    a .localhost name the Host header (see loopback_target)."""
    bare, authorization = split_credentials(url)
    target, host = loopback_target(bare)
    headers = {"Host": host} if host else {}
    if authorization:
        headers["Authorization"] = authorization
    return target, headers


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes] | None:
    """(status, body) of a GET, or None when nothing answers."""
    target, headers = request_target(url)
    request = urllib.request.Request(target, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return None
