"""Prometheus and the standard exporters in the local stack: what runs, where, scraping what.

Everything is Debian's (`scripts/system-packages`) and runs under the stack's supervisor as the
service side's user, on 127.0.0.1 only: Prometheus (its remote-write receiver takes anything
from anyone who reaches it, so it never leaves loopback), the node, PostgreSQL, Redis and
process exporters, HAProxy's built-in exporter on a frontend of its own, every replica's
`/metrics` (its workers summed by prometheus-client's multiprocess mode), and the breaker's
states through the node exporter's textfile collector. Per-process CPU and memory come from
Debian's process exporter: the replicas' multiprocess mode has no process collector.
"""

from __future__ import annotations

import json
import shutil
import urllib.parse
from pathlib import Path
from typing import Any

import yaml

from alumnos_cli.errors import AlumnosError
from alumnos_cli.files import write_text
from alumnos_cli.stack.http import http_get
from alumnos_cli.stack.ports import free_port
from alumnos_cli.stack.prometheus_args import prometheus_argv
from alumnos_cli.stack.service_user import ServiceSide, service_subfolder
from alumnos_cli.stack.state import MonitoringRecord
from alumnos_cli.stack.supervisor import Program

DEFAULT_PROMETHEUS_PORT = 9090
# One scrape a second: the resolution of k6's own time series, at a cost measured in
# benchmarks/monitoring_cost.py.
SCRAPE_INTERVAL = "1s"
PROMETHEUS_CONFIG = "prometheus.yml"
PROCESS_CONFIG = "process-exporter.yml"
POSTGRES_QUERIES = "postgres-exporter-queries.yml"  # what PostgreSQL's active backends wait on
# Sampled at each scrape: the run's database's active backends by what they wait on, CPU when
# on nothing (the exporter's custom-query format; the metric is pg_waits_backends).
# Every kind on every scrape, 0 included, so an average over the window counts the idle ones.
WAIT_KINDS = ("CPU", "LWLock", "Lock", "BufferPin", "Activity", "Client", "Extension", "IPC",
              "Timeout", "IO")
WAITS_QUERY = {"pg_waits": {
    "query": "SELECT k AS wait_event_type, count(a.pid) AS backends FROM unnest(ARRAY["
             + ", ".join(f"'{kind}'" for kind in WAIT_KINDS) + "]) k LEFT JOIN "
             "pg_stat_activity a ON coalesce(a.wait_event_type, 'CPU') = k "
             "AND a.datname = current_database() AND a.state = 'active' "
             "AND a.pid <> pg_backend_pid() GROUP BY k",
    "metrics": [{"wait_event_type": {"usage": "LABEL",
                                     "description": "What the backends wait on (CPU: nothing)"}},
                {"backends": {"usage": "GAUGE",
                              "description": "Active backends of the database"}}]}}
TEXTFILE_DIR = "textfile"  # the node exporter's textfile collector: the breaker's metrics
DATA_DIR = "prometheus"
METRICS_DIR = "metrics"  # one folder per replica for prometheus-client's multiprocess mode
# The exporters: program and job name, Debian's binary, the port they usually take (we take
# the first free one from there, on 127.0.0.1).
EXPORTERS = {
    "node": ("prometheus-node-exporter", 9100),
    "postgres": ("prometheus-postgres-exporter", 9187),
    "redis": ("prometheus-redis-exporter", 9121),
    "process": ("prometheus-process-exporter", 9256),
}
HAPROXY_METRICS_PORT = 8405


def find_binary(name: str) -> str:
    """A Debian Prometheus binary, or one line saying how to install it."""
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists()
                                   else None)
    if found is None:
        raise AlumnosError(f"{name} is not installed (alumnos up runs Prometheus and its "
                           "exporters)",
                           f"bash scripts/system-packages (apt-get install {name}), or "
                           "alumnos up --no-prometheus")
    return found


def plan_monitoring(prometheus_port: int, replica_ports: dict[str, int],
                    *, balancer: bool) -> MonitoringRecord:
    """Choose a free port for each exporter; the targets Prometheus will scrape."""
    targets = {"alumnos": [f"127.0.0.1:{port}" for port in replica_ports.values()],
               "prometheus": [f"127.0.0.1:{prometheus_port}"]}
    taken = {prometheus_port, *replica_ports.values()}
    if balancer:
        targets["haproxy"] = [f"127.0.0.1:{_free(HAPROXY_METRICS_PORT, taken)}"]
    for job, (_, usual) in EXPORTERS.items():
        targets[job] = [f"127.0.0.1:{_free(usual, taken)}"]
    return MonitoringRecord(url=f"http://127.0.0.1:{prometheus_port}", port=prometheus_port,
                            targets=targets)


def _free(start: int, taken: set[int]) -> int:
    port = free_port(start)
    while port in taken:
        port = free_port(port + 1)
    taken.add(port)
    return port


def port_of(record: MonitoringRecord, job: str) -> int:
    """The port of a job's (first) target."""
    return int(record.targets[job][0].rsplit(":", 1)[1])


def prometheus_config(record: MonitoringRecord, replica_names: dict[str, int]) -> str:
    """prometheus.yml: every target of the stack, each replica labelled with its name."""
    by_port = {port: name for name, port in replica_names.items()}
    jobs: list[dict[str, Any]] = [{
        "job_name": "alumnos",
        "static_configs": [{"targets": [target],
                            "labels": {"replica": by_port[int(target.rsplit(":", 1)[1])]}}
                           for target in record.targets["alumnos"]]}]
    jobs += [{"job_name": job, "static_configs": [{"targets": targets}]}
             for job, targets in record.targets.items() if job != "alumnos"]
    return yaml.safe_dump({"global": {"scrape_interval": SCRAPE_INTERVAL,
                                      "evaluation_interval": "15s"},
                           "scrape_configs": jobs}, sort_keys=False)


def process_exporter_config(replica_ports: dict[str, int]) -> str:
    """Which processes form each component (first match wins; children go with their
    parent, so a replica's Granian workers count as the replica)."""
    names: list[dict[str, Any]] = [
        {"name": name, "cmdline": [rf"granian .*--port {port}( |$)"]}
        for name, port in replica_ports.items()]
    names += [
        {"name": "haproxy", "comm": ["haproxy"]},
        {"name": "breaker", "cmdline": [r"alumnos_cli\.stack\.watcher"]},
        {"name": "supervisord", "cmdline": [r"supervisor\.supervisord"]},
        {"name": "postgres", "comm": ["postgres"]},
        {"name": "redis", "comm": ["redis-server"]},
        {"name": "prometheus", "exe": ["/usr/bin/prometheus"]},
        {"name": "exporters", "exe": [f"/usr/bin/{binary}" for binary, _ in EXPORTERS.values()]},
        {"name": "k6", "comm": ["k6"]},
    ]
    return yaml.safe_dump({"process_names": names}, sort_keys=False)


def exporter_command(job: str, record: MonitoringRecord, folder: Path) -> list[str]:
    """One exporter's command line; credentials travel in the environment, never in argv."""
    binary, _ = EXPORTERS[job]
    listen = f"127.0.0.1:{port_of(record, job)}"
    extra = {
        "node": [f"--collector.textfile.directory={folder / TEXTFILE_DIR}"],
        "process": [f"-config.path={folder / PROCESS_CONFIG}", "-threads=false",
                    "-gather-smaps=false"],
        "postgres": [f"--extend.query-path={folder / POSTGRES_QUERIES}"],
    }.get(job, [])
    flag = "-web.listen-address" if job in ("redis", "process") else "--web.listen-address"
    return [find_binary(binary), f"{flag}={listen}", *extra]


def exporter_environment(database_url: str, redis_url: str) -> dict[str, str]:
    """What the PostgreSQL and Redis exporters read their targets from (as the replicas get
    theirs: in supervisord's environment, not in its configuration file)."""
    return {"DATA_SOURCE_NAME": postgres_dsn(database_url), "REDIS_ADDR": redis_url}


def postgres_dsn(url: str) -> str:
    """The database URL as the exporter's driver (Go's lib/pq) takes it: a plain postgres://
    URL, TLS off unless the URL asks (lib/pq's default would insist on it)."""
    parts = urllib.parse.urlsplit(url)
    scheme = "postgres" if parts.scheme.startswith("postgres") else parts.scheme
    query = dict(urllib.parse.parse_qsl(parts.query))
    query.setdefault("sslmode", "disable")
    return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path,
                                    urllib.parse.urlencode(query), ""))


def prometheus_command(record: MonitoringRecord, folder: Path) -> list[str]:
    """Prometheus on 127.0.0.1, its data in the service side's folder."""
    return prometheus_argv(folder / PROMETHEUS_CONFIG, folder / DATA_DIR, record.port,
                           binary=find_binary("prometheus"))


def is_ready(record: MonitoringRecord) -> bool:
    """True once Prometheus answers and has scraped every target at least once (it takes up
    to a few seconds to start scraping what its configuration lists): a run started then has
    a sample of every counter before its load."""
    answer = http_get(f"{record.url}/-/ready", timeout=1.0)
    if answer is None or answer[0] != 200:
        return False
    health = target_health(record) or {}
    return len(health) == record.target_count and "unknown" not in health.values()


def target_health(record: MonitoringRecord) -> dict[str, str] | None:
    """Each scrape target's health as Prometheus last saw it ("up", "down", "unknown"), by
    job and instance; None when Prometheus does not answer."""
    answer = http_get(f"{record.url}/api/v1/targets?state=active", timeout=2.0)
    if answer is None or answer[0] != 200:
        return None
    try:
        active = json.loads(answer[1])["data"]["activeTargets"]
    except (ValueError, KeyError, TypeError):
        return None
    return {f"{t['labels'].get('job')} {t['labels'].get('instance')}": str(t.get("health"))
            for t in active if isinstance(t, dict) and isinstance(t.get("labels"), dict)}


def targets_not_up(health: dict[str, str]) -> list[str]:
    """The targets (job and instance) Prometheus did not find up, in order."""
    return sorted(target for target, state in health.items() if state != "up")


def monitoring_programs(record: MonitoringRecord, side: ServiceSide,
                        replica_ports: dict[str, int]) -> list[Program]:
    """Prometheus and the exporters, their configuration written into the service side's
    folder and their writable folders given to its user."""
    write_text(side.folder / PROMETHEUS_CONFIG, prometheus_config(record, replica_ports))
    write_text(side.folder / PROCESS_CONFIG, process_exporter_config(replica_ports))
    write_text(side.folder / POSTGRES_QUERIES, yaml.safe_dump(WAITS_QUERY, sort_keys=False))
    service_subfolder(side, DATA_DIR)
    service_subfolder(side, TEXTFILE_DIR)
    return [Program(name="prometheus", command=prometheus_command(record, side.folder)),
            *(Program(name=f"{job}-exporter", command=exporter_command(job, record, side.folder))
              for job in EXPORTERS)]


def replica_metrics_dir(side: ServiceSide, replica: str) -> Path:
    """The replica's folder for prometheus-client's multiprocess mode. A worker that restarts
    leaves its files there and they keep counting: the replica's counters never go back."""
    return service_subfolder(side, METRICS_DIR, replica)
