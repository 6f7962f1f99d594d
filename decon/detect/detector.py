"""The detector interface: what the file loop, reports, purify, server and Ray runner need from an
algorithm, and nothing more.

    det = detector_for(config)             # by config.mode: "simple" or "minhash"
    index = det.build(config, progress)    # the reference index (arrays + meta + stats)
    scanner = det.scanner(index, config)   # per process; scanner.scan_batch / scan_file
    det.threshold(config)                  # the value in report names: {stem}-{mode}-{t:.2f}.jsonl
    det.summary(index.stats)               # the index table `decon detect` prints

An index is any object with ``arrays`` (name -> numpy array), ``meta`` (JSON-able dict) and
``stats`` (with ``build_seconds``, ``from_cache`` and ``to_dict()``): the index cache stores and
loads it without knowing the algorithm (``det.load(arrays, meta, stats_dict)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from decon.common.config import DetectionConfig
from decon.detect.detection import Scanner
from decon.detect.display import index_summary_table, minhash_summary_table
from decon.detect.documents import DocumentScanner
from decon.detect.minhash_index import MinHashIndex, MinHashStats, build_minhash_index
from decon.detect.minhash_scan import MinHashScanner
from decon.detect.reference_index import IndexStats, ReferenceIndex, build_index
from decon.errors import DeconError

MODES = ("simple", "minhash")


@dataclass(frozen=True)
class Detector:
    mode: str
    build: Callable[..., Any]
    scanner: Callable[[Any, DetectionConfig], DocumentScanner]
    threshold: Callable[[DetectionConfig], float]
    summary: Callable[[Any], str]
    load: Callable[[dict[str, np.ndarray], dict[str, Any], dict[str, Any]], Any]


def _loader(index_cls: type, stats_cls: type) -> Callable[[dict[str, np.ndarray], dict[str, Any], dict[str, Any]], Any]:
    def load(arrays: dict[str, np.ndarray], meta: dict[str, Any], stats: dict[str, Any]) -> Any:
        fields = stats_cls.__dataclass_fields__
        return index_cls(arrays=arrays, meta=meta, stats=stats_cls(**{k: v for k, v in stats.items() if k in fields}))
    return load


SIMPLE = Detector("simple", build_index, Scanner, lambda c: c.contamination_score_threshold,
                  index_summary_table, _loader(ReferenceIndex, IndexStats))
MINHASH = Detector("minhash", build_minhash_index, MinHashScanner, lambda c: c.jaccard_similarity_threshold,
                   minhash_summary_table, _loader(MinHashIndex, MinHashStats))
_BY_MODE = {"simple": SIMPLE, "minhash": MINHASH}


def detector_for(config: DetectionConfig) -> Detector:
    """The detector ``config.mode`` names."""
    det = _BY_MODE.get(str(config.mode).lower())
    if det is None:
        raise DeconError(f"unknown mode {config.mode!r}: expected one of {', '.join(MODES)}")
    return det


def detector_of_index(index: Any) -> Detector:
    """The detector that built ``index``."""
    return MINHASH if isinstance(index, MinHashIndex) else SIMPLE
