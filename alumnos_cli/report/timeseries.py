"""Per-second figures of a run, from k6's web-dashboard recording.

k6 aggregates its metrics in-process every period (1 s here) for its web dashboard and can
record those aggregates (`K6_WEB_DASHBOARD_RECORD`): a gzipped NDJSON of events. "metric"
events declare metrics; each "snapshot" event holds one array per declared metric, in the
metrics' alphabetical order, with the values of that period only (trend: avg, max, med, min,
p(90), p(95), p(99); counter: count, rate; rate: rate; gauge: value).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from alumnos_cli.errors import RunFolderError
from alumnos_cli.report.model import TimeSeries
from alumnos_cli.runfolder import GENERATORS_DIR, TIMESERIES_FILE

TREND = ("avg", "max", "med", "min", "p(90)", "p(95)", "p(99)")


def run_timeseries(folder: Path) -> TimeSeries | None:
    """A run's time series; a run split over generators has one per generator, merged."""
    own = read_timeseries(folder / TIMESERIES_FILE)
    if own is not None:
        return own
    parts = [read_timeseries(file)
             for file in sorted(folder.glob(f"{GENERATORS_DIR}/*/{TIMESERIES_FILE}"))]
    return merged_timeseries([part for part in parts if part is not None])


def read_timeseries(path: Path) -> TimeSeries | None:
    """The run's time series, None when it was not recorded; an error naming a corrupt file."""
    if not path.exists():
        return None
    hint = "delete it to report the run without its time series"
    try:
        with gzip.open(path, "rt") as handle:
            events = [json.loads(line) for line in handle if line.strip()]
    except (OSError, EOFError, zlib.error, ValueError, UnicodeDecodeError) as exc:
        raise RunFolderError(f"{path} is not a readable k6 recording ({exc})", hint) from None
    try:
        return parse_events(events, str(path))
    except (TypeError, IndexError, KeyError, AttributeError, ValueError) as exc:
        raise RunFolderError(f"{path} is not a readable k6 recording ({type(exc).__name__}: "
                             f"{exc})", hint) from None


class _Columns:
    """The series being built, one list per figure."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.requests_per_s: list[float] = []
        self.errors: list[float] = []
        self.p50_ms: list[float | None] = []
        self.p95_ms: list[float | None] = []
        self.p99_ms: list[float | None] = []
        self.vus: list[float | None] = []
        self.vus_max: list[float | None] = []

    def append(self, values: Mapping[str, Sequence[float | None]], start: float | None) -> None:
        time_ms = float((values.get("time") or [start or 0])[0] or 0)
        self.seconds.append(round((time_ms - (start or time_ms)) / 1000, 1))
        self.requests_per_s.append(float(_at(values, "http_reqs", 1) or 0))
        self.errors.append(float(_at(values, "http_req_failed", 0) or 0))
        for column, stat in ((self.p50_ms, "med"), (self.p95_ms, "p(95)"),
                             (self.p99_ms, "p(99)")):
            column.append(_at(values, "http_req_duration", TREND.index(stat)))
        self.vus.append(_at(values, "vus", 0))  # a gap before k6 first reports it, not a 0
        self.vus_max.append(_at(values, "vus_max", 0))

    def frozen(self) -> TimeSeries:
        return TimeSeries(tuple(self.seconds), tuple(self.requests_per_s), tuple(self.errors),
                          tuple(self.p50_ms), tuple(self.p95_ms), tuple(self.p99_ms),
                          tuple(self.vus), tuple(self.vus_max))


def parse_events(events: list[Any], source: str = "recording") -> TimeSeries:
    """Snapshots to series; metrics a snapshot lacks give gaps (None) or zeros."""
    declared: set[str] = set()
    start: float | None = None
    columns = _Columns()
    for event in events:
        kind, data = event.get("event"), event.get("data")
        if kind == "metric" and isinstance(data, dict):
            declared.update(data)
        elif kind == "start" and data:
            start = float(data[0][0])
        elif kind == "snapshot" and isinstance(data, list):
            names = sorted(declared)
            if len(names) != len(data):
                raise RunFolderError(f"{source}: a snapshot has {len(data)} values for "
                                     f"{len(names)} declared metrics")
            columns.append(dict(zip(names, data, strict=True)), start)
    return columns.frozen()


def _at(values: Mapping[str, Sequence[float | None]], metric: str, index: int) -> float | None:
    row = values.get(metric) or []
    value = row[index] if len(row) > index else None
    return None if value is None else float(value)


def merged_timeseries(parts: Sequence[TimeSeries]) -> TimeSeries | None:
    """The time series of a run split over several generators (bench --generator), from each
    one's recording, second by second (they were resumed together): requests and VUs add up,
    the error share is weighted by requests, and each second's percentile is the highest of
    the generators' (the merged one is at most that; k6 records no histogram per second).
    Each recording starts when its k6 starts, paused, before the hosts are resumed together:
    they are aligned on their first second with VUs or requests."""
    parts = [started for part in parts if len(started := _from_first_load(part))]
    if not parts:
        return None
    longest = max(parts, key=len)

    def at(values: tuple[Any, ...], index: int) -> Any:
        return values[index] if index < len(values) else None

    def summed(column: str, index: int) -> float | None:
        found = [at(getattr(p, column), index) for p in parts]
        known = [float(v) for v in found if v is not None]
        return sum(known) if known else None

    def highest(column: str, index: int) -> float | None:
        known = [float(v) for p in parts if (v := at(getattr(p, column), index)) is not None]
        return max(known) if known else None

    seconds = range(len(longest))
    requests = [summed("requests_per_s", i) or 0.0 for i in seconds]
    failed = [sum(float(at(p.errors, i) or 0) * float(at(p.requests_per_s, i) or 0)
                  for p in parts) for i in seconds]
    return TimeSeries(
        seconds=longest.seconds, requests_per_s=tuple(requests),
        errors=tuple(f / r if r else 0.0 for f, r in zip(failed, requests, strict=True)),
        p50_ms=tuple(highest("p50_ms", i) for i in seconds),
        p95_ms=tuple(highest("p95_ms", i) for i in seconds),
        p99_ms=tuple(highest("p99_ms", i) for i in seconds),
        vus=tuple(summed("vus", i) for i in seconds),
        vus_max=tuple(summed("vus_max", i) for i in seconds))


def _from_first_load(part: TimeSeries) -> TimeSeries:
    """The recording from its first second with VUs or requests, its clock starting there."""
    first = next((i for i in range(len(part)) if part.requests_per_s[i]
                  or (part.vus[i] if i < len(part.vus) else None)), len(part))
    if first == 0:
        return part
    trimmed = TimeSeries(*(tuple(getattr(part, f.name)[first:]) for f in fields(TimeSeries)))
    start = trimmed.seconds[0] if len(trimmed) else 0.0
    return replace(trimmed, seconds=tuple(round(t - start, 1) for t in trimmed.seconds))
