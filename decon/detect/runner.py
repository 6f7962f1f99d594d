"""`decon detect` end to end: index, scan every training file (in worker processes), write
reports and cleaned files, print the summary.

Work is cut into batches of lines; workers are forked after the index is built, so they share
it without copying. Results come back in input order, so reports are byte-identical whatever
the worker count.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from decon.common.columnar import is_columnar
from decon.common.config import DetectionConfig, generate_temp_dir
from decon.common.data_reader import DataFile, DataFileError
from decon.common.file_io import find_data_files, sweep_temp_files
from decon.common.progress import progress_bar
from decon.detect.detector import detector_for
from decon.detect.documents import BATCH_CHARS, BATCH_LINES, DocumentScanner, FileResult, training_file_label
from decon.detect.purify import write_purified, write_purified_parallel
from decon.detect.report import purified_names, render_entry, report_names, write_report_lines
from decon.errors import DeconError

PARALLEL_PURIFY_BYTES = 64 << 20  # inputs this large (on disk) are purified by all workers together

# Set in the parent before forking; read by workers.
_STATE: dict[str, Any] = {}


@dataclass
class DetectSummary:
    files: int = 0
    lines_total: int = 0
    lines_processed: int = 0
    tokens: int = 0
    contaminated_matches: int = 0
    contaminated_documents: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    index_seconds: float = 0.0
    detection_seconds: float = 0.0
    purify_seconds: float = 0.0
    report_dir: str = ""
    cleaned_dir: str | None = None
    reports: list[str] = field(default_factory=list)
    bad_files: list[str] = field(default_factory=list)  # "path: reason" of files skipped (--skip-bad-files)


def _scanner() -> DocumentScanner:
    sc = _STATE.get("scanner")
    if sc is None:
        sc = detector_for(_STATE["config"]).scanner(_STATE["index"], _STATE["config"])
        _STATE["scanner"] = sc
    return sc


def _scan_batch(task: tuple[int, str, list[tuple[int, bytes]], bool]) -> tuple[int, FileResult, bool]:
    """Worker: scan one batch of (line number, raw line) of one file (``last``: the file's final batch)."""
    file_idx, label, lines, last = task
    sc = _scanner()
    res = FileResult(path="")
    batch: list[tuple[int, str]] = []
    for line_num, raw in lines:
        text = sc.parse_line(raw, res, line_num)
        if text is not None:
            batch.append((line_num, text))
    res.lines_total = len(lines)
    if batch:
        sc.scan_batch(batch, res, label)
    return file_idx, res, last


def _purify_task(task: tuple[str, str, list[int]]) -> tuple[str, int, int]:
    src, dest, lines = task
    config = _STATE["config"]
    kept, removed = write_purified(src, dest, lines, config.max_line_bytes, config.content_key)
    return dest, kept, removed


def _exit_on_sigterm() -> None:
    """Pool worker start-up: SIGTERM (``Pool.terminate``) unwinds the task, so a cleaned file
    being written is removed rather than left under its temporary name."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def _batches(files: list[Path], labels: dict[Path, str], sem: threading.Semaphore | None,
             config: DetectionConfig, bad: dict[int, str]
             ) -> Iterator[tuple[int, str, list[tuple[int, bytes | None]], bool]]:
    """Batches of (line number, raw line) per file, read here in the parent, each at most
    BATCH_LINES lines or about BATCH_CHARS bytes (so batches in flight stay bounded in memory
    whatever the line lengths); the flag marks a file's last batch. An unreadable file (missing,
    not regular, truncated, corrupt) raises DeconError, or with ``skip_bad_files`` is recorded in
    ``bad`` before its final batch."""
    for file_idx, f in enumerate(files):
        buf: list[tuple[int, bytes | None]] = []
        size = 0
        try:
            with DataFile(f) as data:
                for line_num, raw in enumerate(data.lines(config.max_line_bytes, config.content_key)):
                    buf.append((line_num, raw))
                    size += len(raw) if raw is not None else 0
                    if len(buf) >= BATCH_LINES or size >= BATCH_CHARS:
                        if sem is not None:
                            sem.acquire()
                        yield file_idx, labels[f], buf, False
                        buf, size = [], 0
        except DataFileError as exc:
            if not config.skip_bad_files:
                raise DeconError(f"cannot read training file {exc}") from None
            bad[file_idx], buf = str(exc), []
        if sem is not None:
            sem.acquire()
        yield file_idx, labels[f], buf, True  # always one (maybe empty) final batch, marks the file's end


def run_detection(config: DetectionConfig, index: Any, *, progress: bool = True) -> DetectSummary:
    """Scan ``config.training_dir`` and write reports (and cleaned files with ``purify``)."""
    training = Path(config.training_dir or "")
    report_dir = Path(config.report_output_dir or generate_temp_dir("decon"))
    outputs = [report_dir.resolve()]
    if config.purify and config.cleaned_output_dir:
        outputs.append(Path(config.cleaned_output_dir).resolve())
    # output folders inside the training folder: never read our own reports as training data
    files = [f for f in find_data_files(training, columnar=True)
             if not any(f.resolve().is_relative_to(o) for o in outputs)]
    base = training if training.is_dir() else training.parent
    if not files:
        raise DeconError(f"no training data files found in {training}")
    summary = DetectSummary(files=len(files))
    summary.report_dir = str(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    rnames = report_names(files, base, detector_for(config).threshold(config), config.mode)
    labels = {f: training_file_label(f) for f in files}
    workers = max(1, int(config.worker_threads or 1))

    _STATE.clear()
    _STATE.update(index=index, config=config)
    _scanner()  # built (and its compiled kernel loaded) before forking: workers inherit it
    start = time.perf_counter()
    per_file: dict[int, FileResult] = {}
    contaminated: dict[int, list[int]] = {}
    bad: dict[int, str] = {}
    sweep_temp_files(report_dir / rnames[f] for f in files)
    pool = None
    finished = False
    try:
        if workers > 1:
            pool = mp.get_context("fork").Pool(workers, initializer=_exit_on_sigterm)
            sem = threading.Semaphore(workers * 4)
            results = pool.imap(_scan_batch, _batches(files, labels, sem, config, bad), chunksize=1)
        else:
            sem = None
            results = map(_scan_batch, _batches(files, labels, None, config, bad))
        with progress_bar(len(files), "Training files", enabled=progress) as bar:
            for file_idx, res, last in results:
                if sem is not None:
                    sem.release()
                acc = per_file.setdefault(file_idx, FileResult(path=str(files[file_idx])))
                acc.lines_total += res.lines_total
                acc.lines_processed += res.lines_processed
                acc.tokens += res.tokens
                acc.entries.extend(res.entries)
                acc.long_lines.extend(res.long_lines)
                for k, v in res.skipped.items():
                    acc.skipped[k] = acc.skipped.get(k, 0) + v
                if last:
                    if file_idx in bad:
                        _skip_file(bad[file_idx], summary)
                    else:
                        _finish_file(files[file_idx], acc, report_dir / rnames[files[file_idx]], summary,
                                     contaminated, file_idx, config.max_line_bytes)
                    del per_file[file_idx]
                    bar.advance()
        summary.detection_seconds = time.perf_counter() - start

        if config.purify:
            cleaned_dir = Path(config.cleaned_output_dir or report_dir)
            summary.cleaned_dir = str(cleaned_dir)
            pnames = purified_names(files, base)
            tasks = [(str(f), str(cleaned_dir / pnames[f]), contaminated.get(i, []))
                     for i, f in enumerate(files) if i not in bad]
            sweep_temp_files(Path(dest) for _, dest, _ in tasks)
            p_start = time.perf_counter()
            # big files are split across the workers; the rest go one file per worker
            big = [t for t in tasks if pool is not None and not is_columnar(t[0])
                   and Path(t[0]).stat().st_size >= PARALLEL_PURIFY_BYTES]
            rest = [t for t in tasks if t not in big]
            with progress_bar(len(tasks), "Purifying files", enabled=progress) as bar:
                for src, dest, lines in big:
                    write_purified_parallel(src, dest, lines, pool, workers, config.max_line_bytes)
                    bar.advance()
                it = pool.imap(_purify_task, rest) if pool is not None else map(_purify_task, rest)
                for _ in it:
                    bar.advance()
            summary.purify_seconds = time.perf_counter() - p_start
        finished = True
    finally:
        if pool is not None:
            _stop_pool(pool, finished)
        _STATE.clear()
    return summary


def _stop_pool(pool: Any, finished: bool, grace: float = 10.0) -> None:
    """Stop the workers. After a finished run the pool is closed: idle workers take the stop
    sentinel and exit normally. An interrupted run terminates them (SIGTERM, so a cleaned file being
    written is removed). Workers still alive after ``grace`` seconds are killed: a worker stopped
    by a signal at the wrong moment must not hang the run."""
    procs = list(pool._pool)  # the workers; Pool.join has no timeout

    def stop() -> None:
        if finished:
            pool.close()
        else:
            pool.terminate()
        pool.join()

    stopper = threading.Thread(target=stop, daemon=True)
    stopper.start()
    stopper.join(grace)
    if stopper.is_alive():
        for p in procs:
            if p.is_alive():
                p.kill()
        stopper.join(grace)


def _skip_file(reason: str, summary: DetectSummary) -> None:
    print(f"Warning: skipped unreadable training file {reason}", file=sys.stderr)
    summary.bad_files.append(reason)


def _warn_long_lines(path: Path, long_lines: list[int], limit: int, shown: int = 10) -> None:
    for n in long_lines[:shown]:
        print(f"Warning: {path}: line {n + 1} is longer than max_line_bytes ({limit:,} bytes); skipped",
              file=sys.stderr)
    if len(long_lines) > shown:
        print(f"Warning: {path}: {len(long_lines) - shown:,} more lines over max_line_bytes skipped",
              file=sys.stderr)


def _finish_file(path: Path, res: FileResult, report_path: Path, summary: DetectSummary,
                 contaminated: dict[int, list[int]], file_idx: int, max_line_bytes: int) -> None:
    _warn_long_lines(path, res.long_lines, max_line_bytes)
    summary.lines_total += res.lines_total
    summary.lines_processed += res.lines_processed
    summary.tokens += res.tokens
    for k, v in res.skipped.items():
        summary.skipped[k] = summary.skipped.get(k, 0) + v
    if not res.entries:
        return
    lines = sorted({e["training_line"] for e in res.entries})
    contaminated[file_idx] = lines
    summary.contaminated_matches += len(res.entries)
    summary.contaminated_documents += len(lines)
    write_report_lines((render_entry(e) for e in res.entries), report_path)
    summary.reports.append(str(report_path))


def announce_dirs(config: DetectionConfig, log: Callable[[str], None] = print) -> None:
    rd = str(config.report_output_dir)
    hint = " (set report directory with --report-output-dir)" if "/decon-" in rd and rd.startswith(
        str(Path(generate_temp_dir("x")).parent)) else ""
    log(f"Contamination report output directory: {rd}{hint}")
    if config.purify and config.cleaned_output_dir:
        cd = str(config.cleaned_output_dir)
        hint = " (set cleaned directory with --cleaned-output-dir)" if "/decon-cleaned-" in cd else ""
        log(f"Cleaned output directory: {cd}{hint}")

