"""The MinHash reference index: one signature per eval record, and its LSH bands as sorted arrays.

An eval record's text is its passage, question and answer joined (passage first), cleaned and
tokenised as SIMPLE does. Its signature is datasketch's MinHash (``scheme="affine64"``,
``num_perm = num_bands * band_size``, ``seed = hash_seed``) over the 64-bit keys of its token
n-grams, computed for many documents at once with the permutations of that MinHash (the same
values ``MinHash.update_batch`` gives, checked in the tests). A text shorter than one n-gram is one
key (the whole token sequence), as upstream hashes short documents.

Banding follows datasketch's ``MinHashLSH(params=(num_bands, band_size))``: band ``j`` is signature
slice ``[j * band_size, (j + 1) * band_size)``, and two signatures are candidates when any band is
equal. Instead of MinHashLSH's dict of sets (seconds to build or unpickle for the bundled evals,
and private to each forked worker), every (band, record) pair is a 64-bit key of the band's values
in one sorted array; a query is a ``searchsorted``. The tests check that this returns exactly
MinHashLSH's candidates.

Without ``exact_override`` every signature value is one hash of the whole cleaned text, as in
upstream: only identical texts match.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from datasketch import MinHash
from datasketch.minhash import _fmix

from decon.common.config import DetectionConfig
from decon.common.file_io import COLUMNAR_EXTENSIONS, find_data_files
from decon.common.ngram_hash import flat_ngram_hashes, sequence_hash, sequence_hashes
from decon.common.progress import progress_bar
from decon.common.string_table import StringTable
from decon.common.text import clean_text
from decon.common.tokenizer import Tokenizer, get_tokenizer
from decon.detect.reference_index import SNIPPET_WORDS, encode_flat, parse_reference_file
from decon.errors import DeconError

SCHEME = "affine64"
_CHUNK_ROWS = 1 << 15  # n-gram keys permuted at once (x num_perm uint64 values)
_G = np.uint64(0x9E3779B97F4A7C15)
_FILTER_BITS = 24


@dataclass
class MinHashStats:
    """What ``decon detect`` prints about the MinHash index."""

    files_processed: int = 0
    total_lines_examined: int = 0
    lines_indexed: int = 0
    skipped_empty: int = 0
    num_perm: int = 0
    band_entries: int = 0
    eval_suites: int = 0
    build_seconds: float = 0.0
    from_cache: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class MinHashParams:
    num_bands: int
    band_size: int
    ngram_size: int
    seed: int
    exact: bool

    @classmethod
    def from_config(cls, config: DetectionConfig) -> MinHashParams:
        return cls(config.num_bands, config.band_size, config.ngram_size, config.hash_seed,
                   config.exact_override)

    @property
    def num_perm(self) -> int:
        return self.num_bands * self.band_size


class Permutations:
    """datasketch's affine64 permutations for ``params``, applied to key arrays in bulk."""

    def __init__(self, params: MinHashParams) -> None:
        self.params = params
        a, b = MinHash(num_perm=params.num_perm, seed=params.seed, scheme=SCHEME).permutations
        self.a = np.ascontiguousarray(a, dtype=np.uint64)
        self.b = np.ascontiguousarray(b, dtype=np.uint64)

    def values(self, keys: np.ndarray) -> np.ndarray:
        """``(len(keys), num_perm)`` permuted values: ``fmix64(key) * a + b`` mod 2**64."""
        hv = _fmix(np.asarray(keys, dtype=np.uint64).reshape(-1, 1), 64)
        with np.errstate(over="ignore"):
            return hv * self.a + self.b

    def signatures(self, keys: np.ndarray, ptr: np.ndarray) -> np.ndarray:
        """Signature of each non-empty segment ``keys[ptr[i]:ptr[i+1]]`` (every segment must be non-empty)."""
        count = len(ptr) - 1
        out = np.empty((count, self.params.num_perm), dtype=np.uint64)
        s = 0
        while s < count:
            e = int(np.searchsorted(ptr, ptr[s] + _CHUNK_ROWS, side="right")) - 1
            e = max(e, s + 1)
            lo, hi = int(ptr[s]), int(ptr[e])
            if e == s + 1 and hi - lo > _CHUNK_ROWS:  # one long segment: running minimum
                acc = np.full(self.params.num_perm, np.iinfo(np.uint64).max, dtype=np.uint64)
                for k in range(lo, hi, _CHUNK_ROWS):
                    np.minimum(acc, self.values(keys[k:min(hi, k + _CHUNK_ROWS)]).min(axis=0), out=acc)
                out[s] = acc
            else:
                out[s:e] = np.minimum.reduceat(self.values(keys[lo:hi]), ptr[s:e] - lo, axis=0)
            s = e
        return out


def document_keys(flat: np.ndarray, ptr: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n-gram keys of every sequence, grouped by sequence, and their boundaries.

    A sequence shorter than ``n`` (but not empty) contributes one key, its whole-sequence hash;
    an empty one contributes none (its segment is empty).
    """
    keys, seq, _ = flat_ngram_hashes(flat, ptr, n)
    lengths = np.diff(ptr)
    short = np.flatnonzero((lengths > 0) & (lengths < n))
    if len(short):
        extra = np.array([sequence_hash(flat[ptr[i]:ptr[i + 1]]) for i in short.tolist()], dtype=np.uint64)
        keys = np.concatenate([keys, extra])
        seq = np.concatenate([seq, short])
        order = np.argsort(seq, kind="stable")
        keys, seq = keys[order], seq[order]
    counts = np.bincount(seq, minlength=len(lengths)) if len(seq) else np.zeros(len(lengths), np.int64)
    out_ptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(counts, out=out_ptr[1:])
    return keys, out_ptr


def band_keys(signatures: np.ndarray, num_bands: int, band_size: int) -> np.ndarray:
    """``(rows, num_bands)`` 64-bit keys; equal keys <=> equal band values (up to 2**-64 collisions)."""
    rows = signatures.shape[0]
    bands = signatures[:, : num_bands * band_size].reshape(rows, num_bands, band_size)
    with np.errstate(over="ignore"):
        h = (np.arange(num_bands, dtype=np.uint64) + np.uint64(1)) * _G
        h = np.broadcast_to(h, (rows, num_bands)).copy()
        for k in range(band_size):
            h ^= bands[:, :, k]
            h = _fmix(h, 64)
    return h


# ---------------------------------------------------------------------------------------------
# The index
# ---------------------------------------------------------------------------------------------

@dataclass
class MinHashIndex:
    """Frozen MinHash index; ``arrays`` holds every numpy array, ``meta`` the small rest."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]
    stats: MinHashStats = field(default_factory=MinHashStats)

    def __post_init__(self) -> None:
        a = self.arrays
        self.params = MinHashParams(**self.meta["params"])
        self.tokenizer: Tokenizer = get_tokenizer(self.meta["tokenizer"])
        self.datasets: list[str] = self.meta["datasets"]
        self.eval_keys: list[str] = self.meta["eval_keys"]
        self.signatures: np.ndarray = a["record.signature"]
        self.dataset_idx: np.ndarray = a["record.dataset"]
        self.eval_key_idx: np.ndarray = a["record.eval_key"]
        self.line: np.ndarray = a["record.line"]
        self.band_sorted: np.ndarray = a["band.keys"]
        self.band_record: np.ndarray = a["band.record"]
        self.ngram_keys: np.ndarray = a["ngram.keys"]  # sorted unique n-gram keys of all records
        self.snippet = StringTable.from_arrays(a, "record.snippet")
        self._key_filter = np.zeros(1 << _FILTER_BITS, dtype=bool)  # top key bits seen in the reference set
        self._key_filter[self.ngram_keys >> np.uint64(64 - _FILTER_BITS)] = True

    def shares_key(self, keys: np.ndarray) -> np.ndarray:
        """Whether each key is an n-gram key of some reference record."""
        out = self._key_filter[keys >> np.uint64(64 - _FILTER_BITS)]
        maybe = np.flatnonzero(out)
        if len(maybe):
            ref, probe = self.ngram_keys, keys[maybe]
            pos = np.minimum(np.searchsorted(ref, probe), len(ref) - 1)
            out[maybe] = ref[pos] == probe
        return out

    @property
    def num_records(self) -> int:
        return self.signatures.shape[0]

    def candidates(self, sigs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(query row, record) pairs sharing at least one band, sorted and unique."""
        p = self.params
        keys = band_keys(sigs, p.num_bands, p.band_size).ravel()
        lo = np.searchsorted(self.band_sorted, keys, side="left")
        hi = np.searchsorted(self.band_sorted, keys, side="right")
        counts = hi - lo
        if not counts.any():
            e = np.empty(0, dtype=np.int64)
            return e, e
        rows = np.repeat(np.arange(len(keys), dtype=np.int64) // p.num_bands, counts)
        starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
        recs = self.band_record[np.arange(len(rows)) + starts].astype(np.int64)
        pairs = np.unique(rows * self.num_records + recs)
        return pairs // self.num_records, pairs % self.num_records

    def jaccard(self, sigs: np.ndarray, rows: np.ndarray, recs: np.ndarray) -> np.ndarray:
        """Estimated Jaccard (share of equal signature values) of each (row, record) pair, float32."""
        equal = (sigs[rows] == self.signatures[recs]).sum(axis=1)
        return (equal.astype(np.float32) / np.float32(self.params.num_perm)).astype(np.float32)


def record_text(record: dict[str, Any]) -> str:
    """Passage, question and answer of an eval record, joined in that order."""
    parts = [record.get(k) for k in ("passage", "question", "answer")]
    return " ".join(p for p in parts if isinstance(p, str) and p.strip())


def dataset_name(path: Path) -> str:
    """``eval_dataset`` of a reference file: its name without compression and .jsonl/.json."""
    name = path.name
    for suffix in (".gz", ".zst", ".zstd", ".bz2", ".xz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    for suffix in (".jsonl", ".json", *COLUMNAR_EXTENSIONS):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def texts_to_tokens(tok: Tokenizer, cleaned: list[str], threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of every cleaned text (encoded as SIMPLE encodes, after one space), back to back."""
    r = encode_flat(tok, list(cleaned), threads)
    return r.values, r.ptr


@dataclass
class TextKeys:
    """Tokens and n-gram keys of many texts, back to back."""

    flat: np.ndarray  # token ids
    ptr: np.ndarray  # token boundaries per text
    keys: np.ndarray  # n-gram keys (see document_keys)
    kptr: np.ndarray  # key boundaries per text; empty texts have empty segments

    @classmethod
    def of(cls, tok: Tokenizer, cleaned: list[str], n: int, threads: int = 1) -> TextKeys:
        flat, ptr = texts_to_tokens(tok, cleaned, threads)
        keys, kptr = document_keys(flat, ptr, n)
        return cls(flat, ptr, keys, kptr)

    def present(self) -> np.ndarray:
        """Indices of the texts that have at least one key."""
        return np.flatnonzero(np.diff(self.kptr) > 0)


def text_signatures(perm: Permutations, tk: TextKeys) -> tuple[np.ndarray, np.ndarray]:
    """Signatures of the texts that have keys (one row each) and the indices of those texts."""
    present = tk.present()
    p = perm.params
    if not p.exact:
        hashes = sequence_hashes(tk.flat, tk.ptr)[present]
        return np.repeat(hashes.reshape(-1, 1), p.num_perm, axis=1), present
    sub_ptr = np.zeros(len(present) + 1, dtype=np.int64)
    np.cumsum(np.diff(tk.kptr)[present], out=sub_ptr[1:])  # empty segments hold no keys
    return perm.signatures(tk.keys, sub_ptr), present


def build_minhash_index(config: DetectionConfig, *, progress: bool = True) -> MinHashIndex:
    """Read every reference file in sorted order and index each record's signature."""
    started = time.perf_counter()
    evals_dir = config.resolved_evals_dir()
    files = find_data_files(evals_dir, columnar=True) if evals_dir.is_dir() else []
    if not files:
        raise DeconError(f"no reference files found in {evals_dir} (expected .jsonl/.json, optionally compressed, or Parquet/Arrow)")
    params = MinHashParams.from_config(config)
    stats = MinHashStats(files_processed=len(files), num_perm=params.num_perm)
    raw: list[tuple[int, int, dict]] = []
    with progress_bar(len(files), "Reference files", enabled=progress) as bar:
        for i, f in enumerate(files):
            stats.total_lines_examined += parse_reference_file(f, i, config, raw)
            bar.advance()
    cleaned = [clean_text(record_text(r), config.punctuation_chars) for _, _, r in raw]
    threads = max(1, int(config.worker_threads or 1))
    tk = TextKeys.of(get_tokenizer(config.tokenizer_str), cleaned, params.ngram_size, threads)
    sigs, present = text_signatures(Permutations(params), tk)
    stats.lines_indexed = len(present)
    stats.skipped_empty = len(raw) - len(present)
    arrays, meta = _assemble(raw, present, sigs, cleaned, tk.keys, files, params, config)
    stats.band_entries = len(arrays["band.keys"])
    stats.eval_suites = len(meta["eval_keys"])
    stats.build_seconds = time.perf_counter() - started
    return MinHashIndex(arrays=arrays, meta=meta, stats=stats)


def _assemble(raw: list[tuple[int, int, dict]], present: np.ndarray, sigs: np.ndarray, cleaned: list[str],
              all_keys: np.ndarray, files: list[Path], params: MinHashParams, config: DetectionConfig
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    kept = [raw[i] for i in present.tolist()]
    eval_keys = sorted({str(r.get("eval_key")) for _, _, r in kept})
    key_pos = {k: i for i, k in enumerate(eval_keys)}
    bands = band_keys(sigs, params.num_bands, params.band_size).ravel()
    order = np.argsort(bands, kind="stable")
    snippets = [" ".join(cleaned[i].split(" ")[:SNIPPET_WORDS]) for i in present.tolist()]
    arrays = {
        "record.signature": np.ascontiguousarray(sigs, dtype=np.uint64),
        "record.dataset": np.array([f for f, _, _ in kept], dtype=np.int32),
        "record.eval_key": np.array([key_pos[str(r.get("eval_key"))] for _, _, r in kept], dtype=np.int32),
        "record.line": np.array([ln for _, ln, _ in kept], dtype=np.int64),
        "band.keys": bands[order],
        "band.record": (order // params.num_bands).astype(np.int32),
        "ngram.keys": np.unique(all_keys),
        **StringTable.from_list(snippets).arrays("record.snippet"),
    }
    meta = {
        "kind": "minhash",
        "params": {"num_bands": params.num_bands, "band_size": params.band_size,
                   "ngram_size": params.ngram_size, "seed": params.seed, "exact": params.exact},
        "tokenizer": config.tokenizer_str,
        "datasets": [dataset_name(f) for f in files],
        "eval_keys": eval_keys,
    }
    return arrays, meta
