"""Reading (compressed) JSONL files as parsed values, for the commands that read reports and
reference sets (review, compare, evals)."""

from __future__ import annotations

import io
import lzma
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import orjson

from decon.common.columnar import is_columnar
from decon.common.data_reader import DataFileError, iter_record_lines, open_binary
from decon.errors import DeconError


def open_text(path: Path) -> IO[str]:
    """Open ``path`` for text reading, decompressing according to its suffix."""
    try:
        return io.TextIOWrapper(open_binary(path), encoding="utf-8")
    except OSError as exc:
        raise DeconError(f"cannot open {path}: {exc.strerror or exc}") from exc


def iter_json_lines(path: Path) -> Iterator[tuple[int, object]]:
    """Yield (line number, parsed value) for the non-blank lines of a (compressed) JSONL file.

    Unreadable files and invalid JSON raise DeconError naming the file (and line). A Parquet or
    Arrow file (a reference set) yields its rows as objects, numbered from 1.
    """
    if is_columnar(path):
        try:
            for lineno, raw in enumerate(iter_record_lines(path), start=1):
                if raw is None:
                    raise DeconError(f"{path}:{lineno}: row too long")
                yield lineno, orjson.loads(raw)
        except DataFileError as exc:
            raise DeconError(str(exc)) from None
        return
    try:
        with open_text(path) as handle:
            for lineno, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield lineno, orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise DeconError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
    except (OSError, EOFError, UnicodeDecodeError, lzma.LZMAError) as exc:
        raise DeconError(f"{path}: cannot read ({exc})") from None
    except Exception as exc:  # zstandard raises its own error type
        if type(exc).__name__ == "ZstdError":
            raise DeconError(f"{path}: cannot read ({exc})") from None
        raise
