"""A fault left by an interrupted `patterns` is shown by status and refused by bench."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alumnos_cli.files import write_json
from alumnos_cli.main import app
from alumnos_cli.stack.processes import RecordedProcess
from alumnos_cli.stack.state import ReplicaRecord, ServiceRecord, StackState, save_state


def _recorded_stack(state_dir: Path, *, fault_injection: bool) -> StackState:
    """A stack record whose supervisord is this test process (so it counts as running);
    nothing listens at its address, which bench must not even reach."""
    replicas = tuple(ReplicaRecord(name=f"replica-{i}", port=18090 + i,
                                   url=f"http://127.0.0.1:{18090 + i}",
                                   fault_file=str(state_dir / "faults" / f"replica-{i}.json"))
                     for i in (1, 2))
    state = StackState(
        mode="local", database_url="postgresql://postgres@127.0.0.1:1/none",
        redis_url="redis://127.0.0.1:1/0", postgres=None,
        service=ServiceRecord(url="http://127.0.0.1:18090", host="127.0.0.1", port=18090,
                              workers=1, blocking_threads=4, cache=True, balancer=False,
                              fault_injection=fault_injection,
                              supervisor=RecordedProcess.of(os.getpid()),
                              log_dir=str(state_dir / "logs"), replicas=replicas))
    save_state(state_dir, state)
    return state


@pytest.fixture
def left_fault(tmp_path: Path) -> Path:
    state = _recorded_stack(tmp_path, fault_injection=True)
    path = Path(state.service.replicas[1].fault_file)
    write_json(path, {"delay_ms": 300})
    return path


def test_bench_refuses_a_stack_with_a_fault_still_injected(left_fault: Path,
                                                           tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "--state-dir", str(tmp_path), "--duration", "5s",
                                      "--results-dir", str(tmp_path / "results")])
    assert result.exit_code == 1, result.output
    said = "".join(result.output.split("\n"))  # the terminal wraps long lines
    assert "replica-2: delay 300 ms" in said and f"rm {left_fault}" in said
    assert not (tmp_path / "results").exists()  # refused before any run folder


def test_status_shows_the_switch_and_the_fault_in_place(left_fault: Path,
                                                        tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["status", "--state-dir", str(tmp_path)],
                                env={"COLUMNS": "200"})
    assert "fault injection: on, injected now: replica-2: delay 300 ms" in result.output
    left_fault.unlink()
    result = CliRunner().invoke(app, ["status", "--state-dir", str(tmp_path)],
                                env={"COLUMNS": "200"})
    assert "fault injection: on (alumnos patterns may slow or fail a replica; none now)" \
        in result.output


def test_a_fault_file_has_no_effect_when_the_switch_is_off(tmp_path: Path) -> None:
    state = _recorded_stack(tmp_path, fault_injection=False)
    write_json(Path(state.service.replicas[0].fault_file), {"error_rate": 1})
    result = CliRunner().invoke(app, ["status", "--state-dir", str(tmp_path)],
                                env={"COLUMNS": "200"})
    assert "fault injection: off" in result.output
    result = CliRunner().invoke(app, ["bench", "--state-dir", str(tmp_path), "--duration", "5s",
                                      "--results-dir", str(tmp_path / "results")])
    assert "fault is still injected" not in result.output  # it goes on (and finds no service)
