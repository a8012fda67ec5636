"""Two-level cache-aside for response bodies: a bounded in-process near cache over Redis.

Every key carries the namespace generation (`{prefix}:gen`): a write path (`alumnos seed`)
increments it, which makes every cached page stale at once. Freshness argument: a worker uses a
generation only if it started reading it less than GENERATION_MAX_AGE ago, and the write path
waits PROPAGATION_SECONDS > GENERATION_MAX_AGE after its increment before it reports success;
so no request that starts after the write path returns is served a page of an older generation.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, cast, get_args

import redis

GENERATION_MAX_AGE = 0.1
PROPAGATION_SECONDS = 0.25
# A cold key under a stampede: one request fills it, the others poll Redis for it this long,
# then read through to PostgreSQL without storing.
FILL_LOCK_MS = 5_000
FILL_WAIT_SECONDS = 1.0
FILL_POLL_SECONDS = 0.01

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def generation_key(prefix: str) -> str:
    """The Redis key holding the namespace generation."""
    return f"{prefix}:gen"


def invalidate_all(client: redis.Redis, prefix: str) -> int:
    """Make every cached page stale at once; returns the new generation."""
    return int(client.incr(generation_key(prefix)))


@dataclass(frozen=True)
class Lookup:
    """What the cache said: the stored bytes (or None) and the generation they belong to."""

    body: bytes | None
    generation: bytes


class NearCache:
    """A per-process LRU of response bodies, bounded in bytes, for one generation at a time."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._generation: bytes | None = None
        self._size = 0
        self._lock = threading.Lock()

    def get(self, generation: bytes, key: str) -> bytes | None:
        """The body for key in this generation, or None."""
        with self._lock:
            if generation != self._generation:
                return None
            body = self._entries.get(key)
            if body is not None:
                self._entries.move_to_end(key)
            return body

    def put(self, generation: bytes, key: str, body: bytes) -> None:
        """Keep body; a new generation empties the cache first."""
        if len(body) > self.max_bytes:
            return
        with self._lock:
            if generation != self._generation:
                self._entries.clear()
                self._size = 0
                self._generation = generation
            old = self._entries.pop(key, None)
            self._size += len(body) - (len(old) if old else 0)
            self._entries[key] = body
            while self._size > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._size -= len(evicted)


CacheEvent = Literal["near_hits", "redis_hits", "misses", "waited_hits", "read_through",
                     "bypassed"]
CACHE_EVENTS: tuple[CacheEvent, ...] = get_args(CacheEvent)


@dataclass
class CacheCounters:
    """What the cache did: this process's totals, and each event handed to /metrics."""

    near_hits: int = 0
    redis_hits: int = 0
    misses: int = 0
    waited_hits: int = 0
    read_through: int = 0
    bypassed: int = 0
    # Told of each event as it happens: with several workers, a scrape cannot read the other
    # workers' totals, so /metrics counts events into shared files here instead.
    on_event: Callable[[CacheEvent], None] | None = field(default=None, repr=False,
                                                           compare=False)

    def count(self, event: CacheEvent) -> None:
        """Add one event."""
        setattr(self, event, getattr(self, event) + 1)
        if self.on_event is not None:
            self.on_event(event)


class PageCache:
    """Redis cache that degrades to 'no cache' while Redis is down or slow."""

    def __init__(self, url: str, *, prefix: str, ttl: float, timeout: float, retry_after: float,
                 near_bytes: int) -> None:
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False
        )
        self.prefix = prefix
        self.ttl = ttl
        self.retry_after = retry_after
        self.near = NearCache(near_bytes)
        self.counters = CacheCounters()
        self._skip_until = 0.0
        self._generation: tuple[bytes, float] | None = None
        self._release = self.client.register_script(_RELEASE)

    @property
    def available(self) -> bool:
        """False while Redis is in its back-off window after a failure."""
        return time.monotonic() >= self._skip_until

    def generation(self) -> bytes | None:
        """The current generation (re-read when older than GENERATION_MAX_AGE), or None."""
        known = self._generation
        started = time.monotonic()
        if known is not None and started - known[1] < GENERATION_MAX_AGE:
            return known[0]
        if not self.available:
            return None
        try:
            value = self._read(generation_key(self.prefix)) or b"0"
        except redis.RedisError:
            self._back_off()
            return None
        self._generation = (value, started)
        return value

    def get(self, key: str) -> Lookup | None:
        """The cached body for key (near cache, then Redis), or None when Redis can't be used."""
        generation = self.generation()
        if generation is None:
            self.counters.count("bypassed")
            return None
        body = self.near.get(generation, key)
        if body is not None:
            self.counters.count("near_hits")
            return Lookup(body, generation)
        try:
            body = self._read(self._key(generation, key))
        except redis.RedisError:
            self._back_off()
            self.counters.count("bypassed")
            return None
        if body is not None:
            self.counters.count("redis_hits")
            self.near.put(generation, key, body)
        return Lookup(body, generation)

    def fill(self, key: str, generation: bytes,
             build: Callable[[], bytes | None]) -> tuple[bytes | None, bool]:
        """Build and store a missing body, one filler per key; (body, True if it was built)."""
        lock = f"{self.prefix}:lock:g{generation.decode()}:{key}"
        token = uuid.uuid4().hex
        try:
            filler = bool(self.client.set(lock, token, nx=True, px=FILL_LOCK_MS))
        except redis.RedisError:
            self._back_off()
            return build(), True
        if not filler:
            waited = self._wait_for(generation, key)
            if waited is not None:
                self.counters.count("waited_hits")
                return waited, False
            self.counters.count("read_through")
            return build(), True
        try:
            # The previous filler may have finished between our miss and our lock.
            filled = self._read(self._key(generation, key))
            if filled is not None:
                self.counters.count("waited_hits")
                self.near.put(generation, key, filled)
                return filled, False
            body = build()
            if body is not None:
                self._store(generation, key, body)
            self.counters.count("misses")
            return body, True
        except redis.RedisError:
            self._back_off()
            return build(), True
        finally:
            self._quietly(lambda: self._release(keys=[lock], args=[token]))

    def _read(self, key: str) -> bytes | None:
        """GET one key; the client never decodes responses, so a value is bytes."""
        return cast(bytes | None, self.client.get(key))

    def ping(self) -> bool:
        """True when Redis answers now."""
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def _wait_for(self, generation: bytes, key: str) -> bytes | None:
        deadline = time.monotonic() + FILL_WAIT_SECONDS
        while time.monotonic() < deadline:
            time.sleep(FILL_POLL_SECONDS)
            try:
                body = self._read(self._key(generation, key))
            except redis.RedisError:
                self._back_off()
                return None
            if body is not None:
                self.near.put(generation, key, body)
                return body
        return None

    def _store(self, generation: bytes, key: str, body: bytes) -> None:
        # +-10% jitter so that pages filled together do not all expire in the same second.
        ttl_ms = int(self.ttl * 1000 * random.uniform(0.9, 1.1))
        self._quietly(lambda: self.client.set(self._key(generation, key), body, px=ttl_ms))
        self.near.put(generation, key, body)

    def _key(self, generation: bytes, key: str) -> str:
        return f"{self.prefix}:g{generation.decode()}:{key}"

    def _quietly(self, command: Callable[[], object]) -> None:
        try:
            command()
        except redis.RedisError:
            self._back_off()

    def _back_off(self) -> None:
        self._skip_until = time.monotonic() + self.retry_after
        self._generation = None
