"""Report files: one JSONL per contaminated training file, named as upstream names them."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from decon.common.columnar import is_columnar
from decon.common.file_io import atomic_output

_OPTS = orjson.OPT_SORT_KEYS


def render_entry(entry: dict[str, Any]) -> bytes:
    """One report line (sorted keys, compact, floats as float32 values widened to float64)."""
    return orjson.dumps(entry, option=_OPTS) + b"\n"


def write_report(entries: Iterable[dict[str, Any]], dest: str | os.PathLike[str]) -> None:
    """Write report records to ``dest`` atomically."""
    with atomic_output(dest) as fh:
        for e in entries:
            fh.write(render_entry(e))


def write_report_lines(lines: Iterable[bytes], dest: str | os.PathLike[str]) -> None:
    with atomic_output(dest) as fh:
        for line in lines:
            fh.write(line)


def _relative(path: Path, base: Path) -> Path:
    try:
        return path.relative_to(base)
    except ValueError:
        return Path(path.name)


def _unique_names(files: Sequence[Path], base: Path, primary, fallback) -> dict[Path, str]:  # noqa: ANN001
    """Output name per file, relative to the output dir and keeping the input's sub-folders:
    ``primary(rel)`` where that is unique among the inputs, ``fallback(rel)`` where it is not."""
    def place(rel: Path, name: str) -> str:
        return str(rel.parent / name) if rel.parent != Path(".") else name

    rels = {f: _relative(f, base) for f in files}
    first = {f: place(rel, primary(rel)) for f, rel in rels.items()}
    counts: dict[str, int] = {}
    for name in first.values():
        counts[name] = counts.get(name, 0) + 1
    return {f: name if counts[name] == 1 else place(rels[f], fallback(rels[f])) for f, name in first.items()}


def report_names(files: Sequence[Path], base: Path, threshold: float, mode: str = "simple") -> dict[Path, str]:
    """Report file name for each training file.

    Upstream's ``{stem}-{mode}-{threshold:.2f}.jsonl`` is kept where it is unique; where two inputs
    would share it (names differing only by compression or by .json/.jsonl), each uses its full
    file name instead of the stem.
    """
    suffix = f"-{mode}-{threshold:.2f}.jsonl"
    return _unique_names(files, base, lambda rel: rel.stem + suffix, lambda rel: rel.name + suffix)


def purified_names(files: Sequence[Path], base: Path) -> dict[Path, str]:
    """Cleaned file name for each training file: upstream's ``{base}.jsonl.gz``, made unique.

    Where inputs share a base (``x.jsonl``, ``x.jsonl.gz``, ``x.jsonl.bz2``), the plain ``.jsonl``
    keeps ``x.jsonl.gz`` and the others carry their compression: ``x.gz.jsonl.gz``, ``x.bz2.jsonl.gz``.
    A Parquet or Arrow IPC file's cleaned copy is in its own format, under its own name.
    """
    def primary(rel: Path) -> str:
        if is_columnar(rel):
            return rel.name
        pos = rel.name.find(".jsonl")
        return (rel.name[:pos] if pos >= 0 else rel.stem) + ".jsonl.gz"

    def fallback(rel: Path) -> str:
        if is_columnar(rel):
            return rel.name
        pos = rel.name.find(".jsonl")
        if pos < 0:
            return rel.name + ".jsonl.gz"
        return rel.name[:pos] + rel.name[pos + len(".jsonl"):] + ".jsonl.gz"

    return _unique_names(files, base, primary, fallback)
