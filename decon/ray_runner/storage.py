"""Where `decon ray` reads inputs and writes outputs: a local folder or an ``s3://`` prefix.

Both kinds keep the input's folder layout below the root. Outputs are published atomically:

- local: the engine's writers write a temporary name beside the final one and rename it;
- S3: the file is uploaded to ``<prefix>.decon-tmp/<run id>/<key>``, copied to its final key, and the
  temporary key deleted. Temporary keys left by a node that died are removed by the driver
  (:meth:`S3Store.remove_temporary`) at the start and end of every run.

A store is built from a :class:`StoreSpec` (URI + S3 endpoint), which is what crosses process and
node boundaries; boto3 clients are made where they are used.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from decon.cloud.naming import is_input_name
from decon.cloud.s3listing import (
    InputFile,
    S3Location,
    list_inputs,
    list_relative_keys,
    make_client,
    parse_folder_uri,
)

S3_TMP_DIR = ".decon-tmp/"
# atomic_output's temporary names: ".<final name>.<random>.tmp"
_LOCAL_TMP = re.compile(r"^\..+\.(report\.jsonl|clean|clean\.jsonl\.gz|clean\.(?:parquet|arrow|feather|ipc))\.[^.]+\.tmp$")


@dataclass(frozen=True)
class StoreSpec:
    """A folder URI (local path or ``s3://bucket/prefix``) and the S3 endpoint to reach it."""

    uri: str
    endpoint_url: str | None = None

    @property
    def is_s3(self) -> bool:
        return self.uri.startswith("s3://")


def normalize_uri(uri: str) -> str:
    """``s3://b/p`` -> ``s3://b/p/``; a local path -> its absolute path. Raises ValueError if malformed."""
    if uri.startswith("s3://"):
        return parse_folder_uri(uri).uri
    if "://" in uri:
        raise ValueError(f"unsupported URI (use a local path or s3://bucket/prefix): {uri}")
    return os.path.abspath(os.path.expanduser(uri))


def relative_prefix(inner: str, outer: str) -> str | None:
    """``inner``'s path below ``outer`` (both normalized) with a trailing slash, or None if outside."""
    outer_dir = outer if outer.endswith("/") else outer + "/"
    inner_dir = inner if inner.endswith("/") else inner + "/"
    return inner_dir[len(outer_dir):] if inner_dir.startswith(outer_dir) and inner_dir != outer_dir else None


def open_store(spec: StoreSpec, scratch: Path | None = None) -> LocalStore | S3Store:
    """The store for ``spec``; an S3 store stages outputs in ``scratch`` [default: the temp folder]."""
    return S3Store(spec, scratch) if spec.is_s3 else LocalStore(spec)


class LocalStore:
    """A folder on a file system every node can see (one machine, or a shared mount)."""

    def __init__(self, spec: StoreSpec) -> None:
        self.spec = spec
        self.root = Path(normalize_uri(spec.uri))

    def list_inputs(self) -> list[InputFile]:
        if self.root.is_file():
            return [InputFile(key=str(self.root), size=self.root.stat().st_size, relative_path=self.root.name)]
        if not self.root.is_dir():
            raise FileNotFoundError(f"input does not exist: {self.root}")
        found = []
        for dirpath, dirs, files in os.walk(self.root):
            dirs.sort()
            for name in sorted(files):
                if is_input_name(name):
                    path = Path(dirpath) / name
                    rel = path.relative_to(self.root).as_posix()
                    found.append(InputFile(key=str(path), size=path.stat().st_size, relative_path=rel))
        return found

    def relative_keys(self) -> set[str]:
        if not self.root.is_dir():
            return set()
        return {(Path(d) / f).relative_to(self.root).as_posix() for d, _, fs in os.walk(self.root) for f in fs}

    def fetch(self, relative: str, scratch: Path) -> Path:
        return self.root if self.root.is_file() else self.root / relative

    def release(self, local: Path) -> None:
        """Nothing to delete: inputs are read in place."""

    @contextlib.contextmanager
    def output(self, relative: str, run_id: str) -> Iterator[Path]:
        """The final path; the caller writes it with an atomic writer (temp name + rename)."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        yield path

    def remove_temporary(self, run_id: str | None = None) -> int:
        """Delete temporary output files a killed worker left behind; returns how many."""
        removed = 0
        if not self.root.is_dir():
            return 0
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if _LOCAL_TMP.match(name):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(dirpath, name))
                        removed += 1
        return removed


class S3Store:
    """An S3 prefix (any S3-compatible store; endpoint from the spec or ``AWS_ENDPOINT_URL``)."""

    def __init__(self, spec: StoreSpec, scratch: Path | None = None) -> None:
        self.spec = spec
        self.scratch = scratch
        self.location: S3Location = parse_folder_uri(spec.uri)
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client(self.spec.endpoint_url)
        return self._client

    def list_inputs(self) -> list[InputFile]:
        return list_inputs(self.client, self.location)

    def relative_keys(self) -> set[str]:
        return list_relative_keys(self.client, self.location)

    def fetch(self, relative: str, scratch: Path) -> Path:
        """Download to ``scratch/<n>/<file name>`` (the name is kept: reports quote it)."""
        dest = scratch / uuid.uuid4().hex[:12] / posixpath.basename(relative)
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.client.download_file(self.location.bucket, self.location.key_for(relative), str(dest))
        return dest

    def release(self, local: Path) -> None:
        shutil.rmtree(local.parent, ignore_errors=True)

    def temporary_key(self, relative: str, run_id: str) -> str:
        return self.location.key_for(f"{S3_TMP_DIR}{run_id}/{relative}")

    @contextlib.contextmanager
    def output(self, relative: str, run_id: str) -> Iterator[Path]:
        """A local scratch path; once written it is uploaded to a temporary key, copied, deleted."""
        scratch = Path(tempfile.mkdtemp(prefix="decon-ray-out-", dir=self.scratch))
        local = scratch / posixpath.basename(relative)
        try:
            yield local
            if not local.exists():
                local.write_bytes(b"")
            self.publish(local, relative, run_id)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def publish(self, local: Path, relative: str, run_id: str) -> None:
        bucket = self.location.bucket
        tmp_key = self.temporary_key(relative, run_id)
        self.client.upload_file(str(local), bucket, tmp_key)
        try:
            self.client.copy({"Bucket": bucket, "Key": tmp_key}, bucket, self.location.key_for(relative))
        finally:
            self.client.delete_object(Bucket=bucket, Key=tmp_key)

    def remove_temporary(self, run_id: str | None = None) -> int:
        """Delete temporary keys (of ``run_id``, or of every run); returns how many."""
        prefix = self.location.key_for(S3_TMP_DIR + (f"{run_id}/" if run_id else ""))
        keys = [obj["Key"] for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.location.bucket, Prefix=prefix) for obj in page.get("Contents", [])]
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[start:start + 1000]]
            self.client.delete_objects(Bucket=self.location.bucket, Delete={"Objects": chunk, "Quiet": True})
        return len(keys)
