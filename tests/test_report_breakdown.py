"""The breakdown of a run: p99.9, setup() left out of the figures, per endpoint and status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from alumnos_cli.bench.breakdown import record_breakdown
from alumnos_cli.bench.server_prometheus import Window
from alumnos_cli.errors import RunFolderError
from alumnos_cli.report.breakdown import NO_PROMETHEUS, NOT_RECORDED
from alumnos_cli.report.read import read_record, read_run
from alumnos_cli.report.render.breakdown import breakdown_notes
from alumnos_cli.report.render.json_document import run_json
from alumnos_cli.report.render.markdown import md_text, run_markdown
from alumnos_cli.report.summary import summary_figures
from tests.runs import run_with_meta

DATA = Path(__file__).parent / "data"
RUNS = DATA / "runs"


def _summary(**durations: float) -> dict[str, Any]:
    trend = {"avg": 10.0, "min": 1.0, "med": 9.0, "max": 90.0, "p(90)": 20.0, "p(95)": 30.0,
             "p(99)": 50.0} | durations
    return {"metrics": {"http_reqs": {"values": {"count": 1000, "rate": 100.0}},
                        "http_req_duration": {"values": trend},
                        "http_req_failed": {"values": {"rate": 0.0}}}}


def test_p999_is_read_when_k6_reported_it() -> None:
    latency = summary_figures(_summary(**{"p(99.9)": 80.0}), "summary.json").latency
    assert latency.p999 == 80.0


def test_a_run_recorded_before_p999_has_none() -> None:
    assert summary_figures(_summary(), "summary.json").latency.p999 is None
    assert read_record(RUNS / "20261127T022841Z-spike").figures.latency.p999 is None
    assert json.loads((DATA / "golden" / "20261127T022841Z-spike.json").read_text()
                      )["figures"]["latency"]["p999"] is None


def test_the_figures_are_the_scenarios_own_requests_when_k6_kept_them() -> None:
    # What k6 1.1 wrote for a 2 s run whose setup() made 4 requests (one slow, one failed).
    summary = _summary()
    summary["state"] = {"testRunDurationMs": 2000.0}
    metrics = summary["metrics"]
    metrics["http_reqs"]["values"] = {"count": 104, "rate": 52.0}
    metrics["http_req_failed"]["values"] = {"rate": 2 / 104, "passes": 2, "fails": 102}
    metrics["http_req_failed{scenario:load}"] = {"values": {"rate": 0.01, "passes": 1,
                                                            "fails": 99}}
    metrics["http_req_duration{scenario:load}"] = {"values": {
        "avg": 5.0, "min": 1.0, "med": 4.0, "max": 9.0, "p(90)": 7.0, "p(95)": 8.0,
        "p(99)": 8.5, "p(99.9)": 8.9}}
    figures = summary_figures(summary, "summary.json")
    assert (figures.requests, figures.requests_per_second, figures.error_rate) == (100, 50.0,
                                                                                   0.01)
    assert (figures.latency.avg, figures.latency.max, figures.latency.p999) == (5.0, 9.0, 8.9)


BREAKDOWN_RUN = "20261128T014500Z-load"


def test_the_breakdown_is_read_and_accounts_for_every_request() -> None:
    report = read_run(RUNS / BREAKDOWN_RUN)
    assert report.breakdown is not None and report.breakdown_missing is None
    assert report.breakdown.requests == report.figures.requests == 2101  # setup's 4 left out
    assert [(e.kind, e.key, e.count, e.first_s) for e in report.breakdown.errors] == [
        ("status", "503", 11, 3.0), ("error_code", "1503", 11, 3.0),
        ("check", "size or type", 2, 5.0)]


@pytest.mark.parametrize(("recorded", "lang", "line"), [
    (None, "en", NOT_RECORDED),
    ({"missing": NO_PROMETHEUS}, "en", NO_PROMETHEUS),
    ({"missing": NO_PROMETHEUS}, "es", "sin desglose: k6 no escribió en ningún Prometheus"),
    ({"missing": "no breakdown: Prometheus does not answer at http://p:9090"}, "es",
     "no breakdown: Prometheus does not answer at http://p:9090"),
])
def test_a_run_without_a_breakdown_says_why_in_one_line(
        tmp_path: Path, recorded: dict[str, str] | None, lang: str, line: str) -> None:
    def change(meta: dict[str, Any]) -> None:
        meta["breakdown"] = recorded

    name = run_with_meta(tmp_path, BREAKDOWN_RUN, change)
    (tmp_path / name / "breakdown.json").unlink()
    report = read_run(tmp_path / name)
    assert report.breakdown is None
    notes = breakdown_notes(report, lang)
    assert len(notes) == 1 and notes[0].startswith(line)
    assert f"_{md_text(notes[0])}_" in run_markdown(report, lang)
    assert json.loads(run_json(report))["breakdown_missing"] == report.breakdown_missing


def test_a_corrupt_breakdown_is_one_error_naming_its_file(tmp_path: Path) -> None:
    name = run_with_meta(tmp_path, BREAKDOWN_RUN, lambda meta: None)
    (tmp_path / name / "breakdown.json").write_text('{"endpoints": [{"name": "x"}]}')
    with pytest.raises(RunFolderError, match=r"breakdown\.json does not hold a breakdown"):
        read_run(tmp_path / name)


def test_without_prometheus_bench_records_why_and_no_breakdown(tmp_path: Path) -> None:
    # --prometheus off (or no stack's Prometheus): k6 wrote nowhere, so nothing to read.
    recorded = record_breakdown(None, tmp_path, Window(0.0, 1.0))
    assert recorded == {"missing": NO_PROMETHEUS}
    assert not (tmp_path / "breakdown.json").exists()
