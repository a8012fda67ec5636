"""The CLI edge: help, version, exit codes, and bad input turned into one clear message:
a usage error (exit 2) for a bad flag, one error line (exit 1) for everything else."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from alumnos_cli import __version__
from alumnos_cli.errors import ExitCode
from alumnos_cli.main import app

runner = CliRunner()
COMMANDS = ["seed", "up", "down", "status", "logs", "patterns", "bench", "report"]
SAMPLE_RUN = Path(__file__).parent / "data" / "runs" / "20261127T022841Z-spike"


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"alumnos {__version__}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert f"Example: alumnos {command}" in result.output


def _usage_error(result: Result, option: str, message: str) -> None:
    """A refused flag, in Click's own style: the usage line, the flag, why; exit code 2."""
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "Usage: alumnos" in result.output
    text = " ".join(result.output.split())
    assert f"Invalid value for '{option}'" in text and message in text
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("flags", "option", "message"), [
    (["--rate-limit", "fast"], "--rate-limit", "--rate-limit: a rate limit looks like 100/s"),
    (["--replicas", "0"], "--replicas", "must be between 1 and 32, got 0"),
    (["--replicas", "2", "--no-balancer"], "--replicas", "without a balancer only one"),
    (["--breaker-latency-ms", "0"], "--breaker-latency-ms", "must be between 1 and 60000"),
    (["--mode", "swarm"], "--mode", "'swarm' is not one of 'local', 'compose'"),
    (["--port", "abc"], "--port", "Input should be a valid integer"),
    # Before: a newline in --host added lines to haproxy.cfg.
    (["--host", "127.0.0.1\n    bind :9999"], "--host", "must be an IP address"),
    (["--host", "localhost"], "--host", "must be an IP address such as 127.0.0.1"),
])
def test_bad_up_flags_are_refused_before_anything_starts(tmp_path: Path, flags: list[str],
                                                          option: str, message: str) -> None:
    result = runner.invoke(app, ["up", "--state-dir", str(tmp_path), *flags],
                           env={"COLUMNS": "200"})
    _usage_error(result, option, message)
    assert not (tmp_path / "stack.json").exists()


def test_logs_before_any_up(tmp_path: Path) -> None:
    result = runner.invoke(app, ["logs", "--state-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "no logs yet" in result.output


@pytest.mark.parametrize(("value", "message"), [
    ("-5", "must be between 1 and 90,000,000, got -5"),
    ("abc", "Input should be a valid integer"),
])
def test_a_bad_count_is_one_usage_error_whatever_is_wrong(tmp_path: Path, value: str,
                                                          message: str) -> None:
    # Typed wrong or out of range: the same style, the same exit code, before any progress.
    result = runner.invoke(app, ["seed", "--count", value, "--state-dir", str(tmp_path)],
                           env={"COLUMNS": "200"})
    _usage_error(result, "--count", message)
    assert "seeding" not in result.output


def test_unreachable_database_is_refused_cleanly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["seed", "--count", "10", "--state-dir", str(tmp_path),
                                 "--database-url", "postgresql://postgres@127.0.0.1:1/alumnos"])
    assert result.exit_code == 1
    assert "is unreachable" in result.output
    assert "next:" in result.output


def test_report_on_empty_results_folder(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", "--results-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "no benchmark runs" in result.output


def test_report_of_a_stored_run(tmp_path: Path) -> None:
    shutil.copytree(SAMPLE_RUN, tmp_path / SAMPLE_RUN.name)
    result = runner.invoke(app, ["report", "--results-dir", str(tmp_path)],
                           env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    for expected in ("32,474", "100.00%", "0.00%", "1,623.5 req/s", "26.5 ms", "63.5 ms",
                     "98.4 ms", "193.8 ms", "50 VUs for 20 s", "2,000,000", "p(95)<2000"):
        assert expected in result.output, expected


def test_report_names_the_corrupt_file(tmp_path: Path) -> None:
    run = tmp_path / SAMPLE_RUN.name
    shutil.copytree(SAMPLE_RUN, run)
    (run / "summary.json").write_text('{"metrics": {"http_reqs": ')
    result = runner.invoke(app, ["report", run.name, "--results-dir", str(tmp_path)],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "summary.json is not valid JSON" in result.output


def test_report_refuses_an_unfinished_run(tmp_path: Path) -> None:
    run = tmp_path / SAMPLE_RUN.name
    shutil.copytree(SAMPLE_RUN, run)
    meta = (run / "meta.json").read_text().replace('"finished"', '"running"')
    (run / "meta.json").write_text(meta)
    result = runner.invoke(app, ["report", "--results-dir", str(tmp_path)],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "has status 'running'" in result.output


@pytest.mark.parametrize(("args", "option", "message"), [
    (["--duration", "abc"], "--duration", "must look like"),
    (["--duration", "0s"], "--duration", "must be between"),
    (["--vus", "0"], "--vus", "must be between"),
    (["--scenario", "nope"], "--scenario", "'nope' is not one of 'smoke', 'load', 'spike'"),
    (["--url", "127.0.0.1:8080"], "--url", "must start with http"),
    (["--path", "/api/v1/ping"], "--path", "applies to the endpoint scenario only"),
    (["--scenario", "endpoint", "--path", "api"], "--path", "must start with /"),
])
def test_bench_bad_flags(tmp_path: Path, args: list[str], option: str, message: str) -> None:
    result = runner.invoke(app, ["bench", "--results-dir", str(tmp_path), "--state-dir",
                                 str(tmp_path), *args], env={"COLUMNS": "200"})
    _usage_error(result, option, message)
    assert not any(tmp_path.glob("*/meta.json")), "a refused run must not leave a run folder"


def test_bench_against_nothing_is_one_error_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "--results-dir", str(tmp_path), "--state-dir",
                                 str(tmp_path), "--url", "http://127.0.0.1:1"],
                           env={"COLUMNS": "200"})
    assert result.exit_code == ExitCode.ERROR, result.output
    assert "nothing answers at http://127.0.0.1:1" in result.output
    assert not any(tmp_path.glob("*/meta.json")), "a refused run must not leave a run folder"


def test_bench_without_a_stack(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "--state-dir", str(tmp_path), "--results-dir",
                                 str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "no running stack" in result.output


def test_down_without_a_stack(tmp_path: Path) -> None:
    result = runner.invoke(app, ["down", "--state-dir", str(tmp_path)])
    assert result.exit_code == 0
    assert "nothing to stop" in result.output


@pytest.mark.parametrize(("args", "option", "message"), [
    (["--verify-sample", "0"], "--verify-sample", "from 1 (every one)"),
    (["--verify-sample", "-3"], "--verify-sample", "from 1 (every one)"),
    (["--verify-sample", "abc"], "--verify-sample", "valid integer"),
    (["--cross-check", "--rate", "10"], "--cross-check", "cannot hold a --rate"),
    (["--cross-check", "--scenario", "pagination"], "--cross-check", "asks for many"),
    (["--generator-cpus", "99"], "--generator-cpus", "no CPU 99 here"),
    (["--generator-cpus", "one"], "--generator-cpus", "takes CPU numbers"),
    (["--generator-cpus", "1-0"], "--generator-cpus", "goes backwards"),
])
def test_bench_attribution_flags_are_checked_first(tmp_path: Path, args: list[str],
                                                   option: str, message: str) -> None:
    result = runner.invoke(app, ["bench", "--results-dir", str(tmp_path), "--state-dir",
                                 str(tmp_path), "--url", "http://127.0.0.1:1", *args],
                           env={"COLUMNS": "200"})
    _usage_error(result, option, message)


def test_up_refuses_a_cpu_the_machine_does_not_have(tmp_path: Path) -> None:
    result = runner.invoke(app, ["up", "--state-dir", str(tmp_path), "--cpus", "0,99"],
                           env={"COLUMNS": "200"})
    _usage_error(result, "--cpus", "no CPU 99 here")
    assert not (tmp_path / "stack.json").exists()


def test_cross_check_without_wrk_says_how_to_get_it(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "--results-dir", str(tmp_path), "--url",
                                 "http://127.0.0.1:1", "--cross-check"],
                           env={"COLUMNS": "200", "PATH": str(tmp_path)})
    assert result.exit_code == ExitCode.ERROR, result.output
    assert "needs wrk" in result.output and "apt-get install wrk" in result.output


@pytest.mark.parametrize(("args", "option", "message"), [
    (["seed", "--rounds", "2"], "--rounds", "counts the rounds of --benchmark only"),
    (["seed", "--benchmark", "--checksum"], "--checksum", "does not apply to --benchmark"),
    (["seed", "--benchmark", "--reset"], "--reset", "does not apply to --benchmark"),
    (["bench", "--list", "--scenario", "soak"], "--scenario", "does not apply to --list"),
    (["images", "--rebuild"], "--rebuild", "goes with --offline"),
])
def test_a_flag_that_would_be_ignored_is_refused(tmp_path: Path, args: list[str], option: str,
                                                 message: str) -> None:
    state = ["--state-dir", str(tmp_path)] if args[0] != "images" else []
    result = runner.invoke(app, [*args, *state], env={"COLUMNS": "200"})
    _usage_error(result, option, message)


def test_bench_list_alone_describes_the_scenarios() -> None:
    # A variable set for every run is not a flag given to this one.
    result = runner.invoke(app, ["bench", "--list"], env={"COLUMNS": "200",
                                                          "ALUMNOS_GENERATOR_CPUS": "0"})
    assert result.exit_code == 0, result.output
    assert "cache-cold" in result.output and "cache_cold.js" in result.output
