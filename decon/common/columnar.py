"""Parquet and Arrow IPC training files: the content column, read in bounded batches.

Only the content column is read (a dotted ``content_key`` such as ``meta.text`` reaches into a
struct column), ``BATCH_ROWS`` rows at a time, so a 5 GB shard never sits in memory whole. Each
row becomes one "line" of the stream the rest of decon reads: the document text itself, as a
``str`` (a JSONL line is ``bytes`` to parse; a ``str`` is content already, so no JSON is written or
parsed), and the report numbering (``training_line`` is the row index) and the skip counters work
as for JSONL. A null or empty value comes out as the empty JSON object ``b"{}"``, which counts as
a row without content (``missing_content_key``).

The file is read through the descriptor :func:`decon.common.data_reader.open_checked` opened
and checked. pyarrow is an optional extra: without it a Parquet file is a one-line error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from decon.common.file_io import COLUMNAR_EXTENSIONS
from decon.errors import DeconError

PARQUET_SUFFIXES = (".parquet",)
COLUMNAR_SUFFIXES = COLUMNAR_EXTENSIONS  # Parquet, then the Arrow IPC names
BATCH_ROWS = 2048
NO_CONTENT = b"{}"  # the line of a row whose content is null or empty
INSTALL_HINT = "pip install 'decon[parquet]'"


class ColumnarError(Exception):
    """A columnar file cannot be read (the reason; the caller names the file)."""


def is_columnar(path: str | os.PathLike[str]) -> bool:
    return str(path).endswith(COLUMNAR_SUFFIXES)


def is_parquet(path: str | os.PathLike[str]) -> bool:
    return str(path).endswith(PARQUET_SUFFIXES)


def require_pyarrow(*parts: str) -> Any:
    """The pyarrow module with its ``parts`` loaded (``"parquet"``, ``"ipc"``, ``"compute"``; only
    what a file needs, as each costs start-up time), or a one-line DeconError naming the extra."""
    try:
        import importlib

        import pyarrow

        for part in parts:
            importlib.import_module(f"pyarrow.{part}")
    except ImportError:
        raise DeconError(f"reading Parquet and Arrow files needs pyarrow, an optional extra: {INSTALL_HINT}") from None
    return pyarrow


def _arrow_error_types() -> tuple[type[BaseException], ...]:
    pa = require_pyarrow()
    return (pa.ArrowException, OSError, ValueError)


class ColumnarLines:
    """The rows of a Parquet or Arrow IPC file as their content (see the module doc); ``None`` for
    a row whose text is longer than ``max_line_bytes`` (in UTF-8)."""

    unterminated = False  # the LineReader interface: a columnar file has no final newline to keep

    def __init__(self, raw: BinaryIO, path: str, content_key: str, max_line_bytes: int) -> None:
        self._raw = raw
        self._path = path
        self._keys = content_key.split(".")
        self.content_key = content_key
        self.max_line_bytes = max_line_bytes

    def __iter__(self) -> Iterator[bytes | str | None]:
        errors = _arrow_error_types()
        try:
            for values in self._columns():
                yield from self._lines(values)
        except ColumnarError:
            raise
        except errors as exc:
            raise ColumnarError(_describe(exc, self._path)) from None

    # ---- reading ----------------------------------------------------------------------------------
    def _columns(self) -> Iterator[list[Any]]:
        pa = require_pyarrow("parquet" if is_parquet(self._path) else "ipc", *(["compute"] if len(self._keys) > 1 else []))
        self._raw.seek(0)
        if is_parquet(self._path):
            source = pa.parquet.ParquetFile(self._raw)
            self._check_schema(source.schema_arrow)
            for batch in source.iter_batches(batch_size=BATCH_ROWS, columns=[self.content_key],
                                             use_threads=False):
                yield self._values(batch, pa)
            return
        reader, batches, _streamed = open_ipc(pa, self._raw)
        self._check_schema(reader.schema)
        for batch in batches:
            for start in range(0, batch.num_rows, BATCH_ROWS):
                yield self._values(batch.slice(start, BATCH_ROWS), pa)

    def _check_schema(self, schema: Any) -> None:
        """The content key must name a string column (or a string field of struct columns)."""
        pa = require_pyarrow()
        fields, kind = list(schema), None
        for depth, key in enumerate(self._keys):
            names = [f.name for f in fields]
            if key not in names:
                where = ".".join(self._keys[:depth]) or "the file"
                shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
                raise ColumnarError(f"no column {self.content_key!r} ({where} has: {shown}); "
                                    "set --content-key")
            kind = fields[names.index(key)].type
            if depth < len(self._keys) - 1:
                if not pa.types.is_struct(kind):
                    raise ColumnarError(f"column {'.'.join(self._keys[:depth + 1])!r} is "
                                        f"{kind}, not a struct, so {self.content_key!r} cannot be read")
                fields = list(kind)
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)):
            raise ColumnarError(f"column {self.content_key!r} is {kind}, not text")

    def _values(self, batch: Any, pa: Any) -> list[Any]:
        column = batch.column(0) if is_parquet(self._path) else batch.column(self._keys[0])
        for key in self._keys[1:]:
            column = pa.compute.struct_field(column, key)
        return column.to_pylist()

    # ---- lines ------------------------------------------------------------------------------------
    def _lines(self, values: list[Any]) -> Iterator[bytes | str | None]:
        limit = self.max_line_bytes
        for value in values:
            if not value:  # null and "" alike: a row without content
                yield NO_CONTENT
            elif len(value) > limit or (4 * len(value) > limit and len(value.encode("utf-8")) > limit):
                yield None
            else:
                yield value


class RowLines:
    """Every row of a Parquet or Arrow IPC file, all its columns, as one JSON line (for reference
    sets, whose records are small); ``None`` for a row over ``max_line_bytes``."""

    unterminated = False

    def __init__(self, raw: BinaryIO, path: str, max_line_bytes: int) -> None:
        self._raw, self._path, self.max_line_bytes = raw, path, max_line_bytes

    def __iter__(self) -> Iterator[bytes | None]:
        pa = require_pyarrow("parquet" if is_parquet(self._path) else "ipc")
        errors = _arrow_error_types()
        self._raw.seek(0)
        try:
            if is_parquet(self._path):
                source = pa.parquet.ParquetFile(self._raw)
                batches = source.iter_batches(batch_size=BATCH_ROWS, use_threads=False)
            else:
                batches = open_ipc(pa, self._raw)[1]
            for batch in batches:
                for row in batch.to_pylist():
                    line = orjson.dumps(row, default=str)
                    yield None if len(line) > self.max_line_bytes else line
        except errors as exc:
            raise ColumnarError(_describe(exc, self._path)) from None


def open_ipc(pa: Any, raw: BinaryIO) -> tuple[Any, Iterator[Any], bool]:
    """An Arrow IPC reader of ``raw`` (the file format, else the streaming format), its record
    batches, and whether it is the streaming format."""
    try:
        reader = pa.ipc.open_file(raw)
        return reader, (reader.get_batch(i) for i in range(reader.num_record_batches)), False
    except pa.ArrowInvalid:
        raw.seek(0)
        reader = pa.ipc.open_stream(raw)
        return reader, iter(reader), True


def _describe(exc: BaseException, path: str) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    kind = "Parquet" if is_parquet(path) else "Arrow IPC"
    return f"corrupt or truncated {kind} file ({text})"
