"""Splitting the input files between the hosts of a cluster.

A file belongs to host ``i`` of ``n`` when the MD5 of its S3 object key (the key only, without
``s3://bucket/``), read as a hexadecimal integer, is ``i`` modulo ``n``. Upstream's orchestrator
uses the same rule, so hosts running either implementation agree on the split.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class HostSlot:
    index: int
    count: int
    from_environment: bool

    def owns(self, s3_key: str) -> bool:
        return owner_of(s3_key, self.count) == self.index


def owner_of(s3_key: str, host_count: int) -> int:
    """Index of the host that processes ``s3_key`` in a cluster of ``host_count`` hosts."""
    return int(hashlib.md5(s3_key.encode("utf-8")).hexdigest(), 16) % host_count


def host_slot_from_env(environ: dict[str, str] | None = None) -> HostSlot:
    """Read PMR_HOST_INDEX / PMR_HOST_COUNT (defaults 0 / 1, i.e. single-host mode)."""
    env = os.environ if environ is None else environ
    raw_index = env.get("PMR_HOST_INDEX")
    raw_count = env.get("PMR_HOST_COUNT")
    try:
        index = int(raw_index) if raw_index not in (None, "") else 0
        count = int(raw_count) if raw_count not in (None, "") else 1
    except ValueError:
        raise ValueError(f"PMR_HOST_INDEX / PMR_HOST_COUNT must be integers (got {raw_index!r} / {raw_count!r})") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"PMR_HOST_INDEX must be in [0, PMR_HOST_COUNT); got {index} of {count}")
    return HostSlot(index=index, count=count, from_environment=raw_index is not None and raw_count is not None)
