"""Cleaned copies of training files: every line kept byte for byte except the contaminated ones."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable

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
