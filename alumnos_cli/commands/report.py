"""alumnos report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alumnos_cli.commands.common import (
    ResultsDir,
    console,
    err_console,
    handle_errors,
    resolve_settings,
    write_output,
)
from alumnos_cli.errors import AlumnosError, ExitCode, InvalidOption
from alumnos_cli.files import write_text
from alumnos_cli.report.compare import WORSE, Comparison, compare
from alumnos_cli.report.model import RunReport
from alumnos_cli.report.read import list_records, load_sides, read_run
from alumnos_cli.report.render.csv_document import timeseries_csv
from alumnos_cli.report.render.html import comparison_html, run_html
from alumnos_cli.report.render.json_document import comparison_json, run_json
from alumnos_cli.report.render.junit import run_junit
from alumnos_cli.report.render.markdown import comparison_markdown, run_markdown
from alumnos_cli.report.render.terminal import comparison_terminal, run_terminal, runs_terminal
from alumnos_cli.runfolder import HTML_REPORT_FILE, TIMESERIES_FILE, resolve_run

FORMATS = ("terminal", "markdown", "json", "html", "junit")
FAIL_ON = ("worse",)
LANGUAGES = ("es", "en")


@handle_errors
def report(
    run: Annotated[str | None, typer.Argument(
        help="Run folder name or path \\[default: the newest run].", show_default=False)] = None,
    output_format: Annotated[str, typer.Option(
        "--format", help="terminal, markdown (the technical-report section), json, html "
        "(one self-contained page with charts; written to the run folder unless -o), or junit "
        "(one test case per k6 threshold and check, for CI).")]
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
    csv_path: Annotated[Path | None, typer.Option(
        "--csv", help="Also write the run's time series to this file as CSV (one row per "
        "second).", show_default=False)] = None,
    fail_on: Annotated[str | None, typer.Option(
        "--fail-on", help="With --compare or --baseline: exit 4 when the verdict is worse "
        "(for CI).", show_default=False)] = None,
) -> None:
    """Show a benchmark run: configuration, results, thresholds, consistency checks.

    Example: alumnos report            (the newest run)
             alumnos report 20261127T101500Z-spike --format markdown --lang en
             alumnos report --compare 20261127T101500Z-spike 20261127T103000Z-spike
             alumnos report --format html     (report.html in the run folder)
             alumnos report --list
             alumnos report --format junit -o k6-junit.xml   (for CI)
             alumnos report 20261127T101500Z-spike --csv timeseries.csv
             alumnos report --compare BASELINE CANDIDATE --fail-on worse   (exit 4 if worse)
    """
    if output_format not in FORMATS:
        raise InvalidOption("--format", f"--format must be one of {', '.join(FORMATS)}, got "
                            f"{output_format!r}")
    if lang not in LANGUAGES:
        raise InvalidOption("--lang", f"--lang must be es or en, got {lang!r}")
    _refuse_for_machines(output_format, csv_path, fail_on,
                         comparing=bool(compare_runs or baseline), listing=list_all)
    settings = resolve_settings(results_dir=results_dir)
    if list_all:
        table, problems = runs_terminal(str(settings.results_dir),
                                        list_records(settings.results_dir))
        console.print(table)
        for problem in problems:
            console.print(problem, soft_wrap=True, highlight=False)
        return
    if compare_runs or baseline:
        names = compare_runs or (baseline, run or resolve_run(settings.results_dir, None).name)
        result = compare(*load_sides(settings.results_dir, str(names[0]), str(names[1])))
        _emit_comparison(result, output_format, output, settings.results_dir)
        if fail_on == WORSE and result.overall == WORSE:
            raise typer.Exit(ExitCode.COMPARISON_WORSE)
        return
    chosen = read_run(resolve_run(settings.results_dir, run))
    if csv_path is not None:
        _write_timeseries(chosen, csv_path)
    if output_format == "markdown":
        write_output(run_markdown(chosen, lang), output)
    elif output_format == "html":
        write_output(run_html(chosen, lang), output or chosen.record.folder / HTML_REPORT_FILE)
    elif output_format == "json":
        write_output(run_json(chosen), output)
    elif output_format == "junit":
        write_output(run_junit(chosen), output)
    else:
        console.print(run_terminal(chosen))


def _emit_comparison(result: Comparison, output_format: str, output: Path | None,
                     results_dir: Path) -> None:
    if output_format == "html":
        name = f"compare-{result.baseline.name}-{result.candidate.name}"
        write_output(comparison_html(result), output or results_dir / f"{name}.html")
    elif output_format == "json":
        write_output(comparison_json(result), output)
    elif output_format == "markdown":
        write_output(comparison_markdown(result), output)
    else:
        console.print(comparison_terminal(result))


def _refuse_for_machines(output_format: str, csv_path: Path | None, fail_on: str | None, *,
                         comparing: bool, listing: bool) -> None:
    """--format junit and --csv are about one run, --fail-on about a comparison."""
    if fail_on is not None and fail_on not in FAIL_ON:
        raise InvalidOption("--fail-on", f"--fail-on must be worse, got {fail_on!r}")
    if fail_on is not None and not comparing:
        raise InvalidOption("--fail-on", "--fail-on needs a comparison",
                            "add --compare BASELINE CANDIDATE, or --baseline RUN")
    if csv_path is not None and (comparing or listing):
        raise InvalidOption("--csv", "--csv writes one run's time series, not a comparison's "
                            "or the list's")
    if output_format == "junit" and comparing:
        raise InvalidOption("--format", "--format junit gives one run's thresholds and checks, "
                            "not a comparison", "gate a comparison with --fail-on worse")


def _write_timeseries(chosen: RunReport, path: Path) -> None:
    """The CSV beside whatever the format prints, so its message goes to stderr."""
    if chosen.timeseries is None:
        raise AlumnosError(f"run {chosen.name} has no time series ({TIMESERIES_FILE})",
                           "it was recorded without k6's per-second recording; bench "
                           "again for one")
    try:
        write_text(path, timeseries_csv(chosen.timeseries))
    except OSError as exc:
        raise AlumnosError(f"cannot write {path}: {exc.strerror}") from None
    err_console.print(f"time series written to {path}", highlight=False)
