"""Finding and reading report files (plain or compressed JSONL) under a directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from decon.common.file_io import COMPRESSION_SUFFIXES
from decon.common.jsonl import iter_json_lines
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
