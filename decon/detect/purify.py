"""Cleaned copies of training files: every line kept byte for byte except the contaminated ones."""

from __future__ import annotations

import gzip
import os
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from decon.common.file_io import atomic_output, iter_raw_lines


def write_purified(src: str | os.PathLike[str], dest: str | os.PathLike[str],
                   contaminated_lines: Iterable[int]) -> tuple[int, int]:
    """Stream ``src`` (any supported compression) to gzip ``dest`` without the given 0-based lines.

    Constant memory; written under a temporary name and renamed. Returns (lines kept, lines removed).
    """
    drop = set(contaminated_lines)
    kept = removed = 0
    with atomic_output(dest) as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz:
        buf: list[bytes] = []
        size = 0
        for n, line in enumerate(iter_raw_lines(src)):
            if n in drop:
                removed += 1
                continue
            kept += 1
            buf.append(line)
            size += len(line)
            if size >= 1 << 20:
                gz.write(b"".join(buf))
                buf, size = [], 0
        if buf:
            gz.write(b"".join(buf))
    return kept, removed


PARALLEL_CHUNK_BYTES = 8 << 20


def _gzip_member(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def write_purified_parallel(src: str | os.PathLike[str], dest: str | os.PathLike[str],
                            contaminated_lines: Iterable[int], pool: Any, workers: int) -> tuple[int, int]:
    """As :func:`write_purified`, compressing ~8 MB pieces in ``pool`` as consecutive gzip members.

    The result is one valid gzip file (multi-member, as pigz writes) whose decompressed bytes are
    exactly those of the single-stream version; memory stays bounded by a few pieces per worker.
    """
    drop = set(contaminated_lines)
    counts = [0, 0]
    sem = threading.Semaphore(max(2, workers * 3))

    def pieces() -> Iterator[bytes]:
        buf: list[bytes] = []
        size = 0
        for n, line in enumerate(iter_raw_lines(src)):
            if n in drop:
                counts[1] += 1
                continue
            counts[0] += 1
            buf.append(line)
            size += len(line)
            if size >= PARALLEL_CHUNK_BYTES:
                sem.acquire()
                yield b"".join(buf)
                buf, size = [], 0
        sem.acquire()
        yield b"".join(buf)

    with atomic_output(dest) as out:
        for member in pool.imap(_gzip_member, pieces(), chunksize=1):
            sem.release()
            out.write(member)
    return counts[0], counts[1]
