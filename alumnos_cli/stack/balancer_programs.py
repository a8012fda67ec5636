"""Local mode's balancer: HAProxy's configuration from the patterns spec, and the breaker
watcher that follows HAProxy's line for every response."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from alumnos_cli.errors import AlumnosError
from alumnos_cli.files import write_json
from alumnos_cli.stack import haproxy
from alumnos_cli.stack.breaker import PAUSE_FILE, STATE_FILE, BreakerConfig
from alumnos_cli.stack.monitoring import TEXTFILE_DIR, port_of
from alumnos_cli.stack.options import ServiceOptions
from alumnos_cli.stack.service_user import ServiceSide, service_subfolder
from alumnos_cli.stack.state import MonitoringRecord, ReplicaRecord
from alumnos_cli.stack.supervisor import Program

BREAKER_CONFIG = "breaker.json"
HAPROXY_CONFIG = "haproxy.cfg"
RUNTIME_SOCKET = "haproxy.sock"
BREAKER_METRICS = "alumnos_breaker.prom"  # read by the node exporter's textfile collector


def balancer_programs(options: ServiceOptions, replicas: tuple[ReplicaRecord, ...],
                      binary: Path, side: ServiceSide,
                      monitoring: MonitoringRecord | None) -> list[Program]:
    """HAProxy, and the watcher that reads its line for every response (the breaker)."""
    runtime_socket = side.folder / RUNTIME_SOCKET
    config = side.folder / HAPROXY_CONFIG
    metrics_port = port_of(monitoring, "haproxy") if monitoring is not None else None
    config.write_text(haproxy.haproxy_config(
        options.patterns,
        [haproxy.Replica(r.name, options.replica_host, r.port) for r in replicas],
        options.host, options.port,
        haproxy.BalancerPaths(runtime_socket, log_ring=True, metrics_port=metrics_port),
        slots=options.workers * options.blocking_threads))
    problem = haproxy.check_config(binary, config)
    if problem:
        raise AlumnosError(f"HAProxy rejects the generated configuration {config}: {problem}")
    metrics_file = (service_subfolder(side, TEXTFILE_DIR) / BREAKER_METRICS
                    if monitoring is not None else None)
    breaker_config = side.folder / BREAKER_CONFIG
    write_json(breaker_config, asdict(_breaker_config(options, replicas, side, runtime_socket,
                                                      metrics_file)))
    # The watcher follows HAProxy's ring from when it can connect (it retries meanwhile).
    return [Program(name="breaker",
                    command=[side.python, "-m", "alumnos_cli.stack.watcher",
                             str(breaker_config)]),
            Program(name="haproxy", command=[str(binary), "-db", "-f", str(config)])]


def _breaker_config(options: ServiceOptions, replicas: tuple[ReplicaRecord, ...],
                    side: ServiceSide, runtime_socket: Path,
                    metrics_file: Path | None) -> BreakerConfig:
    spec = options.patterns
    return BreakerConfig(
        replicas=[r.name for r in replicas], enabled=spec.circuit_breaker,
        latency_ms=spec.circuit_breaker_latency_ms, quantile=spec.circuit_breaker_quantile,
        window_s=spec.circuit_breaker_window_s, min_samples=spec.circuit_breaker_min_samples,
        check_period_ms=spec.circuit_breaker_check_period_ms,
        fallback_s=spec.circuit_breaker_fallback_s, recovery_s=spec.circuit_breaker_recovery_s,
        peer_factor=spec.circuit_breaker_peer_factor,
        error_share=spec.circuit_breaker_error_share,
        max_ejected_share=spec.circuit_breaker_max_ejected_share,
        runtime_socket=str(runtime_socket), state_file=str(side.folder / STATE_FILE),
        pause_file=str(side.folder / PAUSE_FILE),
        metrics_file=str(metrics_file) if metrics_file else None)
