"""up / status / down with real Granian processes, and a private PostgreSQL cluster."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from alumnos_cli.commands.common import resolve_settings
from alumnos_cli.database import is_reachable
from alumnos_cli.seeding import seed_alumnos
from alumnos_cli.settings import Settings
from alumnos_cli.stack import local
from alumnos_cli.stack.ports import free_port
from alumnos_cli.stack.postgres import cluster_root
from alumnos_cli.stack.state import load_state

pytestmark = pytest.mark.slow


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


@pytest.fixture
def options() -> local.ServiceOptions:
    return local.ServiceOptions(port=free_port(18080), workers=2, blocking_threads=2)


@pytest.fixture
def stack(settings: Settings, options: local.ServiceOptions) -> Iterator[local.UpResult]:
    seed_alumnos(settings, count=300, seed=2)
    result = local.up(settings, options)
    yield result
    local.down(settings)


def test_up_serves_pages_and_status_sees_every_component(
        stack: local.UpResult, settings: Settings, options: local.ServiceOptions) -> None:
    url = stack.state.service.url
    assert url == f"http://127.0.0.1:{options.port}"
    answer = local.http_get(f"{url}/api/v1/alumno/alumno?limit=100&offset=0")
    assert answer is not None and answer[0] == 200
    assert b'"total": 300' in answer[1]
    components = {c.name: c for c in local.status(settings)}
    assert components["service"].answers
    assert "2 workers" in components["service"].detail
    assert components["postgresql"].answers
    assert components["postgresql"].detail.startswith("300 alumnos")
    assert components["redis"].answers


def test_second_up_changes_nothing(stack: local.UpResult, settings: Settings,
                                   options: local.ServiceOptions) -> None:
    again = local.up(settings, local.ServiceOptions(port=options.port + 1, workers=1))
    assert again.already_running
    assert again.state == stack.state
    assert local.http_get(f"http://127.0.0.1:{options.port + 1}/health") is None


def test_down_stops_the_server_and_all_its_workers(stack: local.UpResult,
                                                   settings: Settings) -> None:
    pid = stack.state.service.process.pid
    assert len(_group_members(pid)) >= 3  # the Granian main process and two workers
    stopped = local.down(settings)
    assert stopped == [f"service (pid {pid})"]
    assert _group_members(pid) == []
    assert local.http_get(f"{stack.state.service.url}/health") is None
    assert load_state(settings.state_dir) is None
    assert local.down(settings) == []


def test_down_leaves_a_stranger_alone(stack: local.UpResult, settings: Settings) -> None:
    # A recorded pid that now belongs to another process (pid reuse) must not be signalled.
    record = stack.state.service.process
    forged = type(record)(pid=os.getpid(), started=record.started)
    assert not forged.alive()
    assert not forged.stop()


def test_port_in_use_is_refused(settings: Settings, options: local.ServiceOptions) -> None:
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", options.port))
        busy.listen()
        with pytest.raises(Exception, match=f"port {options.port} on 127.0.0.1 is already"):
            local.up(settings, options)


def test_unreachable_postgres_starts_a_private_cluster(
        tmp_path: Path, settings: Settings, options: local.ServiceOptions) -> None:
    dead = Settings.resolve(env={}, database_url="postgresql://postgres@127.0.0.1:1/alumnos",
                            redis_url=settings.redis_url, state_dir=tmp_path / "private",
                            results_dir=tmp_path / "results")
    root = cluster_root(dead.state_dir)
    try:
        result = local.up(dead, options)
        assert result.started_postgres and result.state.postgres is not None
        private_url = result.state.postgres.url
        assert is_reachable(private_url)
        # Other commands pick the recorded URL up when no flag or environment says otherwise.
        assert resolve_settings(state_dir=dead.state_dir).database_url == private_url
        seed_alumnos(dead.with_database_url(private_url), count=50)
        page = local.http_get(f"{result.state.service.url}/api/v1/alumno/alumno?limit=1")
        assert page is not None and b'"total": 50' in page[1]
        stopped = local.down(dead)
        assert stopped[-1].startswith("private PostgreSQL")
        assert not is_reachable(private_url)
    finally:
        local.down(dead)
        shutil.rmtree(root, ignore_errors=True)


def test_missing_database_on_a_live_server_is_created_not_replaced(
        postgres_server: str, tmp_path: Path, options: local.ServiceOptions) -> None:
    from sqlalchemy import make_url

    name = f"alumnos_test_missing_{os.getpid()}"
    url = make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    settings = Settings.resolve(env={}, database_url=url, state_dir=tmp_path / "s")
    try:
        result = local.up(settings, options)
        assert not result.started_postgres
        assert result.state.database_url == url
        assert is_reachable(url)
    finally:
        local.down(settings)
        from sqlalchemy import text

        from tests.conftest import _admin_engine

        engine = _admin_engine()
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def test_private_cluster_from_the_pgserver_wheel(tmp_path: Path) -> None:
    from alumnos_cli.stack.postgres import (
        pgserver_bin_dir,
        start_private_cluster,
        stop_private_cluster,
    )

    bin_dir = pgserver_bin_dir()
    assert bin_dir is not None, "pgserver is a dependency of alumnos"
    state_dir = tmp_path / "wheel"
    root = cluster_root(state_dir)
    try:
        record = start_private_cluster(state_dir, bin_dir=bin_dir)
        assert record.bin_dir == str(bin_dir)
        assert is_reachable(record.url.replace("/alumnos", "/postgres"))
        stop_private_cluster(record)
        assert not is_reachable(record.url.replace("/alumnos", "/postgres"))
    finally:
        shutil.rmtree(root, ignore_errors=True)
