"""The breakdown of a run: p99.9, setup() left out of the figures, per endpoint and status."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest

from alumnos_cli.bench.breakdown import record_breakdown
from alumnos_cli.bench.server_prometheus import Window
from alumnos_cli.errors import RunFolderError
from alumnos_cli.report.breakdown import NO_PROMETHEUS, NOT_RECORDED, Bucket, coarser
from alumnos_cli.report.read import read_record, read_run
from alumnos_cli.report.render.breakdown import (
    BAR_WIDTH,
    TEXT_BUCKETS,
    THIN_BAR,
    breakdown_notes,
    breakdown_tables,
)
from alumnos_cli.report.render.json_document import run_json
from alumnos_cli.report.render.markdown import md_text, run_markdown
from alumnos_cli.report.render.numbers import percent
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


def _k6_buckets(counts: dict[int, int]) -> tuple[Bucket, ...]:
    """k6's native-histogram buckets by index k: (2^((k-1)/8), 2^(k/8)] seconds, in ms."""
    return tuple(Bucket(round(1000 * 2 ** ((k - 1) / 8), 6), round(1000 * 2 ** (k / 8), 6), n)
                 for k, n in sorted(counts.items()))


def test_the_run_has_its_latency_distribution_and_it_agrees_with_the_percentiles() -> None:
    report = read_run(RUNS / BREAKDOWN_RUN)
    assert report.breakdown is not None
    histogram = report.breakdown.histogram
    assert sum(b.requests for b in histogram) == report.figures.requests
    # k6's p50 lies in the bucket where half of the requests have been counted.
    below, median_bucket = 0, None
    for bucket in histogram:
        below += bucket.requests
        if below >= report.figures.requests / 2:
            median_bucket = bucket
            break
    assert median_bucket is not None
    assert median_bucket.lower_ms < report.figures.latency.p50 <= median_bucket.upper_ms


@pytest.mark.parametrize("at_most", [1, 3, 8, 12, 40, 100])
def test_a_coarser_histogram_keeps_every_request_on_k6s_own_boundaries(at_most: int) -> None:
    # Buckets 5.5 ms to 160 ms with gaps; the zero bucket (under k6's threshold) apart.
    fine = (Bucket(0.0, 0.001, 7), *_k6_buckets({-60: 3, -59: 10, -50: 4, -30: 1, -21: 9}))
    coarse = coarser(fine, at_most)
    assert coarse[0] == fine[0]
    assert sum(b.requests for b in coarse) == sum(b.requests for b in fine)
    assert len(coarse) <= max(at_most, 2)
    assert all(a.upper_ms == b.lower_ms for a, b in itertools.pairwise(coarse[1:]))
    for bucket in coarse[1:]:  # bounds are powers of 2^(1/8) seconds
        steps = math.log2(bucket.upper_ms / 1000) * 8
        assert steps == pytest.approx(round(steps), abs=1e-4)
    # Each fine bucket lies inside the coarse bucket that counts it.
    for bucket in fine[1:]:
        [holder] = [c for c in coarse[1:] if c.lower_ms <= bucket.lower_ms * 1.0001
                    and bucket.upper_ms <= c.upper_ms * 1.0001]
        assert holder.requests >= bucket.requests
    if at_most >= 100:  # nothing merged: the gaps filled with empty buckets
        expected = _k6_buckets(dict(zip(range(-60, -20), [3, 10, *[0] * 8, 4, *[0] * 19, 1,
                                                         *[0] * 8, 9], strict=True)))
        assert [b.requests for b in coarse[1:]] == [b.requests for b in expected]
        assert [b.upper_ms for b in coarse[1:]] == pytest.approx(
            [b.upper_ms for b in expected], rel=1e-5)


@pytest.mark.parametrize("histogram", [
    [[1.0, 2.0, 3], [1.5, 3.0, 1]],  # overlapping
    [[2.0, 1.0, 3]],  # upside down
    [[1.0, 2.0, 3, 4]],  # not [lower, upper, count]
])
def test_a_histogram_not_as_bench_writes_it_is_refused(tmp_path: Path,
                                                       histogram: list[Any]) -> None:
    name = run_with_meta(tmp_path, BREAKDOWN_RUN, lambda meta: None)
    file = tmp_path / name / "breakdown.json"
    document = json.loads(file.read_text())
    file.write_text(json.dumps(document | {"histogram": histogram}))
    with pytest.raises(RunFolderError, match=r"breakdown\.json does not hold a breakdown"):
        read_run(tmp_path / name)


@pytest.mark.parametrize(("lang", "title"), [("en", "Latency distribution (whole run)"),
                                              ("es", "Distribución de la latencia")])
def test_the_text_formats_draw_the_distribution_in_a_few_rows(lang: str, title: str) -> None:
    report = read_run(RUNS / BREAKDOWN_RUN)
    assert report.breakdown is not None
    [table] = [t for t in breakdown_tables(report.breakdown, lang) if t.title.startswith(title)]
    assert 3 <= len(table.rows) <= TEXT_BUCKETS
    assert sum(int(row[1].replace(",", "").replace(".", "")) for row in table.rows) == 2101
    bars = [len(row[4]) for row in table.rows]
    assert max(bars) == BAR_WIDTH and {row[4] for row in table.rows} <= {
        "█" * n for n in range(1, BAR_WIDTH + 1)} | {THIN_BAR}  # every bucket drawn
    assert table.rows[-1][3] == percent(1.0, lang)
    # The page draws it instead of listing it.
    assert title not in [t.title for t in breakdown_tables(report.breakdown, lang,
                                                           distribution=False)]
