"""Checks on a submitted file path before a job is created."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from decon.common.data_reader import describe_os_error, is_within
from decon.common.file_io import TRAINING_EXTENSIONS, is_data_file
from decon.server.limits import MAX_PATH_BYTES, MAX_PATH_DEPTH


class PathRefused(Exception):
    """The submitted path cannot become a job; ``status_code`` is the HTTP answer (400 or 403)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def resolve_roots(roots: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Allowed roots with symlinks resolved (the form submitted paths are compared against)."""
    return [Path(os.path.realpath(r)) for r in roots]


def check_path_text(raw: str) -> None:
    """Checks that need no filesystem call: text, length and depth (PathRefused 400)."""
    if not raw or "\x00" in raw:
        raise PathRefused(400, "file_path is empty or invalid")
    try:
        size = len(raw.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: no file name can be written so
        raise PathRefused(400, "file_path is not valid UTF-8 text") from None
    if size > MAX_PATH_BYTES:
        raise PathRefused(400, f"file_path is too long: {size} bytes (limit {MAX_PATH_BYTES})")
    depth = sum(1 for part in raw.split("/") if part)
    if depth > MAX_PATH_DEPTH:
        raise PathRefused(400, f"file_path is too deep: {depth} components (limit {MAX_PATH_DEPTH})")


def check_submitted_path(raw: str, allowed_roots: Sequence[Path] = ()) -> str:
    """Validate ``raw`` and return it as an absolute path; raise PathRefused with a one-line reason.

    Text, length and depth are checked before any filesystem call. Relative paths are taken from
    the server's working directory. With ``allowed_roots``, the path after resolving symlinks must
    lie inside one of them (checked first, so the answer for a path outside the roots does not
    reveal whether it exists).
    """
    check_path_text(raw)
    absolute = os.path.abspath(raw)
    check_path_text(absolute)  # the working directory may have made it too long or too deep
    if allowed_roots:
        real = Path(os.path.realpath(absolute))
        if not is_within(real, allowed_roots):
            raise PathRefused(403, f"file_path is outside the allowed roots: {raw}")
    try:
        mode = os.stat(absolute).st_mode
    except OSError as exc:
        missing = exc.errno in (errno.ENOENT, errno.ENOTDIR)
        raise PathRefused(400, f"file does not exist: {raw}" if missing else f"{describe_os_error(exc)}: {raw}") from None
    if not stat.S_ISREG(mode):
        raise PathRefused(400, f"not a regular file: {raw}")
    if not is_data_file(absolute, columnar=True):
        raise PathRefused(400, f"unsupported file type (expected one of {', '.join(TRAINING_EXTENSIONS)}): {raw}")
    return absolute
