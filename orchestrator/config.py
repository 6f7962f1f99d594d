"""Orchestrator options: defaults, YAML loading and command-line overrides."""

from __future__ import annotations

import os
from dataclasses import dataclass as plain_dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass


class ConfigError(ValueError):
    """The configuration is missing a required value or has a malformed one."""


@plain_dataclass(frozen=True)
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


PositiveInt = Annotated[int, Field(ge=1, le=2**31 - 1)]
Count = Annotated[int, Field(ge=0, le=2**31 - 1)]
Seconds = Annotated[float, Field(ge=0.0, le=1e7)]
PositiveSeconds = Annotated[float, Field(gt=0.0, le=1e7)]
S3Uri = Annotated[str, Field(pattern=r"^s3://")]
NonEmpty = Annotated[str, Field(min_length=1)]


@dataclass(config=ConfigDict(strict=True, extra="forbid", allow_inf_nan=False))
class OrchestrationConfig:
    """Every orchestrator option: types, ranges and known keys checked on construction."""

    remote_file_input: S3Uri
    remote_report_output_dir: S3Uri
    remote_cleaned_output_dir: S3Uri | None = None
    server_url: NonEmpty = "http://localhost:8080"
    local_work_dir: NonEmpty = "/tmp/decon-work"
    max_concurrent_jobs: PositiveInt | None = None
    poll_interval: PositiveSeconds = 5.0
    s5cmd_workers: PositiveInt = 50
    cleanup_delay: Seconds = 10.0
    download_batch_size: PositiveInt = 50
    download_queue_max: PositiveInt = 200
    upload_queue_max: PositiveInt = 100
    upload_batch_size: PositiveInt = 50
    upload_batch_timeout: Seconds = 10.0
    download_retry_attempts: PositiveInt = 3
    download_retry_base_delay: Seconds = 5.0
    download_retry_jitter_max: Seconds = 10.0
    s3_endpoint_url: str | None = None
    s5cmd_retry_count: Count = 10
    server_wait_timeout: Seconds = 300.0
    shutdown_grace_seconds: Seconds = 120.0
    metrics_interval: PositiveSeconds = 30.0
    # Set from MAX_FILES_DEBUG, not from YAML.
    max_files_debug: Count | None = None

    @property
    def cleaned_output_dir(self) -> str:
        """Where cleaned files go: the cleaned prefix, or the report prefix when unset."""
        return self.remote_cleaned_output_dir or self.remote_report_output_dir

    @property
    def debug(self) -> bool:
        return self.max_files_debug is not None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"cannot parse {path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(loaded, dict) or not all(isinstance(k, str) for k in loaded):
        raise ConfigError(f"{path}: expected a mapping of options")
    unknown = sorted(set(loaded) - set(_BY_NAME))
    if unknown:
        raise ConfigError(f"{path}: unknown option(s): {', '.join(unknown)}")
    return {k: v for k, v in loaded.items() if v is not None and v != ""}


def _describe(exc: ValidationError) -> str:
    err = exc.errors()[0]
    key = ".".join(str(part) for part in err["loc"]) or "?"
    if err["type"] in ("missing", "missing_argument"):
        return f"{key} is required (set it in the YAML file or with --{key.replace('_', '-')})"
    shown = repr(err.get("input"))
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"{key}: {err['msg'].rstrip('.')} (got {shown})"


def build_config(
    yaml_path: str | os.PathLike[str] | None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> OrchestrationConfig:
    """Merge defaults < YAML file < overrides (non-None values); validate the whole with one model."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = _read_yaml(Path(yaml_path)) if yaml_path else {}
    source = f"{yaml_path}: " if yaml_path else ""
    values.update({k: v for k, v in (overrides or {}).items() if k in _BY_NAME and v is not None})
    for opt in OPTIONS:  # YAML may write a whole number where seconds are expected
        if opt.kind is float and isinstance(values.get(opt.name), int) and not isinstance(values[opt.name], bool):
            values[opt.name] = float(values[opt.name])
    if not values.get("s3_endpoint_url"):
        values["s3_endpoint_url"] = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
    debug_raw = env.get("MAX_FILES_DEBUG", "").strip()
    if debug_raw:
        try:
            values["max_files_debug"] = int(debug_raw)
        except ValueError:
            raise ConfigError(f"MAX_FILES_DEBUG must be an integer, got {debug_raw!r}") from None
        if values["max_files_debug"] < 0:
            raise ConfigError("MAX_FILES_DEBUG must not be negative")
    try:
        return OrchestrationConfig(**values)
    except ValidationError as exc:
        raise ConfigError(source + _describe(exc)) from None
