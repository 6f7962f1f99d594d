"""The engine's public surface, used by the CLI, the server and the benchmarks.

    index = build_index(config)                 # once, before forking workers
    result = scan_file(path, index, config)     # in any process that has `index`
    write_report(result.entries, dest)          # atomic; only when result.entries
    write_purified(path, dest, result.contaminated_lines)   # atomic, gzip, streaming
"""

from __future__ import annotations

import os

from decon.common.config import DetectionConfig
from decon.common.data_reader import DataFile
from decon.detect.detector import detector_of_index
from decon.detect.documents import DocumentScanner, FileResult
from decon.detect.index_cache import load_or_build_index
from decon.detect.purify import write_purified
from decon.detect.reference_index import ReferenceIndex
from decon.detect.report import write_report

__all__ = ["FileResult", "ReferenceIndex", "build_index", "prepare_scanner", "scan_file", "write_report", "write_purified"]

_scanners: dict[int, DocumentScanner] = {}


def build_index(config: DetectionConfig, *, progress: bool = True, use_cache: bool = True) -> ReferenceIndex:
    """Build (or, with ``use_cache``, load from the index cache) the reference index for ``config``
    (a MinHash index with ``mode: minhash``)."""
    return load_or_build_index(config, use_cache=use_cache, progress=progress)


def scan_file(path: str | os.PathLike[str] | DataFile, index: ReferenceIndex, config: DetectionConfig
              ) -> FileResult:
    """Scan one training file (a path or an open :class:`DataFile`); ``entries`` are its report
    records in report order."""
    return prepare_scanner(index, config).scan_file(path)


def prepare_scanner(index: ReferenceIndex, config: DetectionConfig) -> DocumentScanner:
    """The scanner :func:`scan_file` uses for this index and config, built now (lookup tables,
    compiled kernel loaded) and kept: call it to warm a long-lived worker up before its first file."""
    key = id(index) ^ id(config)
    sc = _scanners.get(key)
    if sc is None or sc.index is not index or sc.config is not config:
        sc = detector_of_index(index).scanner(index, config)
        _scanners.clear()
        _scanners[key] = sc
    return sc
