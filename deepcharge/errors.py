"""Errors a user can act on.

Every mistake in user input (files, keys, paths) is raised as :class:`DeepChargeError` with a message
that names the culprit and says what to do; the command line prints it on one line and exits non-zero.
"""


class DeepChargeError(Exception):
    """A user-facing error: printed as one line by the command line, never as a traceback."""


class FileFormatError(DeepChargeError):
    """A density or structure file that is missing, truncated or malformed."""

    def __init__(self, path, problem):
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem
