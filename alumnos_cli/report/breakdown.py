"""The run broken down per endpoint, per status and per error type (breakdown.json).

`bench` reads it from k6's copy in Prometheus right after the load (bench/breakdown.py); a run
made without one has none, and the report says why in one line.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alumnos_cli.errors import RunFolderError

# An error type's kind: a status other than 200, a k6 error code (1050: a timeout, ...), or a
# check that failed, named by its reason (k6/lib/verify.js `wrong`).
ERROR_KINDS = ("status", "error_code", "check")


@dataclass(frozen=True)
class EndpointRow:
    """One endpoint (k6's `name` tag): its requests, the failed ones, its latency (ms) from the
    native histogram (within one bucket, 9%)."""

    name: str
    requests: int
    failed: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    p999_ms: float | None


@dataclass(frozen=True)
class StatusRow:
    """One HTTP status (0: no response) and how many requests got it."""

    status: str
    requests: int


@dataclass(frozen=True)
class ErrorType:
    """One kind of error, how often, and when first (seconds from the load's start)."""

    kind: str
    key: str
    count: int
    first_s: float | None


@dataclass(frozen=True)
class Bucket:
    """Requests whose latency fell in (lower_ms, upper_ms]."""

    lower_ms: float
    upper_ms: float
    requests: int


@dataclass(frozen=True)
class Breakdown:
    """The scenario's own requests (setup()'s left out), broken down; `histogram` is the
    whole run's latency distribution, k6's native histogram's buckets lowest first (empty in
    runs recorded before it was kept)."""

    endpoints: tuple[EndpointRow, ...]
    statuses: tuple[StatusRow, ...]
    errors: tuple[ErrorType, ...]
    histogram: tuple[Bucket, ...] = ()

    @property
    def requests(self) -> int:
        """Every request of the breakdown: the run's, as k6 counted them."""
        return sum(row.requests for row in self.statuses)


def parse_breakdown(document: Mapping[str, Any], source: str) -> Breakdown:
    """The typed breakdown; one error naming `source` when it is not what bench writes."""
    try:
        return Breakdown(
            endpoints=tuple(EndpointRow(
                name=str(e["name"]), requests=int(e["requests"]), failed=int(e["failed"]),
                **{key: optional_number(e.get(key))
                   for key in ("p50_ms", "p95_ms", "p99_ms", "p999_ms")})
                for e in document["endpoints"]),
            statuses=tuple(StatusRow(str(s["status"]), int(s["requests"]))
                           for s in document["statuses"]),
            errors=tuple(ErrorType(kind=str(e["kind"]), key=str(e["key"]), count=int(e["count"]),
                                   first_s=optional_number(e.get("first_s")))
                         for e in document["errors"] if e["kind"] in ERROR_KINDS),
            histogram=_buckets(document.get("histogram") or []))
    except (KeyError, TypeError, ValueError) as exc:
        raise RunFolderError(f"{source} does not hold a breakdown as alumnos writes it "
                             f"({type(exc).__name__}: {exc})",
                             "delete it to report the run without it") from None


def _buckets(rows: list[Any]) -> tuple[Bucket, ...]:
    buckets = tuple(Bucket(float(lower), float(upper), int(count))
                    for lower, upper, count in rows)
    if any(b.upper_ms <= b.lower_ms or b.requests < 0 for b in buckets) or any(
            a.upper_ms > b.lower_ms for a, b in itertools.pairwise(buckets)):
        raise ValueError("histogram buckets overlap or are not lowest first")
    return buckets


def coarser(buckets: tuple[Bucket, ...], at_most: int) -> tuple[Bucket, ...]:
    """The histogram in at most `at_most` buckets, for reading at a glance: k6's buckets
    (each 2^(1/8) times wider than the last) merged 2, 4, 8... at a time on their own
    boundaries, empty ones included so that bars stand at even steps of log(latency). The
    zero bucket (lower bound 0) stays as it is."""
    zero = tuple(b for b in buckets if b.lower_ms == 0)
    rest = [b for b in buckets if b.lower_ms > 0]
    if not rest:
        return zero
    # Bounds are powers of 2^(1/8) in seconds (k6's schema 3), not in milliseconds.
    per_doubling = round(math.log(2) / math.log(rest[0].upper_ms / rest[0].lower_ms))
    index = {b: round(math.log2(b.upper_ms / 1000) * per_doubling) for b in rest}
    first, last = min(index.values()), max(index.values())
    merge = 1
    while (last - 1) // merge - (first - 1) // merge + 1 > max(1, at_most - len(zero)):
        merge *= 2
    groups = range((first - 1) // merge, (last - 1) // merge + 1)
    counts = dict.fromkeys(groups, 0)
    for bucket, i in index.items():
        counts[(i - 1) // merge] += bucket.requests
    return zero + tuple(Bucket(_ms_bound(g * merge / per_doubling),
                               _ms_bound((g + 1) * merge / per_doubling), counts[g])
                        for g in groups)


def _ms_bound(log2_seconds: float) -> float:
    return float(f"{2 ** log2_seconds * 1000:.6g}")


def optional_number(value: object) -> float | None:
    """A number read from a run file, None kept; TypeError for anything else."""
    if value is None:
        return None
    if isinstance(value, int | float | str):
        return float(value)
    raise TypeError(f"not a number: {value!r}")


# Said when a run has no breakdown.json and its meta.json does not say why.
NOT_RECORDED = "no breakdown: recorded before runs kept one (per endpoint, status, error type)"
# What bench records when k6 wrote into no Prometheus, so there was nothing to read.
NO_PROMETHEUS = ("no breakdown: k6 wrote into no Prometheus (--prometheus off, or none to "
                 "write to)")


def missing_line(meta: Mapping[str, Any]) -> str:
    """Why a run has no breakdown, in one line: what bench said, else its age."""
    section = meta.get("breakdown")
    missing = section.get("missing") if isinstance(section, dict) else None
    return str(missing) if missing else NOT_RECORDED
