"""Errors shown to users as one line, without a traceback."""


class VidgenError(Exception):
    """A problem with the user's input or environment; the CLI prints it and exits non-zero."""

    exit_code = 1
