"""Orchestrator options: defaults, YAML loading and command-line overrides."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """The configuration is missing a required value or has a malformed one."""


@dataclass(frozen=True)
class Option:
    name: str
    kind: type
    default: Any
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


# Every option, in the order shown by --help. The first block mirrors upstream's keys.
OPTIONS: list[Option] = [
    Option("remote_file_input", str, None, "S3 prefix (folder) holding the training files to check"),
    Option("remote_report_output_dir", str, None,
           "S3 prefix receiving {basename}.report.jsonl reports and {basename}.clean markers"),
    Option("remote_cleaned_output_dir", str, None,
           "S3 prefix receiving {basename}.clean.jsonl.gz cleaned files when the server purifies "
           "(default: the report prefix)"),
    Option("server_url", str, "http://localhost:8080", "Base URL of the decon server"),
    Option("local_work_dir", str, "/tmp/decon-work",
           "Local directory for workspaces; each input prefix gets input-<hash>/ below it"),
    Option("max_concurrent_jobs", int, None,
           "Jobs in flight on the server at once (default: the server's worker_threads x 4)"),
    Option("poll_interval", float, 5.0, "Seconds between job status polls"),
    Option("s5cmd_workers", int, 50, "Parallel transfers inside one s5cmd batch (--numworkers)"),
    Option("cleanup_delay", float, 10.0,
           "Seconds to keep a job's local files after its upload is confirmed, before deleting them"),
    Option("download_batch_size", int, 50, "Files fetched per download batch"),
    Option("download_queue_max", int, 200, "Downloaded files allowed to wait for submission"),
    Option("upload_queue_max", int, 100, "Finished jobs allowed to wait for upload"),
    Option("upload_batch_size", int, 50, "Finished jobs uploaded per upload batch"),
    Option("upload_batch_timeout", float, 10.0,
           "Seconds to wait for a full upload batch before uploading a partial one"),
    Option("download_retry_attempts", int, 3, "Attempts per transfer batch (downloads and uploads)"),
    Option("download_retry_base_delay", float, 5.0, "Base delay in seconds before a transfer retry"),
    Option("download_retry_jitter_max", float, 10.0, "Random extra delay (0..this seconds) added to a retry"),
    # Options of this port (not in upstream).
    Option("s3_endpoint_url", str, None,
           "Custom S3 endpoint for S3-compatible stores (default: $AWS_ENDPOINT_URL, else AWS)"),
    Option("s5cmd_retry_count", int, 10, "s5cmd's own retry count for throttled/failed requests"),
    Option("server_wait_timeout", float, 300.0, "Seconds to wait for the server's /health to turn ready"),
    Option("shutdown_grace_seconds", float, 120.0,
           "After the first SIGINT/SIGTERM, seconds allowed for uploading already finished jobs"),
    Option("metrics_interval", float, 30.0, "Seconds between metrics lines"),
]

_BY_NAME = {opt.name: opt for opt in OPTIONS}
REQUIRED = ("remote_file_input", "remote_report_output_dir")


@dataclass
class OrchestrationConfig:
    remote_file_input: str
    remote_report_output_dir: str
    remote_cleaned_output_dir: str | None = None
    server_url: str = "http://localhost:8080"
    local_work_dir: str = "/tmp/decon-work"
    max_concurrent_jobs: int | None = None
    poll_interval: float = 5.0
    s5cmd_workers: int = 50
    cleanup_delay: float = 10.0
    download_batch_size: int = 50
    download_queue_max: int = 200
    upload_queue_max: int = 100
    upload_batch_size: int = 50
    upload_batch_timeout: float = 10.0
    download_retry_attempts: int = 3
    download_retry_base_delay: float = 5.0
    download_retry_jitter_max: float = 10.0
    s3_endpoint_url: str | None = None
    s5cmd_retry_count: int = 10
    server_wait_timeout: float = 300.0
    shutdown_grace_seconds: float = 120.0
    metrics_interval: float = 30.0
    # Set from MAX_FILES_DEBUG, not from YAML.
    max_files_debug: int | None = field(default=None)

    @property
    def cleaned_output_dir(self) -> str:
        """Where cleaned files go: the cleaned prefix, or the report prefix when unset."""
        return self.remote_cleaned_output_dir or self.remote_report_output_dir

    @property
    def debug(self) -> bool:
        return self.max_files_debug is not None


def _coerce(opt: Option, value: Any) -> Any:
    if value is None or value == "":
        return None
    try:
        if opt.kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if opt.kind is float:
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{opt.name}: expected {opt.kind.__name__}, got {value!r}") from None


def build_config(
    yaml_path: str | os.PathLike[str] | None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> OrchestrationConfig:
    """Merge defaults < YAML file < overrides (non-None values) < nothing else; validate."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    if yaml_path:
        path = Path(yaml_path)
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"cannot parse {path}: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of options")
        unknown = sorted(set(loaded) - set(_BY_NAME))
        if unknown:
            raise ConfigError(f"{path}: unknown option(s): {', '.join(unknown)}")
        data.update(loaded)
    for key, value in (overrides or {}).items():
        if key in _BY_NAME and value is not None:
            data[key] = value

    values: dict[str, Any] = {}
    for opt in OPTIONS:
        raw = data.get(opt.name, opt.default)
        values[opt.name] = _coerce(opt, raw) if raw is not None else opt.default
    if not values["s3_endpoint_url"]:
        values["s3_endpoint_url"] = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
    for name in REQUIRED:
        if not values.get(name):
            raise ConfigError(f"{name} is required (set it in the YAML file or with --{name.replace('_', '-')})")
    for name in ("remote_file_input", "remote_report_output_dir", "remote_cleaned_output_dir"):
        if values.get(name) and not str(values[name]).startswith("s3://"):
            raise ConfigError(f"{name} must be an s3:// URI, got {values[name]!r}")
    for name in ("s5cmd_workers", "download_batch_size", "download_queue_max", "upload_queue_max",
                 "upload_batch_size", "download_retry_attempts"):
        if values[name] < 1:
            raise ConfigError(f"{name} must be at least 1")
    if values["max_concurrent_jobs"] is not None and values["max_concurrent_jobs"] < 1:
        raise ConfigError("max_concurrent_jobs must be at least 1")

    debug_raw = env.get("MAX_FILES_DEBUG", "").strip()
    if debug_raw:
        try:
            values["max_files_debug"] = int(debug_raw)
        except ValueError:
            raise ConfigError(f"MAX_FILES_DEBUG must be an integer, got {debug_raw!r}") from None
        if values["max_files_debug"] < 0:
            raise ConfigError("MAX_FILES_DEBUG must not be negative")

    known = {f.name for f in fields(OrchestrationConfig)}
    return OrchestrationConfig(**{k: v for k, v in values.items() if k in known})
