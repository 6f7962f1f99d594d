"""Reading training and reference data safely: open once, decompress loudly, split into lines.

* :func:`open_checked` opens with ``O_NONBLOCK`` (a FIFO never blocks), then checks the open
  descriptor, not the name: it must be a regular file and, with allowed roots, its
  ``/proc/self/fd`` target must lie inside one. Every later read goes through that descriptor.
* :class:`DataFile` decompresses by suffix (.gz .zst .zstd .bz2 .xz); a truncated or corrupt stream
  of any format raises :class:`DataFileError` naming the file, never a silent early EOF.
* :class:`LineReader` splits lines in linear time and bounded memory; a line longer than
  ``max_line_bytes`` is never held whole and comes out as ``None``.
* Parquet and Arrow IPC files (:mod:`decon.common.columnar`) come out as one JSON line per row,
  holding only the content column, through the same :meth:`DataFile.lines`.
"""

from __future__ import annotations

import bz2
import errno
import gzip
import io
import lzma
import os
import stat
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from decon.common.columnar import ColumnarError, ColumnarLines, RowLines, is_columnar
from decon.common.file_io import compression_of
from decon.common.zstd_frames import FrameCheckedSource, ZstdFormatError
from decon.errors import DeconError

DEFAULT_MAX_LINE_BYTES = 64 << 20
_CHUNK = 1 << 20
_FORMAT_NAMES = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd", ".bz2": "bzip2", ".xz": "xz"}
_READ_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, zstandard.ZstdError, ZstdFormatError)
_OS_REASONS = {
    errno.ENOENT: "does not exist",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOTDIR: "a parent of it is not a directory",
    errno.ELOOP: "too many levels of symbolic links",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EISDIR: "is a directory",
    errno.ENAMETOOLONG: "file name too long",
}


class DataFileError(DeconError):
    """A data file cannot be read: missing, unreadable, not a regular file, truncated or corrupt."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason


def describe_os_error(exc: OSError) -> str:
    """A short reason for ``exc`` that tells "permission denied" from "does not exist"."""
    return _OS_REASONS.get(exc.errno or -1, exc.strerror or str(exc))


def is_within(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def open_checked(path: str | os.PathLike[str], allowed_roots: Sequence[Path] = ()) -> BinaryIO:
    """Open ``path`` for reading without ever blocking; require a regular file (and, with
    ``allowed_roots``, one that the open descriptor shows to be inside a root)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise DataFileError(path, describe_os_error(exc)) from None
    try:
        if allowed_roots:
            target = Path(os.readlink(f"/proc/self/fd/{fd}"))
            if not is_within(target, allowed_roots):
                raise DataFileError(path, "outside the allowed roots")
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DataFileError(path, "not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


class _CheckedStream(io.RawIOBase):
    """A decompressing reader whose every failure is a :class:`DataFileError` naming the file."""

    def __init__(self, inner: Any, raw: BinaryIO, path: str, compression: str, close_raw: bool) -> None:
        self._inner, self._raw, self._path = inner, raw, path
        self._format = _FORMAT_NAMES.get(compression, "")
        self._close_raw = close_raw

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            return self._inner.read(size)
        except _READ_ERRORS as exc:
            raise DataFileError(self._path, self._reason(exc)) from None

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _reason(self, exc: BaseException) -> str:
        if isinstance(exc, OSError) and exc.errno:
            return describe_os_error(exc)
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if isinstance(exc, EOFError):
            return f"truncated {self._format} stream ({detail})"
        return f"corrupt {self._format} data ({detail})" if self._format else detail

    def close(self) -> None:
        if not self.closed:
            try:
                if self._inner is not self._raw:  # plain files are read from ``raw`` itself
                    self._inner.close()
            finally:
                if self._close_raw:
                    self._raw.close()
        super().close()


def _decompressor(raw: BinaryIO, compression: str) -> Any:
    if compression == ".gz":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if compression in (".zst", ".zstd"):
        return zstandard.ZstdDecompressor().stream_reader(
            FrameCheckedSource(raw), read_size=_CHUNK, closefd=False, read_across_frames=True)
    if compression == ".bz2":
        return bz2.BZ2File(raw, mode="rb")
    if compression == ".xz":
        return lzma.LZMAFile(raw, mode="rb")
    return raw


def checked_stream(raw: BinaryIO, path: str | os.PathLike[str], *, close_raw: bool) -> _CheckedStream:
    """Decompress ``raw`` (by the suffix of ``path``) through a stream that fails loudly."""
    comp = compression_of(path)
    return _CheckedStream(_decompressor(raw, comp), raw, os.fspath(path), comp, close_raw)


def open_binary(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a data file for reading, decompressed, with the checks of :func:`open_checked`."""
    return io.BufferedReader(checked_stream(open_checked(path), path, close_raw=True), _CHUNK)  # type: ignore[return-value]


class LineReader:
    """The lines of a decompressed stream without their ``\\n``; ``None`` for a line longer than
    ``max_line_bytes``. Before the last line is yielded without a ``\\n`` (the file did not end with
    one), ``unterminated`` turns True, so a copy can reproduce the file byte for byte."""

    def __init__(self, stream: _CheckedStream, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._stream = stream
        self.max_line_bytes = max_line_bytes
        self.unterminated = False

    def __iter__(self) -> Iterator[bytes | None]:
        with self._stream as stream:
            yield from self._split(stream.read)

    def _split(self, read: Any) -> Iterator[bytes | None]:
        limit = self.max_line_bytes
        parts: list[bytes] = []  # pieces of the unfinished line (empty once it is too long)
        size, over = 0, False
        while chunk := read(_CHUNK):
            first = chunk.find(b"\n")
            if first < 0:  # the whole chunk continues the current line
                if not over:
                    size += len(chunk)
                    over = size > limit
                    parts = [] if over else parts + [chunk]
                continue
            if over or size + first > limit:
                yield None
            else:
                yield b"".join(parts) + chunk[:first] if parts else chunk[:first]
            lines = chunk[first + 1:].split(b"\n")
            tail = lines.pop()
            if limit < _CHUNK:
                for line in lines:
                    yield None if len(line) > limit else line
            else:
                yield from lines
            size, over = len(tail), len(tail) > limit
            parts = [tail] if tail and not over else []
        if over or parts:
            self.unterminated = True
            yield None if over else b"".join(parts)


class _ColumnarReader:
    """A columnar file's rows as lines (as :class:`LineReader`), failures as DataFileError."""

    unterminated = False

    def __init__(self, rows: ColumnarLines, path: str) -> None:
        self._rows, self._path = rows, path

    def __iter__(self) -> Iterator[bytes | None]:
        try:
            yield from self._rows
        except ColumnarError as exc:
            raise DataFileError(self._path, str(exc)) from None


class DataFile:
    """One data file, opened once (:func:`open_checked`); :meth:`lines` may be called repeatedly and
    reads from the start each time, always through the same descriptor."""

    def __init__(self, path: str | os.PathLike[str], *, allowed_roots: Sequence[Path] = ()) -> None:
        self.path = os.fspath(path)
        self._raw = open_checked(path, allowed_roots)

    @property
    def columnar(self) -> bool:
        """A Parquet or Arrow IPC file (rows, not lines)."""
        return is_columnar(self.path)

    @property
    def raw(self) -> BinaryIO:
        """The checked descriptor (for readers that need the file itself, such as pyarrow)."""
        return self._raw

    def lines(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
              content_key: str = "text") -> LineReader | _ColumnarReader:
        """The file's lines; for a columnar file, one JSON line per row holding ``content_key``."""
        self._raw.seek(0)
        if self.columnar:
            return _ColumnarReader(ColumnarLines(self._raw, self.path, content_key, max_line_bytes), self.path)
        return LineReader(checked_stream(self._raw, self.path, close_raw=False), max_line_bytes)

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> DataFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_lines(path: str | os.PathLike[str], max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[bytes | None]:
    """The lines of one data file (see :class:`LineReader`), the file opened and closed here."""
    with DataFile(path) as data:
        yield from data.lines(max_line_bytes)


def iter_record_lines(path: str | os.PathLike[str], max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
                      ) -> Iterator[bytes | None]:
    """:func:`iter_lines` of a JSONL file; of a Parquet or Arrow file (a reference set), each whole
    row as one JSON line."""
    if not is_columnar(path):
        yield from iter_lines(path, max_line_bytes)
        return
    with DataFile(path) as data:
        yield from _ColumnarReader(RowLines(data.raw, data.path, max_line_bytes), data.path)  # type: ignore[arg-type]
