"""The server side of a run, read from Prometheus for the load's window.

Prometheus scrapes the stack's exporters every second (stack/monitoring.py); right after the
load (before the verification that follows it) `bench` asks its HTTP API for the window
[load start, first scrape after the load end]: counters as their change over the window,
gauges and rates once a second. What it read is kept in the run folder (`prometheus.json`, the
queries and their answers, and `server.json` in the report's format), so the report renders
again after Prometheus is gone: `alumnos down` removes the stack's Prometheus with its data.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from alumnos_cli.files import write_json
from alumnos_cli.report.model import ServerSample, ServerSummary
from alumnos_cli.runfolder import PROMETHEUS_FILE, SERVER_FILE
from alumnos_cli.settings import mask_password
from alumnos_cli.stack.http import http_get

# The process exporter's groups that are replicas: local mode names them replica-N; the
# compose stack's are named by their containers' cgroups (ServerScope.for_containers).
LOCAL_REPLICA_GROUPS = "replica-[0-9]+"
BALANCED = 'sum by (server) (haproxy_server_http_responses_total{proxy="replicas"})'
# Counters, read at both ends of the window; their change is the run's.
COUNTERS = {
    "requests_by_replica": BALANCED,
    "requests_by_replica_service": 'sum by (replica) (alumnos_http_requests_total'
                                   '{route!~"/health|/metrics|/ready"})',
    "cache_outcomes": "sum by (outcome) (alumnos_cache_responses_total)",
    "cpu_seconds_by_component": "sum by (groupname) (namedprocess_namegroup_cpu_seconds_total)",
    "pg_transactions": "sum(pg_stat_database_xact_commit{datname=DB}) "
                       "+ sum(pg_stat_database_xact_rollback{datname=DB})",
    "redis_hits": "sum(redis_keyspace_hits_total)",
    # The service's own count of page and row queries sent to PostgreSQL.
    "db_queries": "sum(alumnos_db_queries_total)",
}
# Once a second over the window.
SERIES = {
    "service_cores": "sum(rate(namedprocess_namegroup_cpu_seconds_total{REPLICAS}[3s]))",
    "service_rss_bytes": 'sum(namedprocess_namegroup_memory_bytes{REPLICAS,memtype="resident"})',
    "pg_connections": "sum(pg_stat_activity_count{datname=DB})",
    "requests": BALANCED,
    "refused": "sum(alumnos_balancer_refused_total)",
    # HAProxy's connections to the replicas against their maxconn, and what waited for one.
    "balancer_sessions": 'sum(haproxy_server_current_sessions{proxy="replicas"})',
    "balancer_slots": 'sum(haproxy_server_limit_sessions{proxy="replicas"})',
    "balancer_queue": 'sum(haproxy_backend_current_queue{proxy="replicas"})',
    # PostgreSQL's active backends by what they wait on (stack/monitoring.py's custom query).
    "pg_waits": "sum by (wait_event_type) (pg_waits_backends{DB})",
}
# What each figure needs (any one of), to say what could not be read: requests per replica
# come from HAProxy's exporter in local mode, from the replicas' own counters behind Traefik.
NEEDS = {"requests per replica": ("requests_by_replica", "requests_by_replica_service"),
         "cache outcomes": ("cache_outcomes",), "CPU per component": ("cpu_seconds_by_component",),
         "PostgreSQL": ("pg_transactions",), "Redis": ("redis_hits",)}
SCRAPE_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class ServerScope:
    """Which of Prometheus's series are the stack's, and what to call them: the process
    exporter's groups that are replicas (a PromQL regex), and component names for labels
    that hold a container's id or address (empty: the labels are the names already)."""

    replica_groups: str = LOCAL_REPLICA_GROUPS
    names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_containers(cls, ids: dict[str, str], replica_addresses: dict[str, str]
                       ) -> ServerScope:
        """A compose stack's: containers by id and the replicas by scraped address, each to
        its component name (alumnos-1, traefik, ...)."""
        replicas = sorted(i for i, name in ids.items() if name in replica_addresses.values())
        return cls(replica_groups=f".*({'|'.join(replicas) or 'none'}).*",
                   names={**ids, **replica_addresses})

    def name(self, label: str) -> str | None:
        """The component a label is, or None for a series of none of the stack's."""
        if not self.names:
            return label
        return next((name for key, name in self.names.items() if key in label), None)


@dataclass(frozen=True)
class Window:
    """The load's window in Unix seconds."""

    start: float
    end: float


class PrometheusUnreadable(Exception):
    """Prometheus did not answer, or answered something that is not its API."""


def prometheus_api(base: str, path: str, params: dict[str, str]) -> Any:
    """One answer of Prometheus's HTTP API (its data.result); PrometheusUnreadable if none."""
    answer = http_get(f"{base}/api/v1/{path}?{urllib.parse.urlencode(params)}", timeout=10.0)
    if answer is None:
        raise PrometheusUnreadable(f"Prometheus does not answer at {base}")
    try:
        document = json.loads(answer[1])
    except ValueError:
        raise PrometheusUnreadable(f"{base} answered HTTP {answer[0]}, not Prometheus's API"
                                   ) from None
    if not isinstance(document, dict) or document.get("status") != "success":
        raise PrometheusUnreadable(f"Prometheus refused a query: "
                                   f"{document.get('error') if isinstance(document, dict) else ''}")
    return document["data"]["result"]


def _scoped(promql: str, database: str | None, scope: ServerScope) -> str:
    # The run's database when known; another stack's (--url) is every database it has.
    promql = promql.replace("{datname=DB}", f'{{datname="{database}"}}' if database else "")
    promql = promql.replace("{DB}", "")  # the custom query reads the exporter's database only
    return promql.replace("REPLICAS", f'groupname=~"{scope.replica_groups}"')


def first_scrape_after(base: str, moment: float, timeout: float = SCRAPE_WAIT_SECONDS) -> float:
    """A time by which Prometheus had scraped every target after `moment` (the load's end):
    evaluated then, each counter holds every response of the load."""
    deadline = time.monotonic() + timeout
    while True:
        scraped = prometheus_api(base, "query", {"query": "min(timestamp(up))"})
        if not scraped:
            return moment  # it scrapes nothing (k6's writes only): nothing to wait for
        if float(scraped[0]["value"][1]) > moment or time.monotonic() > deadline:
            # Each target's latest scrape is at or before the newest one.
            newest = prometheus_api(base, "query", {"query": "max(timestamp(up))"})
            return max(float(newest[0]["value"][1]) if newest else 0.0, moment)
        time.sleep(0.25)


def window_start(base: str | None) -> float:
    """When the load's window starts: now, once Prometheus has scraped every target after the
    check of the target before the load (its requests stay out of the run's counters; at most
    a scrape interval, a second, of waiting)."""
    moment = time.time()
    if base is None:
        return moment
    try:
        return first_scrape_after(base, moment)
    except PrometheusUnreadable:
        return moment  # said when the window is read


def read_window(base: str, window: Window, database: str | None,
                scope: ServerScope | None = None) -> dict[str, Any]:
    """Every query's answers for the window: what the run folder keeps (prometheus.json)."""
    scope = scope or ServerScope()
    counters = {}
    for name, promql in COUNTERS.items():
        query = _scoped(promql, database, scope)
        counters[name] = {"promql": query,
                          "start": prometheus_api(base, "query", {"query": query,
                                                         "time": f"{window.start:.3f}"}),
                          "end": prometheus_api(base, "query", {"query": query,
                                                       "time": f"{window.end:.3f}"})}
    series = {}
    for name, promql in SERIES.items():
        query = _scoped(promql, database, scope)
        series[name] = {"promql": query, "values": prometheus_api(base, "query_range", {
            "query": query, "start": f"{window.start:.3f}", "end": f"{window.end:.3f}",
            "step": "1"})}
    return {"window": {"start": window.start, "end": window.end}, "names": scope.names,
            "counters": counters, "series": series}


def _by_label(result: list[dict[str, Any]]) -> dict[str, float]:
    """A vector's values by its one label ("" when it has none)."""
    values = {}
    for item in result:
        labels = [value for key, value in item["metric"].items() if key != "__name__"]
        values[labels[0] if labels else ""] = float(item["value"][1])
    return values


def change(counter: dict[str, Any]) -> dict[str, float]:
    """What a counter counted over the window, by label; below its start value it restarted,
    and what it counted since the restart is the floor."""
    start, end = _by_label(counter["start"]), _by_label(counter["end"])
    return {label: value - start.get(label, 0.0) if value >= start.get(label, 0.0) else value
            for label, value in end.items()}


def missing_figures(read: dict[str, Any]) -> list[str]:
    """The figures Prometheus had no series for (an exporter down, another stack's names)."""
    return [figure for figure, counters in NEEDS.items()
            if not any(read["counters"][counter]["end"] for counter in counters)]


def _named(values: dict[str, float], scope: ServerScope) -> dict[str, float]:
    """Values by component name, series of none of the stack's left out."""
    named: dict[str, float] = {}
    for label, value in values.items():
        name = scope.name(label)
        if name is not None:
            named[name] = named.get(name, 0.0) + value
    return named


def server_summary(read: dict[str, Any]) -> ServerSummary:
    """The report's server-side summary from what was read."""
    scope = ServerScope(names=dict(read.get("names") or {}))
    counters = read["counters"]
    window = read["window"]
    seconds = max(1e-9, window["end"] - window["start"])
    # The balancer's count, unless the replicas' own counted more: a run that went to a
    # replica directly (--url) passed the balancer by, and behind Traefik there is no HAProxy.
    balanced = change(counters["requests_by_replica"])
    served = _named(change(counters["requests_by_replica_service"]), scope)
    by_replica = balanced if sum(balanced.values()) >= sum(served.values()) else served
    outcomes = {k: round(v) for k, v in change(counters["cache_outcomes"]).items()}
    hits, misses = outcomes.get("HIT", 0), outcomes.get("MISS", 0)
    cores = _series_values(read, "service_cores")
    rss = _series_values(read, "service_rss_bytes")
    connections = _series_values(read, "pg_connections")
    components = _named(change(counters["cpu_seconds_by_component"]), scope)
    pg = change(counters["pg_transactions"]).get("")
    redis = change(counters["redis_hits"]).get("")
    queries = change(counters["db_queries"]).get("")
    return ServerSummary(
        requests_by_replica={name: round(count) for name, count in sorted(by_replica.items())},
        cache_hit_ratio=hits / (hits + misses) if hits + misses else None,
        cache_outcomes=outcomes,
        service_cores_avg=round(sum(cores) / len(cores), 3) if cores else 0.0,
        service_cores_max=round(max(cores, default=0.0), 3),
        service_rss_mib_max=round(max(rss, default=0.0) / 2**20, 1),
        pg_connections_max=round(max(connections)) if connections else None,
        source="prometheus",
        cores_by_component={name: round(value / seconds, 3)
                            for name, value in sorted(components.items())},
        pg_transactions=None if pg is None else round(pg),
        redis_hits=None if redis is None else round(redis),
        db_queries=None if queries is None else round(queries),
        pg_waits=_pg_waits(read), **_balancer_peaks(read))


def _balancer_peaks(read: dict[str, Any]) -> dict[str, int | None]:
    """The most connections HAProxy held to the replicas, their maxconn, the longest queue
    (None without HAProxy: behind Traefik, or no balancer)."""
    def peak(name: str) -> int | None:
        values = _series_values(read, name)
        return round(max(values)) if values else None

    return {"balancer_sessions_max": peak("balancer_sessions"),
            "balancer_slots": peak("balancer_slots"), "balancer_queue_max": peak("balancer_queue")}


def _pg_waits(read: dict[str, Any]) -> dict[str, float]:
    """PostgreSQL's active backends by what they waited on, averaged over the window's
    scrapes (a scrape with none of a kind counts as 0 of it)."""
    result = read["series"]["pg_waits"]["values"]
    moments = {t for item in result for t, _ in item["values"]}
    if not moments:
        return {}
    return {str(item["metric"].get("wait_event_type", "")): round(
        sum(float(v) for _, v in item["values"]) / len(moments), 3) for item in result}


def _series_values(read: dict[str, Any], name: str) -> list[float]:
    result = read["series"][name]["values"]
    return [float(value) for _, value in result[0]["values"]] if result else []


def server_samples(read: dict[str, Any]) -> list[ServerSample]:
    """The per-second samples, their clock starting at the load's start."""
    start = read["window"]["start"]
    series = {name: {float(t): v for t, v in (read["series"][name]["values"][0]["values"]
                                              if read["series"][name]["values"] else [])}
              for name in ("service_cores", "service_rss_bytes", "pg_connections", "refused")}
    requests = {item["metric"].get("server", ""): {float(t): float(v) for t, v in item["values"]}
                for item in read["series"]["requests"]["values"]}
    first_refused = min(series["refused"].items(), default=(0.0, "0"))[1]
    return [ServerSample(
        t=round(moment - start, 1),
        service_cores=round(float(cores), 3),
        service_rss_mib=round(float(series["service_rss_bytes"].get(moment, 0)) / 2**20, 1),
        pg_connections=(round(float(series["pg_connections"][moment]))
                        if moment in series["pg_connections"] else None),
        requests={name: round(values[moment]) for name, values in sorted(requests.items())
                  if moment in values},
        refused=(round(float(series["refused"][moment]) - float(first_refused))
                 if moment in series["refused"] else None))
        for moment, cores in sorted(series["service_cores"].items())]


def record_server_side(base: str | None, window: Window, database: str | None,
                       run_dir: Path, why_none: str, scope: ServerScope | None = None,
                       settle: Callable[[str, float], float] = first_scrape_after
                       ) -> dict[str, Any]:
    """Read the window from Prometheus into the run folder; what meta.json says of it, with
    what a later `report --prometheus` needs to read the same window (`where`)."""
    where = where_to_read(window, database, scope or ServerScope())
    if base is None:
        return {"source": None, "missing": why_none, **where}
    shown = mask_password(base)
    try:
        window = Window(window.start, settle(base, window.end))
        read = read_window(base, window, database, scope)
    except PrometheusUnreadable as exc:
        return {"source": "prometheus", "url": shown,
                "missing": f"{mask_password(str(exc))}: no server-side figures", **where}
    write_json(run_dir / PROMETHEUS_FILE, {"url": shown, **read})
    missing = missing_figures(read)
    if len(missing) == len(NEEDS):
        return {"source": "prometheus", "url": shown,
                "missing": f"Prometheus at {shown} has no series for this run's window "
                           f"({', '.join(missing)})", **where}
    summary = server_summary(read)
    write_json(run_dir / SERVER_FILE, {"summary": asdict(summary),
                                       "samples": [asdict(s) for s in server_samples(read)]})
    return {"source": "prometheus", "url": shown, **where,
            "missing": f"no series in Prometheus for: {', '.join(missing)}" if missing else None}


def where_to_read(window: Window, database: str | None, scope: ServerScope) -> dict[str, Any]:
    """The load's window, the run's database and the stack's series, as meta.json keeps them."""
    return {"window": {"start": window.start, "end": window.end}, "database": database,
            "scope": {"replica_groups": scope.replica_groups, "names": scope.names}}


def scraped_by(base: str, moment: float) -> float:
    """For a window read later: the first time, at most SCRAPE_WAIT_SECONDS after `moment`, by
    which Prometheus had scraped every target after it (as first_scrape_after waits for live).
    A verification after the load that fell before that scrape is counted with the load."""
    if time.time() < moment + SCRAPE_WAIT_SECONDS:
        return first_scrape_after(base, moment)  # so soon that the scrape may be yet to come
    points = prometheus_api(base, "query_range", {
        "query": "min(timestamp(up))", "start": f"{moment:.3f}",
        "end": f"{moment + SCRAPE_WAIT_SECONDS:.3f}", "step": "0.5"})
    after = [float(t) for t, value in (points[0]["values"] if points else [])
             if float(value) > moment]
    return min(after, default=moment)
