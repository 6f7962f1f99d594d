"""Issue 9, server parts without a server: path limits, the state lock across fork, a full
journal, the start-up sweep and the log throttles."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import uuid

import pytest

from decon.server.connections import RepeatFilter, throttle_accept_errors
from decon.server.jobs import JobTable
from decon.server.journal import LOCK_NAME, JobJournal, JournalError
from decon.server.limits import MAX_PATH_BYTES, MAX_PATH_DEPTH
from decon.server.outputs import remove_job_outputs, sweep_stale_outputs
from decon.server.paths import PathRefused, check_submitted_path


def test_path_limits_are_checked_before_any_filesystem_call(monkeypatch, tmp_path):
    calls = []

    def spy(name):  # noqa: ANN202
        def refuse(*args, **kwargs):  # noqa: ANN202
            calls.append(name)
            raise AssertionError(f"{name} called")
        return refuse

    for name in ("stat", "lstat", "readlink", "getcwd"):
        monkeypatch.setattr(os, name, spy(name))
    monkeypatch.setattr(os.path, "realpath", spy("realpath"))
    cases = [("/" + "a" * MAX_PATH_BYTES, "too long"), ("/" + "d/" * MAX_PATH_DEPTH + "x.jsonl", "too deep"),
             ("/tmp/\ud800.jsonl", "not valid UTF-8"), ("/tmp/\udcff.jsonl", "not valid UTF-8")]
    for raw, reason in cases:
        with pytest.raises(PathRefused) as info:
            check_submitted_path(raw, [tmp_path])
        assert info.value.status_code == 400 and reason in info.value.message
    assert calls == []


def test_forked_children_do_not_hold_the_state_lock(tmp_path):
    journal = JobJournal(tmp_path)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report every open descriptor's target
        targets = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                targets.append(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:
                pass
        os.write(write_end, "\n".join(targets).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as fh:
        targets = fh.read().splitlines()
    os.waitpid(pid, 0)
    journal.close()
    assert str(tmp_path / LOCK_NAME) not in targets


def fill(table: JobTable) -> list[str]:
    ids = []
    with pytest.raises(JournalError) as info:
        for _ in range(10_000):
            ids.append(table.submit("/data/" + "x" * 200 + ".jsonl").job_id)
    assert info.value.full and "disk is full" in info.value.message
    return ids


def test_full_journal_refuses_new_work_keeps_outcomes_in_memory_and_catches_up(tmp_path):
    journal = JobJournal(tmp_path)
    journal._db.execute("PRAGMA max_page_count = 6")  # SQLITE_FULL, as on a full disk
    table = JobTable(journal)
    running = [table.submit(f"/data/run{i}.jsonl").job_id for i in range(3)]
    for job_id in running:
        assert table.take(0.1).job_id == job_id
    ids = fill(table)  # new jobs are refused: nothing queued beyond what the journal holds
    counts = table.counts()
    assert counts == {"pending": len(ids), "processing": 3, "completed": 0, "failed": 0}
    assert table.journal_error and "disk is full" in table.journal_error
    # outcomes that do not fit: applied in memory all the same, the failure naming the journal
    long_path = "/out/" + "r" * 3000
    assert table.complete(running[0], long_path, long_path) is False
    assert table.fail(running[1], "worker ran out of disk " + "e" * 3000) is False
    table.requeue(running[2])  # its row does not grow, so it still fits
    assert table.get(running[0]).status == "completed"
    failed = table.get(running[1])
    assert failed.status == "failed" and failed.error.startswith("worker ran out of disk")
    assert "not yet in the job journal" in failed.error and "disk is full" in failed.error
    assert table.get(running[2]).status == "pending"
    assert table.unjournaled() == 2 and table.journal_error
    on_disk = {r.job_id: r.status for r in journal.load()}
    assert [on_disk[j] for j in running] == ["processing", "processing", "pending"]
    assert table.catch_up() is False  # still full

    journal._db.execute("PRAGMA max_page_count = 100000")  # space is back
    assert table.catch_up() is True
    assert table.unjournaled() == 0 and table.journal_error is None
    on_disk = {r.job_id: r for r in journal.load()}
    assert on_disk[running[0]].status == "completed" and on_disk[running[0]].output_path == long_path
    assert on_disk[running[1]].status == "failed" and "not yet" not in on_disk[running[1]].error
    assert on_disk[running[2]].status == "pending"
    assert table.get(running[1]).error == on_disk[running[1]].error  # the note is gone from /status
    assert {j: r.status for j, r in on_disk.items()} == table.statuses()
    table.close()

    reopened = JobTable(JobJournal(tmp_path))  # a restart sees the same outcomes
    reopened.recover()
    assert reopened.get(running[0]).status == "completed" and reopened.get(running[1]).status == "failed"
    reopened.close()


class FullJournal(JobJournal):
    """A journal whose writes fail as on a full disk while ``full`` is set."""

    full = False

    def _write(self, sql, values):
        if self.full:
            raise JournalError(f"cannot write the job journal {self.path}: the disk is full", True)
        super()._write(sql, values)


def test_full_journal_starts_no_job_and_an_interrupted_job_is_pending_in_memory(tmp_path):
    journal = FullJournal(tmp_path)
    table = JobTable(journal)
    first, second = table.submit("/data/a.jsonl").job_id, table.submit("/data/b.jsonl").job_id
    assert table.take(0.1).job_id == first
    journal.full = True
    with pytest.raises(JournalError):
        table.take(0.1)
    assert table.get(second).status == "pending" and table.queue_depth() == 1
    assert table.requeue(first) is False
    assert table.get(first).status == "pending" and table.queue_depth() == 2 and table.unjournaled() == 1
    journal.full = False
    assert table.catch_up() and table.unjournaled() == 0
    assert {r.job_id: r.status for r in journal.load()} == {first: "pending", second: "pending"}
    assert table.take(0.1).job_id == first  # the interrupted job runs first
    table.close()


def test_any_successful_write_catches_the_journal_up(tmp_path):
    journal = JobJournal(tmp_path)
    table = JobTable(journal)
    job = table.submit("/data/a.jsonl").job_id
    table.take(0.1)
    pages = journal._db.execute("PRAGMA page_count").fetchone()[0]
    journal._db.execute(f"PRAGMA max_page_count = {pages}")  # no room to grow
    assert table.fail(job, "boom " * 1000) is False and table.unjournaled() == 1
    journal._db.execute("PRAGMA max_page_count = 100000")
    table.submit("/data/b.jsonl")  # succeeds, and writes the missed outcome with it
    assert table.unjournaled() == 0 and table.journal_error is None
    assert {r.job_id: r.status for r in journal.load()}[job] == "failed"
    table.close()


def test_failed_job_error_text_is_stored_even_with_surrogates(tmp_path):
    table = JobTable(JobJournal(tmp_path))
    job = table.submit("/a.jsonl").job_id
    table.take(0.1)
    table.fail(job, "cannot open /data/bad-\udcff.jsonl")
    assert table.get(job).error == "cannot open /data/bad-\\udcff.jsonl"
    table.close()


def test_start_up_sweep_and_job_output_removal(tmp_path):
    reports, cleaned = tmp_path / "reports", tmp_path / "cleaned"
    reports.mkdir()
    cleaned.mkdir()
    done, failed, pending, foreign = (str(uuid.uuid4()) for _ in range(4))
    files = {
        reports / f"{done}.report.jsonl": True, cleaned / f"{done}.jsonl.gz": True,
        reports / f".{done}.report.jsonl.ab12.tmp": False,
        reports / f"{failed}.report.jsonl": False, cleaned / f".{failed}.jsonl.gz.x9.tmp": False,
        reports / f"{pending}.report.jsonl": False, cleaned / f"{pending}.jsonl.gz": False,
        reports / f".{foreign}.report.jsonl.zz.tmp": True, reports / "notes.txt": True,
    }
    for path in files:
        path.write_text("x")
    jobs = {done: "completed", failed: "failed", pending: "processing"}
    assert sweep_stale_outputs([str(reports), str(cleaned), str(reports)], jobs) == 5
    assert {p: p.exists() for p in files} == files

    assert remove_job_outputs(done, str(reports), str(cleaned)) == 2
    assert not (reports / f"{done}.report.jsonl").exists() and not (cleaned / f"{done}.jsonl.gz").exists()


def test_accept_errors_are_logged_once_per_interval():
    lines: list[str] = []
    others: list[dict] = []
    loop = asyncio.new_event_loop()
    try:
        loop.set_exception_handler(lambda _loop, context: others.append(context))
        throttle_accept_errors(loop, lines.append, interval=3600)
        for _ in range(1000):
            loop.call_exception_handler({"message": "socket.accept() out of system resource",
                                         "exception": OSError(errno.EMFILE, "Too many open files")})
        loop.call_exception_handler({"message": "something else", "exception": ValueError("x")})
    finally:
        loop.close()
    assert len(lines) == 1 and "Too many open files" in lines[0]
    assert [c["message"] for c in others] == ["something else"]


def test_repeated_uvicorn_warnings_pass_once_per_interval():
    now = [0.0]
    filt = RepeatFilter(interval=60, clock=lambda: now[0])

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.error", logging.WARNING, __file__, 1, msg, None, None)

    passed = [filt.filter(record("Invalid HTTP request received.")) for _ in range(500)]
    assert passed.count(True) == 1 and filt.filter(record("Exceeded concurrency limit."))
    now[0] = 61.0
    again = record("Invalid HTTP request received.")
    assert filt.filter(again) and "499 similar" in again.getMessage()
