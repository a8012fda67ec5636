"""How alumnos starts a Prometheus that k6 can write into: one command line for everyone.

The stack's Prometheus and the throwaway one of the tests (tests/prometheus_server.py) are
both started from `prometheus_argv`, so they accept the same writes.
"""

from __future__ import annotations

from pathlib import Path

# Debian 12's package (Prometheus 2.42): old enough to need both features asked for by flag.
PROMETHEUS_BINARY = "/usr/bin/prometheus"
# k6's experimental-prometheus-rw output pushes here (Prometheus' remote-write receiver).
WRITE_PATH = "/api/v1/write"
# k6 sends its trends as native histograms: without the feature, Prometheus 2.42 drops them
# and keeps only the counters, rates and gauges (k6_http_reqs_total, ...).
WRITE_FLAGS = ("--web.enable-remote-write-receiver", "--enable-feature=native-histograms")
# Benchmarks are looked at within days; the size cap keeps a long soak from filling the disk.
RETENTION_FLAGS = ("--storage.tsdb.retention.time=2d", "--storage.tsdb.retention.size=1GB")
# Nothing to scrape: every sample arrives by remote write.
MINIMAL_CONFIG = "global:\n  evaluation_interval: 15s\n"


def prometheus_argv(config: Path, data_dir: Path, port: int, host: str = "127.0.0.1",
                    binary: str = PROMETHEUS_BINARY) -> list[str]:
    """The command line of a Prometheus on host:port that accepts k6's remote writes."""
    return [binary, f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address={host}:{port}", *WRITE_FLAGS, *RETENTION_FLAGS,
            "--log.level=warn"]
