"""Cache: a repeated page is served from cache (> 95%) and equals what the database gives."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from alumnos_cli.proof.client import spread_gets_at
from alumnos_cli.proof.options import FAIL, PASS, SKIPPED, PatternResult, ProofOptions
from alumnos_cli.stack.patterns import PatternsSpec
from alumnos_cli.stack.state import StackState
from alumnos_service.app import create_app
from alumnos_service.config import DEFAULTS
from alumnos_service.paths import PAGE_PATH

CACHE_HIT_TARGET = 0.95
CACHED_PAGE = f"{PAGE_PATH}?limit=100&offset=4200"


def prove_cache(state: StackState, options: ProofOptions) -> PatternResult:
    """A repeated page is served from cache (> 95%) and equals what the database gives."""
    return prove_cache_at(state.service.url, state.service.patterns, state.database_url,
                          options, cache=state.service.cache)


def prove_cache_at(url: str, spec: PatternsSpec, database_url: str, options: ProofOptions,
                   *, cache: bool) -> PatternResult:
    """The cache proof through the balancer at url, against the database at database_url."""
    if not cache:
        return PatternResult("cache", "-", "the cache is off in this stack", SKIPPED,
                             {"hint": "alumnos up without --no-cache"})
    # One request fills the cache; then a pause as long as a worker's step aside from Redis
    # after a timeout (the service's REDIS_RETRY_AFTER_SECONDS): right after a heavy load
    # (another proof's) some workers answer BYPASS by design, which is not what this counts.
    spread_gets_at(url, spec, CACHED_PAGE, 1)
    time.sleep(float(DEFAULTS["REDIS_RETRY_AFTER_SECONDS"]))
    answers = spread_gets_at(url, spec, CACHED_PAGE, options.cache_requests)
    hits = sum(a.cache == "HIT" for a in answers)
    outcomes = Counter(a.cache or "none" for a in answers)
    ratio = hits / max(1, len(answers))
    fresh = page_from_database(database_url, CACHED_PAGE)
    equal = all(json.loads(a.body) == fresh for a in answers if a.status == 200)
    ok = ratio > CACHE_HIT_TARGET and equal
    return PatternResult(
        "cache", f"the same page {len(answers)} times through the balancer",
        f"hit ratio {ratio:.1%} ({hits} hits); cached page "
        f"{'equals' if equal else 'DIFFERS from'} the page built from PostgreSQL",
        PASS if ok else FAIL, {"requests": len(answers), "hits": hits, "ratio": ratio,
                               "outcomes": dict(outcomes),
                               "equal_to_database": equal, "target": CACHE_HIT_TARGET})


def page_from_database(database_url: str, path: str) -> Any:
    """The page as the service builds it with no cache at all, straight from PostgreSQL."""
    app = create_app({"DATABASE_URL": database_url, "CACHE": "off"})
    try:
        response = app.test_client().get(path)
        return response.get_json()
    finally:
        app.extensions["alumnos.repository"].engine.dispose()
