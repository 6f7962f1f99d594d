"""The server's resource limits in one place, and the open-file limit it raises at start.

Every limit here is stated in docs/server.md with the answer a client gets when it is exceeded.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

MAX_BODY_BYTES = 64 * 1024  # request bodies above this get 413 (checked while the body streams in)
MAX_REQUEST_LINE_BYTES = 8 * 1024  # a longer request line (method, URL, version) gets 414
MAX_HEAD_BYTES = 16 * 1024  # a longer request head (request line and headers) gets 431
# After an early answer (413, 408, 414, 431, 400) the server reads and discards what the client still
# sends, so the client can read the answer (a lingering close), at most this much and this long
# (--linger-bytes, --linger-seconds); a client past either bound is cut off.
DEFAULT_LINGER_BYTES = 1 << 30
DEFAULT_LINGER_SECONDS = 30.0
MAX_PATH_BYTES = 4096  # file_path longer than this (UTF-8 bytes) gets 400, before any filesystem call
MAX_PATH_DEPTH = 256  # file_path with more components than this gets 400
DEFAULT_MAX_CONNECTIONS = 1000  # open client connections kept at most (--max-connections)
DEFAULT_REQUEST_TIMEOUT = 10.0  # seconds to send a request head, and again its body (--request-timeout)
KEEP_ALIVE_TIMEOUT = 5  # seconds an idle keep-alive connection stays open
LISTEN_QUEUE = 2048  # connections the kernel holds until the server accepts them
# Connections accepted per event-loop turn. asyncio accepts this many before their protocols run
# (and before the connection cap can close idle ones), so a few batches are kept free below the
# open-file limit.
ACCEPT_BATCH = 32
# descriptors kept free for everything that is not a client connection (journal, worker pipes,
# the listening socket, files opened while submitting), plus a few per worker process
FD_RESERVE_BASE = 64
FD_RESERVE_PER_WORKER = 4


@dataclass(frozen=True)
class OpenFileLimit:
    before: int  # soft limit found at start
    soft: int  # soft limit now
    hard: int


def raise_open_file_limit() -> OpenFileLimit:
    """Raise the soft RLIMIT_NOFILE to the hard limit (more client connections fit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            target = soft
    return OpenFileLimit(before=soft, soft=max(soft, target), hard=hard)


def connection_budget(requested: int, open_files: int, workers: int) -> int:
    """How many client connections to keep open: ``requested``, less if descriptors are short."""
    reserve = FD_RESERVE_BASE + FD_RESERVE_PER_WORKER * workers + 3 * ACCEPT_BATCH
    return max(1, min(requested, open_files - reserve))
