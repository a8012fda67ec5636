"""The report for machines: the JSON and its schema, JUnit for CI, the time series as CSV, the
comparison's verdict and notes in every format, and `--compare --fail-on worse`."""

from __future__ import annotations

import csv
import io
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import xmlschema
from typer.testing import CliRunner

from alumnos_cli.errors import ExitCode
from alumnos_cli.main import app
from alumnos_cli.report.compare import BETTER, NOISE, UNKNOWN, WORSE, overall_verdict
from alumnos_cli.report.read import read_run
from alumnos_cli.report.render.json_document import SCHEMA_VERSION
from alumnos_cli.report.render.markdown import md_text
from tests.runs import GOLDEN, RUNS, copy_as_group, golden

ROOT = Path(__file__).parent.parent
RUN_SCHEMA = json.loads((ROOT / "docs" / "report.schema.json").read_text())
COMPARISON_SCHEMA = json.loads((ROOT / "docs" / "comparison.schema.json").read_text())
JUNIT_SCHEMA = xmlschema.XMLSchema(Path(__file__).parent / "data" / "junit.xsd")
SAMPLES = sorted(path.name for path in RUNS.iterdir() if path.is_dir())
# Two single runs of different lengths: "not like for like" and "fewer than 3 runs a side".
OLD, NEW = "20261127T022841Z-spike", "20261127T051814Z-spike"
runner = CliRunner()


def _report(*flags: str, results_dir: Path = RUNS) -> Any:
    result = runner.invoke(app, ["report", *flags, "--results-dir", str(results_dir)],
                           env={"COLUMNS": "160"})
    assert "Traceback" not in result.output
    return result


# --- the run's JSON and its schema --------------------------------------------------------


def test_the_schemas_are_valid_and_name_the_version_the_json_carries() -> None:
    for schema in (RUN_SCHEMA, COMPARISON_SCHEMA):
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["properties"]["schema_version"] == {"const": SCHEMA_VERSION}


@pytest.mark.parametrize("name", SAMPLES)
def test_every_golden_run_json_follows_the_schema(name: str) -> None:
    document = json.loads((GOLDEN / f"{name}.json").read_text())
    jsonschema.Draft202012Validator(RUN_SCHEMA).validate(document)
    assert document["schema_version"] == SCHEMA_VERSION


@pytest.mark.parametrize("name", SAMPLES)
def test_the_json_holds_the_runs_time_series(name: str) -> None:
    document = json.loads(_report(name, "--format", "json").output)
    series = read_run(RUNS / name).timeseries
    if series is None:  # recorded before runs kept k6's per-second figures
        assert document["timeseries"] is None
        return
    columns = document["timeseries"]
    assert {len(values) for values in columns.values()} == {len(series)}
    assert columns["requests_per_s"] == list(series.requests_per_s)
    assert columns["p95_ms"] == list(series.p95_ms)


@pytest.mark.parametrize(("change", "wrong"), [
    (lambda d: d.pop("timeseries"), "'timeseries' is a required property"),
    (lambda d: d.update(schema_version=2), "1 was expected"),
    (lambda d: d["timeseries"]["vus"].append("many"), "is not of type 'number', 'null'"),
    (lambda d: d["figures"]["checks"].append({"name": "x", "passes": -1, "fails": 0}),
     "is less than the minimum of 0"),
])
def test_the_schema_refuses_a_document_that_breaks_it(change: Any, wrong: str) -> None:
    document = json.loads((GOLDEN / f"{NEW}.json").read_text())
    change(document)
    errors = list(jsonschema.Draft202012Validator(RUN_SCHEMA).iter_errors(document))
    # anyOf (a value or null) keeps the precise reason among the error's context
    messages = [e.message for error in errors for e in (error, *error.context)]
    assert any(wrong in message for message in messages), messages


# --- JUnit ---------------------------------------------------------------------------------


def _junit_suite(xml: str) -> ET.Element:
    """The document validated against the JUnit schema, its counts checked; its one suite."""
    JUNIT_SCHEMA.validate(xml)
    root = ET.fromstring(xml)
    assert root.tag == "testsuites"
    [suite] = root.findall("testsuite")
    cases = suite.findall("testcase")
    failed = [case for case in cases if case.find("failure") is not None]
    for element in (root, suite):
        assert (element.get("tests"), element.get("failures")) == (str(len(cases)),
                                                                   str(len(failed)))
    return suite


@pytest.mark.parametrize("name", SAMPLES)
def test_junit_matches_its_golden_file_and_the_junit_schema(name: str) -> None:
    result = _report(name, "--format", "junit")
    assert result.exit_code == 0, result.output
    suite = _junit_suite(result.output)
    figures = read_run(RUNS / name).figures
    names = [case.get("name") for case in suite.findall("testcase")]
    assert names == ([f"{t.metric} {t.expression}" for t in figures.thresholds]
                     + [c.name for c in figures.checks])
    golden(f"{name}.junit.xml", result.output)


def test_a_crossed_threshold_and_a_failing_check_are_junit_failures(tmp_path: Path) -> None:
    shutil.copytree(RUNS / OLD, tmp_path / OLD)
    summary_path = tmp_path / OLD / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["metrics"]["http_req_failed"]["thresholds"] = {"rate<0.01": {"ok": False}}
    summary["root_group"]["checks"][1].update(passes=90, fails=10)
    summary_path.write_text(json.dumps(summary))
    result = _report(OLD, "--format", "junit", results_dir=tmp_path)
    assert result.exit_code == 0, result.output  # the report rendered; CI reads the failures
    suite = _junit_suite(result.output)
    failures = {case.get("name"): case.find("failure") for case in suite.findall("testcase")}
    crossed, check = failures["http_req_failed rate<0.01"], failures["page has items"]
    assert crossed is not None and crossed.get("type") == "threshold"
    assert crossed.get("message") == "k6 threshold http_req_failed rate<0.01 was crossed"
    assert check is not None and check.get("type") == "check"
    assert check.get("message") == "k6 check 'page has items' failed 10 times in 100 (10.00%)"
    assert failures["status is 200"] is None
    assert suite.get("failures") == "2"


def test_the_junit_schema_refuses_what_ci_could_not_read() -> None:
    valid = _report(NEW, "--format", "junit").output
    for broken in (valid.replace('tests="4"', 'tests="four"'),
                   valid.replace("<testcase ", "<case ", 1),
                   valid.replace('<testcase classname="k6.checks" ',
                                 '<testcase classname="k6.checks" verdict="?" ', 1)):
        assert not JUNIT_SCHEMA.is_valid(broken)


# --- the time series as CSV ----------------------------------------------------------------


def test_the_time_series_as_csv_matches_its_golden_file(tmp_path: Path) -> None:
    out = tmp_path / "series.csv"
    result = _report(NEW, "--format", "json", "--csv", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    series = read_run(RUNS / NEW).timeseries
    assert series is not None and len(rows) == len(series)
    assert [float(row["requests_per_s"]) for row in rows] == list(series.requests_per_s)
    assert list(rows[0]) == list(json.loads(_report(NEW, "--format", "json").output)
                                 ["timeseries"])  # the JSON's names
    golden(f"{NEW}.timeseries.csv", text)


def test_a_second_without_a_figure_is_an_empty_cell(tmp_path: Path) -> None:
    out = tmp_path / "series.csv"
    smoke = "20261127T174225Z-smoke"  # k6 reports no VUs in the first second
    assert _report(smoke, "--csv", str(out)).exit_code == 0
    first = next(csv.DictReader(io.StringIO(out.read_text())))
    assert first["vus"] == "" and first["requests_per_s"] != ""


def test_csv_of_a_run_without_a_time_series_is_one_error(tmp_path: Path) -> None:
    result = _report(OLD, "--csv", str(tmp_path / "series.csv"))
    assert result.exit_code == ExitCode.ERROR
    assert f"run {OLD} has no time series" in result.output
    assert not (tmp_path / "series.csv").exists()


# --- the comparison: verdict and notes in every format -------------------------------------


@pytest.mark.parametrize(("verdicts", "expected"), [
    ((BETTER, WORSE, NOISE), WORSE),  # a regression anywhere is a regression
    ((NOISE, WORSE), WORSE),
    ((BETTER, NOISE, NOISE), BETTER),
    ((NOISE, NOISE), NOISE),
    ((UNKNOWN, UNKNOWN), UNKNOWN),
    ((), UNKNOWN),  # nothing compared
])
def test_the_overall_verdict(verdicts: tuple[str, ...], expected: str) -> None:
    assert overall_verdict(verdicts) == expected


@pytest.mark.parametrize(("output_format", "suffix"), [
    ("json", "json"), ("markdown", "md"), ("terminal", "txt")])
def test_the_comparison_matches_its_golden_file(output_format: str, suffix: str) -> None:
    result = _report("--compare", OLD, NEW, "--format", output_format)
    assert result.exit_code == 0, result.output
    if output_format == "json":
        jsonschema.Draft202012Validator(COMPARISON_SCHEMA).validate(json.loads(result.output))
    golden(f"compare-{OLD}-{NEW}.{suffix}", result.output)


def test_every_format_gives_the_comparisons_notes_in_the_same_words() -> None:
    document = json.loads(_report("--compare", OLD, NEW, "--format", "json").output)
    assert document["verdict"] == UNKNOWN
    assert not document["like_for_like"] and not document["enough_runs"]
    notes = document["notes"]
    assert [note["kind"] for note in notes] == ["not_like_for_like", "too_few_runs"]
    assert notes[0]["text"] == "duration_seconds: 20 against 10"
    terminal = _report("--compare", OLD, NEW).output
    markdown = _report("--compare", OLD, NEW, "--format", "markdown").output
    assert f"verdict: {UNKNOWN}" in terminal and f"**Verdict:** {UNKNOWN}" in markdown
    for note in notes:
        assert f"{note['label']}: {note['text']}" in " ".join(terminal.split())
        assert f"- **{md_text(note['label'])}:** {md_text(note['text'])}" in markdown


def _groups(tmp_path: Path, candidate_scale: float) -> Path:
    """Two --repeat groups of three copies of a sample run; the candidate's throughput is the
    baseline's times `candidate_scale`."""
    copy_as_group(tmp_path, NEW, ["a1", "a2", "a3"], 1.0)
    copy_as_group(tmp_path, NEW, ["b1", "b2", "b3"], candidate_scale)
    return tmp_path


def test_enough_repeats_read_as_a_difference_with_the_rule_that_called_it(
        tmp_path: Path) -> None:
    result = _report("--compare", "a1", "b1", "--format", "json",
                     results_dir=_groups(tmp_path, 1.5))
    document = json.loads(result.output)
    jsonschema.Draft202012Validator(COMPARISON_SCHEMA).validate(document)
    assert document["verdict"] == BETTER and document["enough_runs"]
    assert [note["kind"] for note in document["notes"]] == ["how_to_read"]
    markdown = _report("--compare", "a1", "b1", "--format", "markdown",
                       results_dir=tmp_path).output
    assert f"- {md_text(document['notes'][0]['text'])}" in markdown


# --- --fail-on worse -----------------------------------------------------------------------


@pytest.mark.parametrize(("scale", "flags", "exit_code"), [
    (0.5, ["--fail-on", "worse"], ExitCode.COMPARISON_WORSE),  # half the throughput
    (0.5, [], ExitCode.PASSED),  # without the flag, a worse verdict is only reported
    (0.5, ["--fail-on", "worse", "--format", "json"], ExitCode.COMPARISON_WORSE),
    (1.5, ["--fail-on", "worse"], ExitCode.PASSED),  # better
    (1.0, ["--fail-on", "worse"], ExitCode.PASSED),  # within noise
])
def test_fail_on_worse_exits_with_its_own_code(tmp_path: Path, scale: float,
                                               flags: list[str], exit_code: int) -> None:
    result = _report("--compare", "a1", "b1", *flags, results_dir=_groups(tmp_path, scale))
    assert result.exit_code == exit_code, result.output
    assert "throughput" in result.output  # the comparison is shown either way


def test_fail_on_worse_with_single_runs_cannot_fail(tmp_path: Path) -> None:
    # Half the throughput, but one run a side: the verdict cannot tell, so no gate trips.
    copy_as_group(tmp_path, NEW, ["a1"], 1.0)
    copy_as_group(tmp_path, NEW, ["b1"], 0.5)
    result = _report("--compare", "a1", "b1", "--fail-on", "worse", results_dir=tmp_path)
    assert result.exit_code == ExitCode.PASSED, result.output
    assert f"verdict: {UNKNOWN}" in result.output


def test_fail_on_works_with_baseline_too(tmp_path: Path) -> None:
    result = _report("b1", "--baseline", "a1", "--fail-on", "worse",
                     results_dir=_groups(tmp_path, 0.5))
    assert result.exit_code == ExitCode.COMPARISON_WORSE, result.output


@pytest.mark.parametrize(("flags", "message"), [
    (["--fail-on", "better", "--compare", OLD, NEW], "'better' is not one of 'worse'"),
    (["--fail-on", "worse", NEW], "needs a comparison"),
    (["--compare", OLD, NEW, "--format", "junit"], "one run's thresholds and checks"),
    (["--compare", OLD, NEW, "--csv", "x.csv"], "writes one run's time series"),
    (["--list", "--csv", "x.csv"], "does not apply to --list"),
])
def test_flags_for_machines_that_do_not_apply_are_refused(flags: list[str],
                                                          message: str) -> None:
    result = _report(*flags)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert message in " ".join(result.output.split())
