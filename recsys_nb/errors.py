"""The one exception type users see: a clear message, no traceback on the CLI."""


class RecsysError(Exception):
    """Bad input or a missing resource; the message says what was wrong and how to fix it.

    The CLI prints it as one line and exits with status 2.
    """
