"""Prometheus and the standard exporters in the compose stack: one source for what
docker-compose.yml runs beside Traefik and what `monitoring/` configures.

Every part is a container on the project's network; only Prometheus is published, on
127.0.0.1 (its remote-write receiver takes anything from anyone who reaches it). The replicas
are found by DNS (the service name answers with every replica's address), Traefik, PostgreSQL
and Redis through their exporters, and the host and its processes through the node and process
exporters, which read the host's /proc read-only. Each component's CPU and memory come from
the process exporter grouped by cgroup: every container's processes share one, which names the
container (`cpu_groups` turns that into its component). tests/test_container_files.py fails
when docker-compose.yml or monitoring/ disagree with this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from alumnos_cli.stack.monitoring import SCRAPE_INTERVAL
from alumnos_cli.stack.prometheus_args import prometheus_argv
from alumnos_cli.stack.state import MonitoringRecord

PROMETHEUS_SERVICE = "prometheus"
# Inside the Prometheus container: its configuration (mounted read-only) and its data volume.
PROMETHEUS_CONFIG = "/etc/prometheus/prometheus.yml"
PROMETHEUS_DATA = "/prometheus"
PROCESS_CONFIG = "/etc/process-exporter/config.yml"
HOST_PROC = "/host/proc"
HOST_SYS = "/host/sys"
REPLICA_PORT = 5000
TRAEFIK_METRICS = "traefik:8080"  # Traefik's own entrypoint, where /metrics is served


@dataclass(frozen=True)
class MonitoringService:
    """One monitoring container: the registry's image, the binary Debian's package installs
    (what the local image runs instead), the port it serves metrics on, its job name."""

    image: str
    debian_binary: str
    port: int
    job: str


# The registry's images are the releases Debian 12 packages, which the local image holds.
SERVICES = {
    PROMETHEUS_SERVICE: MonitoringService("prom/prometheus:v2.42.0", "prometheus", 9090,
                                          "prometheus"),
    "node-exporter": MonitoringService("prom/node-exporter:v1.5.0",
                                       "prometheus-node-exporter", 9100, "node"),
    "postgres-exporter": MonitoringService("quay.io/prometheuscommunity/postgres-exporter:v0.11.1",
                                           "prometheus-postgres-exporter", 9187, "postgres"),
    "redis-exporter": MonitoringService("oliver006/redis_exporter:v1.45.0",
                                        "prometheus-redis-exporter", 9121, "redis"),
    "process-exporter": MonitoringService("ncabatoff/process-exporter:0.7.10",
                                          "prometheus-process-exporter", 9256, "process"),
}


def prometheus_command() -> list[str]:
    """The Prometheus container's arguments: the same flags as local mode's, on every
    address of its own network namespace (published on loopback only)."""
    port = SERVICES[PROMETHEUS_SERVICE].port
    return prometheus_argv(Path(PROMETHEUS_CONFIG), Path(PROMETHEUS_DATA), port,
                           host="0.0.0.0")[1:]


def exporter_commands() -> dict[str, list[str]]:
    """Each exporter's arguments; targets and credentials travel in the environment."""
    return {
        "node-exporter": [f"--path.procfs={HOST_PROC}", f"--path.sysfs={HOST_SYS}"],
        "postgres-exporter": [],
        "redis-exporter": [],
        "process-exporter": [f"--procfs={HOST_PROC}", f"--config.path={PROCESS_CONFIG}",
                             "--threads=false", "--gather-smaps=false"],
    }


def prometheus_config() -> str:
    """monitoring/prometheus.yml: every target of the compose stack, by service name; each
    replica is one address of the service's DNS name, labelled `replica` with it."""
    jobs: list[dict[str, Any]] = [{
        "job_name": "alumnos",
        "dns_sd_configs": [{"names": ["alumnos"], "type": "A", "port": REPLICA_PORT,
                            "refresh_interval": "5s"}],
        "relabel_configs": [{"source_labels": ["__address__"], "target_label": "replica"}]},
        {"job_name": "traefik", "static_configs": [{"targets": [TRAEFIK_METRICS]}]}]
    jobs += [{"job_name": service.job,
              "static_configs": [{"targets": [f"{name}:{service.port}"
                                              if name != PROMETHEUS_SERVICE
                                              else f"localhost:{service.port}"]}]}
             for name, service in SERVICES.items()]
    header = ("# The compose stack's Prometheus configuration: written by alumnos_cli/stack/"
              "compose_monitoring.py\n# (tests/test_container_files.py fails when they "
              "disagree); change it there first.\n")
    return header + yaml.safe_dump({"global": {"scrape_interval": SCRAPE_INTERVAL,
                                               "evaluation_interval": "15s"},
                                    "scrape_configs": jobs}, sort_keys=False)


def process_exporter_config() -> str:
    """monitoring/process-exporter.yml: every process grouped by its cgroups, which hold
    its container's id (the host's own processes form groups without one)."""
    header = ("# The compose stack's process exporter: written by alumnos_cli/stack/"
              "compose_monitoring.py\n# (tests/test_container_files.py fails when they "
              "disagree); change it there first.\n")
    return header + yaml.safe_dump(
        {"process_names": [{"name": "{{.Cgroups}}", "cmdline": [".+"]}]}, sort_keys=False)


def monitoring_record(url: str, replicas: int) -> MonitoringRecord:
    """What Prometheus scrapes in a compose stack of `replicas`: status counts these, and
    `up` waits until each has been scraped once."""
    targets = {"alumnos": [f"alumnos-{n}:{REPLICA_PORT}" for n in range(1, replicas + 1)],
               "traefik": [TRAEFIK_METRICS]}
    targets |= {service.job: [f"{name}:{service.port}"] for name, service in SERVICES.items()}
    return MonitoringRecord(url=url, port=int(url.rsplit(":", 1)[1]), targets=targets)


def scale_to_zero() -> list[str]:
    """`docker compose up` arguments that start none of the monitoring containers."""
    return [arg for name in SERVICES for arg in ("--scale", f"{name}=0")]
