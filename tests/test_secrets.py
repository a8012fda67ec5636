"""Secrets on disk and on screen: passwords masked in every URL and command line written or
shown, credentials in --url sent as HTTP Basic auth, the stack's state file its owner's only."""

from __future__ import annotations

import base64
import gzip
import json
import re
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from alumnos_cli.bench.k6 import find_k6
from alumnos_cli.bench.metadata import run_metadata
from alumnos_cli.bench.request import BenchRequest
from alumnos_cli.bench.scenarios import SCENARIOS, scripts_dir
from alumnos_cli.bench.verify import verify_target
from alumnos_cli.errors import ServiceUnreachable
from alumnos_cli.main import app
from alumnos_cli.settings import Settings, mask_password, mask_secrets
from alumnos_cli.stack.http import http_get
from alumnos_cli.stack.ports import free_port
from alumnos_cli.stack.processes import RecordedProcess
from alumnos_cli.stack.state import ServiceRecord, StackState, save_state, state_path
from alumnos_service.paths import PING_PATH
from tests.runs import run_with_meta

RUNS = Path(__file__).parent / "data" / "runs"
runner = CliRunner()


# --- the one masking function ------------------------------------------------------------

@pytest.mark.parametrize(("text", "masked"), [
    ("postgresql://u:secret@h/db", "postgresql://u:***@h/db"),
    ("postgresql://u:secret@h:5432/db?sslmode=require", "postgresql://u:***@h:5432/db?sslmode=require"),
    ("postgresql+psycopg2://u:secret@h/db", "postgresql+psycopg2://u:***@h/db"),
    ("redis://:secret@h:6379/0", "redis://:***@h:6379/0"),
    ("redis://default:secret@h:6379/0", "redis://default:***@h:6379/0"),
    ("rediss://default:secret@h:6380", "rediss://default:***@h:6380"),
    ("http://bob:secret@127.0.0.1:8080", "http://bob:***@127.0.0.1:8080"),
    ("https://bob:s%40cr%3At@example.org/x", "https://bob:***@example.org/x"),
    ("http://bob:p@ss@h:1/", "http://bob:***@h:1/"),  # an unencoded @ in the password
    ("postgresql://u@h/db?password=secret", "postgresql://u@h/db?password=***"),
    ("postgresql://h/db?sslmode=require&sslpassword=secret&x=1",
     "postgresql://h/db?sslmode=require&sslpassword=***&x=1"),
    ("http://h/p?PassWord=secret#top", "http://h/p?PassWord=***#top"),
    ("http://h/p?pwd=secret&passwd=secret2", "http://h/p?pwd=***&passwd=***"),
    ("http://u:a@h/p?password=b", "http://u:***@h/p?password=***"),
    ("http://u:secret@[::1/x", "http://u:***@[::1/x"),  # beyond urlsplit: still masked
    # Nothing secret: unchanged, byte for byte.
    ("postgresql://postgres@127.0.0.1:5432/alumnos", "postgresql://postgres@127.0.0.1:5432/alumnos"),
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("http://127.0.0.1:8080/api/v1/alumno/alumno?limit=100&offset=0",
     "http://127.0.0.1:8080/api/v1/alumno/alumno?limit=100&offset=0"),
    ("http://h/search?q=a%20b+c&passwords_reset=1", "http://h/search?q=a%20b+c&passwords_reset=1"),
    ("http://[::1]:8080/", "http://[::1]:8080/"),
    ("not a url", "not a url"),
    ("", ""),
])
def test_mask_password_hides_userinfo_passwords_and_password_parameters(text: str,
                                                                        masked: str) -> None:
    assert mask_password(text) == masked
    assert mask_secrets(text) == masked


@pytest.mark.parametrize(("text", "masked"), [
    ("alumnos bench --url http://bob:secret@127.0.0.1:8080 --vus 2",
     "alumnos bench --url http://bob:***@127.0.0.1:8080 --vus 2"),
    ("alumnos seed --database-url=postgresql://u:secret@h/db",
     "alumnos seed --database-url=postgresql://u:***@h/db"),
    ("alumnos up --redis-url 'redis://:secret@h:6379/0' --database-url \"postgresql://u:x@h/d\"",
     "alumnos up --redis-url 'redis://:***@h:6379/0' --database-url \"postgresql://u:***@h/d\""),
    ("nothing answers at http://bob:secret@127.0.0.1:8080 (check --url)",
     "nothing answers at http://bob:***@127.0.0.1:8080 (check --url)"),
    ("two: http://a:one@h1, redis://:two@h2/0", "two: http://a:***@h1, redis://:***@h2/0"),
    ("seed --database-url 'host=h user=u password=secret dbname=d'",
     "seed --database-url 'host=h user=u password=*** dbname=d'"),
    ("alumnos bench --vus 2 --duration 3s", "alumnos bench --vus 2 --duration 3s"),
    ("alumnos report --results-dir ./results@home", "alumnos report --results-dir ./results@home"),
])
def test_mask_secrets_masks_every_url_of_a_command_line(text: str, masked: str) -> None:
    assert mask_secrets(text) == masked


# --- what a run writes ----------------------------------------------------------------------

def test_meta_json_holds_no_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = "http://bob:secret@127.0.0.1:8080"
    monkeypatch.setattr(sys, "argv", ["alumnos", "bench", "--url", url, "--database-url",
                                      "postgresql://u:dbsecret@127.0.0.1:1/x?password=qsecret"])
    # Port 1: nothing answers, so the metadata's database facts are None at once.
    settings = Settings.resolve(env={}, database_url="postgresql://u:dbsecret@127.0.0.1:1/x",
                                redis_url="redis://:rsecret@127.0.0.1:1/0",
                                results_dir=tmp_path / "results", state_dir=tmp_path / "state")
    script = scripts_dir() / SCENARIOS["smoke"].script
    meta = run_metadata(settings, BenchRequest(scenario="smoke", vus=1, duration_seconds=2,
                                               url=url),
                        url=url, binary=find_k6(), script=script, running=None, ours=None)
    written = json.dumps(meta)
    assert "secret" not in written
    assert meta["url"] == "http://bob:***@127.0.0.1:8080"
    assert meta["command"].startswith("alumnos bench --url http://bob:***@127.0.0.1:8080 ")


def _run_with_secrets(tmp_path: Path) -> str:
    """A checked-in run whose meta.json was recorded with passwords, as older versions did."""
    def record_passwords(meta: dict[str, Any]) -> None:
        meta["url"] = "http://u:secret@127.0.0.1:8080"
        meta["command"] = ("alumnos bench --url http://u:secret@127.0.0.1:8080 "
                           "--database-url=postgresql://u:secret@h/db?sslpassword=secret")
        meta["settings"]["database_url"] = "postgresql://u:secret@127.0.0.1:5432/alumnos"
        meta["verification"] = {"before": "passed", "sample": 100,
                                "after": "nothing answers at http://u:secret@127.0.0.1:8080"}

    return run_with_meta(tmp_path, "20261127T051814Z-spike", record_passwords)


@pytest.mark.parametrize("output_format", ["terminal", "markdown", "json", "html"])
def test_a_report_never_shows_a_recorded_password(tmp_path: Path, output_format: str) -> None:
    name = _run_with_secrets(tmp_path)
    out = tmp_path / "report.out"
    result = runner.invoke(app, ["report", name, "--format", output_format, "--results-dir",
                                 str(tmp_path), *(["-o", str(out)] if output_format != "terminal"
                                                  else [])], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    shown = result.output + (out.read_text() if out.exists() else "")
    assert "secret" not in shown
    assert "u:***@127.0.0.1:8080" in shown


def test_a_proof_beside_the_run_never_shows_a_recorded_password(tmp_path: Path) -> None:
    name = _run_with_secrets(tmp_path)
    meta_path = tmp_path / name / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["stack"]["stack_id"] = "s1"
    meta_path.write_text(json.dumps(meta))
    proof = tmp_path / "patterns" / "20261127T060000Z"
    proof.mkdir(parents=True)
    (proof / "patterns.json").write_text(json.dumps({
        "started_at": proof.name, "stack_id": "s1", "url": "http://u:secret@127.0.0.1:8080",
        "results": [{"pattern": "retry", "action": "kill", "verdict": "pass", "evidence": {},
                     "observed": "redis://:secret@127.0.0.1:6379/0 answered"}]}))
    result = runner.invoke(app, ["report", name, "--format", "json", "--results-dir",
                                 str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["patterns"]["url"] == "http://u:***@127.0.0.1:8080"
    assert "secret" not in result.output


# --- credentials in --url -------------------------------------------------------------------

@dataclass
class FakeService:
    """What the service answers to verification, behind HTTP Basic auth (bob:secret)."""

    url: str
    total: int = 3
    unauthorized: list[str] = field(default_factory=list)
    authorized: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)


def _handler(service: FakeService) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(b"bob:secret").decode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            service.hosts.append(self.headers.get("Host", ""))
            if self.headers.get("Authorization") != expected:
                service.unauthorized.append(self.path)
                self._send(401, {"error": "unauthorized"},
                           {"WWW-Authenticate": 'Basic realm="alumnos"'})
                return
            service.authorized.append(self.path)
            parts = urlsplit(self.path)
            if parts.path == PING_PATH:
                self._send(200, {"status": "ok"})
                return
            query = {k: int(v[0]) for k, v in parse_qs(parts.query).items()}
            offset, limit = query.get("offset", 0), query.get("limit", 100)
            ids = range(offset + 1, min(service.total, offset + limit) + 1)
            self._send(200, {"items": [{"id": i, "nombre": f"n{i}"} for i in ids],
                             "total": service.total, "offset": offset, "limit": limit})

        def _send(self, status: int, body: object, headers: dict[str, str] | None = None
                  ) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            """Keep the test output quiet."""

    return Handler


@pytest.fixture
def service() -> Iterator[FakeService]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    fake = FakeService(url=f"http://bob:secret@127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(fake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
    thread.join()


def test_http_get_sends_url_credentials_as_basic_auth(service: FakeService) -> None:
    answer = http_get(f"{service.url}{PING_PATH}")
    assert answer is not None and answer[0] == 200, answer
    port = service.url.rsplit(":", 1)[1]
    assert service.authorized == [PING_PATH]
    assert service.hosts == [f"127.0.0.1:{port}"]  # no credentials in the Host header
    without = http_get(f"http://127.0.0.1:{port}{PING_PATH}")
    assert without is not None and without[0] == 401


def test_http_get_keeps_the_host_name_of_a_loopback_name(service: FakeService) -> None:
    port = service.url.rsplit(":", 1)[1]
    answer = http_get(f"http://bob:secret@alumnos.test.localhost:{port}{PING_PATH}")
    assert answer is not None and answer[0] == 200, answer
    assert service.hosts == [f"alumnos.test.localhost:{port}"]


def test_a_target_behind_basic_auth_is_verified(service: FakeService) -> None:
    verify_target(service.url, expected_total=3)
    assert service.authorized and not service.unauthorized


def test_a_wrong_password_is_refused_without_showing_it(service: FakeService) -> None:
    wrong = service.url.replace("secret", "wrongpass")
    with pytest.raises(ServiceUnreachable) as raised:
        verify_target(wrong)
    assert "(HTTP 401)" in str(raised.value)
    assert "wrongpass" not in str(raised.value) and "bob:***@" in str(raised.value)


def test_an_unreachable_url_with_a_password_is_reported_without_it(tmp_path: Path) -> None:
    url = f"http://bob:secret@127.0.0.1:{free_port(19300)}"
    result = runner.invoke(app, ["bench", "--url", url, "--duration", "2s", "--results-dir",
                                 str(tmp_path / "results"), "--state-dir",
                                 str(tmp_path / "state")], env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert "nothing answers at http://bob:***@127.0.0.1:" in result.output
    assert "secret" not in result.output


def test_a_url_refused_as_a_usage_error_is_shown_without_its_password(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "--url", "ftp://bob:secret@127.0.0.1:8080",
                                 "--results-dir", str(tmp_path)], env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert "ftp://bob:***@127.0.0.1:8080" in result.output and "secret" not in result.output


def test_up_shows_the_private_clusters_url_without_its_password(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from alumnos_cli.stack import local
    from alumnos_cli.stack.state import PostgresRecord

    url = "postgresql://postgres:secret@127.0.0.1:55432/alumnos"
    state = replace(_state(tmp_path), database_url=url, postgres=PostgresRecord(
        data_dir=str(tmp_path), port=55432, url=url, log="", bin_dir=""))
    # Starting a real stack is beyond this test: `up`'s core is replaced by what it returns.
    monkeypatch.setattr(local, "up", lambda settings, options: local.UpResult(
        state=state, already_running=False, started_postgres=True))
    result = runner.invoke(app, ["up", "--state-dir", str(tmp_path / "state")],
                           env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "postgresql://postgres:***@127.0.0.1:55432/alumnos" in result.output
    assert "secret" not in result.output


@pytest.mark.slow
def test_bench_loads_a_url_with_credentials_and_records_none(
        tmp_path: Path, service: FakeService, monkeypatch: pytest.MonkeyPatch) -> None:
    # One tiny bounded k6 run (1 VU, 2 s) against the fake service on loopback.
    monkeypatch.setenv("ALUMNOS_DATABASE_URL", "postgresql://u:dbsecret@127.0.0.1:1/x")
    results = tmp_path / "results"
    args = ["bench", "--url", service.url, "--scenario", "smoke", "--vus", "1", "--duration",
            "2s", "--results-dir", str(results), "--state-dir", str(tmp_path / "state")]
    monkeypatch.setattr(sys, "argv", ["alumnos", *args])  # what meta.json's command records
    result = runner.invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code in (0, 99), result.output
    assert "secret" not in result.output
    assert not service.unauthorized, service.unauthorized[:3]
    assert len(service.authorized) > 10  # verification before and after, and k6's load
    [run_dir] = list(results.iterdir())
    for path in run_dir.rglob("*"):
        if path.is_file():
            raw = path.read_bytes()
            text = gzip.decompress(raw) if path.suffix == ".gz" else raw
            assert b"secret" not in text, path
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["url"] == service.url.replace("secret", "***")
    assert meta["verification"]["after"] == "passed"


def _k6_inspect(script: Path, base_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(find_k6()), "inspect", "-e", f"BASE_URL={base_url}",
                           str(script)], capture_output=True, text=True, check=True)


def test_k6_routes_a_loopback_name_given_with_credentials() -> None:
    out = _k6_inspect(scripts_dir() / "smoke.js",
                      "http://bob:secret@alumnos.test.localhost:8080")
    assert json.loads(out.stdout)["hosts"] == {"alumnos.test.localhost": "127.0.0.1"}


def test_k6_shows_the_target_with_its_password_masked(tmp_path: Path) -> None:
    probe = tmp_path / "probe.js"
    config = (scripts_dir() / "lib" / "config.js").as_uri()
    probe.write_text(f"import {{ SHOWN_URL }} from '{config}';\n"
                     "console.log(`shown=${SHOWN_URL}`);\nexport default function () {}\n")
    out = _k6_inspect(probe, "http://bob:p@ss@127.0.0.1:8080")
    assert "shown=http://bob:***@127.0.0.1:8080" in out.stderr + out.stdout
    # What k6 writes into the run's log when the target is wrong names it so.
    verify = (scripts_dir() / "lib" / "verify.js").read_text()
    messages = re.findall(r"throw new Error\(`([^`]*)`", verify)
    assert messages and not [m for m in messages if "${BASE_URL}" in m]


# --- the stack's state file -----------------------------------------------------------------

def _state(tmp_path: Path) -> StackState:
    service = ServiceRecord(url="http://127.0.0.1:8080", host="127.0.0.1", port=8080,
                            workers=1, blocking_threads=1, cache=True, balancer=False,
                            fault_injection=False, supervisor=RecordedProcess(pid=1, started=0),
                            log_dir=str(tmp_path / "logs"))
    return StackState(mode="local", database_url="postgresql://u:secret@h/db",
                      redis_url="redis://:secret@h:6379/0", service=service)


def test_the_state_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    save_state(tmp_path, _state(tmp_path))
    assert stat.S_IMODE(state_path(tmp_path).stat().st_mode) == 0o600
