"""alumnos report."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from alumnos_cli.commands.common import ResultsDir, console, handle_errors, resolve_settings
from alumnos_cli.compare import BETTER, MIN_RUNS, WORSE, Comparison, compare, load_sides
from alumnos_cli.errors import AlumnosError, RunFolderError
from alumnos_cli.proof import latest_proof
from alumnos_cli.render.html import comparison_html, run_html
from alumnos_cli.render.markdown import conclusion_sentences, run_markdown
from alumnos_cli.render.terminal import run_report
from alumnos_cli.results import ceiling_figures, figures, generator_verdict, littles_law
from alumnos_cli.runs import list_runs, load_run, resolve_run
from alumnos_cli.serverside import read_server
from alumnos_cli.timeseries import read_timeseries

FORMATS = ("terminal", "markdown", "json", "html")


@handle_errors
def report(
    run: Annotated[str | None, typer.Argument(
        help="Run folder name or path [default: the newest run].", show_default=False)] = None,
    output_format: Annotated[str, typer.Option(
        "--format", help="terminal, markdown (the technical-report section), json, or html "
        "(one self-contained page with charts; written to the run folder unless -o).")]
    = "terminal",
    lang: Annotated[str, typer.Option("--lang", help="Language of the markdown: es or en.")]
    = "es",
    compare_runs: Annotated[tuple[str, str] | None, typer.Option(
        "--compare", help="Compare two runs (or their --repeat groups): BASELINE CANDIDATE.",
        show_default=False)] = None,
    baseline: Annotated[str | None, typer.Option(
        "--baseline", help="Compare the run against this one.", show_default=False)] = None,
    list_all: Annotated[bool, typer.Option("--list", help="List the stored runs.")] = False,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write to this file instead of the terminal.",
        show_default=False)] = None,
    results_dir: ResultsDir = None,
) -> None:
    """Show a benchmark run: configuration, results, thresholds, consistency checks.

    Example: alumnos report            (the newest run)
             alumnos report 20261127T101500Z-spike --format markdown --lang en
             alumnos report --compare 20261127T101500Z-spike 20261127T103000Z-spike
             alumnos report --format html     (report.html in the run folder)
             alumnos report --list
    """
    if output_format not in FORMATS:
        raise AlumnosError(f"--format must be one of {', '.join(FORMATS)}, got {output_format!r}")
    if lang not in ("es", "en"):
        raise AlumnosError(f"--lang must be es or en, got {lang!r}")
    settings = resolve_settings(results_dir=results_dir)
    if list_all:
        _list(settings.results_dir)
        return
    if compare_runs or baseline:
        names = compare_runs or (baseline, run or resolve_run(settings.results_dir, None).name)
        result = compare(*load_sides(settings.results_dir, str(names[0]), str(names[1])))
        _emit_comparison(result, output_format, output, settings.results_dir)
        return
    stored = load_run(resolve_run(settings.results_dir, run))
    run_figures, ceiling = figures(stored), ceiling_figures(stored)
    proof = latest_proof(settings.results_dir)
    little, generator = littles_law(run_figures, stored.meta), generator_verdict(stored.meta)
    if output_format == "markdown":
        _write(run_markdown(stored.path.name, stored.meta, run_figures, ceiling, little,
                            generator, lang, read_server(stored.path), proof), output)
    elif output_format == "html":
        page = run_html(stored.path.name, stored.meta, run_figures, ceiling, little, generator,
                        read_timeseries(stored.path),
                        conclusion_sentences(run_figures, ceiling, little, generator, lang),
                        read_server(stored.path), proof)
        _write(page, output or stored.path / "report.html")
    elif output_format == "json":
        document = {"run": stored.path.name, "meta": stored.meta,
                    "figures": asdict(run_figures),
                    "ceiling": asdict(ceiling) if ceiling else None,
                    "littles_law": asdict(little) | {"consistent": little.consistent}
                    if little else None,
                    "load_generator": asdict(generator) if generator else None,
                    "server": read_server(stored.path), "patterns": proof}
        _write(json.dumps(document, indent=2) + "\n", output)
    else:
        console.print(run_report(stored, run_figures, ceiling, proof))


def _write(text: str, output: Path | None) -> None:
    if output is None:
        console.out(text, end="", highlight=False)
        return
    try:
        output.write_text(text)
    except OSError as exc:
        raise AlumnosError(f"cannot write {output}: {exc.strerror}") from None
    console.print(f"written to {output}")


def _list(results_dir: Path) -> None:
    table = Table(title=f"runs in {results_dir}")
    for column in ("run", "scenario", "load", "requests", "req/s", "p95 ms", "errors",
                   "status"):
        table.add_column(column, justify="right" if column in
                         {"requests", "req/s", "p95 ms", "errors"} else "left")
    problems = []
    for path in list_runs(results_dir):
        try:
            stored = load_run(path)
            f = figures(stored)
        except RunFolderError as exc:
            table.add_row(path.name, "", "", "", "", "", "", "[red]unreadable[/]")
            problems.append(f"{path.name}: {exc.message}")
            continue
        meta = stored.meta
        load = (f"{meta.get('rate'):g}/s" if meta.get("model") == "open"
                else f"{meta.get('vus')} VUs") + f", {meta.get('duration_seconds')} s"
        table.add_row(path.name, str(meta.get("scenario")), load, f"{f.requests:,}",
                      f"{f.requests_per_second:,.1f}", f"{f.latency.p95:,.1f}",
                      f"{f.error_rate:.2%}", "[green]pass[/]" if f.thresholds_ok
                      else "[red]thresholds failed[/]")
    console.print(table)
    for problem in problems:
        console.print(f"[red]unreadable[/] {problem}", soft_wrap=True, highlight=False)


def _emit_comparison(result: Comparison, output_format: str, output: Path | None,
                     results_dir: Path) -> None:
    if output_format == "html":
        name = f"compare-{result.baseline.runs[0].path.name}-{result.candidate.runs[0].path.name}"
        _write(comparison_html(result), output or results_dir / f"{name}.html")
        return
    if output_format == "json":
        _write(json.dumps({
            "baseline": {"label": result.baseline.label,
                         "runs": [r.path.name for r in result.baseline.runs]},
            "candidate": {"label": result.candidate.label,
                          "runs": [r.path.name for r in result.candidate.runs]},
            "rows": [asdict(row) | {"difference": row.difference, "relative": row.relative}
                     for row in result.rows]}, indent=2) + "\n", output)
        return
    if output_format == "markdown":
        lines = [f"| metric | {result.baseline.label} | {result.candidate.label} | "
                 "difference | verdict |", "|---|---|---|---|---|"]
        lines += [f"| {row.metric} ({row.unit}) | {row.baseline:,.1f} | {row.candidate:,.1f} | "
                  f"{_relative(row.relative)} | {row.verdict} |" for row in result.rows]
        _write("\n".join(lines) + "\n", output)
        return
    table = Table(title=f"{result.candidate.label} against {result.baseline.label}")
    for column in ("metric", "baseline", "candidate", "difference", "verdict"):
        table.add_column(column, justify="left" if column in {"metric", "verdict"} else "right")
    for row in result.rows:
        color = {BETTER: "green", WORSE: "red"}.get(row.verdict, "yellow")
        table.add_row(f"{row.metric} ({row.unit})", _with_range(row.baseline,
                                                                 row.baseline_range),
                      _with_range(row.candidate, row.candidate_range),
                      _relative(row.relative), f"[{color}]{row.verdict}[/]")
    console.print(table)
    for mismatch in result.mismatches:
        console.print(f"[yellow]not like for like:[/] {mismatch}")
    if result.single_runs:
        console.print(f"[yellow]fewer than {MIN_RUNS} runs a side:[/] the spread between "
                      "repeats is unknown, so no difference can be told from noise; bench with "
                      f"--repeat {MIN_RUNS} on both sides")
    else:
        console.print("a difference counts only when every repeat of one side beats every "
                      "repeat of the other and the means differ by 5% or more (ranges shown "
                      "as min-max)")


def _with_range(mean: float, span: tuple[float, float]) -> str:
    if span[0] == span[1]:
        return f"{mean:,.1f}"
    return f"{mean:,.1f} ({span[0]:,.1f}-{span[1]:,.1f})"


def _relative(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1%}"
