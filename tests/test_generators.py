"""Splitting a load over generator hosts: what --generator accepts, how the load is split, and
how the instances' summaries merge (exact counts, a weighted average, thresholds judged once)."""

from __future__ import annotations

import io
import itertools
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from alumnos_cli.bench.generators.abort import AbortRule, Progress, crossed
from alumnos_cli.bench.generators.instance import cpu_seconds
from alumnos_cli.bench.generators.merge import (
    FROM_PROMETHEUS,
    UPPER_BOUND,
    holds,
    merge_summaries,
)
from alumnos_cli.bench.generators.spec import (
    Generator,
    parse_generator,
    parse_generators,
    refuse_loopback_target,
    segments,
)
from alumnos_cli.bench.k6 import LiveSample
from alumnos_cli.errors import InvalidOption
from alumnos_cli.main import app
from alumnos_cli.report.model import RunReport, TimeSeries
from alumnos_cli.report.read import read_run
from alumnos_cli.report.render.html import run_html
from alumnos_cli.report.render.json_document import run_json
from alumnos_cli.report.render.markdown import run_markdown
from alumnos_cli.report.render.terminal import run_terminal
from alumnos_cli.report.timeseries import merged_timeseries
from tests.runs import run_with_meta


@pytest.mark.parametrize(("text", "expected", "name"), [
    ("local", Generator(), "local"),
    ("ssh://root@10.213.0.11:22", Generator("10.213.0.11", "root", 22), "10.213.0.11"),
    ("ssh://k6.example.org", Generator("k6.example.org"), "k6.example.org"),
    ("ssh://ana@[fd00::5]:2222", Generator("fd00::5", "ana", 2222), "fd00__5_2222"),
    ("ssh://ana@h?k6=/opt/k6/bin/k6", Generator("h", "ana", k6_path="/opt/k6/bin/k6"), "h"),
])
def test_a_generator_is_local_or_an_ssh_url(text: str, expected: Generator, name: str) -> None:
    generator = parse_generator(text)
    assert generator == expected and generator.name == name


@pytest.mark.parametrize(("text", "message"), [
    ("http://h", "must be 'local' or ssh://user@host"),
    ("ssh://ana:secret@h", "takes no password"),
    ("ssh://h/tmp", "takes no path"),
    ("ssh://h:70000", "bad port"),
    ("ssh://h?python=/x", r"knows only \?k6=PATH"),
    ("ssh://h?k6=bin/k6", "absolute path"),
    ("ssh://-oProxyCommand=sh", "names no host"),
    ("ssh://a@h;reboot", "names no host"),
])
def test_a_bad_generator_is_refused_in_one_line(text: str, message: str) -> None:
    with pytest.raises(InvalidOption, match=message) as raised:
        parse_generator(text)
    assert raised.value.option == "--generator"
    assert "secret" not in raised.value.message


def test_a_host_given_twice_is_refused() -> None:
    with pytest.raises(InvalidOption, match="given twice"):
        parse_generators(["ssh://a@h", "ssh://b@h", "local"])


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_the_segments_cover_the_whole_test_once(count: int) -> None:
    sequence, own = segments(count)
    bounds = [Fraction(b) for b in sequence.split(",")]
    assert bounds[0] == 0 and bounds[-1] == 1 and len(own) == count
    assert [tuple(Fraction(x) for x in s.split(":")) for s in own] == list(
        itertools.pairwise(bounds))
    # Equal shares, each host's as large as the others'.
    assert {b - a for a, b in itertools.pairwise(bounds)} == {Fraction(1, count)}


def _instance(requests: int, failed: int, avg: float, p95: float, seconds: float,
              checks: tuple[int, int], threshold_ok: bool = True) -> dict[str, Any]:
    """An instance's summary as k6 writes it (handleSummary's data), with the scenario's own
    sub-metrics and one setup() request outside them."""
    trend = {"avg": avg, "min": avg / 2, "med": avg, "max": avg * 4, "p(90)": p95 * 0.9,
             "p(95)": p95, "p(99)": p95 * 1.5, "p(99.9)": p95 * 2}
    return {
        "state": {"testRunDurationMs": seconds * 1000},
        "root_group": {"name": "", "path": "", "groups": [], "checks": [
            {"name": "status is 200", "path": "::status is 200", "passes": checks[0],
             "fails": checks[1]}]},
        "metrics": {
            "http_reqs": {"type": "counter", "values": {"count": requests + 1,
                                                        "rate": (requests + 1) / seconds}},
            "http_req_failed{scenario:load}": {
                "type": "rate", "values": {"passes": failed, "fails": requests - failed,
                                           "rate": failed / requests},
                "thresholds": {"rate<0.01": {"ok": threshold_ok}}},
            "http_req_duration{scenario:load}": {
                "type": "trend", "values": trend,
                "thresholds": {"p(95)<100": {"ok": threshold_ok}}},
            "vus_max": {"type": "gauge", "values": {"value": 10, "min": 10, "max": 10}},
        }}


def test_counts_add_up_exactly_and_the_average_is_weighted() -> None:
    merged = merge_summaries({"a": _instance(1000, 5, 10.0, 20.0, 10.0, (990, 10)),
                              "b": _instance(3000, 45, 20.0, 50.0, 10.2, (2980, 20))})
    metrics = merged["metrics"]
    assert metrics["http_reqs"]["values"]["count"] == 4002  # both setup() requests kept here
    failed = metrics["http_req_failed{scenario:load}"]["values"]
    assert (failed["passes"], failed["fails"]) == (50, 3950)
    assert failed["rate"] == pytest.approx(50 / 4000)
    assert merged["state"]["testRunDurationMs"] == 10200
    duration = metrics["http_req_duration{scenario:load}"]["values"]
    assert duration["avg"] == pytest.approx((1000 * 10 + 3000 * 20) / 4000)
    assert (duration["min"], duration["max"]) == (5.0, 80.0)
    # No Prometheus: each percentile is the highest of the instances', and said to be.
    assert duration["p(95)"] == 50.0 and merged["alumnos"]["percentiles"] == UPPER_BOUND
    assert metrics["vus_max"]["values"]["max"] == 20
    [check] = merged["root_group"]["checks"]
    assert (check["passes"], check["fails"]) == (3970, 30)


def test_thresholds_are_judged_on_the_merged_figures_not_the_instances() -> None:
    # Each instance said its own verdict; only the merged figures decide.
    merged = merge_summaries({"a": _instance(1000, 0, 10.0, 20.0, 10.0, (1000, 0), False),
                              "b": _instance(1000, 30, 10.0, 20.0, 10.0, (1000, 0), True)})
    verdicts = {expr: v["ok"] for m in merged["metrics"].values()
                for expr, v in (m.get("thresholds") or {}).items()}
    assert verdicts == {"rate<0.01": False, "p(95)<100": True}  # 30 of 2,000 = 1.5%


def test_percentiles_come_from_the_merged_histogram_when_prometheus_has_it() -> None:
    asked = []

    def quantiles(metric: str) -> dict[str, float] | None:
        asked.append(metric)
        return {"med": 1.0, "p(50)": 1.0, "p(90)": 2.0, "p(95)": 3.0, "p(99)": 4.0,
                "p(99.9)": 5.0}

    merged = merge_summaries({"a": _instance(10, 0, 1.0, 9.0, 1.0, (10, 0)),
                              "b": _instance(10, 0, 1.0, 9.0, 1.0, (10, 0))}, quantiles)
    assert merged["metrics"]["http_req_duration{scenario:load}"]["values"]["p(95)"] == 3.0
    assert merged["alumnos"]["percentiles"] == FROM_PROMETHEUS
    assert asked == ["http_req_duration{scenario:load}"]


@pytest.mark.parametrize(("expression", "values", "ok"), [
    ("p(95)<500", {"p(95)": 499.9}, True), ("p(95)<500", {"p(95)": 500}, False),
    ("rate<0.01", {"rate": 0.0}, True), ("count<1", {"count": 1}, False),
    ("rate >= 0.5", {"rate": 0.5}, True), ("p(97)<5", {"p(95)": 1}, False),
    ("nonsense", {"rate": 0}, False),
])
def test_threshold_expressions(expression: str, values: dict[str, float], ok: bool) -> None:
    assert holds(expression, values) is ok


def test_the_cpu_k6_used_is_read_from_the_shells_times() -> None:
    assert cpu_seconds("0m0.01s 0m0.02s\n1m2.50s 0m1.25s\n") == pytest.approx(63.75)
    assert cpu_seconds("") is None


@pytest.mark.parametrize("flags", [["--calibrate"], ["--cross-check"],
                                   ["--generator-cpus", "0"]])
def test_what_runs_from_this_machine_alone_is_refused_beside_generators(
        flags: list[str]) -> None:
    result = CliRunner().invoke(app, ["bench", "--generator", "local", "--generator",
                                      "ssh://h", *flags], env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert "does not apply to --generator" in result.output


def _split_run(tmp_path: Path, busy: float) -> str:
    """A sample run as if split over two hosts, the second at `busy` with k6 on a core."""
    def split(meta: dict[str, Any]) -> None:
        meta["load_generator"] |= {"percentiles": FROM_PROMETHEUS, "generators": [
            {"name": "10.213.0.11", "segment": "0:1/2", "requests": 1051,
             "requests_per_s": 131.4, "p95_ms": 1.1, "cpu_seconds": 2.5, "cores_used": 0.31,
             "cores": 2, "machine_busy": 0.4},
            {"name": "gen-b.example.org", "segment": "1/2:1", "requests": 1050,
             "requests_per_s": 131.2, "p95_ms": 1.0, "cpu_seconds": 7.9, "cores_used": 0.99,
             "cores": 2, "machine_busy": busy}]}

    return run_with_meta(tmp_path, "20261128T014500Z-load", split)


@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_report_shows_a_row_per_generator_and_flags_a_saturated_one(
        tmp_path: Path, lang: str) -> None:
    report = read_run(tmp_path / _split_run(tmp_path, busy=0.97))
    assert report.meta.generator is not None
    hosts = report.meta.generator.hosts
    assert [h.saturated for h in hosts] == [False, True]
    markdown = run_markdown(report, lang)
    title, saturated = (("Load generators", "SATURATED") if lang == "en"
                        else ("Generadores de carga", "SATURADO"))
    assert f"### {title}" in markdown
    assert "| 10.213.0.11 | 0:1/2 | 1" in markdown and f"| {saturated} |" in markdown
    assert "lower bound" in markdown or "cota inferior" in markdown
    page = run_html(report, lang)
    assert "gen-b.example.org" in page and saturated in page
    document = json.loads(run_json(report))
    assert [g["saturated"] for g in document["generators"]] == [False, True]
    terminal = _terminal_text(report)
    assert "gen-b.example.org" in terminal and "SATURATED" in terminal


def test_a_generator_with_room_is_not_flagged(tmp_path: Path) -> None:
    report = read_run(tmp_path / _split_run(tmp_path, busy=0.5))
    assert report.meta.generator is not None
    assert not any(h.saturated for h in report.meta.generator.hosts)
    assert "lower bound" not in run_markdown(report, "en")


def _terminal_text(report: RunReport) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(run_terminal(report))
    return console.export_text()


def test_the_generators_time_series_merge_second_by_second() -> None:
    a = TimeSeries(seconds=(0.0, 1.0, 2.0), requests_per_s=(100.0, 100.0, 50.0),
                   errors=(0.0, 0.1, 0.0), p50_ms=(1.0, 1.0, None), p95_ms=(2.0, 3.0, None),
                   p99_ms=(3.0, 4.0, None), vus=(5.0, 5.0, 5.0), vus_max=(5.0, 5.0, 5.0))
    b = TimeSeries(seconds=(0.0, 1.0), requests_per_s=(300.0, 100.0), errors=(0.0, 0.3),
                   p50_ms=(1.5, 0.5), p95_ms=(2.5, 2.0), p99_ms=(3.5, 9.0), vus=(5.0, 5.0),
                   vus_max=(5.0, 5.0))
    merged = merged_timeseries([a, b])
    assert merged is not None
    assert merged.requests_per_s == (400.0, 200.0, 50.0)
    assert merged.errors == pytest.approx((0.0, 0.2, 0.0))  # (10 + 30) / 200
    assert merged.p95_ms == (2.5, 3.0, None)  # the highest of the two each second
    assert merged.vus == (10.0, 10.0, 5.0)
    assert merged_timeseries([]) is None


RULE = AbortRule("stress", p95_ms=300, max_error_rate=0.05)


@pytest.mark.parametrize(("parts", "merged_p95", "expected"), [
    # 40 failed of 1,000 = 4% < 5%, and one host's p95 past 300 ms is no proof.
    ([Progress(500, 0.0, 0, 100.0), Progress(500, 0.08, 0, 400.0)], None, None),
    # 60 of 1,000 = 6%: crossed, though neither host alone says so reliably.
    ([Progress(900, 0.04, 0, 10.0), Progress(100, 0.24, 0, 10.0)], None,
     "http_req_failed rate<0.05 (6.00%)"),
    ([Progress(10, 0.0, 1, 1.0), Progress(10, 0.0, 0, 1.0)], None, "wrong_answers count<1"),
    # Every host past 300 ms: the merged p95 is too.
    ([Progress(10, 0.0, 0, 310.0), Progress(10, 0.0, 0, 900.0)], None,
     "http_req_duration p(95)<300 (310.0 ms)"),
    # With Prometheus, the merged p95 decides.
    ([Progress(10, 0.0, 0, 100.0), Progress(10, 0.0, 0, 900.0)], 350.0,
     "http_req_duration p(95)<300 (350.0 ms)"),
    ([Progress(10, 0.0, 0, 310.0), Progress(10, 0.0, 0, 900.0)], 290.0, None),
])
def test_a_split_stress_run_is_stopped_on_the_whole_loads_figures(
        parts: list[Progress], merged_p95: float | None, expected: str | None) -> None:
    merged = (lambda: merged_p95) if merged_p95 is not None else None
    assert crossed(RULE, parts, merged) == expected


def test_live_progress_shows_the_total_and_each_hosts_requests() -> None:
    from alumnos_cli.commands.progress import LiveProgress, k6_bar

    bar = k6_bar(Console(file=io.StringIO()))
    live = LiveProgress(bar, run_seconds=10, runs=1, title="spike")
    live.on_sample(LiveSample(elapsed=1.0, requests=100, failed_rate=0.0, vus=4))
    live.on_sample(LiveSample(elapsed=2.0, requests=300, failed_rate=0.01, vus=4,
                              by_host=(("10.213.0.11", 160), ("10.213.0.12", 140))))
    shown = bar.tasks[0].fields["live"]
    assert "200 req/s" in shown and "300 requests" in shown
    assert shown.endswith("(10.213.0.11: 160  10.213.0.12: 140)")


@pytest.mark.parametrize(("url", "generators", "refused"), [
    ("http://127.0.0.1:8080", ["ssh://h"], True),
    ("http://localhost:8080", ["local", "ssh://h"], True),
    ("http://[::1]:8080", ["ssh://h"], True),
    ("http://127.0.0.1:8080", ["local"], False),  # this machine reaches its own loopback
    ("http://10.213.0.1:8080", ["ssh://h"], False),
])
def test_a_loopback_target_is_refused_for_remote_generators(
        url: str, generators: list[str], refused: bool) -> None:
    # Before: each remote k6 loaded its own 127.0.0.1, after the check here had passed.
    parsed = parse_generators(generators)
    if refused:
        with pytest.raises(InvalidOption, match="loopback, which ssh://h cannot reach"):
            refuse_loopback_target(url, parsed)
    else:
        refuse_loopback_target(url, parsed)


def test_recordings_are_aligned_on_their_first_second_of_load() -> None:
    # Each k6 records from its own start, paused: host b waited 2 s longer before the resume.
    a = TimeSeries(seconds=(0.0, 1.0, 2.0), requests_per_s=(0.0, 100.0, 100.0),
                   errors=(0.0, 0.0, 0.0), p50_ms=(None, 1.0, 1.0), p95_ms=(None, 2.0, 2.0),
                   p99_ms=(None, 3.0, 3.0), vus=(0.0, 5.0, 5.0), vus_max=(5.0, 5.0, 5.0))
    b = TimeSeries(seconds=(0.0, 1.0, 2.0, 3.0, 4.0),
                   requests_per_s=(0.0, 0.0, 0.0, 50.0, 50.0), errors=(0.0,) * 5,
                   p50_ms=(None, None, None, 1.0, 1.0), p95_ms=(None, None, None, 4.0, 4.0),
                   p99_ms=(None, None, None, 5.0, 5.0), vus=(0.0, 0.0, 0.0, 5.0, 5.0),
                   vus_max=(5.0,) * 5)
    merged = merged_timeseries([a, b])
    assert merged is not None
    assert merged.seconds == (0.0, 1.0) and merged.requests_per_s == (150.0, 150.0)
    assert merged.vus == (10.0, 10.0) and merged.p95_ms == (4.0, 4.0)


def test_a_split_runs_signal_handlers_are_put_back_afterwards(tmp_path: Path) -> None:
    # Left in place, they made a later forked seed producer catch SIGTERM and hang pytest.
    import signal

    before = (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP))
    result = CliRunner().invoke(app, ["bench", "--generator", "ssh://h", "--url",
                                      "http://127.0.0.1:9", "--results-dir", str(tmp_path),
                                      "--state-dir", str(tmp_path)], env={"COLUMNS": "300"})
    assert result.exit_code == 2 and "loopback" in result.output, result.output
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)) == before
