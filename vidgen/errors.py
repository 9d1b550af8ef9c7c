"""Errors shown to users as one line, without a traceback."""


class VidgenError(Exception):
    """A problem with the user's input or environment; the CLI prints it and exits non-zero."""

    exit_code = 1


class UndecodableSegmentError(VidgenError):
    """A segment of a distributed run did not decode to the frames its packets promised (the file is
    damaged there); the driver then processes the whole video on one worker instead."""
