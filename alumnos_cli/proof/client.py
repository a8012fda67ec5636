"""The proofs' own HTTP clients: keep-alive connections from chosen loopback addresses.

Each proof client gets its own source address, so a per-address rate limit (when on) judges
each client separately, as it would distinct users.
"""

from __future__ import annotations

import http.client
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from alumnos_cli.errors import ServiceUnreachable
from alumnos_cli.stack.http import LOOPBACK, loopback_target
from alumnos_cli.stack.patterns import PatternsSpec
from alumnos_cli.stack.state import StackState


@dataclass(frozen=True)
class Answer:
    """What a client saw for one request."""

    status: int
    served_by: str
    cache: str
    headers: dict[str, str]
    body: bytes


class Client:
    """One keep-alive connection to the balancer, from a chosen loopback source address."""

    def __init__(self, url: str, source: str = "127.0.0.1") -> None:
        target, self.host_header = loopback_target(url)
        parts = urlsplit(target)
        self.connection = http.client.HTTPConnection(parts.hostname or LOOPBACK,
                                                     parts.port or 80, timeout=10,
                                                     source_address=(source, 0))

    def get(self, path: str) -> Answer:
        """GET path; one reconnect when the connection was closed under us."""
        for attempt in range(2):
            try:
                sent = {"Host": self.host_header} if self.host_header else {}
                self.connection.request("GET", path, headers=sent)
                response = self.connection.getresponse()
                body = response.read()
                headers = {k.lower(): v for k, v in response.getheaders()}
                return Answer(response.status, headers.get("x-served-by", "").split(":")[0],
                              headers.get("x-cache", ""), headers, body)
            except (http.client.HTTPException, OSError) as exc:
                self.connection.close()
                if attempt:
                    raise ServiceUnreachable(
                        f"the balancer did not answer GET {path} ({exc or type(exc).__name__})",
                        "alumnos status shows the stack; alumnos logs haproxy shows why"
                    ) from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()


def paced_gets(url: str, path: str, source: str, rate: float, seconds: float) -> list[Answer]:
    """GETs from one address at a steady rate, spread over a few connections."""
    lanes = max(1, min(8, int(rate // 40) + 1))
    interval = lanes / rate
    start = time.monotonic() + 0.05

    def lane(offset: int) -> list[Answer]:
        client = Client(url, source)
        answers = []
        try:
            i = 0
            while (due := start + offset * interval / lanes + i * interval) < start + seconds:
                time.sleep(max(0.0, due - time.monotonic()))
                answers.append(client.get(path))
                i += 1
        finally:
            client.close()
        return answers

    with ThreadPoolExecutor(lanes) as pool:
        return [a for chunk in pool.map(lane, range(lanes)) for a in chunk]


def spread_gets(state: StackState, path: str, count: int) -> list[Answer]:
    """`count` GETs through the local stack's balancer (see spread_gets_at)."""
    return spread_gets_at(state.service.url, state.service.patterns, path, count)


def spread_gets_at(url: str, spec: PatternsSpec, path: str, count: int) -> list[Answer]:
    """`count` GETs over several clients, each with its own address and under any rate limit."""
    clients = 6
    per_client = -(-count // clients)
    # Under the limit, so the rate limit (if on) never answers these proofs instead.
    rate = 0.8 * spec.rate_limit_average / spec.rate_limit_period_s if spec.rate_limit else 1e9

    def run(index: int) -> list[Answer]:
        client = Client(url, f"127.0.3.{index + 1}")
        answers = []
        started = time.monotonic()
        try:
            for i in range(per_client):
                time.sleep(max(0.0, started + i / rate - time.monotonic()))
                answers.append(client.get(path))
        finally:
            client.close()
        return answers

    with ThreadPoolExecutor(clients) as pool:
        return [a for chunk in pool.map(run, range(clients)) for a in chunk][:count]
