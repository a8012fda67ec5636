"""alumnos report."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from alumnos_cli.commands.common import (
    ResultsDir,
    console,
    err_console,
    given_flags,
    handle_errors,
    refuse_beside,
    resolve_settings,
    write_output,
)
from alumnos_cli.errors import AlumnosError, ExitCode, InvalidOption

if TYPE_CHECKING:
    from alumnos_cli.report.compare import Comparison
    from alumnos_cli.report.model import RunReport, TimeSeries


class ReportFormat(StrEnum):
    """What --format accepts: a new format is one line here, and its renderer below."""

    TERMINAL = "terminal"
    MARKDOWN = "markdown"
    JSON = "json"
    HTML = "html"
    JUNIT = "junit"


class FailOn(StrEnum):
    """The comparison verdicts --fail-on can turn into an exit code."""

    WORSE = "worse"


class Language(StrEnum):
    """The languages a run's prose (conclusion, headings) is written in."""

    ES = "es"
    EN = "en"


# The formats with prose in a language; the terminal tables, JSON and comparisons have none.
WRITTEN_IN_A_LANGUAGE = (ReportFormat.MARKDOWN, ReportFormat.HTML)


@handle_errors
def report(
    ctx: typer.Context,
    run: Annotated[list[str] | None, typer.Argument(
        metavar="RUN", help="Run folder name or path \\[default: the newest run]; with "
        "--compare, two: BASELINE CANDIDATE.", show_default=False)] = None,
    output_format: Annotated[ReportFormat, typer.Option(
        "--format", help="markdown: the technical-report section; html: one self-contained "
        "page with charts, written to the run folder unless -o.")]
    = ReportFormat.TERMINAL,
    lang: Annotated[Language, typer.Option(
        "--lang", help="Language of one run's markdown or html.")] = Language.ES,
    compare_runs: Annotated[bool, typer.Option(
        "--compare", help="Compare two runs (or their --repeat groups): --compare BASELINE "
        "CANDIDATE.")] = False,
    baseline: Annotated[str | None, typer.Option(
        "--baseline", help="Compare the run against this one.", show_default=False)] = None,
    list_all: Annotated[bool, typer.Option("--list", help="List the stored runs.")] = False,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write to this file instead of the terminal (markdown, json, "
        "html).", show_default=False)] = None,
    results_dir: ResultsDir = None,
    csv_path: Annotated[Path | None, typer.Option(
        "--csv", help="Also write the run's time series to this file as CSV (one row per "
        "second).", show_default=False)] = None,
    fail_on: Annotated[FailOn | None, typer.Option(
        "--fail-on", help="With --compare or --baseline: exit 4 when the verdict is worse "
        "(for CI).", show_default=False)] = None,
    prometheus: Annotated[str | None, typer.Option(
        "--prometheus", help="Read the server side of a run that has none from this "
        "Prometheus, for the run's load window, and keep it in the run folder.",
        show_default=False)] = None,
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
             alumnos report 20261127T101500Z-spike --prometheus http://127.0.0.1:9090
    """
    names = run or []
    refuse_what_does_not_apply(given_flags(ctx), names, output_format)
    refuse_for_machines(given_flags(ctx), output_format)
    settings = resolve_settings(results_dir=results_dir)
    if list_all:
        _list_runs(settings.results_dir)
    elif compare_runs or baseline:
        from alumnos_cli.report.compare import compare
        from alumnos_cli.report.read import load_sides
        from alumnos_cli.runfolder import resolve_run

        sides = names if compare_runs else [
            str(baseline), names[0] if names else resolve_run(settings.results_dir, None).name]
        refuse_sweeps(settings.results_dir, sides)
        result = compare(*load_sides(settings.results_dir, sides[0], sides[1]))
        _emit_comparison(result, output_format, output, settings.results_dir)
        if fail_on is not None and result.overall == fail_on.value:
            raise typer.Exit(ExitCode.COMPARISON_WORSE)
    else:
        from alumnos_cli.report.read import read_run
        from alumnos_cli.runfolder import resolve_run

        folder = resolve_run(settings.results_dir, names[0] if names else None)
        from alumnos_cli.report.capacity_read import is_sweep

        if is_sweep(folder):
            refuse_for_a_sweep(given_flags(ctx), output_format)
            _emit_sweep(folder, output_format, lang, output)
            return
        if prometheus is not None:
            _read_server_side(prometheus, folder)
        chosen = read_run(folder)
        if csv_path is not None:
            _write_timeseries(chosen.name, chosen.timeseries, csv_path)
        _emit_run(chosen, output_format, lang, output)


def refuse_sweeps(results_dir: Path, sides: list[str]) -> None:
    """A comparison is of runs (or --repeat groups); a sweep's levels are runs of their own."""
    from alumnos_cli.report.capacity_read import is_sweep

    for name in sides:
        if is_sweep(Path(name)) or is_sweep(results_dir / name):
            raise InvalidOption("--compare", f"{name} is a sweep; a comparison takes runs",
                                "compare two of its levels' runs: SWEEP/RUN")


def refuse_for_a_sweep(given: set[str], output_format: ReportFormat) -> None:
    """A sweep has levels, not one run's time series, thresholds or server side to read."""
    for flag in ("--csv", "--prometheus"):
        if flag in given:
            raise InvalidOption(flag, f"{flag} is about one run; a sweep has one per level",
                                "give the level's run: SWEEP/RUN")
    if output_format is ReportFormat.JUNIT:
        raise InvalidOption("--format", "--format junit gives one run's thresholds; a sweep "
                            "has one run per level", "give the level's run: SWEEP/RUN")


def _emit_sweep(folder: Path, output_format: ReportFormat, lang: Language,
                output: Path | None) -> None:
    from alumnos_cli.report.capacity_read import read_sweep
    from alumnos_cli.report.render import capacity

    sweep = read_sweep(folder)
    if output_format is ReportFormat.MARKDOWN:
        write_output(capacity.sweep_markdown(sweep, lang), output)
    elif output_format is ReportFormat.HTML:
        from alumnos_cli.runfolder import HTML_REPORT_FILE

        write_output(capacity.sweep_html(sweep, lang), output or folder / HTML_REPORT_FILE)
    elif output_format is ReportFormat.JSON:
        write_output(capacity.sweep_json(sweep), output)
    else:
        console.print(capacity.sweep_terminal(sweep))


def _read_server_side(prometheus: str, folder: Path) -> None:
    """The run's server side read now; what could not be read is one line, then the report."""
    from alumnos_cli.bench.remote_write import OFF, base_url, validate_url
    from alumnos_cli.bench.server_later import read_server_side_later
    from alumnos_cli.settings import mask_password

    validate_url(prometheus)
    if prometheus == OFF:
        raise InvalidOption("--prometheus", "--prometheus off leaves nothing to read",
                            "give the URL of a Prometheus that scraped the stack during the run")
    missing = read_server_side_later(base_url(prometheus), folder)
    if missing is not None:
        err_console.print(f"not read: {missing}", soft_wrap=True, highlight=False)
    else:
        err_console.print(f"server side read from {mask_password(prometheus)} into "
                          f"{folder.name}", soft_wrap=True, highlight=False)


def refuse_what_does_not_apply(given: set[str], runs: list[str],
                               output_format: ReportFormat) -> None:
    """A flag that would change nothing here is refused, so it is never silently ignored."""
    if "--prometheus" in given and ("--compare" in given or "--baseline" in given):
        raise InvalidOption("--prometheus", "--prometheus reads one run's server side, not a "
                            "comparison's", "report each run with --prometheus first")
    if "--list" in given:
        refuse_beside("--list", given, "prints the table of runs and nothing else",
                      allowed={"--results-dir"})
        return
    if "--compare" in given:
        if "--baseline" in given:
            raise InvalidOption("--baseline", "--baseline cannot go with --compare, which names "
                                "its own", "use --compare BASELINE CANDIDATE, or RUN --baseline "
                                "BASELINE")
        if len(runs) != 2:
            raise InvalidOption("--compare", f"--compare takes two runs, BASELINE CANDIDATE; "
                                f"got {len(runs)}{': ' + runs[0] if runs else ''}")
    elif len(runs) > 1:
        raise InvalidOption("RUN", f"one run at a time, got {len(runs)}",
                            "compare two with --compare BASELINE CANDIDATE")
    if "--output" in given and output_format is ReportFormat.TERMINAL:
        files = ", ".join(f for f in ReportFormat if f is not ReportFormat.TERMINAL)
        raise InvalidOption("--output", "--output needs a file format; terminal prints to the "
                            "screen", f"add --format with one of {files}")
    comparing = "--compare" in given or "--baseline" in given
    if "--lang" in given and (comparing or output_format not in WRITTEN_IN_A_LANGUAGE):
        raise InvalidOption("--lang", f"--lang applies to one run's "
                            f"{' or '.join(WRITTEN_IN_A_LANGUAGE)} only; "
                            f"{'a comparison' if comparing else output_format.value} has no "
                            "language")


def _list_runs(results_dir: Path) -> None:
    from alumnos_cli.report.read import list_records
    from alumnos_cli.report.render.terminal import runs_terminal

    table, problems = runs_terminal(str(results_dir), list_records(results_dir))
    # Never cropped: a run's name is what the user copies, whatever the terminal's width.
    console.print(table, crop=False)
    for problem in problems:
        console.print(problem, soft_wrap=True, highlight=False)
    from alumnos_cli.report.capacity_read import listed_sweeps

    for name, line in listed_sweeps(results_dir):
        console.print(f"sweep {name}: {line}", soft_wrap=True, highlight=False, markup=False)


def _emit_run(chosen: RunReport, output_format: ReportFormat, lang: Language,
              output: Path | None) -> None:
    if output_format is ReportFormat.MARKDOWN:
        from alumnos_cli.report.render.markdown import run_markdown

        write_output(run_markdown(chosen, lang), output)
    elif output_format is ReportFormat.HTML:
        from alumnos_cli.report.render.html import run_html
        from alumnos_cli.runfolder import HTML_REPORT_FILE

        write_output(run_html(chosen, lang), output or chosen.record.folder / HTML_REPORT_FILE)
    elif output_format is ReportFormat.JSON:
        from alumnos_cli.report.render.json_document import run_json

        write_output(run_json(chosen), output)
    elif output_format is ReportFormat.JUNIT:
        from alumnos_cli.report.render.junit import run_junit

        write_output(run_junit(chosen), output)
    else:
        from alumnos_cli.report.render.terminal import run_terminal

        console.print(run_terminal(chosen))


def _emit_comparison(result: Comparison, output_format: ReportFormat, output: Path | None,
                     results_dir: Path) -> None:
    if output_format is ReportFormat.HTML:
        from alumnos_cli.report.render.html import comparison_html

        name = f"compare-{result.baseline.name}-{result.candidate.name}"
        write_output(comparison_html(result), output or results_dir / f"{name}.html")
    elif output_format is ReportFormat.JSON:
        from alumnos_cli.report.render.json_document import comparison_json

        write_output(comparison_json(result), output)
    elif output_format is ReportFormat.MARKDOWN:
        from alumnos_cli.report.render.markdown import comparison_markdown

        write_output(comparison_markdown(result), output)
    else:
        from alumnos_cli.report.render.terminal import comparison_terminal

        console.print(comparison_terminal(result))


def refuse_for_machines(given: set[str], output_format: ReportFormat) -> None:
    """--format junit and --csv are about one run, --fail-on about a comparison."""
    comparing = "--compare" in given or "--baseline" in given
    if "--fail-on" in given and not comparing:
        raise InvalidOption("--fail-on", "--fail-on needs a comparison",
                            "add --compare BASELINE CANDIDATE, or --baseline RUN")
    if "--csv" in given and comparing:
        raise InvalidOption("--csv", "--csv writes one run's time series, not a comparison's")
    if output_format is ReportFormat.JUNIT and comparing:
        raise InvalidOption("--format", "--format junit gives one run's thresholds and checks, "
                            "not a comparison", "gate a comparison with --fail-on worse")


def _write_timeseries(name: str, series: TimeSeries | None, path: Path) -> None:
    """The CSV beside whatever the format prints, so its message goes to stderr."""
    from alumnos_cli.files import write_text
    from alumnos_cli.report.render.csv_document import timeseries_csv
    from alumnos_cli.runfolder import TIMESERIES_FILE

    if series is None:
        raise AlumnosError(f"run {name} has no time series ({TIMESERIES_FILE})",
                           "it was recorded without k6's per-second recording; bench "
                           "again for one")
    try:
        write_text(path, timeseries_csv(series))
    except OSError as exc:
        raise AlumnosError(f"cannot write {path}: {exc.strerror}") from None
    err_console.print(f"time series written to {path}", highlight=False)
