"""The job journal: one SQLite file recording every job, so a restarted server remembers them.

Only the server's main process touches the journal; calls are serialised by the caller (the job
table holds its lock around every journal write) and by a lock here, so one connection suffices.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
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


class JobJournal:
    """SQLite-backed record of jobs in ``state_dir``; holds an exclusive lock on the directory."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.state_dir = Path(state_dir)
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeconError(f"cannot create state directory {self.state_dir}: {exc.strerror}") from None
        self.path = self.state_dir / JOURNAL_NAME
        self._lock_fh = self._take_dir_lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except sqlite3.Error as exc:
            self._lock_fh.close()
            raise DeconError(f"cannot open job journal {self.path}: {exc}") from None
        self._mutex = threading.Lock()

    def _take_dir_lock(self):  # noqa: ANN202 - a plain file object
        fh = open(self.state_dir / LOCK_NAME, "a+")  # noqa: SIM115 - held for the server's lifetime
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise DeconError(f"another decon server is already using the state directory {self.state_dir} "
                             "(pass a different --state-dir)") from None
        return fh

    def load(self) -> list[JobRecord]:
        """Every journaled job, in submission order."""
        with self._mutex:
            rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs ORDER BY seq").fetchall()
        return [JobRecord(*row) for row in rows]

    def insert(self, record: JobRecord) -> None:
        values = [getattr(record, c) for c in _COLUMNS]
        marks = ", ".join("?" for _ in _COLUMNS)
        with self._mutex:
            self._db.execute(f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({marks})", values)

    def update(self, record: JobRecord) -> None:
        """Store the record's current state (every column but the id)."""
        cols = [c for c in _COLUMNS if c != "job_id"]
        assignments = ", ".join(f"{c} = ?" for c in cols)
        values = [getattr(record, c) for c in cols] + [record.job_id]
        with self._mutex:
            self._db.execute(f"UPDATE jobs SET {assignments} WHERE job_id = ?", values)

    def close(self) -> None:
        with self._mutex, contextlib.suppress(sqlite3.Error):
            self._db.close()
        with contextlib.suppress(OSError):
            self._lock_fh.close()
