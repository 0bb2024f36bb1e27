"""Errors the client raises, each knowing the exit code the CLI turns it into."""


class DmageError(Exception):
    """A failure the user can act on; the message is one line for stderr."""

    exit_code = 1


class NotFound(DmageError):
    exit_code = 1


class NotAuthenticated(DmageError):
    exit_code = 3


class Conflict(DmageError):
    exit_code = 4


class Forbidden(DmageError):
    exit_code = 1


class ServerError(DmageError):
    """The server could not be reached, or answered something unusable."""

    exit_code = 1


class TamperedData(DmageError):
    """The server handed back something that fails authentication."""

    exit_code = 1
