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

import importlib
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

def _lazy(module: str, name: str) -> Callable[..., Any]:
    """``module.name(...)``, importing ``module`` at the first call."""
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)
    return call


def _loader(module: str, index_cls: str, stats_cls: str) -> Callable[..., Any]:
    """Rebuild an index of ``module.index_cls`` from its arrays, meta and stats dict."""
    def load(arrays: dict[str, np.ndarray], meta: dict[str, Any], stats: dict[str, Any]) -> Any:
        mod = importlib.import_module(module)
        stats_type = getattr(mod, stats_cls)
        fields = stats_type.__dataclass_fields__
        return getattr(mod, index_cls)(arrays=arrays, meta=meta,
                                       stats=stats_type(**{k: v for k, v in stats.items() if k in fields}))
    return load


_SIMPLE_INDEX, _MINHASH_INDEX = "decon.detect.reference_index", "decon.detect.minhash_index"
SIMPLE = Detector("simple", _lazy(_SIMPLE_INDEX, "build_index"), _lazy("decon.detect.detection", "Scanner"),
                  lambda c: c.contamination_score_threshold, index_summary_table,
                  _loader(_SIMPLE_INDEX, "ReferenceIndex", "IndexStats"))
MINHASH = Detector("minhash", _lazy(_MINHASH_INDEX, "build_minhash_index"),
                   _lazy("decon.detect.minhash_scan", "MinHashScanner"), lambda c: c.jaccard_similarity_threshold,
                   minhash_summary_table, _loader(_MINHASH_INDEX, "MinHashIndex", "MinHashStats"))
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
