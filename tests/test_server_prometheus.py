"""What bench makes of Prometheus's answers for a run's window (pure functions)."""

from __future__ import annotations

from alumnos_cli.bench.server_prometheus import change, missing_figures
from alumnos_cli.stack.monitoring import postgres_dsn


def _vector(**values: float) -> list[dict[str, object]]:
    return [{"metric": {"server": name}, "value": [0, str(value)]}
            for name, value in values.items()]


def test_a_counters_change_over_the_window_survives_a_restart() -> None:
    counter = {"start": _vector(a=100, b=50), "end": _vector(a=160, b=20, c=7)}
    # b restarted (HAProxy reloaded): what it counted since is the floor; c appeared.
    assert change(counter) == {"a": 60, "b": 20, "c": 7}


def test_figures_without_series_are_named() -> None:
    empty: dict[str, object] = {"start": [], "end": []}
    full = {"start": _vector(a=1), "end": _vector(a=2)}
    read = {"counters": {"requests_by_replica": full, "cache_outcomes": empty,
                         "cpu_seconds_by_component": full, "pg_transactions": empty,
                         "redis_hits": full}}
    assert missing_figures(read) == ["cache outcomes", "PostgreSQL"]


def test_the_postgres_exporter_gets_a_plain_url_with_tls_off_unless_asked() -> None:
    assert postgres_dsn("postgresql+psycopg2://u:p@127.0.0.1:5432/alumnos") == \
        "postgres://u:p@127.0.0.1:5432/alumnos?sslmode=disable"
    assert postgres_dsn("postgresql://u@h/db?sslmode=require") == \
        "postgres://u@h/db?sslmode=require"
