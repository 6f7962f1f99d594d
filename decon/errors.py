"""User-facing errors: reported as one line on stderr with a non-zero exit code, no traceback."""

from __future__ import annotations


class DeconError(Exception):
    """A problem with the user's input or environment (bad path, bad file, bad option)."""

    exit_code: int = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
