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
from decon.detect.display import index_summary_table, minhash_summary_table
from decon.detect.documents import DocumentScanner
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


# The algorithm modules are imported on first use: a process that only loads an index (the
# `decon ray` driver, `decon --version`) or only builds one (``index_build``) does not pay for
# numba's compiler or datasketch.

def _simple_build(config: DetectionConfig, *, progress: bool = True) -> Any:
    from decon.detect.reference_index import build_index

    return build_index(config, progress=progress)


def _simple_scanner(index: Any, config: DetectionConfig) -> DocumentScanner:
    from decon.detect.detection import Scanner

    return Scanner(index, config)


def _simple_load(arrays: dict[str, np.ndarray], meta: dict[str, Any], stats: dict[str, Any]) -> Any:
    from decon.detect.reference_index import IndexStats, ReferenceIndex

    return _load(ReferenceIndex, IndexStats, arrays, meta, stats)


def _minhash_build(config: DetectionConfig, *, progress: bool = True) -> Any:
    from decon.detect.minhash_index import build_minhash_index

    return build_minhash_index(config, progress=progress)


def _minhash_scanner(index: Any, config: DetectionConfig) -> DocumentScanner:
    from decon.detect.minhash_scan import MinHashScanner

    return MinHashScanner(index, config)


def _minhash_load(arrays: dict[str, np.ndarray], meta: dict[str, Any], stats: dict[str, Any]) -> Any:
    from decon.detect.minhash_index import MinHashIndex, MinHashStats

    return _load(MinHashIndex, MinHashStats, arrays, meta, stats)


def _load(index_cls: type, stats_cls: type, arrays: dict[str, np.ndarray], meta: dict[str, Any],
          stats: dict[str, Any]) -> Any:
    fields = stats_cls.__dataclass_fields__
    return index_cls(arrays=arrays, meta=meta, stats=stats_cls(**{k: v for k, v in stats.items() if k in fields}))


SIMPLE = Detector("simple", _simple_build, _simple_scanner, lambda c: c.contamination_score_threshold,
                  index_summary_table, _simple_load)
MINHASH = Detector("minhash", _minhash_build, _minhash_scanner, lambda c: c.jaccard_similarity_threshold,
                   minhash_summary_table, _minhash_load)
_BY_MODE = {"simple": SIMPLE, "minhash": MINHASH}


def detector_for(config: DetectionConfig) -> Detector:
    """The detector ``config.mode`` names."""
    det = _BY_MODE.get(str(config.mode).lower())
    if det is None:
        raise DeconError(f"unknown mode {config.mode!r}: expected one of {', '.join(MODES)}")
    return det


def detector_of_index(index: Any) -> Detector:
    """The detector that built ``index``."""
    return MINHASH if index.meta.get("kind") == "minhash" else SIMPLE
