"""Reusing a built reference index (placeholder: always builds; the cache arrives with the speed work)."""

from __future__ import annotations

from decon.common.config import DetectionConfig
from decon.detect.reference_index import ReferenceIndex, build_index


def load_or_build_index(config: DetectionConfig, *, use_cache: bool = True, progress: bool = True) -> ReferenceIndex:
    return build_index(config, progress=progress)
