"""Fault injection: off unless switched on, then a file makes a replica slow or failing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from alumnos_cli.seeding import seed_alumnos
from alumnos_cli.settings import Settings
from service import faults

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


def _timed_get(app: Flask, path: str = PAGE) -> tuple[int, float]:
    client = app.test_client()
    started = time.perf_counter()
    status = client.get(path).status_code
    return status, time.perf_counter() - started


def test_a_fault_file_is_ignored_unless_injection_is_switched_on(
        app_with: Callable[[str], Flask], fault_file: Path) -> None:
    fault_file.write_text(json.dumps({"delay_ms": 5000, "error_rate": 1.0}))
    status, seconds = _timed_get(app_with("off"))
    assert status == 200
    assert seconds < 5.0  # the 5 s delay was not applied


def test_switched_on_the_file_slows_the_api_but_not_health(
        app_with: Callable[[str], Flask], fault_file: Path) -> None:
    app = app_with("on")
    assert _timed_get(app)[0] == 200
    fault_file.write_text(json.dumps({"delay_ms": 1500}))
    time.sleep(faults.RECHECK_SECONDS)
    status, seconds = _timed_get(app)
    assert status == 200 and seconds >= 1.5
    assert _timed_get(app, "/health")[1] < 1.5  # health checks are not delayed
    fault_file.unlink()
    time.sleep(faults.RECHECK_SECONDS)
    assert _timed_get(app)[1] < 1.5


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
