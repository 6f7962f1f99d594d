"""The job table: every job's state, the FIFO of pending jobs, and the state machine between them.

    pending --take()--> processing --complete()--> completed
                                   --fail()------> failed
                                   --requeue()---> pending   (interrupted by shutdown)

All transitions happen under one lock and are written to the journal. When the journal cannot be
written (a full disk):

* a new job, or a job about to start, is refused: the call raises JournalError and nothing
  changes (POST /submit answers 507; no job starts until the journal can be written);
* a job's outcome (completed, failed, or pending again after an interrupted run) is applied in
  memory anyway, so /status tells the truth, and kept as *unjournaled*; a failed job's error then
  names the journal problem too. :meth:`JobTable.catch_up` (called after every successful write,
  and by the worker pool while anything is unjournaled) writes them once space is back, so a
  restart sees the same outcomes. ``journal_error`` stays set until nothing is left behind.
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
        self.journal_error: str | None = None  # why the journal cannot be written, until it caught up
        # latest record of each job whose state changed in memory but is not yet in the journal
        self._unjournaled: dict[str, JobRecord] = {}

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

    def complete(self, job_id: str, output_path: str | None, purified_path: str | None) -> bool:
        """Mark a running job completed. False when the journal could not record it yet (the
        job is completed all the same; the journal catches up later)."""
        with self._cond:
            return self._commit_outcome(self._processing(job_id), status="completed", output_path=output_path,
                                        purified_path=purified_path, finished_at=time.time())

    def fail(self, job_id: str, error: str) -> bool:
        """Mark a running job failed (False: not journaled yet, as for :meth:`complete`)."""
        with self._cond:
            return self._commit_outcome(self._processing(job_id), status="failed", error=storable_text(error),
                                        finished_at=time.time())

    def requeue(self, job_id: str) -> bool:
        """Put an interrupted job back to pending (it runs again, here or after a restart).

        False when not journaled yet; the journal still says processing, which a restart also
        turns into pending."""
        with self._cond:
            journaled = self._commit_outcome(self._processing(job_id), status="pending", started_at=None)
            self._queue.appendleft(job_id)
            self._cond.notify()
            return journaled

    def catch_up(self) -> bool:
        """Write the outcomes the journal missed; True once nothing is left behind."""
        with self._cond:
            if self._journal is None or not self._unjournaled:
                return True
            try:
                self._write_unjournaled()
            except JournalError as exc:
                self.journal_error = exc.message
                return False
            self.journal_error = None
            return True

    def unjournaled(self) -> int:
        """How many jobs' current state the journal does not hold yet."""
        with self._cond:
            return len(self._unjournaled)

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
        """Stop everything and close the journal (writing what it missed, if it now can)."""
        self.stop_intake()
        self.catch_up()
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
        self._apply(rec, new)
        return new

    def _commit_outcome(self, rec: JobRecord, **changes: object) -> bool:
        """As :meth:`_commit`, but applied in memory even when the journal cannot be written (the
        record is then kept for :meth:`catch_up`, and a failure's error names the journal problem).
        Returns whether the journal holds it."""
        new = replace(rec, **changes)  # type: ignore[arg-type]
        try:
            self._record(new)
        except JournalError as exc:
            self._unjournaled[new.job_id] = new
            shown = new
            if new.status == "failed":
                shown = replace(new, error=f"{new.error} (not yet in the job journal: {exc.message}; "
                                           "it is written once the journal can be written)")
            self._apply(rec, shown)
            return False
        self._unjournaled.pop(new.job_id, None)
        self._apply(rec, new)
        return True

    def _apply(self, old: JobRecord, new: JobRecord) -> None:
        self._counts[old.status] -= 1
        self._counts[new.status] += 1
        self._jobs[new.job_id] = new

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
        self._unjournaled.pop(rec.job_id, None)
        if self._unjournaled:  # the journal can be written again: catch up now
            try:
                self._write_unjournaled()
            except JournalError as exc:
                self.journal_error = exc.message
                return
        self.journal_error = None

    def _write_unjournaled(self) -> None:
        """Write each unjournaled record (as stored, without the note shown in memory)."""
        assert self._journal is not None
        for job_id, stored in list(self._unjournaled.items()):
            self._journal.update(stored)
            del self._unjournaled[job_id]
            current = self._jobs.get(job_id)
            if current is not None and current.status == stored.status:
                self._jobs[job_id] = stored  # the journal now holds it: drop the note
