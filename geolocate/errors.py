"""The one exception type that means "the user can fix this".

The CLI turns a `UserError` into a single red line and a non-zero exit; anything else is a bug
and keeps its traceback. Library code raises `UserError` only for mistakes a user can correct
(bad option, missing file, wrong config key), with a message that says what to do.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix; printed as one line, exit code `exit_code`."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with the command that picks up where it stopped (the CLI prints `hint`)."""

    def __init__(self, hint: str) -> None:
        super().__init__(hint)
        self.hint = hint
