"""Writing reference records as size-limited, gzip-compressed JSONL chunks.

Chunks of ``<base>.jsonl.gz`` are named ``<base>-1.jsonl.gz``, ``<base>-2.jsonl.gz``, ...  A new
chunk starts when the next line would push the current one past ``chunk_bytes`` of uncompressed
JSON.  Every chunk is written under a temporary name and renamed into place only when the whole
split has been written, so an interrupted run never leaves half a reference set behind.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from pathlib import Path
from typing import IO, Any

DEFAULT_CHUNK_BYTES = 5 * 1024 * 1024


class ChunkedGzipWriter:
    """Collects records for one (eval, split) and commits them as numbered chunks."""

    def __init__(self, output_dir: Path, base_name: str, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> None:
        self.output_dir = Path(output_dir)
        self.base_name = base_name
        self.chunk_bytes = chunk_bytes
        self.records = 0
        self._chunk_size = 0
        self._handle: IO[bytes] | None = None
        self._raw: IO[bytes] | None = None
        self._pending: list[tuple[Path, Path]] = []  # (temporary, final)

    def chunk_path(self, number: int) -> Path:
        return self.output_dir / f"{self.base_name}-{number}.jsonl.gz"

    def _open_chunk(self) -> None:
        self._close_chunk()
        final = self.chunk_path(len(self._pending) + 1)
        temp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        self._raw = open(temp, "wb")  # noqa: SIM115 - closed in _close_chunk
        # mtime=0 and no file name in the header: identical input gives identical bytes
        self._handle = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0)
        self._pending.append((temp, final))
        self._chunk_size = 0

    def _close_chunk(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self._raw is not None:
            self._raw.close()
            self._raw = None

    def write(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record) + "\n").encode("utf-8")
        if self._handle is None or self._chunk_size + len(line) > self.chunk_bytes:
            self._open_chunk()
        assert self._handle is not None
        self._handle.write(line)
        self._chunk_size += len(line)
        self.records += 1

    def commit(self) -> list[Path]:
        """Move the finished chunks into place, drop stale higher-numbered chunks of an earlier
        run, and return the chunk paths."""
        self._close_chunk()
        finals = []
        for temp, final in self._pending:
            os.replace(temp, final)
            finals.append(final)
        pattern = re.compile(rf"^{re.escape(self.base_name)}-(\d+)\.jsonl\.gz$")
        for path in self.output_dir.iterdir():
            found = pattern.match(path.name)
            if found and int(found.group(1)) > len(finals):
                path.unlink()
        self._pending = []
        return finals

    def abort(self) -> None:
        """Remove the temporary chunks."""
        self._close_chunk()
        for temp, _ in self._pending:
            temp.unlink(missing_ok=True)
        self._pending = []

    def __enter__(self) -> ChunkedGzipWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()
