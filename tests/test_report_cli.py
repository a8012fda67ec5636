"""`alumnos report`'s flags: each one does what it says or is refused with one usage line, and
the list of runs never cuts the name the user has to copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from alumnos_cli.errors import ExitCode
from alumnos_cli.main import app
from alumnos_cli.report.read import list_records
from alumnos_cli.report.render.terminal import runs_terminal
from tests.runs import RUNS

runner = CliRunner()
SAMPLES = sorted(path.name for path in RUNS.iterdir() if path.is_dir())
A, B = "20261127T022841Z-spike", "20261127T051814Z-spike"


def _report(*args: str, columns: int = 200) -> tuple[int, str]:
    result = runner.invoke(app, ["report", *args, "--results-dir", str(RUNS)],
                           env={"COLUMNS": str(columns)})
    return result.exit_code, " ".join(result.output.replace("│", " ").split())


@pytest.mark.parametrize(("args", "option", "message"), [
    (["--list", "--format", "json"], "--format", "does not apply to --list"),
    (["--list", "--lang", "en"], "--lang", "does not apply to --list"),
    (["--list", "-o", "runs.txt"], "--output", "does not apply to --list"),
    (["--list", A], "RUN", "does not apply to --list"),
    (["--list", "--compare", A, B], "--compare", "does not apply to --list"),
    (["-o", "report.txt"], "--output", "needs a file format; terminal prints to the screen"),
    (["--lang", "en"], "--lang", "applies to one run's markdown or html only; terminal has"),
    (["--format", "json", "--lang", "en"], "--lang", "json has no language"),
    (["--compare", A, B, "--format", "markdown", "--lang", "en"], "--lang",
     "a comparison has no language"),
    (["--compare", A, B, "--baseline", A], "--baseline", "cannot go with --compare"),
    (["--compare", A], "--compare", f"takes two runs, BASELINE CANDIDATE; got 1: {A}"),
    (["--compare", A, B, A], "--compare", "takes two runs, BASELINE CANDIDATE; got 3"),
    ([A, B], "RUN", "one run at a time, got 2"),
    ([A, B, "--baseline", A], "RUN", "one run at a time, got 2"),
    (["--compare", A, B, "--prometheus", "http://127.0.0.1:9"], "--prometheus",
     "reads one run's server side, not a comparison's"),
    ([A, "--prometheus", "off"], "--prometheus", "off leaves nothing to read"),
    ([A, "--prometheus", "127.0.0.1:9090"], "--prometheus", "must start with http://"),
])
def test_a_flag_that_would_change_nothing_is_refused(tmp_path: Path, args: list[str],
                                                     option: str, message: str) -> None:
    code, output = _report(*args)
    assert code == ExitCode.USAGE, output
    assert f"Invalid value for '{option}'" in output and message in output
    assert not any(tmp_path.iterdir())


def test_compare_never_takes_the_next_option_for_a_run() -> None:
    # Before: --compare took the next two words, so "--results-dir" became the candidate run.
    code, output = _report("--compare", A)
    assert code == ExitCode.USAGE, output
    assert "--results-dir" not in output.split("Error")[-1]
    # Options may come between the two runs: they are read as options.
    result = runner.invoke(app, ["report", "--compare", A, "--results-dir", str(RUNS), B],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"{B} against {A}" in " ".join(result.output.split())


def test_the_options_that_apply_are_taken(tmp_path: Path) -> None:
    out = tmp_path / "compare.md"
    code, output = _report("--compare", A, B, "--format", "markdown", "-o", str(out))
    assert code == 0, output
    assert out.read_text().startswith(f"| metric | {A} | {B} |")
    code, output = _report(B, "--baseline", A, "--format", "json")
    assert code == 0 and '"baseline"' in output
    code, output = _report(A, "--format", "markdown", "--lang", "en")
    assert code == 0 and "## Load test" in output


def _rendered(width: int) -> list[str]:
    console = Console(width=width, record=True, color_system=None, force_terminal=True)
    table, _problems = runs_terminal(str(RUNS), list_records(RUNS))
    console.print(table, crop=False)
    return console.export_text().splitlines()


FIGURES = ("161,294", "1,601.2", "1,464.8", "39.81%", "2,101")  # the stress and load runs


@pytest.mark.parametrize("width", [80, 40])
def test_the_list_keeps_every_run_name_and_figure_whole(width: int) -> None:
    lines = _rendered(width)
    for text in (*SAMPLES, *FIGURES):
        assert any(text in line for line in lines), (text, lines)


def test_the_list_fits_an_80_column_terminal() -> None:
    lines = _rendered(80)
    assert max(len(line.rstrip()) for line in lines) <= 80, "\n".join(lines)


def test_the_list_in_a_pipe_keeps_every_run_name(tmp_path: Path) -> None:
    for name in SAMPLES:
        shutil.copytree(RUNS / name, tmp_path / name)
    long_name = "20261127T174225Z-cache-cold-12"  # new_run_dir's longest kind of name
    shutil.copytree(RUNS / SAMPLES[-1], tmp_path / long_name)
    result = runner.invoke(app, ["report", "--list", "--results-dir", str(tmp_path)],
                           env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    for name in (*SAMPLES, long_name):
        assert name in result.output, result.output
    assert "…" not in result.output


def test_a_run_recorded_without_its_load_window_cannot_be_read_later(tmp_path: Path) -> None:
    # The sample runs were recorded before runs kept their load's window; nothing is asked of
    # Prometheus (none answers here) and nothing in the folder changes.
    shutil.copytree(RUNS / A, tmp_path / A)
    before = {path.name: path.read_bytes() for path in (tmp_path / A).iterdir()}
    result = runner.invoke(app, ["report", A, "--results-dir", str(tmp_path), "--prometheus",
                                 "http://127.0.0.1:9"], env={"COLUMNS": "200"})
    assert result.exit_code == ExitCode.ERROR, result.output
    assert f"run {A} does not say when its load ran" in result.output
    assert {path.name: path.read_bytes() for path in (tmp_path / A).iterdir()} == before
