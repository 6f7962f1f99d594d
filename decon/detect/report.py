"""Report files: one JSONL per contaminated training file, named as upstream names them."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

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


def report_names(files: Sequence[Path], base: Path, threshold: float, mode: str = "simple") -> dict[Path, str]:
    """Report file name (relative to the report dir) for each training file.

    Upstream's ``{stem}-{mode}-{threshold:.2f}.jsonl`` is kept where it is unique; where two inputs
    would share it (names differing only by compression or by .json/.jsonl), each uses its full
    file name instead of the stem.
    """
    suffix = f"-{mode}-{threshold:.2f}.jsonl"
    first: dict[Path, str] = {}
    for f in files:
        rel = _relative(f, base)
        first[f] = str(rel.parent / (rel.stem + suffix)) if rel.parent != Path(".") else rel.stem + suffix
    counts: dict[str, int] = {}
    for name in first.values():
        counts[name] = counts.get(name, 0) + 1
    out: dict[Path, str] = {}
    for f, name in first.items():
        if counts[name] > 1:
            rel = _relative(f, base)
            full = rel.name + suffix
            name = str(rel.parent / full) if rel.parent != Path(".") else full
        out[f] = name
    return out


def purified_names(files: Sequence[Path], base: Path) -> dict[Path, str]:
    """Cleaned file name for each training file: upstream's ``{base}.jsonl.gz``, made unique."""
    def base_name(rel: Path) -> str:
        name = rel.name
        pos = name.find(".jsonl")
        return name[:pos] if pos >= 0 else rel.stem

    first: dict[Path, str] = {}
    for f in files:
        rel = _relative(f, base)
        name = base_name(rel) + ".jsonl.gz"
        first[f] = str(rel.parent / name) if rel.parent != Path(".") else name
    counts: dict[str, int] = {}
    for name in first.values():
        counts[name] = counts.get(name, 0) + 1
    out: dict[Path, str] = {}
    for f, name in first.items():
        if counts[name] > 1:
            rel = _relative(f, base)
            name = rel.name.replace(".", "_") + ".jsonl.gz"
            name = str(rel.parent / name) if rel.parent != Path(".") else name
        out[f] = name
    return out
