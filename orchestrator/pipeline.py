"""The download -> submit -> poll -> upload -> clean-up pipeline for one host's files.

Threads:

- download thread: fetches batches (bounded by ``download_queue_max``) into ``workspace/download``;
- main thread (``Pipeline.run``): submits downloaded files while fewer than ``max_concurrent_jobs``
  are on the server, polls them every ``poll_interval`` seconds, hands finished jobs on;
- upload thread: uploads finished jobs' outputs in batches and deletes local files only after the
  upload is confirmed (and ``cleanup_delay`` has passed).

In debug mode (MAX_FILES_DEBUG) the upload thread copies the outputs into ``workspace/results`` and
``workspace/cleaned`` instead of uploading, and deletes nothing.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from decon.cloud.metrics import Metrics
from decon.cloud.naming import output_names
from decon.cloud.s3listing import InputFile, S3Location, parse_folder_uri
from orchestrator.config import OrchestrationConfig
from orchestrator.server_client import JobRejected, ServerClient, ServerError, ServerInfo
from orchestrator.transfer import Backend, Copy, transfer_with_retries

log = logging.getLogger("decon.orchestrator")

MAX_SUBMIT_ATTEMPTS = 3
MAX_STATUS_ERRORS = 20


@dataclass
class Work:
    file: InputFile
    local_path: Path
    job_id: str | None = None
    status: str = "downloaded"
    output_path: str | None = None
    purified_path: str | None = None
    error: str | None = None
    submit_attempts: int = 0
    status_errors: int = 0
    local_files: list[Path] = field(default_factory=list)


class Pipeline:
    def __init__(
        self,
        config: OrchestrationConfig,
        files: list[InputFile],
        input_location: S3Location,
        backend: Backend,
        server: ServerClient,
        server_info: ServerInfo,
        workspace: Path,
        metrics: Metrics,
        stop: threading.Event,
    ) -> None:
        self.cfg = config
        self.files = files
        self.input = input_location
        self.backend = backend
        self.server = server
        self.purify = server_info.purify
        self.workspace = workspace
        self.metrics = metrics
        self.stop = stop  # first signal: stop downloading/submitting
        self.upload_abort = threading.Event()  # grace period over: abandon uploads
        self.max_jobs = config.max_concurrent_jobs or max(1, server_info.worker_threads * 4)

        self.download_dir = workspace / "download"
        self.markers_dir = workspace / "markers"
        self.results_dir = workspace / "results"
        self.cleaned_dir = workspace / "cleaned"
        self.download_queue: queue.Queue[Work] = queue.Queue()
        self.upload_queue: queue.Queue[Work] = queue.Queue(maxsize=config.upload_queue_max)
        self.active: dict[str, Work] = {}
        self.resubmit: deque[Work] = deque()
        self.pending_downloads = len(files)
        self.downloads_done = threading.Event()
        self.producers_done = threading.Event()
        self.upload_idle = threading.Event()
        self.report_location = parse_folder_uri(config.remote_report_output_dir)
        self.cleaned_location = parse_folder_uri(config.cleaned_output_dir)

    # ------------------------------------------------------------------ download thread
    def _download_loop(self) -> None:
        try:
            index = 0
            while index < len(self.files) and not self.stop.is_set():
                room = self.cfg.download_queue_max - self.download_queue.qsize()
                if room <= 0:
                    self.stop.wait(0.2)
                    continue
                batch = self.files[index:index + min(self.cfg.download_batch_size, room)]
                index += len(batch)
                copies = [Copy(self.input.uri_for(f.relative_path), str(self.download_dir / f.relative_path), f.size)
                          for f in batch]
                failed = transfer_with_retries(
                    self.backend.download, copies, self.cfg.download_retry_attempts,
                    self.cfg.download_retry_base_delay, self.cfg.download_retry_jitter_max,
                    abort=self.stop, what="download")
                failed_dests = {c.dest for c in failed}
                for f, c in zip(batch, copies, strict=True):
                    self.pending_downloads -= 1
                    if c.dest in failed_dests:
                        if self.stop.is_set():
                            continue  # interrupted, not failed: the next run picks it up
                        log.error("FAILED download: %s", self.input.uri_for(f.relative_path))
                        self.metrics.fail(f.relative_path)
                    else:
                        self.metrics.add(downloaded=1, downloaded_bytes=f.size)
                        self.download_queue.put(Work(file=f, local_path=Path(c.dest)))
        except Exception:  # noqa: BLE001
            log.exception("Download thread crashed")
            self.stop.set()
        finally:
            self.downloads_done.set()

    # ------------------------------------------------------------------ main thread
    def _submit_ready(self) -> None:
        while len(self.active) < self.max_jobs and not self.stop.is_set():
            if self.resubmit:
                work = self.resubmit.popleft()
            else:
                try:
                    work = self.download_queue.get_nowait()
                except queue.Empty:
                    return
            work.submit_attempts += 1
            try:
                work.job_id = self.server.submit(str(work.local_path.resolve()))
            except JobRejected as exc:
                self._fail(work, str(exc))
                continue
            except ServerError as exc:
                if work.submit_attempts >= MAX_SUBMIT_ATTEMPTS:
                    self._fail(work, str(exc))
                else:
                    log.warning("Submit of %s failed (%s); will retry", work.file.relative_path, exc)
                    self.resubmit.append(work)
                return  # back off until the next loop
            work.status = "submitted"
            self.active[work.job_id] = work
            self.metrics.add(submitted=1)

    def _poll_active(self) -> None:
        for job_id, work in list(self.active.items()):
            try:
                state = self.server.status(job_id)
            except ServerError as exc:
                work.status_errors += 1
                if work.status_errors >= MAX_STATUS_ERRORS:
                    del self.active[job_id]
                    self._fail(work, f"status unavailable: {exc}")
                continue
            work.status_errors = 0
            if state.status in ("pending", "processing"):
                continue
            del self.active[job_id]
            if state.status == "completed":
                work.status = "completed"
                work.output_path = state.output_path
                work.purified_path = state.purified_path
                self.metrics.add(completed=1)
                self._enqueue_upload(work)
            else:
                self._fail(work, state.error or f"job {state.status}")

    def _enqueue_upload(self, work: Work) -> None:
        while True:
            try:
                self.upload_queue.put(work, timeout=0.5)
                return
            except queue.Full:
                if self.upload_abort.is_set():
                    return

    def _fail(self, work: Work, reason: str) -> None:
        log.error("FAILED %s: %s (local files kept)", work.file.relative_path, reason)
        self.metrics.fail(work.file.relative_path)

    # ------------------------------------------------------------------ upload thread
    def _plan_outputs(self, work: Work) -> list[tuple[Path, str, str]]:
        """(local file, destination prefix kind, relative key) for one completed job."""
        names = output_names(work.file.relative_path)
        plan: list[tuple[Path, str, str]] = []
        if work.output_path:
            report = Path(work.output_path)
            if not report.is_file():
                raise RuntimeError(f"server reported {report} but it does not exist")
            plan.append((report, "report", names.report))
        else:
            marker = self.markers_dir / names.clean_marker
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_bytes(b"")
            plan.append((marker, "report", names.clean_marker))
        if self.purify:
            if not work.purified_path or not Path(work.purified_path).is_file():
                raise RuntimeError("server is purifying but returned no cleaned file")
            plan.append((Path(work.purified_path), "cleaned", names.cleaned))
        elif work.purified_path and Path(work.purified_path).is_file():
            plan.append((Path(work.purified_path), "cleaned", names.cleaned))
        return plan

    def _record_done(self, work: Work) -> None:
        self.metrics.add(processed=1, processed_bytes=work.file.size)
        if work.output_path:
            self.metrics.add(contaminated=1)
        else:
            self.metrics.add(clean=1)
        log.info("DONE %s (%s)", work.file.relative_path, "contaminated" if work.output_path else "clean")

    def _process_batch(self, batch: list[Work], deletions: list[tuple[float, list[Path]]]) -> None:
        plans: dict[int, list[tuple[Path, str, str]]] = {}
        for i, work in enumerate(batch):
            try:
                plans[i] = self._plan_outputs(work)
            except Exception as exc:  # noqa: BLE001
                self._fail(work, str(exc))
        if self.cfg.debug:
            for i, plan in plans.items():
                for local, kind, rel in plan:
                    target = (self.results_dir if kind == "report" else self.cleaned_dir) / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(local, target)
                self._record_done(batch[i])
                log.info("DEBUG kept results for %s in %s", batch[i].file.relative_path, self.workspace)
            return
        copies: dict[int, list[Copy]] = {}
        for i, plan in plans.items():
            copies[i] = [Copy(str(local), (self.report_location if kind == "report" else self.cleaned_location)
                              .uri_for(rel)) for local, kind, rel in plan]
        everything = [c for cs in copies.values() for c in cs]
        if not everything:
            return
        failed = transfer_with_retries(
            self.backend.upload, everything, self.cfg.download_retry_attempts,
            self.cfg.download_retry_base_delay, self.cfg.download_retry_jitter_max,
            abort=self.upload_abort, what="upload")
        failed_set = set(failed)
        self.metrics.add(uploaded_files=len(everything) - len(failed))
        due = time.monotonic() + self.cfg.cleanup_delay
        for i, cs in copies.items():
            work = batch[i]
            if any(c in failed_set for c in cs):
                if self.upload_abort.is_set():
                    log.warning("Upload of %s abandoned at shutdown (local files kept)", work.file.relative_path)
                else:
                    self._fail(work, "upload failed")
                continue
            self._record_done(work)
            to_delete = [work.local_path] + [Path(c.source) for c in cs]
            deletions.append((due, to_delete))

    def _delete_due(self, deletions: list[tuple[float, list[Path]]], force: bool = False) -> None:
        now = time.monotonic()
        keep = []
        for due, paths in deletions:
            if force or due <= now:
                for path in paths:
                    try:
                        path.unlink()
                    except FileNotFoundError:
                        pass
                    except OSError as exc:
                        log.warning("Could not delete %s: %s", path, exc)
            else:
                keep.append((due, paths))
        deletions[:] = keep

    def _upload_loop(self) -> None:
        deletions: list[tuple[float, list[Path]]] = []
        batch: list[Work] = []
        batch_started = 0.0
        try:
            while not self.upload_abort.is_set():
                try:
                    work = self.upload_queue.get(timeout=0.2)
                    if not batch:
                        batch_started = time.monotonic()
                    batch.append(work)
                except queue.Empty:
                    pass
                finishing = self.producers_done.is_set() and self.upload_queue.empty()
                if batch and (len(batch) >= self.cfg.upload_batch_size or finishing
                              or time.monotonic() - batch_started >= self.cfg.upload_batch_timeout):
                    self._process_batch(batch, deletions)
                    batch = []
                self._delete_due(deletions)
                if finishing and not batch:
                    break
        except Exception:  # noqa: BLE001
            log.exception("Upload thread crashed")
            for work in batch:
                self._fail(work, "upload thread crashed")
        finally:
            self._delete_due(deletions, force=True)
            self.upload_idle.set()

    # ------------------------------------------------------------------ driver
    def run(self) -> bool:
        """Process every file; returns False when interrupted before finishing."""
        for folder in (self.download_dir, self.markers_dir):
            folder.mkdir(parents=True, exist_ok=True)
        downloader = threading.Thread(target=self._download_loop, name="download", daemon=True)
        uploader = threading.Thread(target=self._upload_loop, name="upload", daemon=True)
        downloader.start()
        uploader.start()
        total = len(self.files)
        last_poll = 0.0
        last_metrics = time.monotonic()
        while not self.stop.is_set():
            self._submit_ready()
            now = time.monotonic()
            if self.active and now - last_poll >= self.cfg.poll_interval:
                self._poll_active()
                last_poll = time.monotonic()
                self._submit_ready()
            if now - last_metrics >= self.cfg.metrics_interval:
                self.log_metrics()
                last_metrics = now
            if (self.downloads_done.is_set() and self.download_queue.empty() and not self.active
                    and not self.resubmit):
                break
            if self.metrics.finished >= total:
                break
            self.stop.wait(min(0.2, max(self.cfg.poll_interval, 0.01)))

        interrupted = self.stop.is_set()
        if interrupted:
            log.warning("Stopping: no new downloads or submissions; uploading finished jobs "
                        "(up to %.0fs)", self.cfg.shutdown_grace_seconds)
            if self.active:
                self._poll_active()  # pick up jobs that already finished
            if self.active:
                log.warning("%d job(s) still running on the server are left for the next run", len(self.active))
        self.producers_done.set()
        uploader.join(timeout=self.cfg.shutdown_grace_seconds if interrupted else None)
        if uploader.is_alive():
            log.error("Upload grace period over; abandoning remaining uploads (local files kept)")
            self.upload_abort.set()
            uploader.join(timeout=30)
        downloader.join(timeout=30)
        self._prune_empty_dirs()
        self.log_metrics()
        return not interrupted

    def log_metrics(self) -> None:
        log.info(self.metrics.line(self.pending_downloads, self.download_queue.qsize(), len(self.active),
                                   self.upload_queue.qsize()))

    def _prune_empty_dirs(self) -> None:
        if self.cfg.debug:
            return
        for root in (self.download_dir, self.markers_dir):
            for dirpath, _dirs, _files in sorted(os.walk(root), key=lambda t: len(t[0]), reverse=True):
                if Path(dirpath) != root:
                    try:
                        os.rmdir(dirpath)
                    except OSError:
                        pass
