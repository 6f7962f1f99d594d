"""The job table: every job's state, the FIFO of pending jobs, and the state machine between them.

    pending --take()--> processing --complete()--> completed
                                   --fail()------> failed
                                   --requeue()---> pending   (interrupted by shutdown)

All transitions happen under one lock and are written through to the journal before the lock is
released, so a job is never in two states and the journal never lags the answers /status gives.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from dataclasses import replace

from decon.server.journal import JobJournal, JobRecord

STATUSES = ("pending", "processing", "completed", "failed")


class JobTable:
    """Thread-safe job store; ``journal`` (optional) makes it durable."""

    def __init__(self, journal: JobJournal | None = None) -> None:
        self._journal = journal
        self._jobs: dict[str, JobRecord] = {}
        self._queue: deque[str] = deque()
        self._counts = dict.fromkeys(STATUSES, 0)
        self._cond = threading.Condition()
        self._dispatching = True
        self._accepting = True

    # ---- start-up ----------------------------------------------------------------------------
    def recover(self) -> tuple[int, int]:
        """Load the journal; jobs that were pending or processing are queued again.

        Returns (jobs known, jobs queued again)."""
        if self._journal is None:
            return 0, 0
        requeued = 0
        with self._cond:
            for rec in self._journal.load():
                if rec.status not in STATUSES:
                    continue
                if rec.status in ("pending", "processing"):
                    if rec.status == "processing":
                        rec.status = "pending"
                        rec.started_at = None
                        self._journal.update(rec)
                    self._queue.append(rec.job_id)
                    requeued += 1
                self._jobs[rec.job_id] = rec
                self._counts[rec.status] += 1
            self._cond.notify_all()
            return len(self._jobs), requeued

    # ---- intake ------------------------------------------------------------------------------
    @property
    def accepting(self) -> bool:
        return self._accepting

    def submit(self, file_path: str) -> JobRecord | None:
        """Record and queue a new job; None once intake is closed (shutting down)."""
        rec = JobRecord(job_id=str(uuid.uuid4()), file_path=file_path, status="pending",
                        submitted_at=time.time())
        with self._cond:
            if not self._accepting:
                return None
            if self._journal is not None:
                self._journal.insert(rec)
            self._jobs[rec.job_id] = rec
            self._counts["pending"] += 1
            self._queue.append(rec.job_id)
            self._cond.notify()
        return replace(rec)

    def stop_intake(self) -> None:
        """Refuse new submissions and hand no more jobs to workers (pending jobs stay pending)."""
        with self._cond:
            self._accepting = False
            self._dispatching = False
            self._cond.notify_all()

    # ---- worker side -------------------------------------------------------------------------
    def take(self, timeout: float) -> JobRecord | None:
        """The oldest pending job, now marked processing; None on timeout or when dispatch stopped."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._dispatching and not self._queue:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            if not self._dispatching:
                return None
            rec = self._jobs[self._queue.popleft()]
            self._move(rec, "processing")
            rec.started_at = time.time()
            rec.attempts += 1
            self._write(rec)
            return replace(rec)

    def complete(self, job_id: str, output_path: str | None, purified_path: str | None) -> None:
        with self._cond:
            rec = self._processing(job_id)
            self._move(rec, "completed")
            rec.output_path, rec.purified_path = output_path, purified_path
            rec.finished_at = time.time()
            self._write(rec)

    def fail(self, job_id: str, error: str) -> None:
        with self._cond:
            rec = self._processing(job_id)
            self._move(rec, "failed")
            rec.error = error
            rec.finished_at = time.time()
            self._write(rec)

    def requeue(self, job_id: str) -> None:
        """Put an interrupted job back to pending (it runs again, here or after a restart)."""
        with self._cond:
            rec = self._processing(job_id)
            self._move(rec, "pending")
            rec.started_at = None
            self._write(rec)
            self._queue.appendleft(job_id)
            self._cond.notify()

    # ---- queries -----------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord | None:
        with self._cond:
            rec = self._jobs.get(job_id)
            return replace(rec) if rec is not None else None

    def counts(self) -> dict[str, int]:
        with self._cond:
            return dict(self._counts)

    def queue_depth(self) -> int:
        with self._cond:
            return len(self._queue)

    def close(self) -> None:
        """Stop everything and close the journal."""
        self.stop_intake()
        with self._cond:
            if self._journal is not None:
                self._journal.close()
                self._journal = None

    # ---- internals (caller holds the lock) ---------------------------------------------------
    def _processing(self, job_id: str) -> JobRecord:
        rec = self._jobs[job_id]
        if rec.status != "processing":
            raise RuntimeError(f"job {job_id} is {rec.status}, not processing")
        return rec

    def _move(self, rec: JobRecord, status: str) -> None:
        self._counts[rec.status] -= 1
        self._counts[status] += 1
        rec.status = status

    def _write(self, rec: JobRecord) -> None:
        if self._journal is not None:
            self._journal.update(rec)
