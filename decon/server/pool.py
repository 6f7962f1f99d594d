"""The worker pool: N forked worker processes, each fed one job at a time by its own supervisor thread.

Each slot owns one process and one pipe, so the server always knows which job a process holds. When
a process dies mid-job (OOM killer, kill -9, a crash), its job fails with the cause, its temporary
files are removed and a fresh process is forked in its place; the other slots carry on.

Workers are forked (``multiprocessing`` fork context) from the process that built the reference
index, so they share its memory copy-on-write. ``gc.freeze()`` before each fork keeps the cyclic
garbage collector from touching (and so copying) the inherited objects.

Each slot's process is forked by the slot's own supervisor thread, which lives as long as the
process: a worker asks the kernel to kill it when that thread ends (``PR_SET_PDEATHSIG``), so
workers die with a server killed by SIGKILL instead of living on as orphans.

When the job journal cannot be written (a full disk), no new job starts; a job that ends meanwhile
gets its outcome in memory at once, and the supervisors write it to the journal once it can be
written again (:meth:`JobTable.catch_up`). The problem is logged at most once a minute.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from decon.server.jobs import JobTable
from decon.server.journal import JobRecord, JournalError
from decon.server.lograte import LogThrottle
from decon.server.metrics import ServerMetrics
from decon.server.outputs import remove_job_outputs
from decon.server.worker import ABORT_SIGNAL, WorkerContext, worker_main

_FORK = multiprocessing.get_context("fork")
_POLL_SECONDS = 0.5


def describe_exit(exitcode: int | None) -> str:
    """A one-line cause for a worker that died without answering."""
    if exitcode is None:
        return "worker process stopped responding"
    if exitcode < 0:
        signum = -exitcode
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = "unknown signal"
        text = f"worker process died (signal {signum}, {name})"
        if signum == signal.SIGKILL:
            text += "; it may have been killed by the out-of-memory killer"
        return text
    return f"worker process exited unexpectedly (exit code {exitcode})"


class _Slot:
    def __init__(self, number: int) -> None:
        self.number = number
        self.process: BaseProcess | None = None
        self.conn: Connection | None = None
        self.job_id: str | None = None
        self.aborting = False
        self.thread: threading.Thread | None = None
        self.started = 0.0  # monotonic time the running job was dispatched
        self.spawned = threading.Event()  # set once the slot's first process was forked (or failed)


class WorkerPool:
    """``size`` worker processes taking jobs from ``table``."""

    def __init__(self, size: int, table: JobTable, ctx: WorkerContext,
                 log: Callable[[str], None] = print, metrics: ServerMetrics | None = None) -> None:
        if size < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.size = size
        self.table = table
        self.ctx = ctx
        self.log = log
        self._slots = [_Slot(i) for i in range(size)]
        self._lock = threading.Lock()  # guards slot fields read by workers_info()
        self._stopping = threading.Event()
        self._draining = False  # set once jobs are being aborted: dead workers are not replaced
        self._idle = threading.Condition(self._lock)
        self._journal_log = LogThrottle(log)
        self.metrics = metrics

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start every slot's supervisor thread; returns once each has forked its process."""
        for slot in self._slots:
            slot.thread = threading.Thread(target=self._supervise, args=(slot,), daemon=True,
                                           name=f"decon-worker-{slot.number}")
            slot.thread.start()
        for slot in self._slots:
            slot.spawned.wait()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no slot runs a job (call after the table stopped dispatching)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while any(s.job_id for s in self._slots):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(min(remaining, _POLL_SECONDS))
            return True

    def abort_running(self) -> list[str]:
        """Interrupt every running job; they go back to pending. Returns their ids."""
        aborted = []
        with self._lock:
            self._draining = True
            for slot in self._slots:
                if slot.job_id and slot.process is not None and slot.process.pid:
                    slot.aborting = True
                    aborted.append(slot.job_id)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(slot.process.pid, ABORT_SIGNAL)
        return aborted

    def kill_running(self) -> None:
        """Last resort after abort_running(): SIGKILL processes still holding a job."""
        with self._lock:
            for slot in self._slots:
                if slot.job_id and slot.process is not None and slot.process.pid:
                    slot.aborting = True
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(slot.process.pid, signal.SIGKILL)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop idle workers and supervisors (the table must have stopped dispatching)."""
        self._stopping.set()
        self._draining = True
        for slot in self._slots:
            if slot.thread is not None:
                slot.thread.join(timeout)
        for slot in self._slots:
            self._retire(slot, timeout)

    # ---- queries -----------------------------------------------------------------------------
    def workers_info(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"worker": s.number, "pid": s.process.pid if s.process else None, "job_id": s.job_id}
                    for s in self._slots]

    def busy_count(self) -> int:
        with self._lock:
            return sum(1 for s in self._slots if s.job_id)

    # ---- per-slot supervisor -----------------------------------------------------------------
    def _supervise(self, slot: _Slot) -> None:
        try:
            self._try_spawn(slot)
            slot.spawned.set()
            while not self._stopping.is_set():
                self._supervise_once(slot)
        finally:
            slot.spawned.set()
            self._retire(slot, 5.0)  # before this thread ends: its end would SIGKILL the worker

    def _supervise_once(self, slot: _Slot) -> None:
        if slot.process is None or not slot.process.is_alive():
            if self._draining:
                self._stopping.wait(_POLL_SECONDS)
                return
            self._retire(slot, 1.0, reason="worker process died while idle")
            if not self._respawn(slot):
                self._stopping.wait(1.0)
                return
        if self.table.unjournaled() and not self.table.catch_up():
            self._journal_log.say(f"Job journal: {self.table.journal_error}; "
                                  f"{self.table.unjournaled()} job outcome(s) wait to be written")
        try:
            job = self.table.take(timeout=_POLL_SECONDS)
        except JournalError as exc:
            self._journal_log.say(f"Job journal: {exc.message}; no new job starts until it can be written")
            self._stopping.wait(1.0)
            return
        if job is None:
            return
        if slot.process is None or not slot.process.is_alive():  # died while we waited for work
            self._record(lambda: self.table.requeue(job.job_id))
            return
        try:
            self._run(slot, job)
        except Exception as exc:  # noqa: BLE001 - keep the slot alive whatever happens
            self.log(f"Worker {slot.number}: internal error on job {job.job_id}: {exc}")
            remove_job_outputs(job.job_id, self.ctx.report_dir, self.ctx.cleaned_dir)
            with contextlib.suppress(RuntimeError, JournalError):
                self.table.fail(job.job_id, f"internal server error: {exc}")
            self._finish(slot)

    def _record(self, transition: Callable[[], bool]) -> None:
        """Run a job-table transition; say so (once a minute) when the journal could not take it."""
        if not transition():
            self._journal_log.say(f"Job journal: {self.table.journal_error}; job outcomes are kept in "
                                  "memory and written once the journal can be written")

    def _run(self, slot: _Slot, job: JobRecord) -> None:
        with self._lock:
            slot.job_id = job.job_id
            slot.aborting = False
            slot.started = time.monotonic()
        assert slot.conn is not None and slot.process is not None
        try:
            slot.conn.send((job.job_id, job.file_path))
        except OSError:
            self._on_death(slot, job)
            return
        while True:
            ready = wait([slot.conn, slot.process.sentinel], timeout=_POLL_SECONDS)
            if slot.conn in ready:
                try:
                    kind, job_id, payload = slot.conn.recv()
                except (EOFError, OSError):
                    self._on_death(slot, job)
                    return
                self._on_reply(slot, job, kind, payload)
                return
            if slot.process.sentinel in ready:
                self._on_death(slot, job)
                return

    def _on_reply(self, slot: _Slot, job: JobRecord, kind: str, payload: Any) -> None:
        if self.metrics is not None:  # before the table: once /status says done, /metrics counts it
            if kind == "ok":
                self.metrics.job_completed(payload, time.monotonic() - slot.started)
            else:
                self.metrics.job_failed(time.monotonic() - slot.started)
        if kind == "ok":
            self._record(lambda: self.table.complete(job.job_id, payload["output_path"],
                                                     payload["purified_path"]))
            self.log(f"Worker {slot.number} completed job {job.job_id}: {payload['lines_total']} lines, "
                     f"{payload['contaminated_lines']} contaminated, {payload['seconds']:.2f}s")
            if payload.get("long_line_count"):
                self.log(f"Worker {slot.number} - job {job.job_id} skipped {payload['long_line_count']} line(s) "
                         f"over max_line_bytes (line {', '.join(map(str, payload['long_lines']))})")
        else:
            self._fail(slot, job, str(payload))
        self._finish(slot)

    def _fail(self, slot: _Slot, job: JobRecord, cause: str) -> None:
        """A failed job leaves no output, not even a report renamed before the failure."""
        remove_job_outputs(job.job_id, self.ctx.report_dir, self.ctx.cleaned_dir)
        self._record(lambda: self.table.fail(job.job_id, cause))
        self.log(f"Worker {slot.number} - job {job.job_id} failed: {cause}")

    def _on_death(self, slot: _Slot, job: JobRecord) -> None:
        assert slot.process is not None
        slot.process.join(5)
        exitcode = slot.process.exitcode
        if self.metrics is not None:
            if slot.aborting:
                self.metrics.job_requeued()
            else:
                self.metrics.job_failed(time.monotonic() - slot.started)
        if slot.aborting:
            remove_job_outputs(job.job_id, self.ctx.report_dir, self.ctx.cleaned_dir)
            self._record(lambda: self.table.requeue(job.job_id))
            self.log(f"Worker {slot.number}: job {job.job_id} interrupted by shutdown; it stays pending")
        else:
            self._fail(slot, job, describe_exit(exitcode))
        self._finish(slot)
        self._retire(slot, 1.0)
        self._respawn(slot)

    def _finish(self, slot: _Slot) -> None:
        with self._idle:
            slot.job_id = None
            self._idle.notify_all()

    # ---- processes ---------------------------------------------------------------------------
    def _spawn(self, slot: _Slot) -> None:
        """Fork the slot's process; called only from the slot's supervisor thread (see the module doc)."""
        parent_end, child_end = _FORK.Pipe(duplex=True)
        gc.freeze()  # inherited objects go to the permanent generation: the GC leaves their pages alone
        process = _FORK.Process(target=worker_main, args=(child_end, self.ctx, os.getpid()), daemon=True,
                                name=f"decon-worker-{slot.number}")
        try:
            process.start()
        except BaseException:
            parent_end.close()
            raise
        finally:
            child_end.close()
        with self._lock:
            slot.process, slot.conn = process, parent_end
        self.log(f"Worker {slot.number} started (pid {process.pid})")

    def _try_spawn(self, slot: _Slot) -> bool:
        if self._stopping.is_set() or self._draining:
            return False
        try:
            self._spawn(slot)
            return True
        except OSError as exc:  # fork failed: out of memory or processes; the supervisor tries again
            self.log(f"Worker {slot.number}: cannot start a worker process: {exc.strerror or exc}")
            return False

    def _respawn(self, slot: _Slot) -> bool:
        """A new process in place of one that died (not while stopping)."""
        if not self._try_spawn(slot):
            return False
        if self.metrics is not None:
            self.metrics.worker_restarted()
        return True

    def _retire(self, slot: _Slot, timeout: float, reason: str | None = None) -> None:
        if reason and slot.process is not None:
            self.log(f"Worker {slot.number} (pid {slot.process.pid}): {reason} "
                     f"({describe_exit(slot.process.exitcode)}); starting a new one")
        with self._lock:
            process, conn = slot.process, slot.conn
            slot.process, slot.conn = None, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send(None)
            conn.close()
        if process is not None:
            process.join(timeout)
            if process.is_alive():
                process.kill()
                process.join(timeout)
            with contextlib.suppress(ValueError):
                process.close()
