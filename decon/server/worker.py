"""Inside a worker process: receive jobs over a pipe, scan each file, write its outputs, reply.

A worker is forked from the server after the reference index is built, so it reads the index from
memory it shares (copy-on-write) with its parent. It ignores SIGINT and SIGTERM (a Ctrl-C or a
process-group SIGTERM must not cut a running job short; the parent decides when to stop), and turns
SIGUSR1 into :class:`JobAborted`, which unwinds the job so its temporary output files are removed.
"""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from decon.common.columnar import COLUMNAR_SUFFIXES
from decon.common.config import DetectionConfig
from decon.common.data_reader import DataFile
from decon.common.lifetime import die_with_parent

ABORT_SIGNAL = signal.SIGUSR1


class JobAborted(BaseException):
    """Raised inside a worker when the server aborts the running job (shutdown grace expired)."""


@dataclass(frozen=True)
class WorkerContext:
    """Everything a worker needs, inherited through fork (never pickled)."""

    index: Any
    config: DetectionConfig
    report_dir: str
    cleaned_dir: str | None
    allowed_roots: tuple[Path, ...] = ()


def report_path(report_dir: str, job_id: str) -> str:
    return os.path.join(report_dir, f"{job_id}.report.jsonl")


#: the cleaned copy's extension: gzip JSONL, or the input's own columnar format
PURIFIED_EXTENSIONS = (".jsonl.gz",) + COLUMNAR_SUFFIXES


def purified_path(cleaned_dir: str, job_id: str, source: str | None = None) -> str:
    """``<job_id>.jsonl.gz``; for a Parquet or Arrow ``source``, ``<job_id>`` with its extension."""
    ext = next((e for e in COLUMNAR_SUFFIXES if source and source.endswith(e)), ".jsonl.gz")
    return os.path.join(cleaned_dir, f"{job_id}{ext}")


def remove_partial_outputs(job_id: str, dirs: Sequence[str | None]) -> int:
    """Delete temporary files a killed worker left behind for ``job_id``; returns how many."""
    removed = 0
    for d in {d for d in dirs if d}:
        for pattern in (f".{job_id}.report.jsonl.*.tmp", *(f".{job_id}{e}.*.tmp" for e in PURIFIED_EXTENSIONS)):
            for path in glob.glob(os.path.join(glob.escape(d), pattern)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                    removed += 1
    return removed


def run_job(job_id: str, file_path: str, ctx: WorkerContext) -> dict[str, Any]:
    """Scan one file and write its outputs; returns what the parent records about the job.

    The file is opened once, checked through its descriptor (a regular file, inside the allowed
    roots), and both the scan and the cleaned copy read through that descriptor, so swapping the
    path (a symlink flipped, a FIFO) after the check changes nothing."""
    from decon.detect import api

    started = time.perf_counter()
    with DataFile(file_path, allowed_roots=ctx.allowed_roots) as data:
        result = api.scan_file(data, ctx.index, ctx.config)
        output = None
        if result.entries:
            output = report_path(ctx.report_dir, job_id)
            api.write_report(result.entries, output)
        purified = None
        if ctx.config.purify:
            purified = purified_path(ctx.cleaned_dir or ctx.report_dir, job_id, file_path)
            api.write_purified(data, purified, result.contaminated_lines, ctx.config.max_line_bytes,
                               ctx.config.content_key)
    return {
        "output_path": output,
        "purified_path": purified,
        "lines_total": result.lines_total,
        "contaminated_lines": len(result.contaminated_lines),
        "long_lines": [n + 1 for n in result.long_lines[:10]],
        "long_line_count": len(result.long_lines),
        "seconds": time.perf_counter() - started,
        **job_counts(result, file_path),
    }


def job_counts(result: Any, file_path: str) -> dict[str, Any]:
    """What the parent adds to its /metrics counters for one finished job (workers keep no counters)."""
    matches: dict[str, int] = {}
    lines: dict[str, set[int]] = {}
    for entry in result.entries:
        suite = str(entry.get("eval_key") or entry.get("eval_dataset") or "unknown")
        matches[suite] = matches.get(suite, 0) + 1
        lines.setdefault(suite, set()).add(entry["training_line"])
    try:
        file_bytes = os.path.getsize(file_path)
    except OSError:
        file_bytes = 0
    return {
        "tokens": result.tokens,
        "bytes_read": result.bytes_read,
        "file_bytes": file_bytes,
        "skipped": dict(result.skipped),
        "matches_by_suite": matches,
        "contaminated_lines_by_suite": {k: len(v) for k, v in lines.items()},
    }


def _raise_aborted(signum: int, frame: object) -> None:
    raise JobAborted()


def _close_inherited_sockets(keep: set[int]) -> None:
    """Close sockets inherited from the server (listening socket, client connections, other
    workers' pipes) so that they close when the server closes them, and a dead server's port frees."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return
    for fd in fds:
        if fd <= 2 or fd in keep:
            continue
        with contextlib.suppress(OSError):
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.close(fd)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    detail = text[0] if text else type(exc).__name__
    return f"Processing error: {detail}"


def worker_main(conn: Connection, ctx: WorkerContext, parent_pid: int | None = None) -> None:
    """Entry point of a worker process: serve jobs until the pipe closes or None arrives."""
    if parent_pid is not None:
        die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(ABORT_SIGNAL, _raise_aborted)
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)
    _close_inherited_sockets({conn.fileno()})
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            if message is None:
                return
            job_id, file_path = message
            try:
                reply: tuple[str, str, Any] = ("ok", job_id, run_job(job_id, file_path, ctx))
            except Exception as exc:  # noqa: BLE001 - any failure of the job is reported, not fatal
                reply = ("error", job_id, _one_line(exc))
            try:
                conn.send(reply)
            except (BrokenPipeError, OSError):
                return
    except JobAborted:
        return
