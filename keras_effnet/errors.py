"""The package's own errors: a mistake in what the user gave (an argument, a file, a data
spec, a run folder). `effnet` prints these as one line and exits 2; any other exception is a
bug and keeps its traceback.

Each is also the built-in exception it refines, so `except ValueError` keeps working."""


class UserError(Exception):
    """What the user gave is wrong; the message says what and how to mend it."""


class InvalidArgument(UserError, ValueError):
    """A value the package cannot take (out of range, unknown name, inconsistent options)."""


class InvalidType(UserError, TypeError):
    """A value of the wrong type."""


class MissingFile(UserError, FileNotFoundError):
    """A file or folder the user named is not there."""


class NotWritable(UserError, PermissionError):
    """A folder the user named for output cannot be written (or created)."""
