"""Names of the outputs produced for one input file.

For an input at ``<input prefix>/<dir>/<name>.jsonl[.gz|.zst|...]`` (or ``<name>.parquet``,
``.arrow``, ``.feather``, ``.ipc``) the outputs keep ``<dir>``:

- ``<report prefix>/<dir>/<basename>.report.jsonl``  when contamination was found
- ``<report prefix>/<dir>/<basename>.clean``          (empty object) when none was found
- ``<cleaned prefix>/<dir>/<basename>.clean.jsonl.gz`` with purify, for every file
  (``<basename>.clean.parquet`` and so on for a columnar input: the cleaned copy keeps its format)
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from decon.common.file_io import COLUMNAR_EXTENSIONS

DATA_EXTENSIONS = (".jsonl", ".json")
COMPRESSION_EXTENSIONS = ("", ".gz", ".zst", ".zstd", ".bz2", ".xz")
# Longest first so ".jsonl.gz" wins over ".json" style partial matches.
INPUT_SUFFIXES: tuple[str, ...] = tuple(
    sorted([d + c for d in DATA_EXTENSIONS for c in COMPRESSION_EXTENSIONS] + list(COLUMNAR_EXTENSIONS),
           key=len, reverse=True)
)

REPORT_SUFFIX = ".report.jsonl"
CLEAN_MARKER_SUFFIX = ".clean"
CLEANED_SUFFIX = ".clean.jsonl.gz"


def is_input_name(name: str) -> bool:
    return name.endswith(INPUT_SUFFIXES)


def strip_input_suffix(name: str) -> str:
    """File name without its .json/.jsonl and compression suffix."""
    for suffix in INPUT_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


@dataclass(frozen=True)
class OutputNames:
    """Keys relative to the report / cleaned prefixes."""

    report: str
    clean_marker: str
    cleaned: str


def output_names(relative_path: str) -> OutputNames:
    folder, name = posixpath.split(relative_path)
    stem = posixpath.join(folder, strip_input_suffix(name)) if folder else strip_input_suffix(name)
    columnar = next((e for e in COLUMNAR_EXTENSIONS if name.endswith(e)), None)
    cleaned = stem + (CLEAN_MARKER_SUFFIX + columnar if columnar else CLEANED_SUFFIX)
    return OutputNames(report=stem + REPORT_SUFFIX, clean_marker=stem + CLEAN_MARKER_SUFFIX, cleaned=cleaned)


def is_finished(relative_path: str, report_keys: set[str], cleaned_keys: set[str], purify: bool) -> bool:
    """Already done in a previous run: report or marker present (and, with purify, the cleaned file)."""
    names = output_names(relative_path)
    if names.report not in report_keys and names.clean_marker not in report_keys:
        return False
    return not purify or names.cleaned in cleaned_keys
