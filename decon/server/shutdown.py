"""Graceful shutdown on SIGTERM / SIGINT.

First signal: stop taking jobs (/submit answers 503), let running jobs finish within the grace
period, interrupt whatever is still running (it stays pending in the journal), stop the workers,
then stop the HTTP server; the process exits 0. A second SIGINT (Ctrl-C twice) skips the wait.

uvicorn's own signal handling is replaced: it would stop serving at once and re-raise the signal
afterwards, which ends the process with a non-zero status.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Generator
from types import FrameType

import uvicorn

from decon.server.runtime import ServerRuntime

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose SIGINT/SIGTERM start a graceful drain instead of stopping at once."""

    def __init__(self, config: uvicorn.Config, on_signal: Callable[[int], None],
                 on_loop_start: Callable[[asyncio.AbstractEventLoop], None] | None = None,
                 on_listening: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self._on_signal = on_signal
        self._on_loop_start = on_loop_start
        self._on_listening = on_listening

    async def startup(self, sockets: list | None = None) -> None:  # type: ignore[type-arg]
        """uvicorn's start-up, with ``on_loop_start(loop)`` before it (before the first accept) and
        ``on_listening()`` after it."""
        if self._on_loop_start is not None:
            self._on_loop_start(asyncio.get_running_loop())
        await super().startup(sockets=sockets)
        if self._on_listening is not None:
            self._on_listening()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self._handle) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def install_signal_handlers(self) -> None:  # older uvicorn releases call this instead
        for sig in HANDLED_SIGNALS:
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._on_signal(signum)


class GracefulShutdown:
    """Runs the drain in a thread (not in the signal handler) and then stops uvicorn."""

    def __init__(self, runtime: ServerRuntime, grace: float, log: Callable[[str], None] = print) -> None:
        self.runtime = runtime
        self.grace = grace
        self.log = log
        self.server: uvicorn.Server | None = None
        self._started = threading.Event()
        self._hurry = threading.Event()
        self.done = threading.Event()

    def on_signal(self, signum: int) -> None:
        """Signal handler body: must stay tiny (no printing, no locks held by other threads)."""
        if self._started.is_set():
            if signum == signal.SIGINT:
                self._hurry.set()
            return
        self._started.set()
        threading.Thread(target=self._run, args=(signum,), name="decon-shutdown", daemon=True).start()

    def stop_now(self) -> None:
        """Stop the HTTP server without draining (used when start-up failed)."""
        if self.server is not None:
            self.server.should_exit = True

    def _run(self, signum: int) -> None:
        name = signal.Signals(signum).name
        try:
            self.runtime.begin_shutdown()
            busy = self.runtime.pool.busy_count() if self.runtime.pool is not None else 0
            self.log(f"Received {name}: not accepting new jobs; waiting up to {self.grace:g}s for "
                     f"{busy} running job(s) (send SIGINT again to stop sooner)")
            grace = self.grace
            if self.runtime.pool is not None and not self._hurry.is_set():
                # wait in small steps so a second Ctrl-C cuts the grace period short
                step = 0.2
                waited = 0.0
                while waited < grace and not self._hurry.is_set():
                    if self.runtime.pool.wait_idle(min(step, grace - waited)):
                        break
                    waited += step
                grace = 0.0 if self._hurry.is_set() else max(0.0, grace - waited)
            self.runtime.drain(grace)
            counts = self.runtime.table.counts()
            self.log(f"Shutdown complete: {counts['pending']} job(s) left pending for the next start")
        finally:
            self.done.set()
            if self.server is not None:
                self.server.should_exit = True
