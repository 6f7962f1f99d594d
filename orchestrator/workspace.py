"""Per-input workspace directory and the PID lock that guards it."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

LOCK_NAME = "orchestrator.lock"
log = logging.getLogger("decon.orchestrator")


class LockHeld(RuntimeError):
    """Another live orchestrator owns the workspace."""

    def __init__(self, lock_path: Path, pid: int) -> None:
        super().__init__(f"another orchestrator (PID {pid}) is running on this input; lock file: {lock_path}")
        self.lock_path = lock_path
        self.pid = pid


def workspace_dir(local_work_dir: str | os.PathLike[str], remote_file_input: str) -> Path:
    """``local_work_dir/input-<first 12 hex of sha256(remote_file_input)>``."""
    digest = hashlib.sha256(remote_file_input.encode("utf-8")).hexdigest()[:12]
    return Path(local_work_dir) / f"input-{digest}"


def pid_alive(pid: int) -> bool:
    """True when a process with this PID exists (signal 0 probe)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def read_lock_pid(lock_path: Path) -> int | None:
    try:
        return int(lock_path.read_text().strip())
    except (OSError, ValueError):
        return None


class WorkspaceLock:
    """A file holding the owner's PID. A lock whose PID is gone is stale and gets replaced."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / LOCK_NAME
        self._held = False

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                pid = read_lock_pid(self.path)
                if pid is not None and pid != os.getpid() and pid_alive(pid):
                    raise LockHeld(self.path, pid) from None
                log.warning("Replacing stale lock %s (PID %s is not running)", self.path, pid)
                try:
                    self.path.unlink()
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(f"{os.getpid()}\n")
            self._held = True
            log.info("Acquired lock %s (PID %d)", self.path, os.getpid())
            return
        raise RuntimeError(f"could not create lock file {self.path}")

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        try:
            if read_lock_pid(self.path) == os.getpid():
                self.path.unlink()
                log.info("Released lock %s", self.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("Could not remove lock %s: %s", self.path, exc)

    @property
    def held(self) -> bool:
        return self._held
