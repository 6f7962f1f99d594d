"""The server's lifecycle: loading (index build) -> ready (worker pool running) -> shutting down.

The HTTP listener is up from the start. The reference index is built in a background thread of the
main process; only when it is ready is the worker pool forked, so every worker inherits the one
index instead of building or copying its own. Jobs submitted while the index loads wait as pending.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from decon.common.config import DetectionConfig
from decon.errors import DeconError
from decon.server.jobs import JobTable
from decon.server.metrics import ServerMetrics
from decon.server.pool import WorkerPool
from decon.server.settings import ServerSettings
from decon.server.worker import WorkerContext

LOADING, READY, SHUTTING_DOWN, FAILED = "loading", "ready", "shutting_down", "failed"


class ServerRuntime:
    def __init__(self, settings: ServerSettings, config: DetectionConfig, table: JobTable,
                 build_index: Callable[[DetectionConfig], Any], log: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.config = config
        self.table = table
        self.log = log
        self._build_index = build_index
        self.state = LOADING
        self.error: BaseException | None = None
        self.pool: WorkerPool | None = None
        self.index_build_seconds: float | None = None
        self.started_at = time.monotonic()
        self._lock = threading.Lock()
        self._on_failure: Callable[[], None] = lambda: None
        self._thread: threading.Thread | None = None
        self.metrics = ServerMetrics(self)

    # ---- start-up ----------------------------------------------------------------------------
    def start_loading(self, on_failure: Callable[[], None]) -> None:
        """Build the index in the background, then start the pool; ``on_failure`` stops the server."""
        self._on_failure = on_failure
        self._thread = threading.Thread(target=self._load, name="decon-index-build", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        t0 = time.monotonic()
        try:
            index = self._build_index(self.config)
        except BaseException as exc:  # noqa: BLE001 - reported by the command after the server stops
            self.error = exc if isinstance(exc, DeconError) else DeconError(f"building the index failed: {exc}")
            self.state = FAILED
            self._on_failure()
            return
        self.index_build_seconds = time.monotonic() - t0
        self.log(f"Reference index ready in {self.index_build_seconds:.1f}s")
        self.metrics.index_ready(index, self.index_build_seconds)
        with self._lock:
            if self.state != LOADING:  # shutdown began while the index was building
                return
            ctx = WorkerContext(index=index, config=self.config, report_dir=self.settings.report_dir,
                                cleaned_dir=self.settings.cleaned_dir,
                                allowed_roots=tuple(self.settings.allowed_roots))
            pool = WorkerPool(self.settings.workers, self.table, ctx, log=self.log, metrics=self.metrics)
            self.log(f"Starting {self.settings.workers} worker processes")
            pool.start()
            self.pool = pool
            self.state = READY

    # ---- shutdown ----------------------------------------------------------------------------
    def begin_shutdown(self) -> None:
        """Refuse new jobs and stop dispatching; running jobs carry on."""
        with self._lock:
            if self.state in (LOADING, READY):
                self.state = SHUTTING_DOWN
        self.table.stop_intake()

    def drain(self, grace: float) -> None:
        """Let running jobs finish within ``grace`` seconds, interrupt the rest, stop the pool."""
        pool = self.pool
        if pool is not None:
            if not pool.wait_idle(grace):
                aborted = pool.abort_running()
                self.log(f"Shutdown grace period ({grace:g}s) over: interrupting {len(aborted)} running "
                         "job(s); they stay pending for the next start")
                if not pool.wait_idle(5.0):
                    pool.kill_running()
                    pool.wait_idle(5.0)
            pool.stop()
        self.table.close()

    # ---- queries -----------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        s = self.settings
        pool = self.pool
        return {
            "status": "shutting_down" if self.state == SHUTTING_DOWN else "ok",
            "worker_threads": s.workers,
            "report_output_dir": s.report_dir,
            "cleaned_output_dir": s.cleaned_dir,
            "purify": s.purify,
            "mode": self.config.mode,
            "recall": self.config.recall,
            "semantic": self.config.semantic,
            "contamination_score_threshold": self.config.contamination_score_threshold,
            "queue_depth": self.table.queue_depth(),
            "jobs": self.table.counts(),
            "workers": pool.workers_info() if pool is not None else [],
            "index_build_seconds": self.index_build_seconds,
            "uptime_seconds": round(time.monotonic() - self.started_at, 3),
            "journal_error": self.table.journal_error,
            "journal_behind": self.table.unjournaled(),
        }
