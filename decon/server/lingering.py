"""Answers a client can read: oversize request heads refused with 414/431, and a lingering close.

A server that answers early (413 for a body over the limit, 408, 414, 431) and then closes at once
leaves the rest of the request unread; the kernel then resets the connection, and a client that
sends its whole body before reading (Python's urllib and http.client do) sees "connection reset"
instead of the answer. So, as nginx does, the server half-closes after the answer (the client gets
it and an end of file), then reads and discards what the client still sends until the client
closes, at most ``linger_bytes`` bytes and ``linger_seconds`` seconds (and no more than
``LINGER_IDLE_SECONDS`` between two reads); a client past a bound is cut off. Nothing discarded is
kept: memory stays flat however much is sent.
"""

from __future__ import annotations

import asyncio
import http
from typing import Any

import orjson

LINGER_IDLE_SECONDS = 5.0  # a lingering client silent this long is closed (nginx's lingering_timeout)


class LingeringTransport:
    """The transport uvicorn's protocol code is given. ``close()`` lingers (see the module doc)
    when ``wants_linger()`` says the client may still be sending; everything else is the real
    transport's."""

    def __init__(self, transport: asyncio.Transport, wants_linger: Any, start_linger: Any) -> None:
        self.real = transport
        self._wants_linger = wants_linger
        self._start_linger = start_linger
        self.closing = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def close(self) -> None:
        if self.closing:
            return
        self.closing = True
        if not self.real.is_closing() and self._wants_linger():
            self._start_linger()
        else:
            self.real.close()

    def close_now(self) -> None:
        """Close without lingering."""
        self.closing = True
        self.real.close()

    def is_closing(self) -> bool:
        return self.closing or self.real.is_closing()


class Linger:
    """One connection's lingering close: half-close, then discard input within the bounds."""

    def __init__(self, loop: asyncio.AbstractEventLoop, transport: asyncio.Transport,
                 max_bytes: int, max_seconds: float) -> None:
        self.transport = transport
        self.max_bytes = max_bytes
        self.read = 0
        self._seen_at_check = 0
        if transport.can_write_eof():
            transport.write_eof()  # sent once the answer is flushed: the client reads it, then EOF
        transport.resume_reading()  # flow control may have paused reading while the app answered
        self._deadline = loop.call_later(max_seconds, self.stop)
        self._idle = loop.call_later(LINGER_IDLE_SECONDS, self._idle_check, loop)

    def discard(self, size: int) -> None:
        self.read += size
        if self.read > self.max_bytes:
            self.stop()

    def _idle_check(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.read == self._seen_at_check:
            self.stop()
            return
        self._seen_at_check = self.read
        self._idle = loop.call_later(LINGER_IDLE_SECONDS, self._idle_check, loop)

    def stop(self) -> None:
        """Close now (a client still sending gets a reset)."""
        self.cancel()
        self.transport.close()

    def cancel(self) -> None:
        self._deadline.cancel()
        self._idle.cancel()


def head_refusal(buffer: bytes, max_line: int, max_head: int) -> tuple[int, str] | None:
    """414 when the request line in ``buffer`` (the unparsed start of a request) is over
    ``max_line`` bytes, 431 when the head is over ``max_head`` bytes; None while within both."""
    newline = buffer.find(b"\n")
    line = newline if newline >= 0 else len(buffer)
    if line > max_line:
        return 414, f"request line too long (limit {max_line} bytes)"
    ends = [i for i in (buffer.find(b"\n\r\n"), buffer.find(b"\n\n")) if i >= 0]
    head = min(ends) if ends else len(buffer)
    if head > max_head:
        return 431, f"request headers too large (limit {max_head} bytes)"
    return None


def json_response(status: int, message: str) -> bytes:
    """A complete HTTP/1.1 response ``{"error": message}`` that closes the connection."""
    body = orjson.dumps({"error": message})
    phrase = http.HTTPStatus(status).phrase
    head = (f"HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode("ascii") + body
