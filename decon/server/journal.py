"""The job journal: one SQLite file recording every job, so a restarted server remembers them.

Only the server's main process touches the journal; calls are serialised by the caller (the job
table holds its lock around every journal write) and by a lock here, so one connection suffices.
A write that fails (full disk, I/O error) raises :class:`JournalError` and records nothing.

The state directory's lock is an ``flock`` on a descriptor opened with ``O_CLOEXEC`` and closed in
every forked child, so worker processes never hold it: a server killed with SIGKILL leaves the
lock free for the next start even while orphaned workers are still exiting.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import weakref
from dataclasses import dataclass, fields
from pathlib import Path

from decon.errors import DeconError

JOURNAL_NAME = "jobs.sqlite"
LOCK_NAME = "server.lock"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id        TEXT NOT NULL UNIQUE,
    file_path     TEXT NOT NULL,
    status        TEXT NOT NULL,
    output_path   TEXT,
    purified_path TEXT,
    error         TEXT,
    submitted_at  REAL NOT NULL,
    started_at    REAL,
    finished_at   REAL,
    attempts      INTEGER NOT NULL DEFAULT 0
)
"""


@dataclass
class JobRecord:
    """One job as the server tracks it (and as the journal stores it)."""

    job_id: str
    file_path: str
    status: str
    submitted_at: float
    output_path: str | None = None
    purified_path: str | None = None
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0


_COLUMNS = [f.name for f in fields(JobRecord)]


class JournalError(Exception):
    """A journal write failed and nothing was recorded; ``full`` when the disk is full."""

    def __init__(self, message: str, full: bool) -> None:
        super().__init__(message)
        self.message = message
        self.full = full


def storable_text(text: str) -> str:
    """``text`` with anything UTF-8 cannot encode (lone surrogates) escaped, so it can be stored
    and sent as JSON."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


_LOCKS_IN_THIS_PROCESS: weakref.WeakSet[JobJournal] = weakref.WeakSet()


def _drop_locks_after_fork() -> None:
    """In a forked child: close inherited lock descriptors (the lock stays with the parent)."""
    for journal in list(_LOCKS_IN_THIS_PROCESS):
        journal._forget_lock()
    _LOCKS_IN_THIS_PROCESS.clear()


os.register_at_fork(after_in_child=_drop_locks_after_fork)


class JobJournal:
    """SQLite-backed record of jobs in ``state_dir``; holds an exclusive lock on the directory."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.state_dir = Path(state_dir)
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeconError(f"cannot create state directory {self.state_dir}: {exc.strerror}") from None
        self.path = self.state_dir / JOURNAL_NAME
        self._lock_fd = self._take_dir_lock()
        _LOCKS_IN_THIS_PROCESS.add(self)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except sqlite3.Error as exc:
            self._release_lock()
            raise DeconError(f"cannot open job journal {self.path}: {exc}") from None
        self._mutex = threading.Lock()

    def _take_dir_lock(self) -> int:
        path = self.state_dir / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise DeconError(f"cannot open {path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise DeconError(f"another decon server is already using the state directory {self.state_dir} "
                             "(pass a different --state-dir)") from None
        return fd

    def _forget_lock(self) -> None:
        """Close this process's descriptor for the lock without unlocking (forked child)."""
        fd, self._lock_fd = self._lock_fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _release_lock(self) -> None:
        _LOCKS_IN_THIS_PROCESS.discard(self)
        self._forget_lock()

    def _write(self, sql: str, values: list[object]) -> None:
        with self._mutex:
            try:
                self._db.execute(sql, values)
            except sqlite3.Error as exc:
                full = getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "is full" in str(exc)
                reason = "the disk is full" if full else str(exc)
                raise JournalError(f"cannot write the job journal {self.path}: {reason}", full) from None
            except UnicodeEncodeError:
                raise JournalError(f"cannot write the job journal {self.path}: text is not valid UTF-8",
                                   False) from None

    def load(self) -> list[JobRecord]:
        """Every journaled job, in submission order."""
        with self._mutex:
            rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs ORDER BY seq").fetchall()
        return [JobRecord(*row) for row in rows]

    def insert(self, record: JobRecord) -> None:
        """Record a new job (JournalError if it cannot be written)."""
        values = [getattr(record, c) for c in _COLUMNS]
        marks = ", ".join("?" for _ in _COLUMNS)
        self._write(f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({marks})", values)

    def update(self, record: JobRecord) -> None:
        """Store the record's current state (every column but the id)."""
        cols = [c for c in _COLUMNS if c != "job_id"]
        assignments = ", ".join(f"{c} = ?" for c in cols)
        values = [getattr(record, c) for c in cols] + [record.job_id]
        self._write(f"UPDATE jobs SET {assignments} WHERE job_id = ?", values)

    def close(self) -> None:
        with self._mutex, contextlib.suppress(sqlite3.Error):
            self._db.close()
        self._release_lock()
