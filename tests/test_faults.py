"""Fault injection: off unless switched on, then a file makes a replica slow or failing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from alumnos_cli.seed.load import seed_alumnos
from alumnos_cli.settings import Settings
from alumnos_service import faults

PAGE = "/api/v1/alumno/alumno?limit=3"


@pytest.fixture
def fault_file(tmp_path: Path) -> Path:
    return tmp_path / "replica-1.json"


@pytest.fixture
def app_with(settings: Settings, fault_file: Path,
             make_app: Callable[[dict[str, object]], Flask]) -> Callable[[str], Flask]:
    seed_alumnos(settings, count=20, seed=1)

    def build(switch: str) -> Flask:
        return make_app({"DATABASE_URL": settings.database_url, "CACHE": "off",
                         "FAULT_INJECTION": switch, "FAULT_FILE": str(fault_file),
                         "REPLICA": "replica-1"})

    return build


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays the fault switch applies, recorded instead of slept."""
    applied: list[float] = []
    monkeypatch.setattr(faults, "sleep", applied.append)
    return applied


def test_a_fault_file_is_ignored_unless_injection_is_switched_on(
        app_with: Callable[[str], Flask], fault_file: Path, delays: list[float]) -> None:
    fault_file.write_text(json.dumps({"delay_ms": 5000, "error_rate": 1.0}))
    assert app_with("off").test_client().get(PAGE).status_code == 200
    assert delays == []  # neither the delay nor the errors were applied


def test_switched_on_the_file_slows_the_api_but_not_health(
        app_with: Callable[[str], Flask], fault_file: Path, delays: list[float]) -> None:
    client = app_with("on").test_client()
    assert client.get(PAGE).status_code == 200
    assert delays == []
    fault_file.write_text(json.dumps({"delay_ms": 1500}))
    time.sleep(faults.RECHECK_SECONDS)
    assert client.get(PAGE).status_code == 200
    assert delays == [1.5]
    assert client.get("/health").status_code == 200
    assert delays == [1.5]  # health checks are not delayed
    fault_file.unlink()
    time.sleep(faults.RECHECK_SECONDS)
    assert client.get(PAGE).status_code == 200
    assert delays == [1.5]  # healed: no further delay


def test_an_error_fault_answers_500_problems(app_with: Callable[[str], Flask],
                                             fault_file: Path) -> None:
    fault_file.write_text(json.dumps({"error_rate": 1.0}))
    response = app_with("on").test_client().get(PAGE)
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["type"].endswith("/injected-fault")
    assert response.headers["X-Served-By"].startswith("replica-1:")


@pytest.mark.parametrize("content", ["", "{not json", "[1, 2]", '{"delay_ms": "slow"}'])
def test_an_unreadable_fault_file_means_no_fault(tmp_path: Path, content: str) -> None:
    path = tmp_path / "fault.json"
    path.write_text(content)
    assert faults.read_fault(path) == faults.Fault()


def test_fault_values_are_clamped(tmp_path: Path) -> None:
    path = tmp_path / "fault.json"
    path.write_text(json.dumps({"delay_ms": -5, "error_rate": 7}))
    assert faults.read_fault(path) == faults.Fault(delay_ms=0.0, error_rate=1.0)


def test_only_a_meant_switch_turns_faults_on(tmp_path: Path) -> None:
    from alumnos_service.config import fault_file

    path = str(tmp_path / "fault.json")
    for value in ("on", "true", "1", "yes", " ON "):
        assert fault_file({"FAULT_INJECTION": value, "FAULT_FILE": path}) == path
    for value in ("disabled", "off", "none", "", "0"):  # before: "disabled" was on
        assert fault_file({"FAULT_INJECTION": value, "FAULT_FILE": path}) is None


def test_a_fault_file_cannot_hang_a_replica(tmp_path: Path) -> None:
    path = tmp_path / "fault.json"
    path.write_text(json.dumps({"delay_ms": 10**9}))
    assert faults.read_fault(path).delay_ms == faults.MAX_DELAY_MS  # before: 11 days


def test_up_has_its_own_fault_switch_variable() -> None:
    import typer.main

    from alumnos_cli.main import app

    command = typer.main.get_command(app).commands["up"]  # type: ignore[attr-defined]
    [option] = [p for p in command.params if p.name == "fault_injection"]
    # The service's ALUMNOS_FAULT_INJECTION left in a shell must not switch it on.
    assert option.envvar == "ALUMNOS_UP_FAULT_INJECTION"
