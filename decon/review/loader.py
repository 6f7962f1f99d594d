"""Finding and reading report files (plain or compressed JSONL) under a directory."""

from __future__ import annotations

import io
import lzma
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import orjson

from decon.common.data_reader import open_binary
from decon.common.file_io import COMPRESSION_SUFFIXES
from decon.errors import DeconError
from decon.review.records import Match, validate_record

COMPRESSED_SUFFIXES = COMPRESSION_SUFFIXES
REPORT_SUFFIXES = (".jsonl",) + tuple(f".jsonl{ext}" for ext in COMPRESSED_SUFFIXES)


def is_report_file(path: Path) -> bool:
    """True when ``path`` is named like a JSONL report (``.jsonl`` plus an optional compression)."""
    name = path.name.lower()
    return path.is_file() and not name.startswith(".") and name.endswith(REPORT_SUFFIXES)


def find_report_files(directory: Path) -> list[Path]:
    """All report files under ``directory`` (recursively), in sorted path order.

    A single file may be given instead of a directory.
    """
    if not directory.exists():
        raise DeconError(f"report directory not found: {directory}")
    if directory.is_file():
        return [directory]
    if not directory.is_dir():
        raise DeconError(f"not a directory: {directory}")
    return sorted(p for p in directory.rglob("*") if is_report_file(p))


def open_text(path: Path) -> IO[str]:
    """Open ``path`` for text reading, decompressing according to its suffix."""
    try:
        return io.TextIOWrapper(open_binary(path), encoding="utf-8")
    except OSError as exc:
        raise DeconError(f"cannot open {path}: {exc.strerror or exc}") from exc


def iter_json_lines(path: Path) -> Iterator[tuple[int, object]]:
    """Yield (line number, parsed value) for the non-blank lines of a (compressed) JSONL file.

    Unreadable files and invalid JSON raise DeconError naming the file (and line).
    """
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


def iter_file_records(path: Path) -> Iterator[Match]:
    """Yield the records of one report file; a line that is not a report record is an error."""
    for lineno, obj in iter_json_lines(path):
        problem = validate_record(obj)
        if problem:
            raise DeconError(f"{path}:{lineno}: not a contamination report record ({problem})")
        yield Match(raw=obj, source_file=path, source_line=lineno)


def load_reports(directory: Path) -> list[Match]:
    """Read every report record under ``directory``.

    Raises DeconError when the directory is missing or holds no report files at all, or when a
    line is not a report record.  Report files that exist but are empty give an empty list.
    """
    files = find_report_files(directory)
    if not files:
        raise DeconError(
            f"no report files (*.jsonl, *.jsonl.gz/.zst/.bz2/.xz) found under {directory}"
        )
    matches: list[Match] = []
    for path in files:
        matches.extend(iter_file_records(path))
    return matches
