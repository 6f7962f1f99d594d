"""The engine's public surface, used by the CLI, the server and the benchmarks.

    index = build_index(config)                 # once, before forking workers
    result = scan_file(path, index, config)     # in any process that has `index`
    write_report(result.entries, dest)          # atomic; only when result.entries
    write_purified(path, dest, result.contaminated_lines)   # atomic, gzip, streaming

TEMPORARY PLACEHOLDER: the real SIMPLE engine replaces the bodies below with the same signatures.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from decon.common.config import DetectionConfig
from decon.common.file_io import atomic_output, find_data_files, iter_lines, iter_raw_lines
from decon.errors import DeconError


@dataclass
class FileResult:
    """What scanning one training file found."""

    path: str
    lines_total: int = 0
    contaminated_lines: list[int] = field(default_factory=list)  # sorted, 0-based
    entries: list[dict[str, Any]] = field(default_factory=list)  # report records, in report order
    skipped: dict[str, int] = field(default_factory=dict)  # invalid_json / missing_content_key / non_utf8
    tokens: int = 0


@dataclass
class ReferenceIndex:
    questions: list[tuple[str, dict[str, Any]]]


def build_index(config: DetectionConfig, *, progress: bool = True) -> ReferenceIndex:
    from decon.common.text import clean_text

    out = []
    for f in find_data_files(config.resolved_evals_dir()):
        for line in iter_lines(f):
            if not line or line.startswith(b"#"):
                continue
            rec = orjson.loads(line)
            q = clean_text(rec.get("question", ""), config.punctuation_chars)
            if len(q.split()) >= 4:
                out.append((q, rec))
    if not out:
        raise DeconError("No evaluation data was indexed")
    return ReferenceIndex(out)


def scan_file(path: str | os.PathLike[str], index: ReferenceIndex, config: DetectionConfig) -> FileResult:
    from decon.common.text import clean_text

    res = FileResult(path=str(path))
    for n, line in enumerate(iter_lines(path)):
        res.lines_total += 1
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            res.skipped["invalid_json"] = res.skipped.get("invalid_json", 0) + 1
            continue
        text = clean_text(str(doc.get(config.content_key, "")), config.punctuation_chars)
        for q, rec in index.questions:
            if q in text:
                res.contaminated_lines.append(n)
                res.entries.append({"training_file": Path(path).name, "training_line": n,
                                    "eval_key": rec.get("eval_key"), "contamination_score": 1.0})
                break
    return res


def write_report(entries: Iterable[dict[str, Any]], dest: str | os.PathLike[str]) -> None:
    with atomic_output(dest) as fh:
        for e in entries:
            fh.write(orjson.dumps(e) + b"\n")


def write_purified(src: str | os.PathLike[str], dest: str | os.PathLike[str],
                   contaminated_lines: Iterable[int]) -> None:
    drop = set(contaminated_lines)
    with atomic_output(dest) as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        for n, line in enumerate(iter_raw_lines(src)):
            if n not in drop:
                gz.write(line)
