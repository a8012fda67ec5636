"""The HTML report in a real browser: headless Chromium (Debian's `chromium`) loads the page
from disk with the network off, runs its script, and we read the DOM it ends with."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alumnos_cli.main import app
from alumnos_cli.report.read import read_run
from alumnos_cli.report.render.html import _page

RUNS = Path(__file__).parent / "data" / "runs"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
runner = CliRunner()

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                "(scripts/system-packages installs it)")


def render_in_browser(page: Path) -> str:
    """The DOM after the page's scripts ran, with every network request refused."""
    result = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-extensions", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
         "--virtual-time-budget=3000", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _body_attributes(dom: str) -> dict[str, str]:
    tag = re.search(r"<body([^>]*)>", dom)
    assert tag is not None, dom[:500]
    return dict(re.findall(r'([\w-]+)="([^"]*)"', tag.group(1)))


def _run_page_in_browser(tmp_path: Path, name: str) -> tuple[str, dict[str, str]]:
    """`alumnos report NAME --format html` on a copy of a sample run, rendered by Chromium:
    the DOM and <body>'s attributes, after checking the page drew with no script error."""
    shutil.copytree(RUNS / name, tmp_path / name)
    result = runner.invoke(app, ["report", name, "--format", "html",
                                 "--results-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    page = tmp_path / name / "report.html"
    assert not re.search(r"""(src|href)=["']?[a-z]+:|url\(|<img|<link|@import""",
                         page.read_text()), "the page must be self-contained"
    dom = render_in_browser(page)
    body = _body_attributes(dom)
    assert "data-errors" not in body, body
    return dom, body


def test_the_run_page_draws_every_chart_with_the_runs_data(tmp_path: Path) -> None:
    name = "20261127T051814Z-spike"
    dom, body = _run_page_in_browser(tmp_path, name)
    report = read_run(tmp_path / name)
    series = report.timeseries
    assert series is not None and len(series) > 5
    # four charts over time, the latency distribution, the requests per replica
    assert body["data-charts"] == "6"
    paths = re.findall(r'<path[^>]*class="series"[^>]*data-name="([^"]+)"[^>]*'
                       r'data-points="(\d+)"', dom)
    points = {name: int(count) for name, count in paths}
    assert points["req/s"] == len(series)
    assert points["p95"] == sum(1 for v in series.p95_ms if v is not None)
    assert set(points) == {"req/s", "p50", "p95", "p99", "errors", "VUs"}
    bars = [float(v) for v in re.findall(r'<rect[^>]*class="bar"[^>]*data-value="([^"]+)"',
                                         dom)]
    summary = json.loads((tmp_path / name / "summary.json").read_text())
    latency = summary["metrics"]["http_req_duration"]["values"]
    assert bars[5] == pytest.approx(latency["max"]) == report.figures.latency.max
    server = json.loads((tmp_path / name / "server.json").read_text())
    assert bars[6:] == list(server["summary"]["requests_by_replica"].values())


def test_the_comparison_page_draws_both_sides(tmp_path: Path) -> None:
    out = tmp_path / "compare.html"
    result = runner.invoke(app, ["report", "--compare", "20261127T022841Z-spike",
                                 "20261127T051814Z-spike", "--format", "html", "-o", str(out),
                                 "--results-dir", str(RUNS)])
    assert result.exit_code == 0, result.output
    dom = render_in_browser(out)
    body = _body_attributes(dom)
    assert "data-errors" not in body, body
    assert body["data-charts"] == "2"
    assert len(re.findall(r'class="bar"', dom)) == 2 * 3 + 2  # avg, p95, p99; req/s
    assert "cannot tell" in dom


def test_a_broken_script_would_be_reported(tmp_path: Path) -> None:
    # The page's own error hook is what the tests above rely on: prove it catches an error.
    page = tmp_path / "broken.html"
    page.write_text(_page("broken", "<script>undefinedFunction();</script>",
                          {"timeseries": None, "distributions": []}))
    body = _body_attributes(render_in_browser(page))
    assert "undefinedFunction" in body.get("data-errors", "")
    assert body["data-charts"] == "0"  # the chart script still ran to its end


def test_the_page_shows_how_answers_were_verified_and_what_each_part_spent(
        tmp_path: Path) -> None:
    name = "20261127T163621Z-spike"
    shutil.copytree(RUNS / name, tmp_path / name)
    result = runner.invoke(app, ["report", name, "--format", "html",
                                 "--results-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    dom = render_in_browser(tmp_path / name / "report.html")
    assert "data-errors" not in _body_attributes(dom)
    for heading in ("Answers verified", "CPU per 1,000 requests"):
        assert f"<h2>{heading}</h2>" in dom
    assert "wrk drove" in dom and "stack on CPUs 1" in dom


def test_the_breakers_ejections_and_the_balancers_refusals_are_drawn(tmp_path: Path) -> None:
    # A real run with replica-2 slowed for a while: the breaker took it out once.
    dom, body = _run_page_in_browser(tmp_path, "20261127T174225Z-smoke")
    # four charts over time, the balancer's, the latency distribution, requests per replica
    assert body["data-charts"] == "7"
    names = set(re.findall(r'<path[^>]*class="series"[^>]*data-name="([^"]+)"', dom))
    assert {"served", "refused"} <= names
    # The one ejection, shaded on each of the five timelines.
    bands = re.findall(r'<rect[^>]*class="ejection"[^>]*>\s*<title>([^<]+)</title>', dom)
    assert bands == ["replica-2 out"] * 5
    assert "replica-2 out" in dom and "p50 906 ms, its peers 4 ms" in dom
