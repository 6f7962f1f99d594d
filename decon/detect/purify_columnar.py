"""Cleaned copies of Parquet and Arrow IPC training files: the same format, schema and row-group
size, minus the contaminated rows (and rows whose content was over ``max_line_bytes``, which were
never scanned). Row groups are read one at a time; written under a temporary name and renamed."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, BinaryIO

import numpy as np

from decon.common.columnar import ColumnarError, ColumnarLines, is_parquet, open_ipc, require_pyarrow
from decon.common.data_reader import DEFAULT_MAX_LINE_BYTES, DataFileError
from decon.common.file_io import atomic_output


def _unscanned_rows(raw: BinaryIO, path: str, content_key: str, max_line_bytes: int) -> set[int]:
    """Rows the scan skipped as too long (their line came out as None)."""
    lines = ColumnarLines(raw, path, content_key, max_line_bytes)
    return {n for n, line in enumerate(lines) if line is None}


def _keep_mask(pa: Any, start: int, rows: int, drop: np.ndarray) -> Any:
    """The keep mask of rows ``start .. start + rows`` (None: keep them all); ``drop`` is sorted."""
    lo, hi = np.searchsorted(drop, [start, start + rows])
    if lo == hi:
        return None
    mask = np.ones(rows, dtype=bool)
    mask[drop[lo:hi] - start] = False
    return pa.array(mask)


def write_purified_columnar(raw: BinaryIO, path: str, dest: str | os.PathLike[str],
                            contaminated_rows: Iterable[int], content_key: str,
                            max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> tuple[int, int]:
    """Write ``path`` (open as ``raw``) to ``dest`` in its own format without the given 0-based
    rows. Returns (rows kept, rows removed)."""
    pa = require_pyarrow("parquet" if is_parquet(path) else "ipc")
    try:
        dropped = set(contaminated_rows) | _unscanned_rows(raw, path, content_key, max_line_bytes)
        drop = np.array(sorted(dropped), dtype=np.int64)
        raw.seek(0)
        if is_parquet(path):
            return _purify_parquet(pa, raw, dest, drop)
        return _purify_ipc(pa, raw, dest, drop)
    except ColumnarError as exc:
        raise DataFileError(path, str(exc)) from None
    except (pa.ArrowException, ValueError) as exc:
        raise DataFileError(path, f"cannot write its cleaned copy: {exc}") from None


def _purify_parquet(pa: Any, raw: BinaryIO, dest: str | os.PathLike[str], drop: np.ndarray) -> tuple[int, int]:
    source = pa.parquet.ParquetFile(raw)
    meta = source.metadata
    group_rows = max((meta.row_group(i).num_rows for i in range(meta.num_row_groups)), default=0) or None
    codec = meta.row_group(0).column(0).compression.lower() if meta.num_row_groups and meta.num_columns else "none"
    kept = removed = 0
    pending: list[Any] = []
    pending_rows = 0
    with atomic_output(dest) as out:
        writer = pa.parquet.ParquetWriter(out, source.schema_arrow, compression=codec)
        try:
            start = 0
            for i in range(meta.num_row_groups):
                table = source.read_row_group(i, use_threads=False)
                mask = _keep_mask(pa, start, table.num_rows, drop)
                start += table.num_rows
                if mask is not None:
                    table = table.filter(mask)
                removed += (start - kept - removed) - table.num_rows
                kept += table.num_rows
                pending.append(table)
                pending_rows += table.num_rows
                # the copy keeps the source's row-group size: full groups out as soon as they fill
                while group_rows and pending_rows >= group_rows:
                    merged = pa.concat_tables(pending)
                    writer.write_table(merged.slice(0, group_rows), row_group_size=group_rows)
                    rest = merged.slice(group_rows)
                    pending, pending_rows = [rest], rest.num_rows
            if pending_rows:
                writer.write_table(pa.concat_tables(pending), row_group_size=group_rows)
        finally:
            writer.close()
    return kept, removed


def _purify_ipc(pa: Any, raw: BinaryIO, dest: str | os.PathLike[str], drop: np.ndarray) -> tuple[int, int]:
    reader, batches, streamed = open_ipc(pa, raw)
    new_writer = pa.ipc.new_stream if streamed else pa.ipc.new_file
    kept = removed = start = 0
    with atomic_output(dest) as out, new_writer(out, reader.schema) as writer:
        for batch in batches:
            mask = _keep_mask(pa, start, batch.num_rows, drop)
            start += batch.num_rows
            if mask is not None:
                batch = batch.filter(mask)
            kept += batch.num_rows
            writer.write_batch(batch)
        removed = start - kept
    return kept, removed
