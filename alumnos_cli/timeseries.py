"""Per-second figures of a run, from k6's web-dashboard recording.

k6 aggregates its metrics in-process every period (1 s here) for its web dashboard and can
record those aggregates (`K6_WEB_DASHBOARD_RECORD`): a gzipped NDJSON of events. "metric"
events declare metrics; each "snapshot" event holds one array per declared metric, in the
metrics' alphabetical order, with the values of that period only (trend: avg, max, med, min,
p(90), p(95), p(99); counter: count, rate; rate: rate; gauge: value). This costs k6 far less
than writing every sample (`--out csv` or `json`); benchmarks/timeseries_cost.py measures it.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alumnos_cli.errors import RunFolderError

TIMESERIES_FILE = "timeseries.ndjson.gz"
PERIOD = "1s"
TREND = ("avg", "max", "med", "min", "p(90)", "p(95)", "p(99)")


def recording_env(folder: Path) -> dict[str, str]:
    """Environment that makes k6 record its per-second aggregates into the run folder."""
    return {"K6_WEB_DASHBOARD": "true", "K6_WEB_DASHBOARD_PORT": "-1",
            "K6_WEB_DASHBOARD_PERIOD": PERIOD,
            "K6_WEB_DASHBOARD_RECORD": str((folder / TIMESERIES_FILE).resolve())}


@dataclass(frozen=True)
class TimeSeries:
    """One point per period: seconds from the start, and the period's figures."""

    seconds: list[float] = field(default_factory=list)
    requests_per_s: list[float] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)  # share of failed requests
    p50_ms: list[float | None] = field(default_factory=list)
    p95_ms: list[float | None] = field(default_factory=list)
    p99_ms: list[float | None] = field(default_factory=list)
    vus: list[float | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.seconds)


def read_timeseries(folder: Path) -> TimeSeries | None:
    """The run's time series, None when it was not recorded; an error naming a corrupt file."""
    path = folder / TIMESERIES_FILE
    if not path.exists():
        return None
    try:
        with gzip.open(path, "rt") as handle:
            events = [json.loads(line) for line in handle if line.strip()]
    except (OSError, EOFError, zlib.error, ValueError, UnicodeDecodeError) as exc:
        raise RunFolderError(f"{path} is not a readable k6 recording ({exc})",
                             "delete it to report the run without its time series") from None
    try:
        return parse_events(events, str(path))
    except (TypeError, IndexError, KeyError, AttributeError, ValueError) as exc:
        raise RunFolderError(f"{path} is not a readable k6 recording ({type(exc).__name__}: "
                             f"{exc})", "delete it to report the run without its time series"
                             ) from None


def parse_events(events: list[dict[str, Any]], source: str = "recording") -> TimeSeries:
    """Snapshots to series; metrics a snapshot lacks give gaps (None) or zeros."""
    declared: set[str] = set()
    start: float | None = None
    series = TimeSeries()
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
            _append(series, dict(zip(names, data, strict=True)), start)
    return series


def _append(series: TimeSeries, values: dict[str, list[float]], start: float | None) -> None:
    time_ms = float((values.get("time") or [start or 0])[0])
    series.seconds.append(round((time_ms - (start or time_ms)) / 1000, 1))
    series.requests_per_s.append(float(_at(values, "http_reqs", 1) or 0))
    series.errors.append(float(_at(values, "http_req_failed", 0) or 0))
    duration = values.get("http_req_duration")
    series.p50_ms.append(_at(values, "http_req_duration", TREND.index("med")) if duration
                         else None)
    series.p95_ms.append(_at(values, "http_req_duration", TREND.index("p(95)")) if duration
                         else None)
    series.p99_ms.append(_at(values, "http_req_duration", TREND.index("p(99)")) if duration
                         else None)
    vus = _at(values, "vus", 0)
    series.vus.append(vus)  # a gap before k6 first reports it, not a drop to 0


def _at(values: dict[str, list[float]], metric: str, index: int) -> float | None:
    row = values.get(metric) or []
    return float(row[index]) if len(row) > index and row[index] is not None else None


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(points: list[float | None], width: int = 60) -> str:
    """A row of block characters, one per bucket of points (gaps as spaces)."""
    present = [p for p in points if p is not None]
    if not present:
        return ""
    buckets = _buckets(points, width)
    low, high = min(present), max(present)
    span = (high - low) or 1.0
    return "".join(" " if b is None else SPARKS[min(len(SPARKS) - 1,
                                                     int((b - low) / span * len(SPARKS)))]
                   for b in buckets)


def _buckets(points: list[float | None], width: int) -> list[float | None]:
    if len(points) <= width:
        return points
    size = len(points) / width
    out: list[float | None] = []
    for i in range(width):
        chunk = [p for p in points[int(i * size):int((i + 1) * size)] if p is not None]
        out.append(sum(chunk) / len(chunk) if chunk else None)
    return out
