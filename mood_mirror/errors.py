"""What every `mood-mirror` command shares about failing: exit codes, the one-line error and
the code it exits with."""
from http import HTTPStatus

PROG = "mood-mirror"
EXIT_OK, EXIT_SERVER, EXIT_USAGE, EXIT_AUTH, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class CliError(Exception):
    """A problem to report as one line, with the exit code it deserves."""

    def __init__(self, message, exit_code=EXIT_USAGE):
        super().__init__(message)
        self.exit_code = exit_code


def one_line(text, limit=300):
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def describe_error(exc, hint=True):
    """An ApiClientError as one readable line."""
    if exc.status is None:
        return one_line(exc.message)
    try:
        phrase = HTTPStatus(exc.status).phrase
    except ValueError:
        phrase = "error"
    line = f"{exc.status} {phrase}: {one_line(exc.message)}"
    if exc.code and exc.code not in ("http_error",):
        line += f" [{exc.code}]"
    if hint and exc.status == 401:
        line += f"; sign in again with: {PROG} login"
    elif hint and exc.status == 429:
        line += "; wait a minute and try again"
    return line


def exit_code_for(exc):
    return EXIT_AUTH if exc.status == 401 else EXIT_SERVER
