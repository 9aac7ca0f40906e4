"""The package's own errors: bad input that the user can fix, reported as one line."""


class UserError(ValueError):
    """Bad input (a parameter, a data file, a checkpoint). The message names the key or file and
    says how to fix it; line breaks in what it quotes (a path, a value) are escaped, so it is always
    one line. The CLI prints it as `error: ...` and exits 2; any other exception is a bug and keeps
    its traceback."""

    def __init__(self, message):
        super().__init__(str(message).replace("\r", "\\r").replace("\n", "\\n"))


class DataError(UserError):
    """A dataset is unknown, missing or corrupt; the message is one line."""


def one_line(e) -> str:
    """An exception's message on one line (its type's name when it has none)."""
    return " ".join(str(e).split()) or type(e).__name__
