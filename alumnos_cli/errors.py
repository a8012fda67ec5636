"""Domain errors: raised by the core, rendered once at the CLI edge."""


class AlumnosError(Exception):
    """A user-facing failure with the next step to take."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ServiceUnreachable(AlumnosError):
    """PostgreSQL, Redis or the HTTP service does not answer."""


class RunFolderError(AlumnosError):
    """A results folder is missing, empty or corrupt."""


class K6Error(AlumnosError):
    """k6 is missing or failed."""
