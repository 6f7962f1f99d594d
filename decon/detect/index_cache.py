"""Reusing a built reference index across runs (the on-disk index cache).

A cache entry is one folder named by a key: sha256 over the cache format version, the code that
builds the index (source hash of the builder modules, tiktoken version), the index-affecting
options (``DetectionConfig.index_fingerprint_fields()``), the tokenizer name and, for every eval
file in sorted order, its path relative to the eval dir, its size and a blake2b hash of its full
content. Any change to any of these gives a new key, so a stale entry is never read.

An entry holds one ``.npy`` per index array plus ``meta.json`` (index meta, build stats and the
array manifest). Arrays are loaded with ``mmap_mode="r"``: forked detection workers and server
workers share the page cache instead of private copies.

Writes go to a temporary folder beside the entries that is renamed into place in one step, so a
crashed build never leaves a half entry and of two concurrent builders the second simply drops
its copy. At most ``DECON_INDEX_CACHE_MAX_ENTRIES`` (default 4) entries are kept; the least
recently used (loading an entry touches it) are removed. An unwritable cache directory gives one
warning and the run goes on without caching.

Location: ``$DECON_CACHE_DIR``, else ``$XDG_CACHE_HOME/decon/index``, else ``~/.cache/decon/index``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from decon.common.config import DetectionConfig
from decon.common.file_io import find_data_files
from decon.detect import index_build
from decon.detect.detector import MINHASH, SIMPLE
from decon.detect.index_store import CACHE_FORMAT_VERSION, META_FILE, TMP_PREFIX, read_entry, save_index

__all__ = ["CACHE_FORMAT_VERSION", "META_FILE", "build_index", "cache_key", "cache_root", "entries", "evict",
           "load_entry", "load_or_build_index", "save_index"]

DEFAULT_MAX_ENTRIES = 4
_TRASH_PREFIX = ".trash-"
_HASH_CHUNK = 1 << 20

#: Modules whose code decides what the index holds; their source is part of the key.
_BUILDER_MODULES = (
    "decon.detect.reference_index", "decon.detect.scoring", "decon.common.ngram_hash",
    "decon.common.text", "decon.common.tokenizer", "decon.common.string_table", "decon.common.file_io",
    "decon.detect.minhash_index",
)

_warned: set[str] = set()


def _warn_once(key: str, msg: str) -> None:
    if key not in _warned:
        _warned.add(key)
        print(f"Warning: {msg}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# Location and key
# ---------------------------------------------------------------------------------------------

def cache_root() -> Path:
    """Where cache entries live (see the module docstring)."""
    env = os.environ.get("DECON_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "decon" / "index"


def max_entries() -> int:
    try:
        return max(1, int(os.environ.get("DECON_INDEX_CACHE_MAX_ENTRIES", DEFAULT_MAX_ENTRIES)))
    except ValueError:
        return DEFAULT_MAX_ENTRIES


def _file_digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _code_fingerprint() -> dict[str, Any]:
    import importlib

    h = hashlib.blake2b(digest_size=16)
    for name in _BUILDER_MODULES:
        mod = importlib.import_module(name)
        src = getattr(mod, "__file__", None)
        h.update(name.encode())
        if src and os.path.isfile(src):
            h.update(_file_digest(Path(src)).encode())
    try:
        tiktoken_version = metadata.version("tiktoken")
    except metadata.PackageNotFoundError:
        tiktoken_version = ""
    return {"builder_source": h.hexdigest(), "tiktoken": tiktoken_version}


def cache_key(config: DetectionConfig) -> str:
    """The cache key of the index ``config`` would build (hashes every eval file's content)."""
    evals_dir = config.resolved_evals_dir()
    files = find_data_files(evals_dir, columnar=True) if evals_dir.is_dir() else []
    entries = []
    for f in files:
        try:
            rel = f.relative_to(evals_dir).as_posix()
        except ValueError:
            rel = f.name
        entries.append([rel, f.stat().st_size, _file_digest(f)])
    payload = {
        "format": CACHE_FORMAT_VERSION,
        "code": _code_fingerprint(),
        "options": config.index_fingerprint_fields(),
        "tokenizer": config.tokenizer_str,
        "files": entries,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------
# Reading and writing entries
# ---------------------------------------------------------------------------------------------

def load_entry(entry: Path) -> Any:
    """Load a cache entry (arrays memory-mapped read-only). Raises on any inconsistency."""
    arrays, meta, stats = read_entry(entry)
    det = MINHASH if meta.get("kind") == "minhash" else SIMPLE
    return det.load(arrays, meta, stats)


def _touch(entry: Path) -> None:
    try:
        os.utime(entry / META_FILE)
    except OSError:
        pass


def _last_used(entry: Path) -> float:
    try:
        return (entry / META_FILE).stat().st_mtime
    except OSError:
        return 0.0


def _remove(path: Path) -> None:
    """Delete a folder: rename it out of the way first (atomic), so no reader sees half of it."""
    trash = path.parent / f"{_TRASH_PREFIX}{path.name}-{os.getpid()}-{time.time_ns()}"
    try:
        os.rename(path, trash)
    except OSError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def entries(root: Path | None = None) -> list[Path]:
    """Complete cache entries under ``root``, most recently used first."""
    root = root or cache_root()
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir()
             if p.is_dir() and not p.name.startswith(".") and (p / META_FILE).is_file()]
    return sorted(found, key=_last_used, reverse=True)


def evict(root: Path, keep: int, *, protect: Path | None = None) -> list[Path]:
    """Remove least recently used entries beyond ``keep`` (never ``protect``); also old leftovers."""
    removed = []
    for p in entries(root)[keep:]:
        if protect is not None and p == protect:
            continue
        _remove(p)
        removed.append(p)
    # Temp/trash folders of crashed processes (older than an hour).
    cutoff = time.time() - 3600
    try:
        for p in root.iterdir():
            if p.name.startswith((TMP_PREFIX, _TRASH_PREFIX)) and p.is_dir():
                try:
                    if p.stat().st_mtime < cutoff:
                        shutil.rmtree(p, ignore_errors=True)
                except OSError:
                    pass
    except OSError:
        pass
    return removed


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------

def build_index(config: DetectionConfig, *, progress: bool = True) -> Any:
    """Build the index of the detector ``config.mode`` names, without the cache."""
    return _build(config, None, progress)[0]


def _build(config: DetectionConfig, entry: Path | None, progress: bool) -> tuple[Any, index_build.BuildOutcome]:
    """Build in a child process (``index_build``) and map the arrays it wrote: into the cache entry
    ``entry``, or (no entry, or the cache is not writable) into a temporary folder that is removed
    once mapped (the mapping keeps the pages)."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="decon-index-") as tmp:
        scratch = Path(tmp) / "index"
        outcome = index_build.build_files(config, entry or scratch, fallback=scratch if entry else None,
                                          progress=progress)
        index = load_entry(outcome.path)
    index.stats.build_seconds = time.perf_counter() - started
    return index, outcome


def _build_into(config: DetectionConfig, entry: Path, progress: bool) -> Any:
    """Build the index into the cache entry ``entry`` and load it from there; if the cache is not
    writable, the index is built into a temporary folder instead (one warning)."""
    index, outcome = _build(config, entry, progress)
    if outcome.status == "fallback":
        _warn_once(f"write:{entry.parent}", f"index cache directory {entry.parent} is not writable "
                                            f"({outcome.error}); continuing without the index cache")
        return index
    if progress:
        what = "built; another process cached it first" if outcome.status == "exists" else "built and saved to cache"
        print(f"Reference index {what}: {entry}", file=sys.stderr, flush=True)
    _touch(entry)
    evict(entry.parent, max_entries(), protect=entry)
    return index


def load_or_build_index(config: DetectionConfig, *, use_cache: bool = True, progress: bool = True) -> Any:
    """The reference index for ``config``: from the cache when a matching entry exists, else built
    (and saved). ``use_cache=False`` builds without reading or writing the cache."""
    if not use_cache:
        return build_index(config, progress=progress)
    started = time.perf_counter()
    entry = cache_root() / cache_key(config)
    if (entry / META_FILE).is_file():
        try:
            index = load_entry(entry)
        except Exception as exc:  # noqa: BLE001 - any damage: drop the entry and rebuild
            _warn_once(f"corrupt:{entry}", f"index cache entry {entry} is unreadable ({exc}); rebuilding")
            _remove(entry)
        else:
            _touch(entry)
            index.stats.from_cache = True
            index.stats.build_seconds = time.perf_counter() - started
            if progress:
                print(f"Reference index loaded from cache: {entry} ({index.stats.build_seconds:.2f}s)",
                      file=sys.stderr, flush=True)
            return index
    return _build_into(config, entry, progress)
