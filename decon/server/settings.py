"""The server's effective settings, derived from its flags and the detection config."""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from decon.common.config import DetectionConfig, generate_temp_dir
from decon.errors import DeconError
from decon.server.limits import (
    DEFAULT_LINGER_BYTES,
    DEFAULT_LINGER_SECONDS,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_REQUEST_TIMEOUT,
)
from decon.server.paths import resolve_roots

STATE_SUBDIR = ".decon-server"


@dataclass
class ServerSettings:
    host: str
    port: int
    report_dir: str
    cleaned_dir: str | None  # set exactly when purify is on
    purify: bool
    workers: int
    state_dir: str
    shutdown_grace: float
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    linger_bytes: int = DEFAULT_LINGER_BYTES
    linger_seconds: float = DEFAULT_LINGER_SECONDS
    allowed_roots: list[Path] = field(default_factory=list)
    report_dir_generated: bool = False
    cleaned_dir_generated: bool = False


def settings_from(args: argparse.Namespace, config: DetectionConfig) -> ServerSettings:
    """Fill in upstream's defaults (temporary report / cleaned dirs) and check the server flags.

    Updates ``config`` so the engine sees the same directories."""
    if not 0 <= args.port <= 65535:
        raise DeconError(f"--port must be between 0 and 65535, got {args.port}")
    if args.shutdown_grace < 0:
        raise DeconError(f"--shutdown-grace must not be negative, got {args.shutdown_grace}")
    max_connections = getattr(args, "max_connections", DEFAULT_MAX_CONNECTIONS)
    request_timeout = getattr(args, "request_timeout", DEFAULT_REQUEST_TIMEOUT)
    if max_connections < 1:
        raise DeconError(f"--max-connections must be at least 1, got {max_connections}")
    if not (request_timeout > 0 and math.isfinite(request_timeout)):
        raise DeconError(f"--request-timeout must be positive, got {request_timeout}")
    linger_bytes = getattr(args, "linger_bytes", DEFAULT_LINGER_BYTES)
    linger_seconds = getattr(args, "linger_seconds", DEFAULT_LINGER_SECONDS)
    if linger_bytes < 0:
        raise DeconError(f"--linger-bytes must not be negative, got {linger_bytes}")
    if not (linger_seconds >= 0 and math.isfinite(linger_seconds)):
        raise DeconError(f"--linger-seconds must be a non-negative number, got {linger_seconds}")
    if config.worker_threads < 1:
        raise DeconError(f"worker_threads must be at least 1, got {config.worker_threads}")

    report_generated = not config.report_output_dir
    if report_generated:
        config.report_output_dir = generate_temp_dir("decon")
    cleaned_generated = False
    if config.purify and not config.cleaned_output_dir:
        config.cleaned_output_dir = generate_temp_dir("decon-cleaned")
        cleaned_generated = True
    report_dir = os.path.abspath(str(config.report_output_dir))
    cleaned_dir = os.path.abspath(str(config.cleaned_output_dir)) if config.purify else None
    config.report_output_dir = report_dir
    if cleaned_dir:
        config.cleaned_output_dir = cleaned_dir

    roots = []
    for root in args.allowed_root or []:
        if not os.path.isdir(root):
            raise DeconError(f"--allowed-root is not a directory: {root}")
        roots.append(root)
    state_dir = args.state_dir or os.path.join(report_dir, STATE_SUBDIR)
    return ServerSettings(
        host=args.host, port=args.port, report_dir=report_dir, cleaned_dir=cleaned_dir,
        purify=bool(config.purify), workers=int(config.worker_threads),
        state_dir=os.path.abspath(state_dir), shutdown_grace=float(args.shutdown_grace),
        max_connections=int(max_connections), request_timeout=float(request_timeout),
        linger_bytes=int(linger_bytes), linger_seconds=float(linger_seconds),
        allowed_roots=resolve_roots(roots), report_dir_generated=report_generated,
        cleaned_dir_generated=cleaned_generated,
    )


def create_output_dirs(settings: ServerSettings) -> None:
    """Create the report and cleaned directories now, so a bad path fails at start-up."""
    for label, path in (("report output", settings.report_dir), ("cleaned output", settings.cleaned_dir)):
        if not path:
            continue
        try:
            Path(path).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeconError(f"cannot create {label} directory {path}: {exc.strerror}") from None
        if not os.access(path, os.W_OK | os.X_OK):
            raise DeconError(f"{label} directory is not writable: {path}")
