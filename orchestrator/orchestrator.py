#!/usr/bin/env python3
"""Run decon over an S3 prefix through a local `decon server`.

Usage: python orchestrator/orchestrator.py --config config/orchestration.yaml [--flag value ...]
   or: decon orchestrate --config config/orchestration.yaml [...]

Environment: PMR_HOST_INDEX / PMR_HOST_COUNT (this host's share of the files), MAX_FILES_DEBUG=N
(process at most N files, upload and delete nothing), AWS_ENDPOINT_URL (S3-compatible store).
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__" and not __package__:  # run as a script: make the package importable
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]
    sys.path.insert(0, os.path.dirname(_here))

import argparse  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from decon.cloud.metrics import Metrics  # noqa: E402
from decon.cloud.naming import is_finished, output_names  # noqa: E402
from decon.cloud.s3listing import list_inputs, list_relative_keys, make_client, parse_folder_uri  # noqa: E402
from orchestrator.config import OPTIONS, ConfigError, OrchestrationConfig, build_config  # noqa: E402
from orchestrator.partition import host_slot_from_env  # noqa: E402
from orchestrator.pipeline import Pipeline  # noqa: E402
from orchestrator.server_client import ServerClient, ServerInfo  # noqa: E402
from orchestrator.transfer import make_backend  # noqa: E402
from orchestrator.workspace import LockHeld, WorkspaceLock, workspace_dir  # noqa: E402

log = logging.getLogger("decon.orchestrator")

EXIT_OK = 0
EXIT_FAILED_FILES = 1
EXIT_CONFIG = 2
EXIT_LOCKED = 3
EXIT_SERVER_UNAVAILABLE = 4
EXIT_S3_ERROR = 5
EXIT_SIGNAL_BASE = 128

GB = 1024 ** 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --config and one flag per option (each overrides the YAML value)."""
    parser.add_argument("--config", help="YAML file with the options below (flags override it)")
    for opt in OPTIONS:
        kind: Any = opt.kind
        default_note = "" if opt.default is None else f" [default: {opt.default}]"
        parser.add_argument(opt.flag, dest=opt.name, type=kind, default=None, metavar=opt.name.upper(),
                            help=opt.help + default_note)


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    return {opt.name: getattr(args, opt.name, None) for opt in OPTIONS}


def setup_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)


class SignalGate:
    """First SIGINT/SIGTERM sets ``stop``; the second one releases the lock and exits immediately."""

    def __init__(self, lock: WorkspaceLock) -> None:
        self.stop = threading.Event()
        self.lock = lock
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.stop.is_set():
            log.error("Second %s: exiting now", signal.Signals(signum).name)
            self.lock.release()
            logging.shutdown()
            os._exit(EXIT_SIGNAL_BASE + signum)
        self.signum = signum
        log.warning("Received %s: finishing uploads of completed jobs, then exiting "
                    "(send it again to exit at once)", signal.Signals(signum).name)
        self.stop.set()


def _warn_server_mismatch(config: OrchestrationConfig, info: ServerInfo) -> None:
    if info.purify and not config.remote_cleaned_output_dir:
        log.warning("The server purifies but remote_cleaned_output_dir is not set: cleaned files will be "
                    "uploaded to the report prefix %s", config.remote_report_output_dir)
    if not info.purify and config.remote_cleaned_output_dir:
        log.warning("remote_cleaned_output_dir is set but the server runs without --purify: no cleaned files "
                    "will be produced")


def _select_files(config: OrchestrationConfig, client: Any, info: ServerInfo) -> tuple[list[Any], int, int]:
    slot = host_slot_from_env()
    input_loc = parse_folder_uri(config.remote_file_input)
    everything = list_inputs(client, input_loc)
    log.info("Found %d input files (%.2f GB) under %s", len(everything), sum(f.size for f in everything) / GB,
             input_loc.uri)
    report_keys = list_relative_keys(client, parse_folder_uri(config.remote_report_output_dir))
    cleaned_loc = parse_folder_uri(config.cleaned_output_dir)
    cleaned_keys = (report_keys if cleaned_loc == parse_folder_uri(config.remote_report_output_dir)
                    else list_relative_keys(client, cleaned_loc))
    mine, done, other = [], 0, 0
    seen_outputs: dict[str, str] = {}
    for f in everything:
        stem = output_names(f.relative_path).report
        if stem in seen_outputs:
            log.warning("%s and %s share output names; outputs of one will overwrite the other",
                        seen_outputs[stem], f.relative_path)
        seen_outputs[stem] = f.relative_path
        if not slot.owns(f.key):
            other += 1
        elif is_finished(f.relative_path, report_keys, cleaned_keys, info.purify):
            done += 1
        else:
            mine.append(f)
    mine.sort(key=lambda f: (-f.size, f.key))
    return mine, done, other


def run(config: OrchestrationConfig) -> int:
    """Run the orchestrator to completion; returns the process exit code."""
    setup_logging()
    try:
        slot = host_slot_from_env()
    except ValueError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    if not slot.from_environment:
        log.warning("PMR_HOST_INDEX / PMR_HOST_COUNT not set: single-host mode, this host takes every file")
    log.info("Host %d of %d", slot.index, slot.count)

    workspace = workspace_dir(config.local_work_dir, config.remote_file_input)
    log.info("Input %s -> workspace %s", config.remote_file_input, workspace)
    lock = WorkspaceLock(workspace)
    try:
        lock.acquire()
    except LockHeld as exc:
        log.error("Refusing to start: %s", exc)
        return EXIT_LOCKED
    gate = SignalGate(lock)
    gate.install()
    metrics = Metrics()
    try:
        if config.debug:
            log.warning("MAX_FILES_DEBUG=%d: at most %d file(s); nothing is uploaded or deleted, results stay "
                        "in %s", config.max_files_debug, config.max_files_debug, workspace)
        server = ServerClient(config.server_url)
        log.info("Waiting for the server at %s (up to %.0fs)", config.server_url, config.server_wait_timeout)
        info = server.wait_ready(config.server_wait_timeout, stop=gate.stop)
        if info is None:
            if gate.stop.is_set():
                return EXIT_SIGNAL_BASE + (gate.signum or signal.SIGINT)
            log.error("The server at %s did not become ready within %.0fs", config.server_url,
                      config.server_wait_timeout)
            return EXIT_SERVER_UNAVAILABLE
        log.info("Server ready: worker_threads=%d purify=%s mode=%s recall=%s semantic=%s threshold=%s",
                 info.worker_threads, info.purify, info.mode, info.recall, info.semantic, info.threshold)
        _warn_server_mismatch(config, info)

        client = make_client(config.s3_endpoint_url)
        try:
            files, done, other = _select_files(config, client, info)
        except Exception as exc:  # noqa: BLE001 - botocore raises many kinds
            log.error("Listing S3 failed: %s", exc)
            return EXIT_S3_ERROR
        if config.debug and config.max_files_debug is not None:
            files = files[: config.max_files_debug]
        total_bytes = sum(f.size for f in files)
        log.warning("Files to process: %d (%.2f GB; largest first); skipped %d already finished, %d for "
                    "other hosts", len(files), total_bytes / GB, done, other)
        metrics.files_total = len(files)
        metrics.bytes_total = total_bytes
        completed = True
        if files:
            backend = make_backend(client, config.s5cmd_workers, config.s5cmd_retry_count,
                                   config.s3_endpoint_url, workspace / "tmp")
            log.info("Transfers via %s", backend.name)
            pipeline = Pipeline(config, files, parse_folder_uri(config.remote_file_input), backend, server, info,
                                workspace, metrics, gate.stop)
            log.info("Up to %d concurrent jobs", pipeline.max_jobs)
            metrics.started = time.monotonic()
            completed = pipeline.run()
        if metrics.failed_names:
            log.warning("Failed files (%d):", len(metrics.failed_names))
            for name in metrics.failed_names[:20]:
                log.warning("  - %s", name)
        log.warning("%s", metrics.summary())
        if not completed:
            log.warning("Interrupted: %d file(s) unfinished; rerun to resume", metrics.files_total - metrics.finished)
            return EXIT_SIGNAL_BASE + (gate.signum or signal.SIGINT)
        log.warning("WORK COMPLETE EXITING")
        return EXIT_FAILED_FILES if metrics.failed else EXIT_OK
    finally:
        lock.release()
        gate.restore()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orchestrator.py", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


def run_from_args(args: argparse.Namespace) -> int:
    setup_logging()
    try:
        config = build_config(args.config, overrides_from_args(args))
    except ConfigError as exc:
        log.error("Configuration error: %s", exc)
        return EXIT_CONFIG
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
