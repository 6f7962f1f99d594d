"""A log line that repeats (accept errors under a flood, a full journal) is printed at most once
per interval, with a count of the repeats it stood for."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class LogThrottle:
    """``say(message)`` logs at most once per ``interval`` seconds; the rest are counted."""

    def __init__(self, log: Callable[[str], None], interval: float = 60.0) -> None:
        self._log = log
        self._interval = interval
        self._lock = threading.Lock()
        self._last = float("-inf")
        self._suppressed = 0

    def say(self, message: str) -> bool:
        """Log ``message`` unless one was logged within the interval; True if it was logged."""
        with self._lock:
            now = time.monotonic()
            if now - self._last < self._interval:
                self._suppressed += 1
                return False
            suppressed, self._suppressed, self._last = self._suppressed, 0, now
        if suppressed:
            message += f" ({suppressed} similar message(s) suppressed)"
        self._log(message)
        return True
