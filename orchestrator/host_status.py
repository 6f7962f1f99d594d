"""Is an orchestrator still running on this host?

Looks for ``*/orchestrator.lock`` files under a root directory (default /mnt/decon-work) whose PID
is alive. Prints ``Running`` or ``Finished``; exit code 0 either way (2 on a bad root).

    python -m orchestrator.host_status [--root DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestrator.workspace import LOCK_NAME, pid_alive, read_lock_pid

DEFAULT_ROOT = "/mnt/decon-work"


def live_locks(root: Path) -> list[tuple[Path, int]]:
    """Lock files directly inside workspaces under ``root`` whose PID is a running process."""
    found = []
    for lock in sorted(root.glob(f"*/{LOCK_NAME}")):
        pid = read_lock_pid(lock)
        if pid is not None and pid_alive(pid):
            found.append((lock, pid))
    return found


def host_state(root: Path) -> str:
    return "Running" if live_locks(root) else "Finished"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print Running while an orchestrator lock with a live PID "
                                     "exists under the root directory, else Finished.")
    parser.add_argument("--root", default=DEFAULT_ROOT, help=f"work root to scan (default {DEFAULT_ROOT})")
    parser.add_argument("-v", "--verbose", action="store_true", help="also list the live locks")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if not root.exists():
        print("Finished")
        return 0
    if not root.is_dir():
        print(f"not a directory: {root}", file=sys.stderr)
        return 2
    locks = live_locks(root)
    if args.verbose:
        for lock, pid in locks:
            print(f"{lock} pid={pid}", file=sys.stderr)
    print("Running" if locks else "Finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
