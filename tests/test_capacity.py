"""Capacity sweeps without a stack: the levels asked for, the Universal Scalability Law fitted
to known curves, the knee, what reached its limit, and the flags a sweep refuses."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alumnos_cli.bench.sweep import parse_levels, validate_cool_down
from alumnos_cli.errors import ExitCode, InvalidOption
from alumnos_cli.main import app
from alumnos_cli.report import capacity
from alumnos_cli.report.capacity import Sweep, SweepLevel, Usage, fit_levels, knee, usl
from alumnos_cli.report.capacity_read import read_sweep
from alumnos_cli.report.read import read_run
from alumnos_cli.report.render.capacity import (
    sweep_charts,
    sweep_json,
    sweep_lines,
    sweep_markdown,
    sweep_tables,
)

runner = CliRunner()
LEVELS = (1, 2, 4, 8, 16, 32, 64, 128)


def _level(n: int, rps: float, *, avg_ms: float | None = None, limited: bool = False,
           usage: tuple[Usage, ...] = ()) -> SweepLevel:
    # A closed model's latency follows from Little's law: N = X R.
    avg = avg_ms if avg_ms is not None else 1000 * n / rps
    return SweepLevel(level=n, run=f"run-{n}", concurrency=float(n), requests_per_second=rps,
                      p50_ms=avg, p95_ms=2 * avg, p99_ms=3 * avg, avg_ms=avg, error_rate=0.0,
                      generator_limited=limited, usage=usage)


def _curve(lam: float, sigma: float, kappa: float) -> list[SweepLevel]:
    return [_level(n, usl(n, lam, sigma, kappa)) for n in LEVELS]


def _sweep(levels: list[SweepLevel]) -> Sweep:
    fit, note = fit_levels(levels)
    return Sweep(name="20261128T090000Z-sweep-spike", scenario="spike", model="closed",
                 duration_seconds=15, levels=tuple(levels),
                 planned=tuple(lv.level for lv in levels), fit=fit, fit_note=note,
                 knee=knee(levels))


@pytest.mark.parametrize(("text", "message"), [
    ("25,50,100", "takes 4 to 20 levels (the fit needs 4), got 3"),
    ("25,50,50,100", "levels must increase"),
    ("100,50,25,10", "levels must increase"),
    ("0,10,20,30", "levels must be above 0"),
    ("-5,10,20,30", "levels must be above 0"),
    ("25,50,abc,100", "whole numbers separated by commas"),
    ("25,50,,100", "whole numbers separated by commas"),
    ("10,20,30,6000", "at most 5,000"),
])
def test_levels_that_cannot_be_swept_are_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidOption, match=re.escape(message)):
        parse_levels(text, "--sweep")


def test_increasing_levels_are_taken_as_they_are() -> None:
    assert parse_levels("25,50,100,200,400,800", "--sweep") == (25, 50, 100, 200, 400, 800)
    assert parse_levels("500,1000,2000,4000", "--rate-sweep")[-1] == 4000
    with pytest.raises(InvalidOption, match="0 to 300 seconds"):
        validate_cool_down(-1)


def test_the_fit_gives_back_the_law_it_was_drawn_from() -> None:
    sweep = _sweep(_curve(lam=1000, sigma=0.05, kappa=0.0005))
    fit = sweep.fit
    assert fit is not None and sweep.fit_note is None
    assert fit.lam == pytest.approx(1000, rel=1e-3)
    assert fit.sigma == pytest.approx(0.05, rel=1e-2)
    assert fit.kappa == pytest.approx(0.0005, rel=1e-2)
    assert fit.r_squared == pytest.approx(1.0, abs=1e-6)
    # N* = sqrt((1 - σ) / κ) = sqrt(1900) ≈ 43.6, inside the levels measured.
    assert fit.peak_concurrency == pytest.approx(43.6, abs=0.1)
    assert fit.peak_in_range
    assert fit.peak_throughput == pytest.approx(usl(43.59, 1000, 0.05, 0.0005), rel=1e-3)
    lines = sweep_lines(sweep)
    assert any(line.startswith("predicted peak: ") and "at a concurrency of 44" in line
               for line in lines), lines


def test_without_coherency_cost_there_is_no_peak() -> None:
    sweep = _sweep(_curve(lam=500, sigma=0.1, kappa=0.0))
    assert sweep.fit is not None and sweep.fit.peak_concurrency is None
    assert "no peak: κ is about 0, throughput levels off towards 5,000 req/s" in \
        sweep_lines(sweep)


def test_levels_where_k6_was_the_limit_are_flagged_and_left_out_of_the_fit() -> None:
    levels = _curve(lam=1000, sigma=0.05, kappa=0.0005)
    # k6's own ceiling at the top levels: fitting it would describe k6.
    levels[-2:] = [replace(lv, requests_per_second=9000.0, generator_limited=True)
                   for lv in levels[-2:]]
    sweep = _sweep(levels)
    assert sweep.fit is not None and sweep.fit.levels_used == LEVELS[:-2]
    assert sweep.fit.kappa == pytest.approx(0.0005, rel=1e-2)
    assert sweep.fit_note == "2 level(s) left out: k6 was their limit"
    assert "k6 was the limit at 64, 128: left out of the fit" in sweep_lines(sweep)
    rows = sweep_tables(sweep)[0].rows
    assert [row[7] for row in rows] == ["no"] * 6 + ["yes"] * 2
    too_few = _sweep([replace(lv, generator_limited=True) for lv in levels[:5]] + levels[5:6])
    assert too_few.fit is None
    assert too_few.fit_note == ("no fit: 1 level(s) the load generator did not limit, the fit "
                                "needs 4 (5 left out, k6 was their limit)")


def test_a_fit_that_does_not_converge_is_one_line_and_the_levels_stay(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_convergence(n: list[float], x: list[float]) -> tuple[float, float, float]:
        raise RuntimeError("Optimal parameters not found: maxfev reached")

    monkeypatch.setattr(capacity, "_least_squares", no_convergence)
    sweep = _sweep(_curve(lam=1000, sigma=0.05, kappa=0.0005))
    assert sweep.fit is None
    assert sweep.fit_note == ("no fit: the least squares did not converge (Optimal parameters "
                              "not found: maxfev reached)")
    assert len(sweep_tables(sweep)[0].rows) == len(LEVELS)
    assert all(row[2] == "-" for row in sweep_tables(sweep)[0].rows)  # no USL column values


def test_the_knee_is_where_latency_starts_to_grow_faster_than_throughput() -> None:
    # Throughput doubles with the load up to 8, then flattens: latency takes the rest.
    levels = [_level(n, rps) for n, rps in ((1, 100), (2, 200), (4, 400), (8, 800),
                                            (16, 900), (32, 920))]
    assert knee(levels) == 8
    assert knee(levels[:4]) is None
    sweep = _sweep(levels)
    assert sweep.levels[3].level == 8 and sweep_tables(sweep)[0].rows[3][0] == "8 ← knee"
    assert "knee: past 8 VUs, latency grew faster than throughput" in sweep_lines(sweep)
    assert "no knee: throughput kept pace with latency up to 8 VUs" in \
        sweep_lines(_sweep(levels[:4]))


def test_the_component_nearest_its_limit_at_the_knee_is_named() -> None:
    def used(replicas: float, haproxy: float, machine: float) -> tuple[Usage, ...]:
        return (Usage("replicas", replicas, 2, "cores"), Usage("haproxy", haproxy, 2, "cores"),
                Usage("redis", 0.05, 1, "cores"), Usage("machine", machine, 2, "cores"))

    levels = [_level(1, 100, usage=used(0.3, 0.1, 0.5)), _level(2, 200, usage=used(0.6, 0.2, 1)),
              _level(4, 400, usage=used(1.9, 0.4, 1.95)),
              _level(8, 410, usage=used(1.95, 0.5, 2))]
    sweep = _sweep(levels)
    assert sweep.knee == 4
    first = sweep.first_limit
    assert first is not None and first.component == "replicas" and first.share == 0.95
    lines = sweep_lines(sweep)
    assert "nearest its limit at the knee (4 VUs): replicas, 1.90 of 2 cores (95%)" in lines
    assert "the machine: 1.95 of 2 cores busy (98%), k6 and the stack together" in lines
    limits = sweep_tables(sweep)[1]
    assert limits.columns == ("VUs", "replicas", "haproxy", "redis", "machine")
    assert limits.rows[2] == ("4", "1.90/2 (95%)", "0.40/2 (20%)", "0.05/1 (5%)",
                              "1.95/2 (98%)")


def test_every_format_carries_the_levels_the_fit_and_the_knee() -> None:
    sweep = _sweep(_curve(lam=1000, sigma=0.05, kappa=0.0005))
    document = json.loads(sweep_json(sweep))
    assert document["kind"] == "sweep" and document["schema_version"] == 1
    assert [lv["level"] for lv in document["levels"]] == list(LEVELS)
    assert document["fit"]["kappa"] == pytest.approx(0.0005, rel=1e-2)
    assert document["knee"] == sweep.knee and document["best_level"] == sweep.best.level
    spanish = sweep_markdown(sweep, "es")
    assert "## Barrido de capacidad 20261128T090000Z-sweep-spike" in spanish
    assert "Ajuste USL con 8 niveles" in spanish and "| VUs | req/s | USL req/s |" in spanish
    assert "Fit" not in spanish
    english = sweep_markdown(sweep, "en")
    assert "USL fit on 8 levels (1, 2, 4, 8, 16, 32, 64, 128)" in english
    throughput, latency = sweep_charts(sweep, "en")
    assert throughput["kind"] == latency["kind"] == "levels"
    assert throughput["x"] == [float(n) for n in LEVELS]
    assert [s["label"] for s in throughput["series"]] == ["measured", "USL"]
    assert [s["label"] for s in latency["series"]] == ["p50", "p95", "p99"]
    assert throughput["bands"] == [{"label": "past the knee", "start": float(sweep.knee or 0),
                                    "end": None}]


@pytest.mark.parametrize(("args", "option", "message"), [
    (["--sweep", "1,2,4,8", "--vus", "10"], "--vus", "cannot go with --sweep"),
    (["--sweep", "1,2,4,8", "--rate", "100"], "--rate", "cannot go with --sweep"),
    (["--sweep", "1,2,4,8", "--repeat", "3"], "--repeat", "cannot go with --sweep"),
    (["--sweep", "1,2,4,8", "--rate-sweep", "1,2,3,4"], "--rate-sweep", "cannot go with"),
    (["--sweep", "1,2,4,8", "--calibrate"], "--calibrate", "run it once, in a plain run"),
    (["--rate-sweep", "100,200,400,800", "--cross-check"], "--cross-check",
     "cannot go with --rate-sweep: run it once"),
    (["--rate-sweep", "100,200,400,800", "--rate", "100"], "--rate", "cannot go with"),
    (["--sweep", "1,2,4"], "--sweep", "takes 4 to 20 levels"),
    (["--sweep", "8,4,2,1"], "--sweep", "levels must increase"),
    (["--sweep", "1,2,4,8", "--scenario", "stress"], "--sweep", "steps its own load"),
    (["--sweep", "1,2,4,8", "--cool-down", "900"], "--cool-down", "0 to 300 seconds"),
    (["--cool-down", "5"], "--cool-down", "applies to a sweep only"),
])
def test_bench_refuses_what_a_sweep_cannot_take(args: list[str], option: str,
                                                message: str) -> None:
    result = runner.invoke(app, ["bench", *args], env={"COLUMNS": "300"})
    assert result.exit_code == ExitCode.USAGE, result.output
    assert option in result.output and message in " ".join(result.output.split())


SWEEPS = Path(__file__).parent / "data" / "sweeps"
SAMPLE = "20261128T084451Z-sweep-spike"  # bench --sweep 1,2,4,8,16,32 --duration 15s


def test_a_recorded_sweep_reads_back_with_its_fit_and_the_stacks_cpus() -> None:
    sweep = read_sweep(SWEEPS / SAMPLE)
    assert [lv.level for lv in sweep.levels] == [1, 2, 4, 8, 16, 32] and sweep.fit is not None
    assert not any(lv.generator_limited for lv in sweep.levels)  # k6 ran on a CPU of its own
    top = sweep.levels[-1]
    assert top.requests_per_second == read_run(SWEEPS / SAMPLE / top.run).figures \
        .requests_per_second
    # up --cpus 1: the replicas, HAProxy and the breaker share one CPU.
    assert {u.component: u.limit for u in top.usage}["stack CPUs"] == 1
    best, ceiling = sweep.best, sweep.fit.ceiling
    assert best is not None and ceiling is not None
    assert abs(ceiling / best.requests_per_second - 1) <= 0.15  # the target


@pytest.mark.parametrize(("args", "option"), [
    (["--csv", "x.csv"], "--csv"), (["--prometheus", "http://127.0.0.1:9"], "--prometheus"),
    (["--format", "junit"], "--format")])
def test_report_refuses_one_runs_flags_for_a_sweep(args: list[str], option: str) -> None:
    result = runner.invoke(app, ["report", SAMPLE, "--results-dir", str(SWEEPS), *args],
                           env={"COLUMNS": "300"})
    assert result.exit_code == ExitCode.USAGE, result.output
    assert option in result.output and "a sweep has one" in result.output


@pytest.mark.parametrize("fmt", ["terminal", "markdown", "json", "html"])
def test_report_shows_a_sweep_in_every_format(fmt: str, tmp_path: Path) -> None:
    out = tmp_path / "sweep.out"
    args = [] if fmt == "terminal" else ["-o", str(out)]
    result = runner.invoke(app, ["report", SAMPLE, "--results-dir", str(SWEEPS), "--format",
                                 fmt, *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = result.output if fmt == "terminal" else out.read_text()
    assert ("6.008" if fmt in ("markdown", "html") else "6,008") in text or fmt == "json"
    if fmt == "json":
        assert json.loads(text)["fit"]["levels_used"] == [1, 2, 4, 8, 16, 32]


@pytest.mark.parametrize(("k6_cores", "machine_busy", "limited"), [
    (0.5, 0.99, False),  # a busy machine, but k6 on a CPU of its own kept it half idle
    (0.95, 0.99, True),  # k6 kept its own CPU busy: it was the limit
])
def test_k6_apart_from_the_stack_is_the_limit_only_when_its_own_cpus_are_busy(
        k6_cores: float, machine_busy: float, limited: bool) -> None:
    from alumnos_cli.report.checks import generator_verdict
    from alumnos_cli.report.model import GeneratorUsage
    from alumnos_cli.report.read import read_record

    # bench --generator-cpus 0 against up --cpus 1 (this sample's placement).
    meta = read_record(Path(__file__).parent / "data" / "runs" / "20261127T163621Z-spike").meta
    assert meta.placement is not None and meta.placement.generator_cpus == (0,)
    verdict = generator_verdict(replace(meta, generator=GeneratorUsage(
        k6_cores=k6_cores, cpu_count=2, machine_busy=machine_busy)))
    assert verdict is not None and verdict.limited is limited
    assert "k6 ran on 1 CPU of its own, apart from the stack's" in verdict.text


def test_the_list_of_runs_names_each_sweep() -> None:
    result = runner.invoke(app, ["report", "--list", "--results-dir", str(SWEEPS)],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"sweep {SAMPLE}: spike, closed model, levels 1,2,4,8,16,32: 6 ran, finished" in \
        result.output


def test_queries_per_request_get_a_column_when_postgres_counted_them() -> None:
    levels = _curve(lam=1000, sigma=0.05, kappa=0.0005)
    assert "queries/req" not in sweep_tables(_sweep(levels))[0].columns
    counted = [replace(lv, queries_per_request=0.002) for lv in levels]
    table = sweep_tables(_sweep(counted))[0]
    assert table.columns[-1] == "queries/req"
    assert {row[-1] for row in table.rows} == {"0.002"}


def test_with_k6_the_limit_everywhere_there_is_no_knee_and_no_fit() -> None:
    levels = [replace(lv, generator_limited=True) for lv in _curve(1000, 0.05, 0.0005)]
    sweep = _sweep(levels)
    assert sweep.fit is None and sweep.knee is None
    assert "no knee: k6 was the limit at every level, so latency and throughput were k6's" in \
        sweep_lines(sweep)


def test_an_open_level_with_no_concurrency_is_left_out_not_a_crash() -> None:
    levels = _curve(1000, 0.05, 0.0005)
    levels[0] = replace(levels[0], concurrency=0.0, avg_ms=0.0)
    sweep = _sweep(levels)
    assert sweep.fit is not None and 1 not in sweep.fit.levels_used
    throughput, _ = sweep_charts(sweep, "en")
    assert 0.0 not in throughput["x"] and throughput["x"] == sorted(throughput["x"])


def test_a_level_that_cannot_be_read_is_one_line_and_the_others_stay(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(SWEEPS / SAMPLE, tmp_path / SAMPLE)
    record = json.loads((tmp_path / SAMPLE / "sweep.json").read_text())
    broken = record["runs"][2]
    (tmp_path / SAMPLE / broken["run"] / "summary.json").write_text("{not json")
    sweep = read_sweep(tmp_path / SAMPLE)
    assert [lv.level for lv in sweep.levels] == [1, 2, 8, 16, 32]
    assert list(sweep.problems) == [4]
    assert sweep.problems[4].startswith(f"level 4 ({broken['run']}) cannot be read: ")
    lines = sweep_lines(sweep)
    assert sweep.problems[4] in lines and not any(line.startswith("not run") for line in lines)


def test_a_comparison_of_sweeps_is_refused_with_what_to_compare() -> None:
    result = runner.invoke(app, ["report", "--compare", SAMPLE, SAMPLE, "--results-dir",
                                 str(SWEEPS)], env={"COLUMNS": "300"})
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "is a sweep; a comparison takes runs" in " ".join(result.output.split())
