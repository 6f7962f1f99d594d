"""S3 URIs, client construction and prefix listings."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from decon.cloud.naming import is_input_name

log = logging.getLogger("decon.orchestrator")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or ending with "/"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def key_for(self, relative: str) -> str:
        return self.prefix + relative

    def uri_for(self, relative: str) -> str:
        return f"s3://{self.bucket}/{self.key_for(relative)}"


def parse_folder_uri(uri: str) -> S3Location:
    """``s3://bucket/some/prefix`` -> bucket + prefix treated as a folder (trailing slash added)."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    prefix = parsed.path.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return S3Location(parsed.netloc, prefix)


def make_client(endpoint_url: str | None) -> Any:
    """A boto3 S3 client, pointed at ``endpoint_url`` when given (S3-compatible stores)."""
    import boto3
    from botocore.config import Config

    cfg = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=60,
                 s3={"addressing_style": "path"} if endpoint_url else {})
    return boto3.client("s3", endpoint_url=endpoint_url or None, config=cfg)


@dataclass(frozen=True)
class InputFile:
    key: str  # object key in the input bucket
    size: int
    relative_path: str  # key below the input prefix, folders kept

    @property
    def name(self) -> str:
        return self.relative_path.rsplit("/", 1)[-1]


def _iter_objects(client: Any, location: S3Location):
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=location.bucket, Prefix=location.prefix):
        yield from page.get("Contents", [])


def list_inputs(client: Any, location: S3Location) -> list[InputFile]:
    """Every .json/.jsonl file (optionally compressed) and Parquet/Arrow file below the prefix."""
    found = []
    for obj in _iter_objects(client, location):
        key = obj["Key"]
        relative = key[len(location.prefix):]
        if not relative or key.endswith("/") or not is_input_name(relative.rsplit("/", 1)[-1]):
            continue
        found.append(InputFile(key=key, size=int(obj.get("Size", 0)), relative_path=relative))
    return found


def list_relative_keys(client: Any, location: S3Location) -> set[str]:
    """All object keys below the prefix, relative to it."""
    return {obj["Key"][len(location.prefix):] for obj in _iter_objects(client, location)}
