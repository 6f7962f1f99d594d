"""GET /metrics: the server's Prometheus metrics (text exposition format).

Workers are separate processes and keep no counters: each job's reply carries its counts (lines,
tokens, bytes, matches per eval suite, skipped lines per reason) and the parent adds them up here.
So the counters survive worker restarts without prometheus_client's multiprocess mode, and a scrape
only formats numbers already in memory: the counters' text is kept until the next event changes them,
and gauges (jobs per state, queue depth, busy workers, index size) are read from the job table, the
pool and the index at scrape time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from decon import __version__

# Job durations range from a second (a small shard) to hours (a huge one).
DURATION_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800)
JOB_STATES = ("pending", "processing", "completed", "failed")
SERVER_STATES = ("loading", "ready", "shutting_down", "failed")


def index_size(index: Any) -> dict[str, float]:
    """N-grams, bytes of arrays, eval suites and build/load facts of a reference index."""
    arrays = getattr(index, "arrays", {}) or {}
    stats = getattr(index, "stats", None)
    keys = arrays.get("ngram.keys")
    ngrams = len(keys) if keys is not None else getattr(stats, "unique_ngrams", 0)
    return {
        "ngrams": float(ngrams),
        "bytes": float(sum(int(getattr(a, "nbytes", 0)) for a in arrays.values())),
        "eval_suites": float(len(getattr(index, "eval_keys", []) or [])),
        "from_cache": 1.0 if getattr(stats, "from_cache", False) else 0.0,
    }


class _LiveCollector(Collector):
    """Gauges read at scrape time from the runtime (job table, pool, index)."""

    def __init__(self, runtime: Any, metrics: ServerMetrics) -> None:
        self.runtime = runtime
        self.metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        rt = self.runtime
        info = GaugeMetricFamily("decon_info", "decon version and detection mode", labels=["version", "mode"])
        info.add_metric([__version__, str(rt.config.mode)], 1)
        yield info
        state = GaugeMetricFamily("decon_server_state", "1 for the server's current state", labels=["state"])
        for name in SERVER_STATES:
            state.add_metric([name], 1.0 if rt.state == name else 0.0)
        yield state
        yield GaugeMetricFamily("decon_uptime_seconds", "Seconds since the server started",
                                value=time.monotonic() - rt.started_at)
        yield from self._jobs(rt)
        yield from self._workers(rt)
        yield from self._index()

    def _jobs(self, rt: Any) -> Iterator[GaugeMetricFamily]:
        counts = rt.table.counts()
        jobs = GaugeMetricFamily("decon_jobs", "Jobs known to the server (journal included) by state",
                                 labels=["state"])
        for name in JOB_STATES:
            jobs.add_metric([name], counts.get(name, 0))
        yield jobs
        yield GaugeMetricFamily("decon_queue_depth", "Jobs waiting for a worker", value=rt.table.queue_depth())

    def _workers(self, rt: Any) -> Iterator[GaugeMetricFamily]:
        pool = rt.pool
        slots = pool.workers_info() if pool is not None else []
        busy = GaugeMetricFamily("decon_worker_busy", "1 while the worker slot runs a job, 0 when idle",
                                 labels=["worker"])
        for slot in slots:
            busy.add_metric([str(slot["worker"])], 1.0 if slot["job_id"] else 0.0)
        yield busy
        n_busy = sum(1 for slot in slots if slot["job_id"])
        workers = GaugeMetricFamily("decon_workers", "Worker processes by state", labels=["state"])
        workers.add_metric(["busy"], n_busy)
        workers.add_metric(["idle"], len(slots) - n_busy)
        yield workers

    def _index(self) -> Iterator[GaugeMetricFamily]:
        index = self.metrics.index_info
        if index is None:  # still loading
            return
        for key, name, text in (
            ("seconds", "decon_index_build_seconds", "Seconds the reference index took to build or load"),
            ("ngrams", "decon_index_ngrams", "Distinct n-grams in the reference index"),
            ("bytes", "decon_index_bytes", "Bytes of the reference index's arrays"),
            ("eval_suites", "decon_index_eval_suites", "Eval suites in the reference index"),
            ("from_cache", "decon_index_from_cache", "1 when the index was loaded from the index cache"),
        ):
            yield GaugeMetricFamily(name, text, value=index[key])


class ServerMetrics:
    """The registry behind GET /metrics; the pool and the API report events to it."""

    def __init__(self, runtime: Any) -> None:
        disable_created_metrics()
        self.registry = CollectorRegistry(auto_describe=False)  # changed only by events
        self.live = CollectorRegistry(auto_describe=False)  # read at every scrape
        self.index_info: dict[str, float] | None = None
        self._lock = threading.Lock()
        self._version = 0  # bumped by every event; the cached counters text is for _cached_version
        self._cached: tuple[int, bytes] = (-1, b"")
        self._define(self.registry)
        self.live.register(_LiveCollector(runtime, self))

    def _define(self, r: CollectorRegistry) -> None:
        self.submitted = Counter("decon_jobs_submitted", "Jobs accepted by POST /submit", registry=r)
        self.finished = Counter("decon_jobs_finished", "Jobs that ended, by outcome (completed, failed, "
                                "requeued = interrupted by shutdown)", ["outcome"], registry=r)
        self.lines = Counter("decon_lines_scanned", "Training lines read", registry=r)
        self.tokens = Counter("decon_tokens_scanned", "Tokens of the training text scanned", registry=r)
        self.bytes = Counter("decon_bytes_scanned", "Uncompressed bytes of training lines read", registry=r)
        self.file_bytes = Counter("decon_input_file_bytes", "Bytes of the submitted files on disk "
                                  "(compressed size for compressed files)", registry=r)
        self.contaminated = Counter("decon_contaminated_lines", "Training lines with at least one match",
                                    registry=r)
        self.suite_lines = Counter("decon_suite_contaminated_lines", "Training lines matching an eval suite "
                                   "(a line may count under several suites)", ["eval_suite"], registry=r)
        self.matches = Counter("decon_matches", "Report records (matches) by eval suite", ["eval_suite"],
                               registry=r)
        self.skipped = Counter("decon_skipped_lines", "Training lines skipped, by reason", ["reason"],
                               registry=r)
        self.duration = Histogram("decon_job_duration_seconds", "Seconds from dispatch to the end of a job, "
                                  "by outcome", ["outcome"], buckets=DURATION_BUCKETS, registry=r)
        self.restarts = Counter("decon_worker_restarts", "Worker processes started to replace one that died",
                                registry=r)
        self.last_finished = Gauge("decon_last_job_finished_timestamp_seconds", "Unix time the last job "
                                   "completed or failed (0 before the first)", registry=r)
        for outcome in ("completed", "failed", "requeued"):
            self.finished.labels(outcome)
        for reason in ("invalid_json", "missing_content_key", "non_utf8"):
            self.skipped.labels(reason)

    # ---- events ------------------------------------------------------------------------------
    def job_submitted(self) -> None:
        with self._lock:
            self.submitted.inc()
            self._version += 1

    def job_completed(self, payload: dict[str, Any], seconds: float) -> None:
        """A worker's reply for a finished job: add its counts."""
        with self._lock:
            self.lines.inc(payload.get("lines_total", 0))
            self.tokens.inc(payload.get("tokens", 0))
            self.bytes.inc(payload.get("bytes_read", 0))
            self.file_bytes.inc(payload.get("file_bytes", 0))
            self.contaminated.inc(payload.get("contaminated_lines", 0))
            for suite, n in payload.get("matches_by_suite", {}).items():
                self.matches.labels(suite).inc(n)
            for suite, n in payload.get("contaminated_lines_by_suite", {}).items():
                self.suite_lines.labels(suite).inc(n)
            for reason, n in payload.get("skipped", {}).items():
                self.skipped.labels(reason).inc(n)
            self._ended("completed", seconds)

    def job_failed(self, seconds: float) -> None:
        with self._lock:
            self._ended("failed", seconds)

    def job_requeued(self) -> None:
        with self._lock:
            self.finished.labels("requeued").inc()
            self._version += 1

    def worker_restarted(self) -> None:
        with self._lock:
            self.restarts.inc()
            self._version += 1

    def index_ready(self, index: Any, seconds: float) -> None:
        self.index_info = {"seconds": seconds, **index_size(index)}

    def _ended(self, outcome: str, seconds: float) -> None:
        self.finished.labels(outcome).inc()
        self.duration.labels(outcome).observe(seconds)
        self.last_finished.set(time.time())
        self._version += 1

    # ---- exposition --------------------------------------------------------------------------
    def render(self) -> bytes:
        with self._lock:  # a scrape never sees half of a job's counts
            if self._cached[0] != self._version:
                self._cached = (self._version, generate_latest(self.registry))
            counters = self._cached[1]
        return counters + generate_latest(self.live)


def add_metrics_route(app: FastAPI, metrics: ServerMetrics) -> None:
    """GET /metrics on ``app``."""

    @app.get("/metrics", response_class=Response,
             responses={200: {"content": {CONTENT_TYPE_LATEST: {}},
                              "description": "Prometheus text exposition format"}})
    async def prometheus_metrics() -> Response:
        """Counters and gauges for Prometheus: jobs, queue, workers, lines/tokens/bytes scanned,
        matches per eval suite, skipped lines, job durations, worker restarts, index size."""
        return Response(content=metrics.render(), media_type=CONTENT_TYPE_LATEST)
