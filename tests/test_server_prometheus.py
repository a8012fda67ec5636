"""What bench makes of Prometheus's answers for a run's window (pure functions)."""

from __future__ import annotations

from alumnos_cli.bench.server_prometheus import ServerScope, change, missing_figures
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
    read = {"counters": {"requests_by_replica": full, "requests_by_replica_service": empty,
                         "cache_outcomes": empty, "cpu_seconds_by_component": full,
                         "pg_transactions": empty, "redis_hits": full}}
    assert missing_figures(read) == ["cache outcomes", "PostgreSQL"]
    # Behind Traefik the replicas' own counters give the requests per replica.
    behind_traefik = {**read["counters"], "requests_by_replica": empty,
                      "requests_by_replica_service": full}
    assert missing_figures({"counters": behind_traefik}) == ["cache outcomes", "PostgreSQL"]
    neither = {**behind_traefik, "requests_by_replica_service": empty}
    assert missing_figures({"counters": neither})[0] == "requests per replica"


def test_a_compose_stacks_series_are_named_by_container_and_the_hosts_left_out() -> None:
    replica, database = "a" * 64, "b" * 64
    scope = ServerScope.for_containers({replica: "alumnos-1", database: "postgres"},
                                       {"172.17.0.5:5000": "alumnos-1"})
    assert scope.replica_groups == f".*({replica}).*"
    assert scope.name(f"[/docker/{replica} /docker/{replica}]") == "alumnos-1"
    assert scope.name("172.17.0.5:5000") == "alumnos-1"
    assert scope.name("[/ / /process_api/1f /]") is None  # the host's own processes
    # Local mode's labels are the names already.
    assert ServerScope().name("replica-2") == "replica-2"
    assert ServerScope.for_containers({}, {}).replica_groups == ".*(none).*"


def test_the_postgres_exporter_gets_a_plain_url_with_tls_off_unless_asked() -> None:
    assert postgres_dsn("postgresql+psycopg2://u:p@127.0.0.1:5432/alumnos") == \
        "postgres://u:p@127.0.0.1:5432/alumnos?sslmode=disable"
    assert postgres_dsn("postgresql://u@h/db?sslmode=require") == \
        "postgres://u@h/db?sslmode=require"
