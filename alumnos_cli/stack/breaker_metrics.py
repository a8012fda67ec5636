"""The breaker's states and ejections, and the balancer's refusals, for Prometheus.

The watcher writes them as a text file that the node exporter's textfile collector serves
(prometheus-client's own writer: complete files only, replaced atomically), so no other port
opens for them. Counters restart at zero when the watcher restarts; Prometheus's rate() and
increase() take that as a reset.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from prometheus_client import CollectorRegistry, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from alumnos_cli.stack.breaker import CLOSED, OPEN, RECOVERING


class _BreakerSnapshot(Collector):
    """One snapshot of the watcher, as metric families."""

    def __init__(self, replicas: Mapping[str, Mapping[str, object]],
                 refused: Mapping[str, int]) -> None:
        self.replicas = replicas
        self.refused = refused

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        state = GaugeMetricFamily("alumnos_breaker_state", "1 for the breaker state each "
                                  "replica is in (closed, open, recovering).",
                                  labels=["replica", "state"])
        ejections = CounterMetricFamily("alumnos_breaker_ejections", "Times the breaker took "
                                        "the replica out of rotation.", labels=["replica"])
        for name, breaker in sorted(self.replicas.items()):
            for candidate in (CLOSED, OPEN, RECOVERING):
                state.add_metric([name, candidate], 1.0 if breaker.get("state") == candidate
                                 else 0.0)
            trips = breaker.get("trips")
            ejections.add_metric([name], float(trips) if isinstance(trips, int | float) else 0.0)
        refused = CounterMetricFamily("alumnos_balancer_refused", "Requests the balancer "
                                      "answered itself, by reason.", labels=["reason"])
        for reason, count in sorted(self.refused.items()):
            refused.add_metric([reason], float(count))
        yield from (state, ejections, refused)


def write_breaker_metrics(path: Path, replicas: Mapping[str, Mapping[str, object]],
                          refused: Mapping[str, int]) -> None:
    """Replace the textfile with this snapshot."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_BreakerSnapshot(replicas, refused))
    write_to_textfile(str(path), registry)
