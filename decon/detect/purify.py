"""Cleaned copies of training files: every line kept byte for byte except the contaminated ones
(and lines longer than ``max_line_bytes``, which were never scanned)."""

from __future__ import annotations

import gzip
import os
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from decon.common.columnar import is_columnar
from decon.common.data_reader import DEFAULT_MAX_LINE_BYTES, DataFile
from decon.common.file_io import atomic_output

_NL = b"\n"


def _kept_pieces(src: str | os.PathLike[str] | DataFile, drop: set[int], max_line_bytes: int,
                 piece_bytes: int, counts: list[int]) -> Iterator[bytes]:
    """The kept lines of ``src`` (with their line endings) joined into pieces of about
    ``piece_bytes``; ``counts`` becomes [lines kept, lines removed]. The last piece may be empty."""
    if not isinstance(src, DataFile):
        with DataFile(src) as data:
            yield from _kept_pieces(data, drop, max_line_bytes, piece_bytes, counts)
        return
    reader = src.lines(max_line_bytes)
    buf: list[bytes] = []
    size = 0
    for n, line in enumerate(reader):
        if line is None or n in drop:
            counts[1] += 1
            continue
        counts[0] += 1
        buf.append(line)
        if not reader.unterminated:
            buf.append(_NL)
        size += len(line) + 1
        if size >= piece_bytes:
            yield b"".join(buf)
            buf, size = [], 0
    yield b"".join(buf)


def write_purified(src: str | os.PathLike[str] | DataFile, dest: str | os.PathLike[str],
                   contaminated_lines: Iterable[int], max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
                   content_key: str = "text") -> tuple[int, int]:
    """Stream ``src`` (a path or an open :class:`DataFile`, any supported compression) to gzip
    ``dest`` without the given 0-based lines and without lines over ``max_line_bytes``.

    Constant memory; written under a temporary name and renamed. Returns (lines kept, lines removed).
    A Parquet or Arrow IPC ``src`` is written in its own format instead (rows for lines; its
    ``content_key`` tells which rows were too long to scan): see :mod:`decon.detect.purify_columnar`.
    """
    if not isinstance(src, DataFile) and is_columnar(src):
        with DataFile(src) as data:
            return write_purified(data, dest, contaminated_lines, max_line_bytes, content_key)
    if isinstance(src, DataFile) and src.columnar:
        from decon.detect.purify_columnar import write_purified_columnar

        return write_purified_columnar(src.raw, src.path, dest, contaminated_lines, content_key, max_line_bytes)
    counts = [0, 0]
    with atomic_output(dest) as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz:
        for piece in _kept_pieces(src, set(contaminated_lines), max_line_bytes, 1 << 20, counts):
            if piece:
                gz.write(piece)
    return counts[0], counts[1]


PARALLEL_CHUNK_BYTES = 8 << 20


def _gzip_member(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def write_purified_parallel(src: str | os.PathLike[str], dest: str | os.PathLike[str],
                            contaminated_lines: Iterable[int], pool: Any, workers: int,
                            max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> tuple[int, int]:
    """As :func:`write_purified`, compressing ~8 MB pieces in ``pool`` as consecutive gzip members.

    The result is one valid gzip file (multi-member, as pigz writes) whose decompressed bytes are
    exactly those of the single-stream version; memory stays bounded by a few pieces per worker.
    """
    counts = [0, 0]
    sem = threading.Semaphore(max(2, workers * 3))

    def pieces() -> Iterator[bytes]:
        for piece in _kept_pieces(src, set(contaminated_lines), max_line_bytes, PARALLEL_CHUNK_BYTES, counts):
            sem.acquire()
            yield piece

    with atomic_output(dest) as out:
        for member in pool.imap(_gzip_member, pieces(), chunksize=1):
            sem.release()
            out.write(member)
    return counts[0], counts[1]
