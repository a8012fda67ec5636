"""The HTML report in a real browser: headless Chromium (Debian's `chromium`) loads the page
from disk with the network off, runs its script, and we read the DOM it ends with."""

from __future__ import annotations

import html
import itertools
import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from alumnos_cli.main import app
from alumnos_cli.report.breakdown import coarser
from alumnos_cli.report.read import read_run
from alumnos_cli.report.render.assets import UPLOT_VERSION, page_script
from alumnos_cli.report.render.charts import HISTOGRAM_BARS
from alumnos_cli.report.render.html import page as html_page
from alumnos_cli.report.render.page_text import TEXT

RUNS = Path(__file__).parent / "data" / "runs"
UPLOT = Path(__file__).parents[1] / "alumnos_cli" / "report" / "render" / "assets" / "uplot"
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


def _figures(dom: str) -> list[dict[str, Any]]:
    """What each chart drew, as its figure records it (series, points, peaks, ticks)."""
    figures = []
    for attributes in re.findall(r"<figure ([^>]*)>", dom):
        found = {k: html.unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', attributes)}
        figures.append({k.removeprefix("data-"): v if k == "data-kind" else json.loads(v)
                        for k, v in found.items()})
    return figures


def _captions(dom: str) -> list[str]:
    return [html.unescape(c) for c in re.findall(r"<figcaption>([^<]+)</figcaption>", dom)]


def _run_page(tmp_path: Path, name: str, *args: str) -> Path:
    """`alumnos report NAME --format html` on a copy of a sample run; the self-contained page."""
    if not (tmp_path / name).exists():
        shutil.copytree(RUNS / name, tmp_path / name)
    result = runner.invoke(app, ["report", name, "--format", "html", *args,
                                 "--results-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    page = tmp_path / name / "report.html"
    assert not re.search(r"""(src|href)=["']?[a-z]+:|url\(|<img|<link|@import""",
                         page.read_text()), "the page must be self-contained"
    return page


def _run_page_in_browser(tmp_path: Path, name: str, *args: str) -> tuple[str, dict[str, str]]:
    """The run's page rendered by Chromium: the DOM and <body>'s attributes, after checking
    the page drew with no script error."""
    dom = render_in_browser(_run_page(tmp_path, name, *args))
    body = _body_attributes(dom)
    assert "data-errors" not in body, body
    return dom, body


def _nonnull(values: tuple[float | None, ...]) -> int:
    return sum(1 for v in values if v is not None)


def test_the_run_page_draws_every_chart_with_the_runs_data(tmp_path: Path) -> None:
    name = "20261127T051814Z-spike"
    dom, body = _run_page_in_browser(tmp_path, name, "--lang", "en")
    report = read_run(tmp_path / name)
    series = report.timeseries
    assert series is not None and len(series) > 5
    # four charts over time, the latency over the whole run, the requests per replica
    assert body["data-charts"] == "6"
    throughput, latency, errors, vus, summary, replicas = _figures(dom)
    for figure in (throughput, latency, errors, vus):
        assert figure["length"] == len(series)
        assert figure["drawn"] == len(figure["series"])  # uPlot drew every series
    assert throughput["points"] == [len(series)]
    assert throughput["peaks"] == [max(series.requests_per_s)]
    assert latency["series"] == ["p50", "p95", "p99"]
    assert latency["points"] == [_nonnull(series.p50_ms), _nonnull(series.p95_ms),
                                 _nonnull(series.p99_ms)]
    assert vus["series"] == ["VUs"] and vus["peaks"] == [report.figures.max_vus]
    assert summary["peaks"] == [pytest.approx(report.figures.latency.max)]
    server = json.loads((tmp_path / name / "server.json").read_text())
    by_replica = server["summary"]["requests_by_replica"]
    assert replicas["length"] == len(by_replica)
    assert replicas["peaks"] == [max(by_replica.values())]


def _round_steps(ticks: list[float], allowed: list[float]) -> bool:
    """Evenly spaced ticks, each a whole multiple of a step from `allowed`."""
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    if len(ticks) < 2 or len(steps) != 1:
        return False
    step = steps.pop()
    return (any(math.isclose(step, a) for a in allowed)
            and all(math.isclose(t / step, round(t / step), abs_tol=1e-9) for t in ticks))


NICE = [m * 10.0 ** e for e in range(-4, 10) for m in (1, 2, 2.5, 5)]
CLOCK = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600]


@pytest.mark.parametrize("name", ["20261127T051814Z-spike", "20261127T173751Z-stress",
                                  "20261127T051838Z-load", "20261128T014500Z-load"])
def test_axes_have_rounded_ticks(tmp_path: Path, name: str) -> None:
    # Before: 3,015 / 2,261 / 1,507 on the y axis, 52.50 VUs, one label on the x axis.
    dom, _ = _run_page_in_browser(tmp_path, name)
    figures = _figures(dom)
    assert figures
    for figure in figures:
        assert _round_steps(figure["yticks"], NICE), figure
        if figure["series"][0] in ("VUs", "VUs reservados", "peticiones"):  # counts
            assert all(float(t).is_integer() for t in figure["yticks"]), figure
        if figure["kind"] == "bars":  # one label per bar
            assert figure["xticks"] == list(range(figure["length"])), figure
            continue
        assert len(figure["xticks"]) >= 3 and _round_steps(figure["xticks"], CLOCK), figure


def test_the_page_is_in_the_language_asked_for(tmp_path: Path) -> None:
    english = set(TEXT["en"].values()) - set(TEXT["es"].values())
    spanish = set(TEXT["es"].values()) - set(TEXT["en"].values())
    for lang, other in (("es", english), ("en", spanish)):
        dom, _ = _run_page_in_browser(tmp_path, "20261127T163621Z-spike", "--lang", lang)
        assert f'<html lang="{lang}">' in dom
        headings = [html.unescape(h) for h in re.findall(r"<h2>([^<]+)</h2>", dom)]
        assert TEXT[lang]["conclusion"] in headings and TEXT[lang]["charts"] in headings
        assert not (set(headings) | set(_captions(dom))) & other, lang
        labels = set(re.findall(r"<tr><td>([^<]+)</td>", dom))
        assert TEXT[lang]["peak_vus"] in labels and not labels & other, lang
    assert "Ley de Little" not in dom and "Little's law" in dom  # the last page: English


def test_latency_charts_say_they_show_percentiles_not_a_distribution(tmp_path: Path) -> None:
    for lang, words in (("en", "not a distribution"), ("es", "no una distribución")):
        dom, _ = _run_page_in_browser(tmp_path, "20261127T051814Z-spike", "--lang", lang)
        notes = re.findall(r'<p class="note">([^<]+)</p>', dom)
        assert [n for n in notes if words in n] == [TEXT[lang]["latency_note"],
                                                    TEXT[lang]["summary_note"]]
        assert "Latency distribution" not in dom and "Distribución" not in dom


def test_an_open_model_runs_vus_chart_shows_the_vus_k6_allocated(tmp_path: Path) -> None:
    # Before: the VUs went from 1 to 0 beside "peak VUs 20" (k6 keeps 1 of 20 busy at
    # 300 requests/s of about 1 ms each).
    name = "20261127T051838Z-load"
    dom, _ = _run_page_in_browser(tmp_path, name, "--lang", "en")
    report = read_run(tmp_path / name)
    assert report.meta.open_model and report.timeseries is not None
    vus = _figures(dom)[3]
    assert vus["series"] == ["VUs allocated", "VUs active"]
    assert vus["peaks"] == [report.figures.max_vus, 1] and report.figures.max_vus == 20
    assert vus["points"] == [_nonnull(report.timeseries.vus_max),
                             _nonnull(report.timeseries.vus)]
    assert "k6 allocates 20 VUs" in dom


# Hovers the first chart, then drags across it and double-clicks, as a person would.
POINTER = """<script>
setTimeout(function () {
  const figure = document.querySelector('figure[data-chart="0"]');
  const over = figure.querySelector('.u-over'), box = over.getBoundingClientRect();
  const at = (f) => ({clientX: box.left + box.width * f, clientY: box.top + box.height / 2,
                      bubbles: true, movementX: 5});
  const mark = (key, value) => { document.body.dataset[key] = JSON.stringify(value); };
  over.dispatchEvent(new MouseEvent('mouseenter', at(0.5)));
  over.dispatchEvent(new MouseEvent('mousemove', at(0.5)));
  mark('hover', [...figure.querySelectorAll('.u-legend .u-value')].map((e) => e.textContent));
  over.dispatchEvent(new MouseEvent('mousedown', at(0.2)));
  over.dispatchEvent(new MouseEvent('mousemove', at(0.6)));
  document.dispatchEvent(new MouseEvent('mouseup', at(0.6)));
  setTimeout(function () {
    mark('zoomed', JSON.parse(figure.dataset.xticks));
    over.dispatchEvent(new MouseEvent('dblclick', at(0.5)));
    setTimeout(function () { mark('reset', JSON.parse(figure.dataset.xticks)); }, 100);
  }, 100);
}, 200);
</script>"""


def test_charts_read_out_on_hover_zoom_on_drag_and_reset_on_double_click(
        tmp_path: Path) -> None:
    page = _run_page(tmp_path, "20261127T174225Z-smoke", "--lang", "en")
    page.write_text(page.read_text().replace("</body>", POINTER + "</body>"))
    body = _body_attributes(render_in_browser(page))
    assert "data-errors" not in body, body
    time, rate = json.loads(html.unescape(body["data-hover"]))
    assert re.fullmatch(r"\d+ s", time) and re.fullmatch(r"[\d,]+ req/s", rate)
    zoomed = json.loads(html.unescape(body["data-zoomed"]))
    full = json.loads(html.unescape(body["data-reset"]))
    assert full[0] <= 5 and full[-1] >= 20
    assert zoomed[0] > full[0] and zoomed[-1] < full[-1]


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
    assert '<html lang="en">' in dom  # its verdict and notes are in English
    latency, throughput = _figures(dom)
    assert latency["series"] == throughput["series"] == ["20261127T022841Z-spike",
                                                         "20261127T051814Z-spike"]
    assert latency["points"] == [3, 3] and throughput["points"] == [1, 1]  # avg, p95, p99
    assert latency["drawn"] == throughput["drawn"] == 2
    assert "cannot tell" in dom


def test_a_broken_script_would_be_reported(tmp_path: Path) -> None:
    # The page's own error hook is what the tests above rely on: prove it catches an error.
    page = tmp_path / "broken.html"
    page.write_text(html_page("broken", "<script>undefinedFunction();</script>", {"charts": []}))
    body = _body_attributes(render_in_browser(page))
    assert "undefinedFunction" in body.get("data-errors", "")
    assert body["data-charts"] == "0"  # the chart script still ran to its end


def test_the_page_shows_how_answers_were_verified_and_what_each_part_spent(
        tmp_path: Path) -> None:
    # The headings are markdown's too (render/words.py): one wording in every format.
    dom, _ = _run_page_in_browser(tmp_path, "20261127T163621Z-spike", "--lang", "en")
    for heading in ("Answers verified", "CPU per 1,000 requests"):
        assert f"<h2>{heading}</h2>" in dom
    assert "wrk drove" in dom and "stack on CPUs 1" in dom
    dom, _ = _run_page_in_browser(tmp_path, "20261127T163621Z-spike", "--lang", "es")
    for heading in ("Verificación de las respuestas", "CPU por 1.000 peticiones"):
        assert f"<h2>{heading}</h2>" in dom
    assert "wrk obtuvo" in dom and "pila en las CPU 1" in dom


def test_the_breakers_ejections_and_the_balancers_refusals_are_drawn(tmp_path: Path) -> None:
    # A real run with replica-2 slowed for a while: the breaker took it out once.
    dom, body = _run_page_in_browser(tmp_path, "20261127T174225Z-smoke", "--lang", "en")
    # four charts over time, the balancer's, the latency over the whole run, per replica
    assert body["data-charts"] == "7"
    assert _figures(dom)[4]["series"] == ["served", "refused"]
    # The one ejection, shaded on each of the five timelines.
    bands = re.findall(r'<div class="ejection" title="([^"]+)" style="([^"]+)"', dom)
    assert [title for title, _ in bands] == ["replica-2 out"] * 5
    assert all("display: block" in style for _, style in bands)
    assert "p50 906 ms, its peers 4 ms" in dom


def test_the_vendored_uplot_is_the_pinned_version_with_its_license() -> None:
    script = (UPLOT / "uPlot.iife.min.js").read_text()
    assert script.startswith(f"/*! https://github.com/leeoniya/uPlot (v{UPLOT_VERSION}) */")
    assert UPLOT_VERSION == "1.6.32"
    license_text = (UPLOT / "LICENSE").read_text()
    assert "The MIT License" in license_text and "Leon Sorokin" in license_text
    assert "uplot-1.6.32.tgz" in (UPLOT / "README.md").read_text()
    # Inlined in a <script>: nothing in it may end the element early.
    assert "</script" not in page_script().lower() and "<!--" not in page_script()


@pytest.mark.parametrize(("lang", "title", "errors"), [
    ("es", "Desglose", "Errores por tipo"), ("en", "Breakdown", "Errors by type")])
def test_the_page_shows_the_runs_breakdown_in_its_language(lang: str, title: str,
                                                           errors: str) -> None:
    from alumnos_cli.report.render.html import run_html

    report = read_run(RUNS / "20261128T014500Z-load")
    assert report.breakdown is not None
    page = run_html(report, lang)
    assert f"<h2>{title}</h2>" in page and f"<h3>{errors}</h3>" in page
    for endpoint in report.breakdown.endpoints:
        assert f"<td class=\"t\">{html.escape(endpoint.name)}</td>" in page
    for status in report.breakdown.statuses:
        assert f"<td class=\"t\">{status.status}</td>" in page
    # A run recorded before the breakdown says why it has none, in one line.
    old = run_html(read_run(RUNS / "20261127T051814Z-spike"), lang)
    assert f"<h2>{title}</h2><p class=\"note\">" in old


def test_a_run_with_a_latency_histogram_draws_its_distribution(tmp_path: Path) -> None:
    # The whole run's distribution from k6's native histogram, instead of the summary's
    # percentiles; the per-second chart says where the distribution is.
    name = "20261128T014500Z-load"
    dom, _ = _run_page_in_browser(tmp_path, name, "--lang", "en")
    report = read_run(tmp_path / name)
    assert report.breakdown is not None
    histogram = coarser(report.breakdown.histogram, HISTOGRAM_BARS)
    [chart] = [f for f, caption in zip(_figures(dom), _captions(dom), strict=True)
               if caption == TEXT["en"]["histogram_chart"]]
    assert chart["kind"] == "bars" and chart["length"] == len(histogram) > 5
    assert chart["peaks"] == [max(b.requests for b in histogram)]
    assert chart["drawn"] == 1 and chart["series"] == [TEXT["en"]["requests_series"]]
    notes = [html.unescape(n) for n in re.findall(r'<p class="note">([^<]+)</p>', dom)]
    assert TEXT["en"]["histogram_note"] in notes and TEXT["en"]["latency_note_histogram"] in notes
    assert TEXT["en"]["summary_chart"] not in _captions(dom)
    assert TEXT["en"]["latency_note"] not in notes


def test_a_sweeps_page_draws_throughput_and_latency_against_the_load(tmp_path: Path) -> None:
    from alumnos_cli.report.capacity_read import read_sweep

    sweeps = Path(__file__).parent / "data" / "sweeps"
    name = "20261128T084451Z-sweep-spike"
    page = tmp_path / "sweep.html"
    result = runner.invoke(app, ["report", name, "--results-dir", str(sweeps), "--format",
                                 "html", "--lang", "en", "-o", str(page)])
    assert result.exit_code == 0, result.output
    dom = render_in_browser(page)
    body = _body_attributes(dom)
    assert "data-errors" not in body and body["data-charts"] == "2", body
    throughput, latency = _figures(dom)
    sweep = read_sweep(sweeps / name)
    assert throughput["kind"] == latency["kind"] == "levels"
    assert throughput["series"] == ["measured", "USL"] and throughput["drawn"] == 2
    assert throughput["points"] == [6, 6] and latency["points"] == [6, 6, 6]
    assert throughput["peaks"][0] == max(lv.requests_per_second for lv in sweep.levels)
    assert latency["peaks"][1] == max(lv.p95_ms for lv in sweep.levels)
    # Levels doubling, on a log scale of base 2: every tick a power of two.
    ticks = [t for t in throughput["xticks"] if t]
    assert len(ticks) >= 3 and all(math.log2(t).is_integer() for t in ticks), ticks
