"""What every detector shares: reading a training file's lines into batches of document texts.

A detector's scanner subclasses :class:`DocumentScanner` and implements ``scan_batch``; the file
loop, line parsing and skip counters live here, so SIMPLE and MinHash read files the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from decon.common.config import DetectionConfig
from decon.common.data_reader import DataFile

BATCH_LINES = 2048
BATCH_CHARS = 64 << 20


@dataclass
class FileResult:
    """What scanning one training file found."""

    path: str
    lines_total: int = 0
    lines_processed: int = 0
    contaminated_lines: list[int] = field(default_factory=list)  # sorted, 0-based
    entries: list[dict[str, Any]] = field(default_factory=list)  # report records, in report order
    skipped: dict[str, int] = field(default_factory=dict)  # invalid_json / missing_content_key / non_utf8 /
    #                                                         line_too_long
    long_lines: list[int] = field(default_factory=list)  # 0-based numbers of lines over max_line_bytes
    tokens: int = 0
    bytes_read: int = 0  # uncompressed bytes of the lines read


def training_file_label(path: str | os.PathLike[str]) -> str:
    """The ``training_file`` value upstream writes: .gz/.zst/.zstd lose their last suffix."""
    name = Path(path).name
    for suffix in (".gz", ".zst", ".zstd"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _get_content(doc: Any, key_path: list[str]) -> str | None:
    cur = doc
    for k in key_path:
        if not isinstance(cur, dict) or k not in cur:
            return None
        cur = cur[k]
    return cur if isinstance(cur, str) else None


class DocumentScanner:
    """Base of a detector's per-process scanner: parses lines, batches them, calls ``scan_batch``."""

    def __init__(self, config: DetectionConfig) -> None:
        self.config = config
        self.key_path = config.content_key.split(".")

    def scan_batch(self, batch: list[tuple[int, str]], res: FileResult, label: str) -> None:
        """Scan ``(line number, document text)`` pairs; append report records to ``res.entries``."""
        raise NotImplementedError

    def scan_file(self, source: str | os.PathLike[str] | DataFile, label: str | None = None) -> FileResult:
        """Scan a file (a path, or a :class:`DataFile` already open) line by line."""
        if not isinstance(source, DataFile):
            with DataFile(source) as data:
                return self.scan_file(data, label)
        res = FileResult(path=source.path)
        label = label or training_file_label(source.path)
        batch: list[tuple[int, str]] = []
        batch_chars = 0  # long lines fill a batch by size before they fill it by count
        for line_num, raw in enumerate(source.lines(self.config.max_line_bytes, self.config.content_key)):
            res.lines_total += 1
            if raw is not None:  # a line over max_line_bytes was never held, so its size is unknown
                res.bytes_read += len(raw)
            text = self.parse_line(raw, res, line_num)
            if text is None:
                continue
            batch.append((line_num, text))
            batch_chars += len(text)
            if len(batch) >= BATCH_LINES or batch_chars >= BATCH_CHARS:
                self.scan_batch(batch, res, label)
                batch, batch_chars = [], 0
        if batch:
            self.scan_batch(batch, res, label)
        res.contaminated_lines = sorted({e["training_line"] for e in res.entries})
        return res

    def parse_line(self, raw: bytes | str | None, res: FileResult, line_num: int) -> str | None:
        """The document text of one line, or None (counted in ``res.skipped``) when there is none;
        ``raw`` is None for a line longer than ``max_line_bytes``, and a ``str`` when it is the
        content already (a row of a Parquet or Arrow file)."""
        if isinstance(raw, str):
            return raw
        if raw is None:
            res.skipped["line_too_long"] = res.skipped.get("line_too_long", 0) + 1
            res.long_lines.append(line_num)
            return None
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                res.skipped["non_utf8"] = res.skipped.get("non_utf8", 0) + 1
                return None
            if raw.strip():
                res.skipped["invalid_json"] = res.skipped.get("invalid_json", 0) + 1
            return None
        text = _get_content(doc, self.key_path)
        if text is None:
            res.skipped["missing_content_key"] = res.skipped.get("missing_content_key", 0) + 1
        return text
