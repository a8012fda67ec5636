"""Report rendering on checked-in real k6 runs (golden files), checks, and run comparison."""

from __future__ import annotations

import gzip
import html
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from alumnos_cli.main import app
from alumnos_cli.report.balancer import BalancerActivity, BreakerEvent
from alumnos_cli.report.checks import generator_verdict, littles_law
from alumnos_cli.report.compare import BETTER, NOISE, UNKNOWN, WORSE, compare, verdict
from alumnos_cli.report.model import GeneratorUsage, Latency, LoadShape, RunFigures, RunMeta
from alumnos_cli.report.read import load_sides, read_record, read_run
from alumnos_cli.report.render.balancer import balancer_rows
from alumnos_cli.report.render.markdown import run_markdown
from alumnos_cli.report.render.numbers import number
from alumnos_cli.report.render.terminal import run_terminal
from alumnos_cli.report.render.text import littles_law_text
from tests.runs import copy_as_group, golden, run_with_meta

DATA = Path(__file__).parent / "data"
RUNS = DATA / "runs"
SAMPLES = ["20261127T022841Z-spike", "20261127T051814Z-spike", "20261127T051838Z-load",
           "20261127T163621Z-spike", "20261127T173751Z-stress", "20261127T174225Z-smoke",
           "20261128T014500Z-load"]
runner = CliRunner()


def _markdown(name: str, lang: str) -> str:
    return run_markdown(read_run(RUNS / name), lang)


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("lang", ["es", "en"])
def test_markdown_matches_its_golden_file(name: str, lang: str) -> None:
    golden(f"{name}.{lang}.md", _markdown_with_server(name, lang))


@pytest.mark.parametrize("name", SAMPLES)
def test_terminal_report_matches_its_golden_file(name: str) -> None:
    console = Console(record=True, width=110, color_system=None, force_terminal=False)
    console.print(run_terminal(read_run(RUNS / name)))
    golden(f"{name}.txt", console.export_text())


@pytest.mark.parametrize("name", SAMPLES)
def test_json_matches_its_golden_file(name: str) -> None:
    result = runner.invoke(app, ["report", name, "--format", "json", "--results-dir", str(RUNS)])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["run"] == name
    assert document["figures"]["requests"] == read_record(RUNS / name).figures.requests
    golden(f"{name}.json", result.output)


def test_server_side_figures_are_reported() -> None:
    text = _markdown_with_server("20261127T051814Z-spike", "es")
    assert "### Lado del servidor" in text
    assert "peticiones por réplica" in text and "replica-1" in text
    assert "aciertos de caché (en el balanceador)" in text


def _markdown_with_server(name: str, lang: str) -> str:
    result = runner.invoke(app, ["report", name, "--format", "markdown", "--lang", lang,
                                 "--results-dir", str(RUNS)])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_conclusion_follows_the_figures() -> None:
    es = _markdown("20261127T051814Z-spike", "es")
    f = read_record(RUNS / "20261127T051814Z-spike").figures
    assert "## Prueba de carga: escenario spike" in es
    assert "### Configuración" in es and "### Resultados" in es and "### Conclusión" in es
    assert f"Las {number(f.requests, 0, 'es')} peticiones terminaron sin errores." in es
    assert "Fracción del techo" in es  # calibrated: the share of the ceiling is given
    # k6 shared a saturated 2-core machine in this run: the report must say so.
    assert "cota inferior" in es
    en = _markdown("20261127T051814Z-spike", "en")
    assert "lower bound" in en and "## Load test: spike scenario" in en


def test_a_failed_threshold_changes_the_conclusion(tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(RUNS / "20261127T051814Z-spike", run)
    summary = json.loads((run / "summary.json").read_text())
    summary["metrics"]["http_req_duration"]["thresholds"] = {"p(95)<1": {"ok": False}}
    (run / "summary.json").write_text(json.dumps(summary))
    text = run_markdown(read_run(run), "es")
    assert "El servicio NO cumplió `http_req_duration p(95)<1`." in text
    assert "cumplió todos los umbrales" not in text


def test_the_open_model_reports_its_rate_and_drops() -> None:
    stored = read_record(RUNS / "20261127T051838Z-load")
    assert stored.meta.model == "open" and stored.meta.rate == 300
    assert littles_law(stored.figures, stored.meta) is None  # VUs are a pool there
    text = _markdown("20261127T051838Z-load", "en")
    assert "300 requests/s for 8 s, up to 20 virtual users (open model)" in text


def _figures(rps: float, avg_ms: float, iterations_per_s: float, iteration_ms: float,
             seconds: float = 120.0) -> RunFigures:
    return RunFigures(
        requests=int(rps * seconds), requests_per_second=rps, share_200=1.0, error_rate=0.0,
        latency=Latency(avg=avg_ms, p50=avg_ms, p90=avg_ms, p95=avg_ms, p99=avg_ms,
                        max=avg_ms), duration_seconds=seconds, data_received_bytes=0,
        max_vus=200, iterations=int(iterations_per_s * seconds), thresholds=(),
        iteration_avg_ms=iteration_ms)


def _meta(vus: int = 200, stages: tuple[tuple[float, float], ...] = ()) -> RunMeta:
    """A closed-model run's metadata: the sample spike's, with this load."""
    meta = read_record(RUNS / "20261127T051814Z-spike").meta
    return replace(meta, vus=vus, duration_seconds=120, load_shape=LoadShape(stages))


def test_littles_law_flags_the_reference_reports_figures() -> None:
    # 200 VUs, 595 req/s, 189 ms: 595 x 0.189 = 112 VUs' worth of requests, not 200.
    reference = _figures(rps=595, avg_ms=189, iterations_per_s=595, iteration_ms=336)
    little = littles_law(reference, _meta())
    assert little is not None
    assert little.in_requests == pytest.approx(112.5, abs=0.1)
    assert little.consistent  # the iterations account for the VUs ...
    assert little.outside_requests == pytest.approx(0.44, abs=0.01)  # ... not the requests
    assert "44% of the VUs' time went outside the requests" in littles_law_text(little)


def test_littles_law_uses_the_average_of_a_ramped_shape() -> None:
    run = _figures(rps=1000, avg_ms=185, iterations_per_s=1000, iteration_ms=185)
    spike = _meta(stages=((0.05, 1), (0.85, 1), (0.1, 0)))
    little = littles_law(run, spike)
    assert little is not None and little.configured == pytest.approx(185.0)
    assert little.consistent and little.outside_requests < 0.01
    idle = littles_law(replace(run, iteration_avg_ms=100), spike)
    assert idle is not None and not idle.consistent


@pytest.mark.parametrize(("usage", "limited"), [
    ({"k6_cores": 0.97, "cpu_count": 2, "machine_busy": 0.95}, True),
    ({"k6_cores": 0.24, "cpu_count": 2, "machine_busy": 0.22}, False),
    ({"k6_cores": 0.9, "cpu_count": 8, "machine_busy": 0.5}, False),
])
def test_the_generator_verdict(usage: dict[str, float], limited: bool) -> None:
    result = generator_verdict(replace(_meta(), generator=GeneratorUsage(**usage)))
    assert result is not None and result.limited is limited


@pytest.mark.parametrize(("baseline", "candidate", "higher", "expected"), [
    ([100, 102, 101], [110, 111, 112], True, BETTER),
    ([100, 102, 101], [90, 91, 92], True, WORSE),
    ([100, 110, 105], [104, 108, 112], True, NOISE),
    ([50, 52, 51], [40, 41, 42], False, BETTER),  # latency: lower is better
    ([100, 101, 102], [103, 104, 105], True, NOISE),  # apart, but by less than 5%
    ([100, 101], [150, 151], True, UNKNOWN),  # fewer than 3 runs a side: spread unknown
    ([100], [150], True, UNKNOWN),
])
def test_comparison_verdicts_respect_the_noise(baseline: list[float], candidate: list[float],
                                              higher: bool, expected: str) -> None:
    assert verdict(baseline, candidate, higher_is_better=higher) == expected


def test_comparing_repeat_groups_on_constructed_runs(tmp_path: Path) -> None:
    copy_as_group(tmp_path, "20261127T051814Z-spike", ["a1", "a2", "a3"], 1.0)
    copy_as_group(tmp_path, "20261127T051814Z-spike", ["b1", "b2", "b3"], 1.5)
    result = compare(*load_sides(tmp_path, "a2", "b1"))
    assert [len(side.runs) for side in (result.baseline, result.candidate)] == [3, 3]
    rows = {row.metric: row for row in result.rows}
    assert rows["throughput"].verdict == BETTER
    assert rows["latency p95"].verdict == NOISE  # identical latencies in every copy
    assert rows["throughput"].relative == pytest.approx(0.5, abs=0.01)
    cli = runner.invoke(app, ["report", "--compare", "a1", "b1", "--results-dir",
                              str(tmp_path)], env={"COLUMNS": "160"})
    assert cli.exit_code == 0, cli.output
    assert "better" in cli.output and "+50." in cli.output


def test_single_runs_cannot_be_told_apart(tmp_path: Path) -> None:
    cli = runner.invoke(app, ["report", "--compare", "20261127T022841Z-spike",
                              "20261127T051814Z-spike", "--results-dir", str(RUNS)],
                        env={"COLUMNS": "160"})
    assert cli.exit_code == 0, cli.output
    assert "cannot tell" in cli.output and "--repeat 3" in cli.output
    # a 20 s closed spike against a 10 s one: said, not hidden
    assert "not like for like: duration_seconds: 20 against 10" in cli.output


def test_two_runs_of_one_group_are_compared_one_against_the_other(tmp_path: Path) -> None:
    copy_as_group(tmp_path, "20261127T051814Z-spike", ["a1", "a2", "a3"], 1.0)
    baseline, candidate = load_sides(tmp_path, "a1", "a3")
    assert [r.name for r in baseline.runs] == ["a1"]
    assert [r.name for r in candidate.runs] == ["a3"]


@pytest.mark.parametrize(("file", "content", "message"), [
    ("timeseries.ndjson.gz", b"not gzip at all", "is not a readable k6 recording"),
    ("timeseries.ndjson.gz", gzip.compress(b'[1, 2]\n'), "is not a readable k6 recording"),
    ("timeseries.ndjson.gz", gzip.compress(b'{"event":"start","data":[[]]}\n'),
     "is not a readable k6 recording"),
    ("server.json", b'{"summary": {"requests_by_replica": {"r1": "x"}}}',
     "does not hold server-side figures"),
    ("server.json", b"[]", "does not hold a JSON object"),
])
def test_corrupt_run_files_give_one_line_naming_the_file(tmp_path: Path, file: str,
                                                         content: bytes, message: str) -> None:
    name = "20261127T051814Z-spike"
    shutil.copytree(RUNS / name, tmp_path / name)
    (tmp_path / name / file).write_bytes(content)
    # Markdown has no time series to read; the other formats read every file.
    formats = ("terminal", "html") if file.startswith("timeseries") else (
        "terminal", "markdown", "html")
    for output_format in formats:
        result = runner.invoke(app, ["report", name, "--format", output_format,
                                     "--results-dir", str(tmp_path)], env={"COLUMNS": "300"})
        assert result.exit_code == 1, result.output
        assert message in result.output and file in result.output
        assert "Traceback" not in result.output


def test_list_shows_each_run_and_names_a_broken_one(tmp_path: Path) -> None:
    for name in SAMPLES:
        shutil.copytree(RUNS / name, tmp_path / name)
    broken = tmp_path / "20261127T060000Z-smoke"
    shutil.copytree(RUNS / SAMPLES[0], broken)
    (broken / "summary.json").write_text("{truncated")
    result = runner.invoke(app, ["report", "--list", "--results-dir", str(tmp_path)],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in SAMPLES:
        assert name in result.output
    assert "not valid JSON" in result.output


@pytest.mark.parametrize(("flags", "exit_code", "message"), [
    (["--format", "pdf"], 2, "'pdf' is not one of 'terminal', 'markdown', 'json', 'html'"),
    (["--lang", "fr"], 2, "'fr' is not one of 'es', 'en'"),
    (["--compare", "nope", "20261127T051814Z-spike"], 1, "no run folder named 'nope'"),
])
def test_bad_report_flags_give_one_line(flags: list[str], exit_code: int, message: str) -> None:
    result = runner.invoke(app, ["report", *flags, "--results-dir", str(RUNS)],
                           env={"COLUMNS": "200"})
    assert result.exit_code == exit_code, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_markdown_written_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "informe.md"
    result = runner.invoke(app, ["report", "20261127T051814Z-spike", "--format", "markdown",
                                 "--results-dir", str(RUNS), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == _markdown_with_server("20261127T051814Z-spike", "es")


def _with_proof(tmp_path: Path, run_stack: str | None, proofs: dict[str, str]) -> str:
    """The sample spike run, its stack named `run_stack`, beside proofs made on named stacks."""
    name = "20261127T051814Z-spike"
    run = tmp_path / name
    shutil.copytree(RUNS / name, run)
    meta = json.loads((run / "meta.json").read_text())
    meta["stack"]["stack_id"] = run_stack
    (run / "meta.json").write_text(json.dumps(meta))
    for started, (stack_id, observed) in enumerate(proofs.items()):
        proof = tmp_path / "patterns" / f"20261127T06000{started}Z"
        proof.mkdir(parents=True)
        (proof / "patterns.json").write_text(json.dumps({
            "started_at": proof.name, "stack_id": stack_id,
            "results": [{"pattern": "retry", "action": "kill", "observed": observed,
                         "verdict": "pass", "evidence": {}}]}))
    return name


def test_the_proof_of_the_runs_own_stack_is_part_of_the_report(tmp_path: Path) -> None:
    # The newer proof was made on another stack (after a down and up): it proves nothing here.
    name = _with_proof(tmp_path, "stack-a", {"stack-a": "0 failed", "stack-b": "2 failed"})
    markdown = runner.invoke(app, ["report", name, "--format", "markdown", "--lang", "en",
                                   "--results-dir", str(tmp_path)])
    assert "### Resilience patterns (alumnos patterns)" in markdown.output
    assert "| retry | 0 failed | pass |" in markdown.output
    assert "2 failed" not in markdown.output
    terminal = runner.invoke(app, ["report", name, "--results-dir", str(tmp_path)],
                             env={"COLUMNS": "160"})
    assert "20261127T060000Z" in terminal.output and "20261127T060001Z" not in terminal.output
    assert "│ retry   │ 0 failed │ pass    │" in terminal.output


@pytest.mark.parametrize("run_stack", [None, "stack-c"])
def test_a_proof_of_another_stack_is_not_shown(tmp_path: Path, run_stack: str | None) -> None:
    name = _with_proof(tmp_path, run_stack, {"stack-a": "0 failed"})
    report = read_run(tmp_path / name)
    assert report.proof is None
    assert "Patterns" not in runner.invoke(app, ["report", name, "--results-dir",
                                                 str(tmp_path)]).output


def test_old_runs_read_with_what_they_ran_not_with_todays_scenarios(tmp_path: Path) -> None:
    # A run that recorded its stages and request keeps them, whatever k6/lib says today.
    name = "20261127T051814Z-spike"
    run = tmp_path / name
    shutil.copytree(RUNS / name, run)
    meta = json.loads((run / "meta.json").read_text())
    meta["scenario_definition"] = {"stages": [[0.5, 1], [0.5, 0]],
                                   "request_path": "/api/v1/alumno/alumno?limit=7&offset=0"}
    (run / "meta.json").write_text(json.dumps(meta))
    report = read_run(run)
    assert report.meta.load_shape.average_share() == pytest.approx(0.5)
    assert report.little is not None and report.little.configured == pytest.approx(25.0)
    assert "`GET /api/v1/alumno/alumno?limit=7&offset=0`" in run_markdown(report, "en")
    # One recorded before scenarios were recorded reads with the definitions of its day.
    old = read_record(RUNS / "20261127T022841Z-spike").meta
    assert old.load_shape == LoadShape(((0.05, 1), (0.85, 1), (0.1, 0)))
    assert old.model == "closed" and old.requests.endswith("?limit=100&offset=0")


def test_a_calibration_folder_outside_the_run_is_refused(tmp_path: Path) -> None:
    name = "20261127T051814Z-spike"
    run = tmp_path / name
    shutil.copytree(RUNS / name, run)
    meta = json.loads((run / "meta.json").read_text())
    meta["calibration"]["folder"] = str(RUNS / name / "calibration")  # absolute, elsewhere
    (run / "meta.json").write_text(json.dumps(meta))
    result = runner.invoke(app, ["report", name, "--results-dir", str(tmp_path)],
                           env={"COLUMNS": "300"})
    assert result.exit_code == 1
    assert "outside its run folder" in result.output


def test_what_the_balancer_did_is_reported_from_the_run() -> None:
    # A real run on an uncached stack past its capacity: refused at once, none ejected.
    knee = read_run(RUNS / "20261127T173751Z-stress").meta.balancer
    assert knee is not None and knee.breaker_enabled and knee.ejections == ()
    assert knee.refused["queue_full"] == knee.refused_total > 0
    # A real run with replica-2 slowed by 300 ms from its fourth second to its ninth.
    slowed = read_run(RUNS / "20261127T174225Z-smoke").meta.balancer
    assert slowed is not None and slowed.refused_total == 0
    [ejection] = slowed.ejections
    assert ejection.replica == "replica-2" and 4 < ejection.start_s < 8
    assert ejection.end_s is not None and ejection.end_s - ejection.start_s == pytest.approx(
        10, abs=0.5)  # the fallback duration
    assert ejection.cause.median_ms is not None and ejection.cause.peers_ms is not None
    assert ejection.cause.median_ms > 2 * ejection.cause.peers_ms
    markdown = _markdown("20261127T174225Z-smoke", "es")
    assert "El circuit breaker sacó una réplica una vez: replica-2 fuera desde el segundo" in \
        markdown


def test_an_ejection_still_running_at_the_end_is_open_ended() -> None:
    events = (BreakerEvent(2.0, "replica-1", "open", "slow", 300.0, 5.0, 0.0),
              BreakerEvent(12.0, "replica-1", "recovering", "after 10 s out"),
              BreakerEvent(20.0, "replica-3", "open", "slow", 250.0, 6.0, 0.0))
    activity = BalancerActivity(breaker_enabled=True, responses=100, refused={}, events=events)
    first, second = activity.ejections
    assert (first.replica, first.start_s, first.end_s) == ("replica-1", 2.0, 12.0)
    assert (second.replica, second.start_s, second.end_s) == ("replica-3", 20.0, None)
    assert balancer_rows(activity, "en")[-1] == (
        "replica-3 out", "from 20.0 s to the end: p50 250 ms, its peers 6 ms; 0% failed")


def test_a_runs_text_cannot_inject_markdown_or_html(tmp_path: Path) -> None:
    def inject(meta: dict[str, Any]) -> None:
        meta["command"] = "alumnos bench `<script>alert(1)</script>` | x"
        meta["url"] = "http://127.0.0.1:8080/<!--<script>x</script>"

    name = run_with_meta(tmp_path, "20261127T051814Z-spike", inject)
    markdown = runner.invoke(app, ["report", name, "--format", "markdown", "--results-dir",
                                   str(tmp_path)])
    assert markdown.exit_code == 0, markdown.output
    # Before: `alumnos bench `<script>...` closed the code span, and the URL was raw HTML.
    assert "``alumnos bench `<script>alert(1)</script>` \\| x``" in markdown.output
    assert "http://127.0.0.1:8080/\\<\\!--\\<script\\>x\\</script\\>" in markdown.output
    from alumnos_cli.report.render.html import page as html_page

    page = html_page("t", "", {"name": "x<!--<script>y</script>&"})
    data = page.split('id="alumnos-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and ">" not in data  # before: "<!--" survived into the JSON
    assert json.loads(data) == {"name": "x<!--<script>y</script>&"}


@pytest.mark.parametrize("lang", ["es", "en"])
def test_markdown_and_the_page_say_the_shared_words_alike(lang: str) -> None:
    from alumnos_cli.report.render.html import run_html
    from alumnos_cli.report.render.words import WORDS

    report = read_run(RUNS / "20261128T014500Z-load")
    markdown, page = _markdown("20261128T014500Z-load", lang), run_html(report, lang)
    title = WORDS[lang]["title"].format(scenario=report.meta.scenario)
    assert f"## {title}" in markdown and f"<h1>{html.escape(title)} " in page
    for heading in ("configuration", "results", "thresholds", "conclusion", "server"):
        assert f"### {WORDS[lang][heading]}" in markdown, heading
        assert f"<h2>{html.escape(WORDS[lang][heading])}</h2>" in page, heading
