"""Page queries per request, counted by PostgreSQL (pg_stat_statements) on the private cluster
`up` starts, beside the service's own counter: what the cache saves, proven. A server that does
not load pg_stat_statements is named with how to enable it, and the run goes on."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alumnos_cli.bench.db_ceiling import database_ceiling_record
from alumnos_cli.bench.request import BenchRequest
from alumnos_cli.bench.run import run_bench
from alumnos_cli.main import app
from alumnos_cli.report.read import read_run
from alumnos_cli.report.render.numbers import number
from alumnos_cli.seed.load import seed_alumnos
from alumnos_cli.settings import Settings
from alumnos_cli.stack import local
from alumnos_cli.stack.http import http_get
from alumnos_cli.stack.monitoring import WAIT_KINDS
from alumnos_cli.stack.options import ServiceOptions
from alumnos_cli.stack.ports import free_block, free_port
from alumnos_cli.stack.postgres import cluster_root
from alumnos_cli.stack.state import running_state
from alumnos_service.db import PAGE_ORDER
from alumnos_service.paths import PAGE_PATH
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.slow


@pytest.fixture
def options() -> ServiceOptions:
    return ServiceOptions(port=free_block(18400, 2), replicas=1, workers=2, blocking_threads=2,
                          prometheus_port=free_port(19290))


@pytest.fixture
def private(tmp_path: Path, options: ServiceOptions) -> Iterator[Settings]:
    """A stack over the private cluster `up` starts when nothing answers at the database URL,
    seeded with enough alumnos for every cache-cold request of a short run to be new."""
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port(56300)}/alumnos"
    settings = Settings.resolve(env={}, database_url=nowhere, redis_url=REDIS_URL,
                                results_dir=tmp_path / "results", state_dir=tmp_path / "state")
    result = local.up(settings, options)
    try:
        assert result.started_postgres and result.state.postgres is not None
        seed_alumnos(settings.with_database_url(result.state.postgres.url), count=50_000, seed=3)
        yield settings
    finally:
        local.down(settings)
        # down keeps a private cluster's data for the next up; this one was the test's own.
        shutil.rmtree(cluster_root(settings.state_dir), ignore_errors=True)


def test_postgres_counts_no_page_query_for_a_cached_page_and_one_for_an_uncached(
        private: Settings) -> None:
    cached = read_run(run_bench(private, BenchRequest(scenario="spike", vus=4,
                                                      duration_seconds=3)).run_dir)
    cold = read_run(run_bench(private, BenchRequest(scenario="cache-cold", vus=4,
                                                    duration_seconds=3)).run_dir)
    for report in (cached, cold):
        queries = report.meta.queries
        assert queries is not None and queries.missing is None, queries
        assert report.server is not None
        # PostgreSQL's count and the service's own are the same queries.
        assert queries.page_queries == report.server.summary.db_queries
    cached_per, cold_per = (r.meta.queries.per_request(r.figures.requests)  # type: ignore[union-attr]
                            for r in (cached, cold))
    assert cached_per is not None and cached_per < 0.01  # the page came from the cache
    assert cold_per is not None and 0.99 <= cold_per <= 1.01  # one query, every request
    # PostgreSQL's execution time was recorded with the count (not judged: a figure, not a test).
    assert cold.meta.queries is not None and cold.meta.queries.mean_ms is not None
    # What PostgreSQL's backends waited on, from the exporter's query: every kind, each scrape.
    assert cold.server is not None and set(cold.server.summary.pg_waits) == set(WAIT_KINDS)
    # One round trip per uncached request: no ping on checkout, no BEGIN, no ROLLBACK.
    state = running_state(private.state_dir)
    assert state is not None and state.postgres is not None
    # Counted over 200 requests of their own, each for a page no run asked for (limit 7),
    # straight to the replica (the balancer's rate limit would answer most of them).
    _statements(state.postgres.url, "SELECT 0 FROM pg_stat_statements_reset()")
    replica = state.service.replicas[0].url
    for offset in range(200):
        answer = http_get(f"{replica}{PAGE_PATH}?limit=7&offset={offset}", timeout=10)
        assert answer is not None and answer[0] == 200, answer
    page_calls, upkeep_calls = _statements(state.postgres.url, _PAGE_AND_UPKEEP_CALLS)
    assert page_calls == 200
    # Before: a ping, a BEGIN and a ROLLBACK each, 600 in all; what is left is the
    # balancer's readiness checks and the exporter's scrapes over those seconds.
    assert upkeep_calls < 20, upkeep_calls
    # PostgreSQL's own ceiling for the page statement (what bench --calibrate adds), and the
    # share of it the cold run reached: its page statements per second over that ceiling.
    meta_file = cold.record.folder / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta["calibration"] = {"database": database_ceiling_record(
        state.postgres.url, cold.record.folder, clients=4, seconds=2)}
    meta_file.write_text(json.dumps(meta))
    ceiling = meta["calibration"]["database"]["queries_per_second"]
    reached = cold.figures.requests_per_second * cold_per
    shown = CliRunner().invoke(app, ["report", cold.name, "--results-dir",
                                     str(private.results_dir), "--format", "markdown"])
    assert shown.exit_code == 0, shown.output
    assert "consultas de página por petición (pg_stat_statements)" in shown.output
    assert f"- **parte del techo de PostgreSQL:** {number(reached / ceiling, 2, 'es')} " \
           f"({number(reached, 0, 'es')} consultas de página/s)\n" in shown.output


def test_a_server_without_pg_stat_statements_is_told_how_and_the_run_goes_on(
        stack: local.UpResult, settings: Settings) -> None:
    # The test database's server is the machine's own, started without the library.
    if _preloads_statements(settings.database_url):
        pytest.skip("this machine's PostgreSQL loads pg_stat_statements")
    report = read_run(run_bench(settings, BenchRequest(scenario="spike", vus=2,
                                                       duration_seconds=2)).run_dir)
    queries = report.meta.queries
    assert queries is not None and queries.page_queries is None
    assert queries.missing is not None
    assert "does not load pg_stat_statements: add shared_preload_libraries = " \
           "'pg_stat_statements'" in queries.missing
    assert report.figures.requests > 0


def _preloads_statements(database_url: str) -> bool:
    from sqlalchemy import text

    from alumnos_cli.database import engine_for

    engine = engine_for(database_url)
    try:
        with engine.connect() as conn:
            return "pg_stat_statements" in str(
                conn.execute(text("SHOW shared_preload_libraries")).scalar_one())
    finally:
        engine.dispose()


# The page statements, and those a pooled connection's upkeep would send (normalised).
_PAGE_AND_UPKEEP_CALLS = (
    f"SELECT coalesce(sum(calls) FILTER (WHERE s.query LIKE '%{PAGE_ORDER}%'), 0), "
    "coalesce(sum(calls) FILTER (WHERE lower(btrim(s.query, ' ;')) IN ('select $1', "
    "'select 1', 'begin', 'rollback')), 0) FROM pg_stat_statements s "
    "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = current_database()")


def _statements(database_url: str, sql: str) -> tuple[int, ...]:
    """One row of a query on the private cluster, as whole numbers (sum() gives numeric)."""
    from sqlalchemy import text

    from alumnos_cli.database import engine_for

    engine = engine_for(database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(text(sql)).one()
    finally:
        engine.dispose()
    return tuple(0 if v is None else int(v) for v in row)
