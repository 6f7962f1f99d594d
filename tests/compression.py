"""Helper (no tests): bytes compressed as a data file's name says (.gz, .zst/.zstd, .bz2, .xz, else plain)."""

from __future__ import annotations

import bz2
import gzip
import lzma

import zstandard


def compress_for(name: str, raw: bytes) -> bytes:
    if name.endswith(".gz"):
        return gzip.compress(raw)
    if name.endswith((".zst", ".zstd")):
        return zstandard.ZstdCompressor().compress(raw)
    if name.endswith(".bz2"):
        return bz2.compress(raw)
    if name.endswith(".xz"):
        return lzma.compress(raw)
    return raw
