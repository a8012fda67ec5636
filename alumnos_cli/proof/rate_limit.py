"""Rate limit: a client above the limit gets 429s; one below it, at the same time, gets none."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from alumnos_cli.proof.client import paced_gets
from alumnos_cli.proof.options import FAIL, PASS, SKIPPED, PatternResult, ProofOptions
from alumnos_cli.stack.state import StackState
from alumnos_service.paths import FIRST_PAGE

# Source addresses on loopback: one client above the limit, one below.
CLIENT_ABOVE, CLIENT_BELOW = "127.0.0.2", "127.0.0.3"


def prove_rate_limit(state: StackState, options: ProofOptions) -> PatternResult:
    """A client above the limit gets 429s; one below it, at the same time, gets none."""
    spec = state.service.patterns
    if not spec.rate_limit:
        return PatternResult("rate-limit", "-", "the rate limit is off in this stack", SKIPPED,
                             {"hint": "alumnos down; alumnos up --rate-limit 100/s"})
    limit = spec.rate_limit_average / spec.rate_limit_period_s
    seconds = max(options.rate_seconds, 2.0 * spec.rate_limit_period_s)
    with ThreadPoolExecutor(2) as pool:
        above_job = pool.submit(paced_gets, state.service.url, FIRST_PAGE, CLIENT_ABOVE,
                                2 * limit, seconds)
        below_job = pool.submit(paced_gets, state.service.url, FIRST_PAGE, CLIENT_BELOW,
                                0.5 * limit, seconds)
        above, below = above_job.result(), below_job.result()
    limited = [a for a in above if a.status == 429]
    well_formed = all(a.headers.get("retry-after") and
                      a.headers.get("content-type", "").startswith("application/problem+json")
                      and json.loads(a.body).get("status") == 429 for a in limited)
    accepted = sum(a.status == 200 for a in above) / seconds
    below_limited = sum(a.status == 429 for a in below)
    ok = bool(limited) and well_formed and below_limited == 0
    return PatternResult(
        "rate-limit", f"{spec.rate_limit_text} per address; one client at {2 * limit:g}/s and "
        f"one at {0.5 * limit:g}/s for {seconds:g} s",
        f"above: {len(limited)} of {len(above)} got 429 (problem+json with Retry-After: "
        f"{'yes' if well_formed else 'NO'}), {accepted:.0f}/s accepted; below: "
        f"{below_limited} of {len(below)} got 429", PASS if ok else FAIL,
        {"above_sent": len(above), "above_429": len(limited), "accepted_per_s": accepted,
         "below_sent": len(below), "below_429": below_limited, "well_formed": well_formed})
