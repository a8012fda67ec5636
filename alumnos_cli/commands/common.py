"""What every command shares: settings options, output, and the one place errors become
messages and exit codes."""

from __future__ import annotations

import contextlib
import functools
import importlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar, cast

import typer

from alumnos_cli.errors import AlumnosError, ExitCode, InvalidOption, MissingExtra
from alumnos_cli.files import write_text
from alumnos_cli.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console


class _ConsoleOnFirstUse:
    """A rich Console made when first used: importing rich takes some 35 ms that
    `alumnos --version` and every Tab completion would pay for nothing."""

    def __init__(self, *, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def _made(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._made(), name)

    # `with console:` (rich's Live and Progress) looks these up on the class, not through
    # __getattr__.
    def __enter__(self) -> Console:
        return self._made().__enter__()

    def __exit__(self, *exc: object) -> None:
        self._made().__exit__(*exc)


console = cast("Console", _ConsoleOnFirstUse())
err_console = cast("Console", _ConsoleOnFirstUse(stderr=True))

P = ParamSpec("P")
R = TypeVar("R")

DatabaseUrl = Annotated[str | None, typer.Option(
    "--database-url", help="PostgreSQL URL (env ALUMNOS_DATABASE_URL)", show_default=False)]
RedisUrl = Annotated[str | None, typer.Option(
    "--redis-url", help="Redis URL (env ALUMNOS_REDIS_URL)", show_default=False)]
ResultsDir = Annotated[Path | None, typer.Option(
    "--results-dir", help="Where runs are stored (env ALUMNOS_RESULTS_DIR; default ./results)",
    show_default=False)]
StateDir = Annotated[Path | None, typer.Option(
    "--state-dir", help="Where `up` keeps its state and logs (env ALUMNOS_STATE_DIR; "
    "default ./.alumnos)", show_default=False)]


def resolve_settings(*, database_url: str | None = None, redis_url: str | None = None,
                     results_dir: Path | None = None, state_dir: Path | None = None) -> Settings:
    """Flags > the private cluster `up` recorded, if any > environment > defaults."""
    from alumnos_cli.stack.state import recorded_settings

    first = Settings.resolve(state_dir=state_dir)
    return Settings.resolve(recorded=recorded_settings(first.state_dir),
                            database_url=database_url, redis_url=redis_url,
                            results_dir=results_dir, state_dir=state_dir)


def handle_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn domain errors into one red line with the next step (exit 1), and a bad flag
    into a usage error in Click's own style (exit 2)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except InvalidOption as exc:
            # Click names the flag itself: "Invalid value for '--rate': must be ..."
            message = exc.message.removeprefix(f"{exc.option} ")
            message = f"{message} ({exc.hint})" if exc.hint else message
            ctx = _running_context()
            param = _parameter(ctx, exc.option)
            raise typer.BadParameter(message, ctx=ctx, param=param,
                                     param_hint=None if param else f"'{exc.option}'") from None
        except AlumnosError as exc:
            from rich.markup import escape

            # Escaped: messages quote user input and names such as alumnos[stack] verbatim.
            # Never wrapped: a path or a command cut over two lines cannot be copied.
            err_console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False,
                              soft_wrap=True)
            if exc.hint:
                err_console.print(f"[yellow]next:[/] {escape(exc.hint)}", highlight=False,
                                  soft_wrap=True)
            raise typer.Exit(ExitCode.ERROR) from None

    return wrapper


def _running_context() -> Any:
    """The running command's context, so a refused flag is shown with its usage line, as
    Click shows the flags it refuses itself."""
    # Recent Typer releases carry their own copy of Click; older ones use Click itself.
    for module in ("typer._click.globals", "click"):
        try:
            click_globals = importlib.import_module(module)
        except ImportError:
            continue
        return click_globals.get_current_context(silent=True)
    return None


def _parameter(ctx: Any, option: str) -> Any:
    """The command's parameter behind a flag, so Click names it as it names its own."""
    params = ctx.command.params if ctx is not None else []
    return next((p for p in params if option in (*p.opts, *p.secondary_opts)), None)


def given_flags(ctx: typer.Context) -> set[str]:
    """What the user typed on the command line: options by their long name ("--output"),
    arguments by their name in capitals ("RUN"). Not the environment: an ALUMNOS_* variable
    set for every command must not make one of them refuse to run."""
    given = set()
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name or "")
        if source is None or source.name != "COMMANDLINE":
            continue
        if param.param_type_name == "argument":
            given.add((param.name or "").upper())
        else:
            given.add(next(opt for opt in param.opts if opt.startswith("--")))
    return given


def refuse_beside(flag: str, given: set[str], does: str, *, allowed: Iterable[str] = ()) -> None:
    """`flag` makes the command do one thing only: any other flag given would be ignored, so
    it is refused."""
    beside = sorted(given - {flag, *allowed})
    if beside:
        raise InvalidOption(beside[0], f"{beside[0]} does not apply to {flag}, which {does}")


@contextlib.contextmanager
def requires(extra: str) -> Iterator[None]:
    """Import a capability whose dependencies an install may have left out.

    `pip install alumnos` is enough to read and compare reports; running the stack, seeding
    and benchmarking need their extras. A missing one is named with the command to add it.
    """
    try:
        yield
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing in {"alumnos_cli", "alumnos_service"}:
            raise
        raise MissingExtra(f"this command needs {missing}, which this installation lacks",
                           f"pip install 'alumnos[{extra}]'") from None


def write_output(text: str, output: Path | None) -> None:
    """Print to the terminal, or write the file whole (never through a planted link)."""
    if output is None:
        console.out(text, end="", highlight=False)
        return
    try:
        write_text(output, text)
    except OSError as exc:
        raise AlumnosError(f"cannot write {output}: {exc.strerror}") from None
    console.print(f"written to {output}")
