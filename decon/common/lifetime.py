"""Child processes that must not outlive the process that started them."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int | None = None) -> None:
    """Have the kernel SIGKILL this process when the thread that started it ends (its parent was
    killed); with ``parent_pid``, exit at once if that parent is already gone."""
    with contextlib.suppress(OSError, AttributeError):  # prctl is Linux-only
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)
