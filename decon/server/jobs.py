"""The job table: every job's state, the FIFO of pending jobs, and the state machine between them.

    pending --take()--> processing --complete()--> completed
                                   --fail()------> failed
                                   --requeue()---> pending   (interrupted by shutdown)

All transitions happen under one lock. Each is written to the journal first and applied in memory
only once written: when the journal cannot be written (a full disk), the call raises JournalError
and nothing changes, so /status always answers what the journal holds.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from dataclasses import replace

from decon.errors import DeconError
from decon.server.journal import JobJournal, JobRecord, JournalError, storable_text

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
        self.journal_error: str | None = None  # why the last journal write failed, until one succeeds

    # ---- start-up ----------------------------------------------------------------------------
    def recover(self) -> tuple[int, int]:
        """Load the journal; jobs that were pending or processing are queued again.

        Returns (jobs known, jobs queued again)."""
        if self._journal is None:
            return 0, 0
        try:
            return self._recover()
        except JournalError as exc:
            raise DeconError(exc.message) from None

    def _recover(self) -> tuple[int, int]:
        assert self._journal is not None
        requeued = 0
        with self._cond:
            for rec in self._journal.load():
                if rec.status not in STATUSES:
                    continue
                if rec.status in ("pending", "processing"):
                    if rec.status == "processing":
                        rec = replace(rec, status="pending", started_at=None)
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
        """Record and queue a new job; None once intake is closed (shutting down).

        Raises JournalError (and queues nothing) when the journal cannot record it."""
        rec = JobRecord(job_id=str(uuid.uuid4()), file_path=file_path, status="pending",
                        submitted_at=time.time())
        with self._cond:
            if not self._accepting:
                return None
            self._record(rec, insert=True)
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
            rec = self._jobs[self._queue[0]]
            rec = self._commit(rec, status="processing", started_at=time.time(), attempts=rec.attempts + 1)
            self._queue.popleft()
            return replace(rec)

    def complete(self, job_id: str, output_path: str | None, purified_path: str | None) -> None:
        with self._cond:
            self._commit(self._processing(job_id), status="completed", output_path=output_path,
                         purified_path=purified_path, finished_at=time.time())

    def fail(self, job_id: str, error: str) -> None:
        with self._cond:
            self._commit(self._processing(job_id), status="failed", error=storable_text(error),
                         finished_at=time.time())

    def requeue(self, job_id: str) -> None:
        """Put an interrupted job back to pending (it runs again, here or after a restart)."""
        with self._cond:
            self._commit(self._processing(job_id), status="pending", started_at=None)
            self._queue.appendleft(job_id)
            self._cond.notify()

    # ---- queries -----------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord | None:
        with self._cond:
            rec = self._jobs.get(job_id)
            return replace(rec) if rec is not None else None

    def statuses(self) -> dict[str, str]:
        """Every job's status, by id."""
        with self._cond:
            return {job_id: rec.status for job_id, rec in self._jobs.items()}

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

    def _commit(self, rec: JobRecord, **changes: object) -> JobRecord:
        """Write ``rec`` with ``changes`` to the journal, then make it the current record."""
        new = replace(rec, **changes)  # type: ignore[arg-type]
        self._record(new)
        self._counts[rec.status] -= 1
        self._counts[new.status] += 1
        self._jobs[new.job_id] = new
        return new

    def _record(self, rec: JobRecord, insert: bool = False) -> None:
        if self._journal is None:
            return
        try:
            if insert:
                self._journal.insert(rec)
            else:
                self._journal.update(rec)
        except JournalError as exc:
            self.journal_error = exc.message
            raise
        self.journal_error = None
