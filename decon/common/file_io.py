"""Reading (possibly compressed) JSONL data, finding data files, writing outputs atomically."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import zstandard

#: Compression suffixes we read, and the data suffixes they may follow.
COMPRESSION_SUFFIXES = (".gz", ".zst", ".zstd", ".bz2", ".xz")
DATA_SUFFIXES = (".json", ".jsonl")
SUPPORTED_EXTENSIONS = tuple(
    d + c for d in DATA_SUFFIXES for c in ("",) + COMPRESSION_SUFFIXES
)

_CHUNK = 1 << 20


def is_data_file(name: str | os.PathLike[str]) -> bool:
    """True for .json/.jsonl files, plain or compressed."""
    return str(name).endswith(SUPPORTED_EXTENSIONS)


def has_data_files(root: Path) -> bool:
    for _dirpath, _dirs, files in os.walk(root):
        if any(is_data_file(f) for f in files):
            return True
    return False


def find_data_files(root: str | os.PathLike[str]) -> list[Path]:
    """Data files under ``root`` (recursively, sorted by path); ``root`` may be a single file."""
    p = Path(root)
    if p.is_file():
        return [p]
    found: list[Path] = []
    for dirpath, dirs, files in os.walk(p):
        dirs.sort()
        found.extend(Path(dirpath) / f for f in files if is_data_file(f))
    return sorted(found)


def compression_of(path: str | os.PathLike[str]) -> str:
    name = str(path)
    for suffix in COMPRESSION_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return ""


def open_binary(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a file for reading, decompressing by suffix (.gz .zst .zstd .bz2 .xz)."""
    comp = compression_of(path)
    raw = open(path, "rb")  # noqa: SIM115 - returned to the caller
    if comp == ".gz":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if comp in (".zst", ".zstd"):
        dctx = zstandard.ZstdDecompressor()
        return dctx.stream_reader(raw, closefd=True, read_across_frames=True)  # type: ignore[return-value]
    if comp == ".bz2":
        return bz2.BZ2File(raw, mode="rb")  # type: ignore[return-value]
    if comp == ".xz":
        return lzma.LZMAFile(raw, mode="rb")  # type: ignore[return-value]
    return raw


def iter_raw_lines(path: str | os.PathLike[str]) -> Iterator[bytes]:
    """Yield the lines of a (possibly compressed) file as raw bytes, each with its line ending."""
    with open_binary(path) as fh:
        pending = b""
        while True:
            chunk = fh.read(_CHUNK)
            if not chunk:
                break
            if pending:
                chunk = pending + chunk
            lines = chunk.split(b"\n")
            pending = lines.pop()
            for line in lines:
                yield line + b"\n"
        if pending:
            yield pending


def iter_lines(path: str | os.PathLike[str]) -> Iterator[bytes]:
    """Yield lines without their ending (\\n or \\r\\n), as Rust's BufRead::lines does."""
    for line in iter_raw_lines(path):
        if line.endswith(b"\n"):
            line = line[:-1]
            if line.endswith(b"\r"):
                line = line[:-1]
        yield line


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(dest: str | os.PathLike[str], mode: str = "wb") -> Iterator[BinaryIO]:
    """Write to a temporary name beside ``dest`` and rename it into place only on success."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh  # type: ignore[misc]
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
