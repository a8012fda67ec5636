"""Cache-aside in Redis for response bodies, with a generation number for instant invalidation."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import redis

# One round trip per lookup: read the generation and the page stored under it together, so a
# reseed (INCR of the generation) is seen by the very next request.
_LOOKUP = """
local gen = redis.call('GET', KEYS[1]) or '0'
return {gen, redis.call('GET', ARGV[1] .. ':g' .. gen .. ':' .. ARGV[2])}
"""


@dataclass(frozen=True)
class Lookup:
    """What the cache said: the stored bytes (or None) and the generation they belong to."""

    body: bytes | None
    generation: bytes


def generation_key(prefix: str) -> str:
    """The Redis key holding the namespace generation."""
    return f"{prefix}:gen"


def invalidate_all(client: redis.Redis, prefix: str) -> int:
    """Make every cached page stale at once; returns the new generation."""
    return int(client.incr(generation_key(prefix)))


class PageCache:
    """Redis cache that degrades to 'no cache' while Redis is down or slow."""

    def __init__(
        self, url: str, *, prefix: str, ttl: float, timeout: float, retry_after: float
    ) -> None:
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False
        )
        self.prefix = prefix
        self.ttl = ttl
        self.retry_after = retry_after
        self._skip_until = 0.0
        self._lookup = self.client.register_script(_LOOKUP)

    @property
    def available(self) -> bool:
        """False while Redis is in its back-off window after a failure."""
        return time.monotonic() >= self._skip_until

    def get(self, key: str) -> Lookup | None:
        """The cached body for key, or None when Redis cannot be asked right now."""
        if not self.available:
            return None
        try:
            generation, body = self._lookup(keys=[generation_key(self.prefix)],
                                            args=[self.prefix, key])
        except redis.RedisError:
            self._back_off()
            return None
        return Lookup(body=body, generation=generation)

    def put(self, key: str, generation: bytes, body: bytes) -> None:
        """Store body under the generation it was computed for, with a jittered TTL."""
        if not self.available:
            return
        # +-10% jitter so that pages filled together do not all expire in the same second.
        ttl_ms = int(self.ttl * 1000 * random.uniform(0.9, 1.1))
        full_key = f"{self.prefix}:g{generation.decode()}:{key}"
        try:
            self.client.set(full_key, body, px=ttl_ms)
        except redis.RedisError:
            self._back_off()

    def ping(self) -> bool:
        """True when Redis answers now."""
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def _back_off(self) -> None:
        self._skip_until = time.monotonic() + self.retry_after
