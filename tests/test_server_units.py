"""Server parts without a server: job table, journal recovery, path checks, exit causes."""

from __future__ import annotations

import signal
import threading

import pytest

from decon.errors import DeconError
from decon.server.jobs import JobTable
from decon.server.journal import JobJournal
from decon.server.paths import PathRefused, check_submitted_path, resolve_roots
from decon.server.pool import describe_exit
from decon.server.worker import remove_partial_outputs


def test_job_state_machine_and_counts(tmp_path):
    table = JobTable(JobJournal(tmp_path))
    a = table.submit("/a.jsonl")
    b = table.submit("/b.jsonl")
    assert table.counts() == {"pending": 2, "processing": 0, "completed": 0, "failed": 0}
    first = table.take(0.1)
    assert first.job_id == a.job_id and first.status == "processing"  # FIFO
    table.complete(a.job_id, "/r/a.report.jsonl", None)
    second = table.take(0.1)
    table.fail(second.job_id, "boom")
    assert table.take(0.05) is None
    assert table.get(a.job_id).output_path == "/r/a.report.jsonl"
    assert table.get(b.job_id).error == "boom"
    assert table.counts() == {"pending": 0, "processing": 0, "completed": 1, "failed": 1}
    with pytest.raises(RuntimeError):
        table.complete(a.job_id, None, None)  # a finished job cannot finish again
    table.close()


def test_journal_recovery_requeues_unfinished_jobs(tmp_path):
    table = JobTable(JobJournal(tmp_path))
    done = table.submit("/done.jsonl")
    running = table.submit("/running.jsonl")
    waiting = table.submit("/waiting.jsonl")
    table.take(0.1)
    table.complete(done.job_id, None, "/c/done.jsonl.gz")
    table.take(0.1)  # `running` is processing when the server stops
    table.close()

    again = JobTable(JobJournal(tmp_path))
    assert again.recover() == (3, 2)
    assert again.get(done.job_id).status == "completed"
    assert again.get(done.job_id).purified_path == "/c/done.jsonl.gz"
    assert [again.take(0.1).job_id, again.take(0.1).job_id] == [running.job_id, waiting.job_id]
    assert again.get(running.job_id).attempts == 2
    again.close()


def test_state_dir_is_locked_by_one_server(tmp_path):
    first = JobJournal(tmp_path)
    with pytest.raises(DeconError, match="already using the state directory"):
        JobJournal(tmp_path)
    first.close()
    JobJournal(tmp_path).close()


def test_stop_intake_refuses_and_wakes_takers(tmp_path):
    table = JobTable(None)
    got = []
    t = threading.Thread(target=lambda: got.append(table.take(10)))
    t.start()
    table.stop_intake()
    t.join(2)
    assert got == [None] and table.submit("/x.jsonl") is None


def test_requeue_puts_job_back_in_front(tmp_path):
    table = JobTable(None)
    a, b = table.submit("/a.jsonl"), table.submit("/b.jsonl")
    assert table.take(0.1).job_id == a.job_id
    table.requeue(a.job_id)
    assert table.get(a.job_id).status == "pending"
    assert table.take(0.1).job_id == a.job_id and table.take(0.1).job_id == b.job_id


def test_path_checks(tmp_path):
    root, other = tmp_path / "root", tmp_path / "other"
    root.mkdir()
    other.mkdir()
    good = root / "a.jsonl.zst"
    good.write_bytes(b"")
    (other / "b.jsonl").write_text("{}\n")
    (root / "link.jsonl").symlink_to(other / "b.jsonl")
    roots = resolve_roots([root])
    assert check_submitted_path(str(good), roots) == str(good)
    for raw, code in [(str(root / "none.jsonl"), 400), (str(root), 400), (str(other / "b.jsonl"), 403),
                      (str(root / "link.jsonl"), 403), ("", 400), (str(root / ".." / "other" / "b.jsonl"), 403)]:
        with pytest.raises(PathRefused) as info:
            check_submitted_path(raw, roots)
        assert info.value.status_code == code, raw
    assert check_submitted_path(str(root / "link.jsonl")) == str(root / "link.jsonl")  # no roots: allowed


def test_exit_causes():
    assert describe_exit(-signal.SIGKILL).startswith("worker process died (signal 9, SIGKILL)")
    assert "out-of-memory" in describe_exit(-9)
    assert describe_exit(-signal.SIGSEGV) == "worker process died (signal 11, SIGSEGV)"
    assert describe_exit(3) == "worker process exited unexpectedly (exit code 3)"


def test_remove_partial_outputs(tmp_path):
    job = "1234"
    (tmp_path / f".{job}.report.jsonl.abc.tmp").write_text("x")
    (tmp_path / f".{job}.jsonl.gz.def.tmp").write_text("x")
    (tmp_path / f"{job}.report.jsonl").write_text("kept")
    (tmp_path / ".other.report.jsonl.abc.tmp").write_text("x")
    assert remove_partial_outputs(job, [str(tmp_path), None]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.report.jsonl.abc.tmp", f"{job}.report.jsonl"]
