"""What `up` and `down` refuse to do on a shared machine: inject configuration, kill strangers."""

from __future__ import annotations

import configparser
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alumnos_cli.errors import AlumnosError
from alumnos_cli.main import app
from alumnos_cli.stack import supervisor as supervision
from alumnos_cli.stack.processes import RecordedProcess, signal_if_same

STACK = "ALUMNOS_STACK_ID"


def _program(**environment: str) -> supervision.Program:
    return supervision.Program(name="replica-1", command=["/bin/true", "--port", "8081"],
                               environment=environment)


@pytest.mark.parametrize("value", ['x" , ALUMNOS_FAULT_INJECTION="on', "x\r[program:evil]",
                                   "x\ncommand=/bin/sh -c id", "a'b", "a\\b", "$HOME", "a`id`"])
def test_a_value_that_could_end_early_never_reaches_supervisords_configuration(
        tmp_path: Path, value: str) -> None:
    with pytest.raises(AlumnosError, match="cannot hold safely"):
        supervision.supervisor_config([_program(ALUMNOS_FAULT_FILE=value)], tmp_path,
                                      tmp_path / "logs")
    with pytest.raises(AlumnosError, match="cannot hold safely"):
        supervision.supervisor_config([_program()], tmp_path / value, tmp_path / "logs")


def test_the_rest_is_quoted_and_reads_back_as_written(tmp_path: Path) -> None:
    # Spaces, percent signs and commas are fine: supervisord reads them back unchanged.
    folder = tmp_path / "my state, 100%"
    text = supervision.supervisor_config(
        [supervision.Program(name="replica-1", command=["/bin/echo", "a b", "50%"],
                             environment={"ALUMNOS_FAULT_FILE": str(folder / "f, g.json")})],
        folder, folder / "logs")
    from supervisor.datatypes import dict_of_key_value_pairs
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    section = parser["program:replica-1"]
    env = dict_of_key_value_pairs(section["environment"].replace("%%", "%"))
    assert env == {"ALUMNOS_FAULT_FILE": str(folder / "f, g.json")}
    assert section["command"].replace("%%", "%") == "/bin/echo 'a b' 50%"
    assert len(parser.sections()) == 5  # nothing beyond the four of its own and the program


def test_up_refuses_a_state_dir_that_would_inject_configuration(tmp_path: Path) -> None:
    evil = tmp_path / 'state"\rcommand=/bin/sh -c id'
    result = CliRunner().invoke(app, ["up", "--state-dir", str(evil)])
    assert result.exit_code == 1, result.output
    assert "--state-dir" in result.output and "Traceback" not in result.output
    assert not evil.exists()  # refused before anything was written


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    """Someone else's process, in a group of its own, not carrying our stack's marker."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                               start_new_session=True)
    yield process
    process.kill()
    process.wait()


def _still_running(process: subprocess.Popen[bytes]) -> bool:
    time.sleep(0.2)
    return process.poll() is None


def test_down_never_kills_a_group_whose_leader_is_no_longer_ours(
        stranger: subprocess.Popen[bytes], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # supervisord (dead here) last reported a program with this pid; the pid now belongs to
    # someone else's process, which does not carry the stack's marker.
    reported = supervision.ProgramInfo(name="replica-1", state="RUNNING", pid=stranger.pid,
                                       description="", log="")
    monkeypatch.setattr(supervision, "programs_info", lambda state_dir: [reported])
    gone = RecordedProcess(pid=2**22 + 1, started=1)  # a supervisord that no longer runs
    supervision.stop_supervisor(tmp_path, gone, marker=(STACK, "our-stack"))
    assert _still_running(stranger)


def test_a_recorded_process_whose_pid_was_reused_is_not_signalled(
        stranger: subprocess.Popen[bytes]) -> None:
    recorded = RecordedProcess.of(stranger.pid)
    reused = RecordedProcess(pid=recorded.pid, started=recorded.started - 1)
    assert not signal_if_same(reused, signal.SIGKILL, group=True)
    assert _still_running(stranger)
    assert signal_if_same(recorded, signal.SIGKILL, group=True)
    assert stranger.wait(timeout=5) == -signal.SIGKILL


def test_the_state_directory_is_its_owners_only(tmp_path: Path) -> None:
    from alumnos_cli.stack.state import private_state_dir

    fresh, loose = tmp_path / "fresh" / "state", tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    for folder in (fresh, loose):
        private_state_dir(folder)
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_asking_a_deep_state_dir_that_runs_nothing_leaves_nothing_in_tmp(tmp_path: Path) -> None:
    from alumnos_cli.stack import supervisor as supervision

    deep = tmp_path / ("d" * 100)  # too deep for a socket path: its socket goes under /tmp
    folder = supervision.socket_path(deep).parent
    assert folder != deep.resolve() and not folder.exists()
    assert supervision.programs_info(deep) == []
    supervision.supervisor_config([], deep, deep / "logs")
    assert not folder.exists()  # only start_supervisor makes it (and down removes it)
