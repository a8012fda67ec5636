"""up / status / down with real Granian processes, and a private PostgreSQL cluster."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alumnos_cli.commands.common import resolve_settings
from alumnos_cli.database import is_reachable
from alumnos_cli.errors import AlumnosError
from alumnos_cli.main import app
from alumnos_cli.seed.load import seed_alumnos
from alumnos_cli.settings import Settings
from alumnos_cli.stack import haproxy, local, monitoring, supervisor
from alumnos_cli.stack.components import stack_processes
from alumnos_cli.stack.http import http_get
from alumnos_cli.stack.options import ServiceOptions
from alumnos_cli.stack.ports import free_block, free_port
from alumnos_cli.stack.postgres import cluster_root
from alumnos_cli.stack.state import load_state
from alumnos_cli.stack.status import stack_status

pytestmark = pytest.mark.slow
EXPORTER_PROGRAMS = {f"{job}-exporter" for job in monitoring.EXPORTERS}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _descendants(pid: int) -> set[int]:
    """Every live process below pid (supervisord's programs and their workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found and _alive(child):
                found.add(child)
                todo.append(child)
    return found


@pytest.fixture
def options() -> ServiceOptions:
    # Room for the balancer and two replicas above it.
    return ServiceOptions(port=free_block(18100, 3), replicas=2, workers=1,
                          blocking_threads=2, prometheus_port=free_port(19290))


def _served_by(url: str, requests: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _ in range(requests):
        with urllib.request.urlopen(f"{url}/api/v1/alumno/alumno?limit=5", timeout=5) as answer:
            replica = answer.headers["X-Served-By"].split(":")[0]
            counts[replica] = counts.get(replica, 0) + 1
    return counts


def test_up_serves_pages_through_the_balancer_and_status_sees_every_replica(
        stack: local.UpResult, settings: Settings, options: ServiceOptions) -> None:
    record = stack.state.service
    assert record.url == f"http://127.0.0.1:{options.port}"
    assert [r.port for r in record.replicas] == [options.port + 1, options.port + 2]
    answer = http_get(f"{record.url}/api/v1/alumno/alumno?limit=100&offset=0")
    assert answer is not None and answer[0] == 200
    assert b'"total": 300' in answer[1]
    assert _served_by(record.url, 10) == {"replica-1": 5, "replica-2": 5}
    report = stack_status(settings)
    components = {c.name: c for c in report.components}
    assert components["service"].answers
    assert "2 replica(s) x 1 workers, HAProxy in front" in components["service"].detail
    assert components["postgresql"].detail.startswith("300 alumnos")
    assert components["redis"].answers
    assert [(r.name, r.balancer.split()[0], r.breaker.split(",")[0]) for r in report.replicas] \
        == [("replica-1", "UP", "closed"), ("replica-2", "UP", "closed")]
    assert all(r.process.startswith("RUNNING") for r in report.replicas)
    assert sum(r.requests or 0 for r in report.replicas) >= 11
    assert report.cache_outcomes is not None and report.cache_outcomes.get("HIT", 0) >= 1
    assert report.cache_hit_ratio is not None and 0 < report.cache_hit_ratio < 1


def test_second_up_changes_nothing(stack: local.UpResult, settings: Settings,
                                   options: ServiceOptions) -> None:
    again = local.up(settings, ServiceOptions(port=options.port + 10, replicas=1))
    assert again.already_running
    assert again.state == stack.state
    assert http_get(f"http://127.0.0.1:{options.port + 10}/health") is None


def test_a_replica_that_dies_is_restarted_by_the_supervisor(
        stack: local.UpResult, settings: Settings) -> None:
    state_dir = settings.state_dir.resolve()
    before = {p.name: p.pid for p in supervisor.programs_info(state_dir)}
    os.killpg(before["replica-1"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    after = before
    while time.monotonic() < deadline:
        after = {p.name: p.pid for p in supervisor.programs_info(state_dir)
                 if p.state == "RUNNING"}
        if after.get("replica-1") not in (None, before["replica-1"]):
            break
        time.sleep(0.2)
    assert after.get("replica-1") not in (None, before["replica-1"])
    assert after["replica-2"] == before["replica-2"]  # the others were left alone
    answer = None
    while time.monotonic() < deadline:
        answer = http_get(f"{stack.state.service.replicas[0].url}/health")
        if answer is not None:
            break
        time.sleep(0.2)
    assert answer is not None and answer[0] == 200


def test_down_stops_everything_up_started(stack: local.UpResult, settings: Settings) -> None:
    supervisord = stack.state.service.supervisor.pid
    programs = supervisor.programs_info(settings.state_dir.resolve())
    assert {p.name for p in programs} == {"replica-1", "replica-2", "haproxy", "breaker",
                                          "prometheus", *EXPORTER_PROGRAMS}
    everything = _descendants(supervisord) | {supervisord}
    # supervisord, haproxy, breaker, 2 x (granian + 1 worker), Prometheus and 4 exporters
    assert len(everything) >= 12
    stopped = local.down(settings)
    assert stopped[0].startswith(f"supervisord (pid {supervisord})")
    assert [pid for pid in everything if _alive(pid)] == []
    assert http_get(f"{stack.state.service.url}/health") is None
    assert load_state(settings.state_dir) is None
    assert local.down(settings) == []


def _owner(pid: int) -> int:
    """The real uid of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


@pytest.mark.skipif(os.geteuid() != 0, reason="the service user is for stacks started as root")
def test_as_root_the_service_side_runs_unprivileged_in_a_folder_of_its_own(
        stack: local.UpResult, settings: Settings) -> None:
    import pwd

    service = stack.state.service
    user = pwd.getpwnam(service.service_user or "")
    assert user.pw_uid != 0
    programs = supervisor.programs_info(settings.state_dir.resolve())
    running = {p.name: p.pid for p in programs}
    assert set(running) == {"replica-1", "replica-2", "haproxy", "breaker", "prometheus",
                            *EXPORTER_PROGRAMS}
    for name, pid in running.items():
        for process in {pid} | _descendants(pid):  # Granian's workers too
            assert _owner(process) == user.pw_uid, name
    assert _owner(service.supervisor.pid) == 0  # only supervisord keeps root, to start them
    folder = Path(service.service_dir or "")
    info = folder.lstat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (user.pw_uid, 0o700)
    assert Path(service.runtime_socket or "").parent == folder
    assert Path(service.replicas[0].fault_file).is_relative_to(folder)
    assert stat.S_IMODE(settings.state_dir.stat().st_mode) == 0o700  # the invoking user's
    local.down(settings)
    assert not folder.exists()


def test_down_finds_the_programs_even_after_supervisord_died(
        stack: local.UpResult, settings: Settings) -> None:
    supervisord = stack.state.service.supervisor.pid
    everything = _descendants(supervisord)
    assert len(everything) >= 6
    os.kill(supervisord, signal.SIGKILL)  # its programs live on in their own process groups
    deadline = time.monotonic() + 10
    while _alive(supervisord) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(supervisord, os.WNOHANG)
        time.sleep(0.05)
    assert [pid for pid in everything if _alive(pid)]
    stopped = local.down(settings)
    assert any("outlived supervisord" in line for line in stopped), stopped
    assert [pid for pid in everything if _alive(pid)] == []
    assert http_get(f"{stack.state.service.url}/health") is None


def test_the_breaker_puts_back_what_someone_else_changed(stack: local.UpResult) -> None:
    socket_path = Path(stack.state.service.runtime_socket or "")
    haproxy.set_server_state(socket_path, "replica-2", "maint")
    haproxy.set_server_weight(socket_path, "replica-1", 10)
    # A recovery weight is a real share: 10% of 100, not of HAProxy's default weight of 1.
    assert {s.name: s.weight for s in haproxy.server_stats(socket_path)}["replica-1"] == 10
    deadline = time.monotonic() + 10
    stats = {}
    while time.monotonic() < deadline:
        stats = {s.name: s for s in haproxy.server_stats(socket_path)}
        if stats["replica-2"].status == "UP" and stats["replica-1"].weight == 100:
            break
        time.sleep(0.2)
    assert stats["replica-2"].status == "UP"  # the breaker has it closed: back in rotation
    assert stats["replica-1"].weight == 100


def test_no_healthy_replica_gives_a_fast_problem_not_a_hang(
        stack: local.UpResult, settings: Settings) -> None:
    with supervisor.client(settings.state_dir.resolve()) as rpc:
        for replica in stack.state.service.replicas:
            rpc.supervisor.stopProcess(replica.name)
    deadline = time.monotonic() + 15
    status = None
    while time.monotonic() < deadline:
        # The client timeout only detects a hang; HAProxy answers within the check interval.
        request = urllib.request.Request(f"{stack.state.service.url}/api/v1/alumno/alumno")
        try:
            urllib.request.urlopen(request, timeout=5)
        except urllib.error.HTTPError as exc:
            status, body, content_type = exc.code, exc.read(), exc.headers["Content-Type"]
            if status == 503:
                break
        time.sleep(0.2)
    assert status == 503
    assert content_type == "application/problem+json"
    assert json.loads(body)["status"] == 503


def test_without_a_balancer_one_replica_takes_the_port(settings: Settings) -> None:
    options = ServiceOptions(port=free_block(18100, 1), replicas=1, workers=1,
                             balancer=False, prometheus_port=free_port(19290))
    try:
        result = local.up(settings, options)
        record = result.state.service
        assert not record.balancer and record.runtime_socket is None
        assert record.replicas[0].port == options.port
        answer = http_get(f"{record.url}/health")
        assert answer is not None and answer[0] == 200
        names = {p.name for p in supervisor.programs_info(settings.state_dir.resolve())}
        assert names == {"replica-1", "prometheus", *EXPORTER_PROGRAMS}  # no HAProxy
        assert record.monitoring is not None and "haproxy" not in record.monitoring.targets
    finally:
        local.down(settings)


@pytest.mark.parametrize(("change", "message"), [
    ({"replicas": 2, "balancer": False}, "without a balancer only one replica"),
    ({"replicas": 0}, "--replicas must be between 1 and 32"),
    ({"workers": 0}, "--workers must be between 1 and 64"),
])
def test_impossible_options_are_refused(settings: Settings, change: dict[str, object],
                                        message: str) -> None:
    options = ServiceOptions(**change)  # type: ignore[arg-type]
    with pytest.raises(AlumnosError, match=message):
        local.up(settings, options)
    assert load_state(settings.state_dir) is None


def test_port_in_use_is_refused(settings: Settings, options: ServiceOptions) -> None:
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", options.port + 2))  # a replica's port
        busy.listen()
        with pytest.raises(AlumnosError, match=f"port {options.port + 2} on 127.0.0.1 is"):
            local.up(settings, options)


def test_logs_of_each_component_through_the_cli(stack: local.UpResult,
                                                settings: Settings) -> None:
    runner = CliRunner()
    everything = runner.invoke(app, ["logs", "--state-dir", str(settings.state_dir), "-n", "5"])
    assert everything.exit_code == 0, everything.output
    for name in ("replica-1", "replica-2", "haproxy", "breaker", "supervisord"):
        assert f"{name} | " in everything.output
    one = runner.invoke(app, ["logs", "breaker", "--state-dir", str(settings.state_dir)])
    assert one.exit_code == 0
    assert "watching replica-1, replica-2; breaker on" in one.output
    assert "following HAProxy's responses ring" in one.output
    wrong = runner.invoke(app, ["logs", "nginx", "--state-dir", str(settings.state_dir)])
    assert wrong.exit_code == 1
    assert "no component named 'nginx'" in wrong.output
    assert "choose one of" in wrong.output


def test_status_command_draws_the_replicas(stack: local.UpResult, settings: Settings) -> None:
    result = CliRunner().invoke(app, ["status", "--state-dir", str(settings.state_dir),
                                      "--database-url", settings.database_url,
                                      "--redis-url", settings.redis_url])
    assert result.exit_code == 0, result.output
    assert "replica-1" in result.output and "replica-2" in result.output
    assert "UP" in result.output
    assert "patterns: retry x4, rate limit off, breaker: outliers past p50 > 100 ms" in \
        result.output


def test_unreachable_postgres_starts_a_private_cluster(
        tmp_path: Path, settings: Settings, options: ServiceOptions) -> None:
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
        page = http_get(f"{result.state.service.url}/api/v1/alumno/alumno?limit=1")
        assert page is not None and b'"total": 50' in page[1]
        stopped = local.down(dead)
        assert stopped[-1].startswith("private PostgreSQL")
        assert not is_reachable(private_url)
    finally:
        local.down(dead)
        shutil.rmtree(root, ignore_errors=True)


def test_missing_database_on_a_live_server_is_created_not_replaced(
        postgres_server: str, tmp_path: Path, options: ServiceOptions) -> None:
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


def test_the_watcher_hears_only_haproxy(stack: local.UpResult, settings: Settings) -> None:
    # The breaker's input is HAProxy's ring, read on the runtime socket (mode 0600): nothing
    # listens for log lines, so no other user can forge lines that would put replicas out.
    text = (Path(stack.state.service.service_dir or "") / "haproxy.cfg").read_text()
    assert [line.strip() for line in text.splitlines() if line.strip().startswith("log ")] == [
        "log ring@responses len 256 format raw local0", "log global"]
    watcher = stack_processes(stack.state)["breaker"]
    assert watcher and not _udp_sockets_of(watcher[0])
    assert _bound_unix_sockets_of(watcher[0]) == []  # it connects; it binds nothing
    runtime = Path(stack.state.service.runtime_socket or "")
    assert stat.S_IMODE(runtime.lstat().st_mode) == 0o600
    # What HAProxy logs reaches the watcher: the responses it counts grow with requests.
    before = _watched_responses(stack)
    for _ in range(5):
        urllib.request.urlopen(f"{stack.state.service.url}/api/v1/alumno/alumno", timeout=5)
    assert _watched_responses(stack) == before + 5
    if os.geteuid() == 0:
        forged = subprocess.run(
            ["runuser", "-u", "nobody", "--", sys.executable, "-c",
             "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])",
             str(runtime)], capture_output=True, text=True, check=False)
        assert forged.returncode != 0 and "Permission denied" in forged.stderr


def _watched_responses(stack: local.UpResult) -> int:
    """The responses the watcher has counted, from a state it wrote after this call."""
    asked, deadline = time.time(), time.monotonic() + 5
    while True:
        state = json.loads(Path(stack.state.service.breaker_state or "").read_text())
        if state["updated"] > asked or time.monotonic() > deadline:
            return int(state["responses"])
        time.sleep(0.1)


def _bound_unix_sockets_of(pid: int) -> list[str]:
    """The paths of the Unix sockets a process has bound (a connected client has none)."""
    inodes = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    rows = [line.split() for line in Path("/proc/net/unix").read_text().splitlines()[1:]]
    return [row[7] for row in rows if len(row) > 7 and f"socket:[{row[6]}]" in inodes]


def _udp_sockets_of(pid: int) -> list[str]:
    """The UDP ports a process has open (from /proc/net/udp and its file descriptors)."""
    inodes = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    udp = Path("/proc/net/udp").read_text().splitlines()[1:]
    return [line.split()[1] for line in udp if f"socket:[{line.split()[9]}]" in inodes]


def test_replicas_stay_on_loopback_whatever_host_the_balancer_takes() -> None:
    from alumnos_cli.stack.local import granian_command

    exposed = ServiceOptions(host="0.0.0.0")
    command = granian_command(exposed, exposed.replica_ports()[0], sys.executable)
    assert command[command.index("--host") + 1] == "127.0.0.1"  # before: 0.0.0.0
    alone = ServiceOptions(host="0.0.0.0", replicas=1, balancer=False)
    command = granian_command(alone, alone.port, sys.executable)
    assert command[command.index("--host") + 1] == "0.0.0.0"  # the service alone, as asked


def test_a_deep_state_dirs_socket_folder_goes_with_down_unless_it_holds_more(
        tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / "state"
    deep.mkdir(parents=True)
    short = supervisor.socket_dir(deep)
    assert short != deep.resolve() and short.is_dir()  # under /tmp, 0700, ours
    (short / supervisor.SOCKET_FILE).write_text("")  # what supervisord leaves behind
    supervisor.release_socket_dir(deep)
    assert not short.exists()
    # Something else in it (not ours to judge): the folder and that file stay.
    short = supervisor.socket_dir(deep)
    (short / "kept").write_text("theirs")
    supervisor.release_socket_dir(deep)
    assert (short / "kept").read_text() == "theirs"
    (short / "kept").unlink()
    supervisor.release_socket_dir(deep)
    assert not short.exists()
    # A state directory short enough keeps its socket inside: nothing under /tmp to release.
    assert supervisor.socket_dir(tmp_path) == tmp_path.resolve()
    supervisor.release_socket_dir(tmp_path)
    assert tmp_path.is_dir()
