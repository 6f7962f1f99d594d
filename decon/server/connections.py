"""Client connections under a flood: a cap on open connections, a deadline for each request head,
and a quiet log when the process still runs out of descriptors.

Half-sent requests (a slow-loris flood) would otherwise hold descriptors until the open-file limit
is reached; then ``accept`` fails, and ``/health`` waits in the listen queue behind them. So:

* a connection must deliver a complete request head within ``header_timeout`` seconds of opening
  (or of its previous response), else it is closed;
* at most ``max_connections`` stay open: a new connection beyond that closes the connection that
  has waited longest without a request in flight; if every connection has a request in flight,
  uvicorn's ``limit_concurrency`` answers the newcomer's request with 503;
* ``accept`` errors (EMFILE and friends) are logged at most once a minute.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from decon.server.limits import (
    ACCEPT_BATCH,
    DEFAULT_LINGER_BYTES,
    DEFAULT_LINGER_SECONDS,
    KEEP_ALIVE_TIMEOUT,
    MAX_HEAD_BYTES,
    MAX_REQUEST_LINE_BYTES,
)
from decon.server.lingering import Linger, LingeringTransport, head_refusal, json_response
from decon.server.lograte import LogThrottle

_ACCEPT_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-head deadline, a cap on open connections, 414/431 for
    oversize request heads and a lingering close after early answers (:mod:`decon.server.lingering`).

    Use :func:`guarded_protocol` to get a subclass with the limits filled in."""

    max_connections: ClassVar[int] = 1000
    header_timeout: ClassVar[float] = 10.0
    linger_bytes: ClassVar[int] = DEFAULT_LINGER_BYTES
    linger_seconds: ClassVar[float] = DEFAULT_LINGER_SECONDS
    # connections waiting for a request head, oldest first (one server per process)
    waiting: ClassVar[dict[GuardedH11Protocol, None]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._armed_cycle: object = None
        self._real: asyncio.Transport | None = None
        self._linger: Linger | None = None
        self._head_bytes = 0  # bytes received since the current request head began

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._real = transport
        super().connection_made(LingeringTransport(transport, self._client_may_be_sending,  # type: ignore[arg-type]
                                                   self._start_linger))
        self._wait_for_head()
        self._make_room()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._head_bytes = 0
        if not self.transport.is_closing():
            self._wait_for_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        if self._linger is not None:
            self._linger.cancel()
        super().connection_lost(exc)

    # ---- oversize heads and lingering close ----------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._linger is not None:
            self._linger.discard(len(data))
            return
        if self.conn.their_state is h11.IDLE:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_REQUEST_LINE_BYTES:
                refusal = head_refusal(self.conn.trailing_data[0] + data, MAX_REQUEST_LINE_BYTES,
                                       MAX_HEAD_BYTES)
                if refusal is not None:
                    self._refuse_head(*refusal)
                    return
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._head_bytes = 0

    def _refuse_head(self, status: int, message: str) -> None:
        """Answer an oversize request head (414/431) and close, lingering."""
        assert self._real is not None
        self._unset_keepalive_if_required()
        self._real.write(json_response(status, message))
        self.transport.close()  # always lingers: the rest of the head is on its way

    def _client_may_be_sending(self) -> bool:
        """The server closes while the client may still send: its request body was not read to
        the end, its request head was refused (414/431), or its request was malformed (400)."""
        return self.conn.their_state in (h11.SEND_BODY, h11.ERROR) or self._head_bytes > 0

    def shutdown(self) -> None:
        """Server shutdown: a lingering connection closes now; others as uvicorn closes them."""
        if self._linger is not None:
            self._linger.stop()
            return
        super().shutdown()

    def _start_linger(self) -> None:
        assert self._real is not None
        self._stop_waiting()
        self._unset_keepalive_if_required()
        self._linger = Linger(self.loop, self._real, self.linger_bytes, self.linger_seconds)
        # a lingering connection is the first to go when the connection cap needs room
        self._armed_cycle = self.cycle
        self.waiting[self] = None

    # ---- request-head deadline ---------------------------------------------------------------
    def _wait_for_head(self) -> None:
        self._stop_waiting()
        self._armed_cycle = self.cycle
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_deadline)
        self.waiting[self] = None

    def _stop_waiting(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self.waiting.pop(self, None)

    def _idle(self) -> bool:
        """No request has started since the connection began waiting for one."""
        return self.cycle is self._armed_cycle

    def _head_deadline(self) -> None:
        self._head_timer = None
        if self._idle():
            self._shed()
        else:
            self.waiting.pop(self, None)

    def _shed(self) -> None:
        self._stop_waiting()
        self.connections.discard(self)
        if self._linger is not None:
            self._linger.stop()
        elif not self.transport.is_closing():
            self.transport.close_now()  # type: ignore[attr-defined]  # a half-sent head: no lingering

    # ---- connection cap ----------------------------------------------------------------------
    def _make_room(self) -> None:
        """Close the longest-waiting idle connections while more than max_connections are open."""
        while len(self.connections) > self.max_connections and self.waiting:
            oldest = next(iter(self.waiting))
            if oldest is self:
                break
            if oldest._idle():
                oldest._shed()
            else:  # a request is in flight: it leaves the waiting list until its response is sent
                oldest._stop_waiting()


def guarded_protocol(max_connections: int, header_timeout: float, linger_bytes: int = DEFAULT_LINGER_BYTES,
                     linger_seconds: float = DEFAULT_LINGER_SECONDS) -> type[GuardedH11Protocol]:
    """A protocol class for one server with these limits."""
    return type("DeconH11Protocol", (GuardedH11Protocol,),
                {"max_connections": max_connections, "header_timeout": header_timeout,
                 "linger_bytes": linger_bytes, "linger_seconds": linger_seconds, "waiting": {}})


def uvicorn_config(app: Any, max_connections: int, header_timeout: float,
                   linger_bytes: int = DEFAULT_LINGER_BYTES,
                   linger_seconds: float = DEFAULT_LINGER_SECONDS) -> uvicorn.Config:
    """uvicorn settings for the server: h11 on the asyncio loop, with the connection limits.

    ``limit_concurrency`` is one above the connection cap: a request arriving while more than
    ``max_connections`` connections are open (none of them idle, so none could be closed) gets 503.
    uvicorn's ``backlog`` is also asyncio's accept batch, so it is set to ACCEPT_BATCH; the listen
    queue is deepened again once the server listens (:func:`deepen_listen_queue`)."""
    config = uvicorn.Config(
        app, http=guarded_protocol(max_connections, header_timeout, linger_bytes, linger_seconds), loop="asyncio",
        limit_concurrency=max_connections + 1, timeout_keep_alive=KEEP_ALIVE_TIMEOUT, backlog=ACCEPT_BATCH,
        log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=10,
    )
    logging.getLogger("uvicorn.error").addFilter(RepeatFilter())
    return config


class RepeatFilter(logging.Filter):
    """Lets each distinct uvicorn warning through at most once per ``interval`` seconds (a flood
    of bad requests would otherwise log one line per request)."""

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._interval = interval
        self._clock = clock
        self._seen: dict[str, tuple[float, int]] = {}  # message -> (last logged, suppressed since)

    def filter(self, record: logging.LogRecord) -> bool:
        key, now = str(record.msg), self._clock()
        last, suppressed = self._seen.get(key, (float("-inf"), 0))
        if now - last < self._interval:
            self._seen[key] = (last, suppressed + 1)
            return False
        if len(self._seen) > 1000:
            self._seen.clear()
        self._seen[key] = (now, 0)
        if suppressed:
            record.msg, record.args = f"{record.getMessage()} ({suppressed} similar message(s) suppressed)", None
        return True


def throttle_accept_errors(loop: asyncio.AbstractEventLoop, log: Callable[[str], None],
                           interval: float = 60.0) -> None:
    """Log ``accept`` failures for lack of descriptors or memory once per ``interval``, one line
    each, instead of a traceback per failure; other loop errors go to the previous handler."""
    throttle = LogThrottle(log, interval)
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _ACCEPT_ERRNOS and "accept" in context.get("message", ""):
            throttle.say(f"Cannot accept new connections: {exc.strerror}; retrying "
                         "(raise the open-file limit or lower --max-connections)")
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
