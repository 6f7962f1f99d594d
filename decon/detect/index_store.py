"""An index on disk: one ``.npy`` per array plus ``meta.json`` (meta, build stats, array manifest).

This is the layout of an index cache entry, and also how a child build process hands its index to
the parent (``index_build``). It knows nothing of the algorithms, so a build process can import it
without the scanners. Arrays are loaded with ``mmap_mode="r"``: the pages are shared with forked
workers and with every other process that maps the same entry.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

#: Bump when the on-disk layout changes.
CACHE_FORMAT_VERSION = 1
META_FILE = "meta.json"
TMP_PREFIX = ".tmp-"


def _array_file(name: str) -> str:
    return name + ".npy"


def save_index(index: Any, dest: Path) -> None:
    """Write ``index`` as an entry at ``dest`` (a new folder: temp folder + rename).

    Raises FileExistsError when another process put an entry there first (its copy is kept).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=dest.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700; entries follow the umask like files
        manifest = {}
        for name, arr in index.arrays.items():
            a = np.ascontiguousarray(arr)
            if a.dtype.hasobject:
                raise TypeError(f"index array {name!r} holds Python objects; cannot cache it")
            np.save(tmp / _array_file(name), a, allow_pickle=False)
            manifest[name] = {"dtype": a.dtype.str, "shape": list(a.shape)}
        doc = {"format": CACHE_FORMAT_VERSION, "meta": index.meta, "stats": index.stats.to_dict(),
               "arrays": manifest, "created": time.time()}
        with open(tmp / META_FILE, "w", encoding="utf-8") as f:
            json.dump(doc, f)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.rename(tmp, dest)  # atomic; fails if dest exists (non-empty folder)
        except OSError as exc:
            if dest.is_dir():
                raise FileExistsError(str(dest)) from exc
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _load_array(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError:
        # numpy cannot memory-map zero-size arrays; those are tiny, read them.
        arr = np.load(path, allow_pickle=False)
    # A plain ndarray view of the mapping: same pages, no np.memmap overhead on every operation.
    return np.asarray(arr)


def read_entry(entry: Path) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, Any]]:
    """The arrays (memory-mapped read-only), meta and stats of the entry at ``entry``.

    Raises on any inconsistency (format, a missing array, dtype or shape against the manifest).
    """
    with open(entry / META_FILE, encoding="utf-8") as f:
        doc = json.load(f)
    if doc.get("format") != CACHE_FORMAT_VERSION:
        raise ValueError(f"cache format {doc.get('format')} != {CACHE_FORMAT_VERSION}")
    arrays: dict[str, np.ndarray] = {}
    for name, info in doc["arrays"].items():
        arr = _load_array(entry / _array_file(name))
        if arr.dtype.str != info["dtype"] or list(arr.shape) != info["shape"]:
            raise ValueError(f"array {name} does not match the manifest")
        arrays[name] = arr
    return arrays, doc["meta"], doc["stats"]
