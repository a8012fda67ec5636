"""Domain errors and exit codes: raised by the core, turned into one line at the CLI edge."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What `alumnos` exits with: one code per outcome, so scripts and CI can tell them apart."""

    PASSED = 0
    ERROR = 1  # refused, unreachable, k6 failed: the message says what to do
    USAGE = 2  # a flag or argument is wrong (Click's own code for usage errors)
    PROOF_FAILED = 3  # `alumnos patterns`: a pattern did not hold
    COMPARISON_WORSE = 4  # `report --compare ... --fail-on worse`: the candidate was worse
    THRESHOLDS_CROSSED = 99  # `alumnos bench`: a valid run that missed its targets, as k6 says
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)


EXIT_CODES_HELP = (
    "Exit codes: 0 passed, 1 error, 2 usage error (a bad flag), 3 a pattern proof failed, "
    "4 a comparison's verdict was worse (report --fail-on worse), 99 thresholds crossed (as "
    "k6), 130 interrupted."
)


class AlumnosError(Exception):
    """A user-facing failure with the next step to take."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class InvalidOption(AlumnosError):
    """A flag's value that cannot work: reported as a usage error, before anything starts."""

    def __init__(self, option: str, message: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.option = option


class ServiceUnreachable(AlumnosError):
    """PostgreSQL, Redis or the HTTP service does not answer."""


class RunFolderError(AlumnosError):
    """A results folder is missing, empty or corrupt."""


class K6Error(AlumnosError):
    """k6 is missing or failed."""


class MissingExtra(AlumnosError):
    """A command needs dependencies that this installation left out."""
