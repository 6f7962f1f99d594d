"""Counters shared by the pipeline threads, periodic metrics lines and the final summary."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class Metrics:
    started: float = field(default_factory=time.monotonic)
    files_total: int = 0
    bytes_total: int = 0
    downloaded: int = 0
    downloaded_bytes: int = 0
    submitted: int = 0
    completed: int = 0
    uploaded_files: int = 0  # objects written to S3
    processed: int = 0  # files whose outputs are confirmed (uploaded, or kept locally in debug mode)
    processed_bytes: int = 0
    clean: int = 0
    contaminated: int = 0
    failed: int = 0
    failed_names: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: int) -> None:
        with self.lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def fail(self, name: str) -> None:
        with self.lock:
            self.failed += 1
            self.failed_names.append(name)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def finished(self) -> int:
        return self.processed + self.failed

    def line(self, pending: int, download_queue: int, active: int, upload_queue: int) -> str:
        elapsed = max(self.elapsed, 1e-9)
        mb = 1024 * 1024
        return (
            f"METRICS elapsed={self.elapsed:.1f}s remaining={self.files_total - self.finished} "
            f"to_download={pending} download_queue={download_queue} active_jobs={active} "
            f"upload_queue={upload_queue} | downloaded={self.downloaded} submitted={self.submitted} "
            f"completed={self.completed} uploaded_objects={self.uploaded_files} processed={self.processed} "
            f"failed={self.failed} | rates: download={self.downloaded / elapsed:.2f} files/s "
            f"({self.downloaded_bytes / mb / elapsed:.2f} MB/s) submit={self.submitted / elapsed:.2f}/s "
            f"processed={self.processed / elapsed:.2f} files/s ({self.processed_bytes / mb / elapsed:.2f} MB/s)"
        )

    def summary(self) -> str:
        return (f"SUMMARY: Processed={self.processed} Clean={self.clean} Contaminated={self.contaminated} "
                f"Failed={self.failed} Time={self.elapsed:.2f}s")
