"""What holds across every command: help shows every word it was given, a short option means
one thing everywhere, fixed choices complete in the shell, and starting `alumnos` (for
--version or a Tab) loads none of the heavy dependencies."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from alumnos_cli.main import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
CLI = typer.main.get_command(app)
COMMANDS: dict[str, Any] = CLI.commands  # type: ignore[attr-defined]  # a group
# What neither --version nor completion may import: the stack's, the service's and the
# report's dependencies, each tens of milliseconds that every Tab would pay.
HEAVY = ("sqlalchemy", "flask", "docker", "psycopg2", "redis", "granian", "yaml", "faker",
         "rich.table", "alumnos_cli.report.model", "alumnos_cli.bench.k6")


def _flat(text: str) -> str:
    """Help as a reader sees it: no panel borders, one space between words."""
    return " ".join(text.replace("│", " ").split())


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_shows_every_word_of_every_help_text(command: str) -> None:
    # Rich markup reads "[default: ...]" or "[ms]" as a style and drops it; an escaped "\[" is
    # shown as "[". Wide enough that no help text wraps.
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "1000"})
    assert result.exit_code == 0, result.output
    shown = _flat(result.output)
    texts = [COMMANDS[command].help or "", *(p.help or "" for p in COMMANDS[command].params)]
    for text in texts:
        assert _flat(text.replace("\\[", "[")) in shown, text


@pytest.mark.parametrize(("command", "phrase"), [
    ("bench", "Base URL to load [default: the stack started by alumnos up]."),
    ("bench", "Threshold: p95 latency in ms [default: 2000]."),
    ("report", "Run folder name or path [default: the newest run]"),
])
def test_defaults_written_in_the_help_text_are_shown(command: str, phrase: str) -> None:
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "1000"})
    assert phrase in _flat(result.output)


def test_a_short_option_means_one_thing_in_every_command() -> None:
    meanings: dict[str, set[str]] = defaultdict(set)
    for command in COMMANDS.values():
        for param in command.params:
            names = [*param.opts, *param.secondary_opts]
            long_name = next((name for name in names if name.startswith("--")), param.name)
            for short in (name for name in names if not name.startswith("--")):
                meanings[short].add(long_name)
    assert meanings, "no short option found: the walk is broken"
    assert {short: sorted(longs) for short, longs in meanings.items() if len(longs) > 1} == {}
    assert meanings["-n"] == {"--lines"}  # as tail -n


def _in_a_fresh_python(argv: list[str], env: dict[str, str]) -> tuple[str, list[str]]:
    """Run `alumnos argv` in a new interpreter; its output, and the heavy modules it loaded."""
    code = (
        "import json, sys\n"
        "from alumnos_cli.main import app\n"
        "try:\n"
        f"    app({argv!r}, prog_name='alumnos')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env={**_base_env(), **env}, timeout=60, check=True)
    return done.stdout, json.loads(done.stderr.strip().splitlines()[-1])


def _base_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("_ALUMNOS")}


def test_version_loads_no_heavy_dependency() -> None:
    output, loaded = _in_a_fresh_python(["--version"], {})
    assert output.startswith("alumnos ")
    assert loaded == []


@pytest.mark.parametrize(("words", "choices"), [
    ("alumnos report --format ", {"terminal", "markdown", "json", "html"}),
    ("alumnos report --lang ", {"es", "en"}),
    ("alumnos up --mode ", {"local", "compose"}),
    ("alumnos bench --scenario ", {"spike", "cache-cold", "endpoint"}),
    ("alumnos patterns ", {"retry", "circuit-breaker"}),
])
def test_fixed_choices_complete_without_loading_heavy_dependencies(words: str,
                                                                   choices: set[str]) -> None:
    output, loaded = _in_a_fresh_python([], {"_ALUMNOS_COMPLETE": "complete_bash",
                                             "COMP_WORDS": words,
                                             "COMP_CWORD": str(len(words.split()))})
    assert choices <= set(output.split()), output
    assert loaded == []


def test_the_heavy_modules_exist() -> None:
    # Guards the two tests above: a misspelt name would never be loaded, and they would pass.
    assert [name for name in HEAVY if importlib.util.find_spec(name) is None] == []


def test_an_error_stays_on_one_line_however_narrow_the_terminal(tmp_path: Path) -> None:
    # A path or command cut over two lines cannot be copied back (CI once saw
    # "outside its run \nfolder" from a long path).
    deep = tmp_path / ("d" * 120)
    deep.mkdir()
    code = ("from alumnos_cli.main import app\n"
            f"app(['report', 'nosuchrun', '--results-dir', {str(deep)!r}], prog_name='alumnos')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, env=_base_env() | {"COLUMNS": "40"}, timeout=60,
                            check=False)
    assert result.returncode == 1
    error, hint = result.stderr.splitlines()
    assert error == f"error: no run folder named 'nosuchrun' in {deep}"
    assert hint.startswith("next: ")
