"""The reference (eval) index: built once from the eval files, read by every detection worker.

Building follows upstream's sequential semantics (files in sorted path order, lines in order,
n-gram ids assigned in first-seen order: question, then answer, then passage n-grams of each
record), then freezes everything into flat numpy arrays. Workers forked after the build share
those arrays copy-on-write; the arrays are also what the index cache saves and memory-maps.

Reference records are keyed by ``doc_id``; when a doc_id repeats, the last record wins for the
per-document data while question n-gram document sets keep both (as upstream's maps do).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from decon.common.config import DetectionConfig
from decon.common.data_reader import DataFileError, iter_lines
from decon.common.file_io import find_data_files
from decon.common.ngram_hash import flat_ngram_hashes, sequence_hash
from decon.common.progress import progress_bar
from decon.common.string_table import StringTable
from decon.common.text import clean_text
from decon.common.tokenizer import Tokenizer, get_tokenizer
from decon.detect.scoring import idf_array, segmented_f32_sum
from decon.errors import DeconError

SNIPPET_WORDS = 1000
_FILTER_BITS = 26  # 2**26-bit filter = 8 MB
_ENCODE_CHUNK = 8192
_EMPTY_I64 = np.empty(0, dtype=np.int64)


@dataclass
class IndexStats:
    files_processed: int = 0
    total_lines_examined: int = 0
    lines_indexed: int = 0
    skipped_duplicates: int = 0
    skipped_min_tokens: int = 0
    skipped_min_unique_words: int = 0
    hot_buckets_replaced: int = 0
    unique_ngrams: int = 0
    eval_suites: int = 0
    build_seconds: float = 0.0
    from_cache: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Ragged:
    """Rows of varying length in one flat array (CSR): ``values[ptr[i]:ptr[i+1]]``."""

    __slots__ = ("values", "ptr")

    def __init__(self, values: np.ndarray, ptr: np.ndarray) -> None:
        self.values = values
        self.ptr = ptr

    def row(self, i: int) -> np.ndarray:
        return self.values[self.ptr[i]:self.ptr[i + 1]]

    def __len__(self) -> int:
        return len(self.ptr) - 1

    @classmethod
    def from_rows(cls, rows: list[np.ndarray], dtype: Any) -> Ragged:
        ptr = np.zeros(len(rows) + 1, dtype=np.int64)
        if rows:
            np.cumsum([len(r) for r in rows], out=ptr[1:])
            values = np.concatenate(rows).astype(dtype, copy=False) if ptr[-1] else np.empty(0, dtype)
        else:
            values = np.empty(0, dtype)
        return cls(values, ptr)


@dataclass
class _Record:
    """One reference line that passed the filters (build-time only)."""

    raw_idx: int
    doc_id: int
    eval_key: str
    line_num: int
    file_idx: int
    eval_instance_index: int
    fingerprint: str | None
    is_correct: bool | None
    split: str | None
    q_clean: str
    a_clean: str | None  # None: answer not processed
    p_clean: str | None  # None: passage not processed


@dataclass
class ReferenceIndex:
    """Frozen index. ``arrays`` holds every numpy array; everything else is small."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]
    stats: IndexStats = field(default_factory=IndexStats)

    def __post_init__(self) -> None:
        a = self.arrays
        self.tokenizer: Tokenizer = get_tokenizer(self.meta["tokenizer"])
        self.eval_keys: list[str] = self.meta["eval_keys"]
        self.reference_files: list[str] = self.meta["reference_files"]
        self.total_docs = np.float32(self.meta["total_docs"])
        # n-gram key -> id (sorted keys), and per id: question doc sets, hot flag, IDFs
        self.key_sorted: np.ndarray = a["ngram.keys"]
        self.key_ids: np.ndarray = a["ngram.ids"]
        self.q_docs = Ragged(a["q.docs"], a["q.ptr"])
        self.q_df: np.ndarray = np.diff(a["q.ptr"]).astype(np.int64)
        self.hot: np.ndarray = a["q.hot"]
        self.q_idf: np.ndarray = a["q.idf"]  # ln(total_docs / document frequency), float32
        self.answer_ngram_idf: np.ndarray = a["answer.ngram_idf"]
        self.passage_ngram_idf: np.ndarray = a["passage.ngram_idf"]
        self.answer_token_keys: np.ndarray = a["answer.token_keys"]
        self.answer_token_idf: np.ndarray = a["answer.token_idf"]
        # per document slot
        self.doc_id: np.ndarray = a["doc.id"]
        self.unique_ngrams: np.ndarray = a["doc.unique_ngrams"]
        self.token_count: np.ndarray = a["doc.token_count"]
        self.question_idf_sum: np.ndarray = a["doc.question_idf_sum"]
        self.answer_len: np.ndarray = a["doc.answer_len"]
        self.passage_len: np.ndarray = a["doc.passage_len"]
        self.has_answer: np.ndarray = a["doc.has_answer"]
        self.has_answer_ngrams: np.ndarray = a["doc.has_answer_ngrams"]
        self.has_passage: np.ndarray = a["doc.has_passage"]
        self.has_passage_ngrams: np.ndarray = a["doc.has_passage_ngrams"]
        self.passage_idf_total: np.ndarray = a["doc.passage_idf_total"]
        self.answer_tokens = Ragged(a["answer.tokens"], a["answer.tokens_ptr"])
        self.answer_token_set = Ragged(a["answer.token_set"], a["answer.token_set_ptr"])
        self.answer_ngrams = Ragged(a["answer.ngrams"], a["answer.ngrams_ptr"])
        self.passage_token_set = Ragged(a["passage.token_set"], a["passage.token_set_ptr"])
        self.passage_ngrams = Ragged(a["passage.ngrams"], a["passage.ngrams_ptr"])
        self.eval_key_idx: np.ndarray = a["meta.eval_key"]
        self.eval_line: np.ndarray = a["meta.line"]
        self.eval_instance_index: np.ndarray = a["meta.instance"]
        self.file_idx: np.ndarray = a["meta.file"]
        self.is_correct: np.ndarray = a["meta.is_correct"]
        self.fingerprint = StringTable.from_arrays(a, "meta.fingerprint")
        self.split = StringTable.from_arrays(a, "meta.split")
        self.question_text = StringTable.from_arrays(a, "text.question")
        self.answer_text = StringTable.from_arrays(a, "text.answer")
        self.passage_text = StringTable.from_arrays(a, "text.passage")

    @property
    def num_docs(self) -> int:
        return len(self.doc_id)

    def _question_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sorted keys/ids of question n-grams only, plus a bit filter over their top key bits."""
        qt = getattr(self, "_qt", None)
        if qt is None:
            has_q = self.q_df[self.key_ids] > 0
            qkeys = np.ascontiguousarray(self.key_sorted[has_q])
            qids = np.ascontiguousarray(self.key_ids[has_q]).astype(np.int64)
            bits = np.zeros(1 << (_FILTER_BITS - 6), dtype=np.uint64)
            top = (qkeys >> np.uint64(64 - _FILTER_BITS)).astype(np.int64)
            np.bitwise_or.at(bits, top >> 6, np.left_shift(np.uint64(1), (top & 63).astype(np.uint64)))
            qt = self._qt = (qkeys, qids, bits)
        return qt

    def lookup_question(self, keys: np.ndarray) -> np.ndarray:
        """Question n-gram ids for ``keys`` (-1 where the key is not a question n-gram).

        A bit filter over the keys' top bits rejects almost every miss before the binary search.
        """
        qkeys, qids, bits = self._question_table()
        out = np.full(len(keys), -1, dtype=np.int64)
        if len(qkeys) == 0 or len(keys) == 0:
            return out
        top = (keys >> np.uint64(64 - _FILTER_BITS)).astype(np.int64)
        maybe = np.flatnonzero((bits[top >> 6] >> (top & 63).astype(np.uint64)) & np.uint64(1))
        if len(maybe) == 0:
            return out
        cand = keys[maybe]
        pos = np.minimum(np.searchsorted(qkeys, cand), len(qkeys) - 1)
        found = qkeys[pos] == cand
        out[maybe[found]] = qids[pos[found]]
        return out

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """n-gram ids for ``keys`` (uint64), -1 where the n-gram is not in the index."""
        if len(self.key_sorted) == 0 or len(keys) == 0:
            return np.full(len(keys), -1, dtype=np.int64)
        pos = np.searchsorted(self.key_sorted, keys)
        pos_c = np.minimum(pos, len(self.key_sorted) - 1)
        found = self.key_sorted[pos_c] == keys
        return np.where(found, self.key_ids[pos_c], -1).astype(np.int64)

    def answer_token_idf_of(self, tokens: np.ndarray) -> np.ndarray:
        """IDF of answer tokens (NaN for tokens without one)."""
        pos = np.searchsorted(self.answer_token_keys, tokens)
        pos_c = np.minimum(pos, max(len(self.answer_token_keys) - 1, 0))
        if len(self.answer_token_keys) == 0:
            return np.full(len(tokens), np.nan, dtype=np.float32)
        found = self.answer_token_keys[pos_c] == tokens
        return np.where(found, self.answer_token_idf[pos_c], np.float32(np.nan)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------

def _parse_file(path: Path, file_idx: int, config: DetectionConfig, out: list[tuple[int, int, dict]]) -> int:
    """Append (file_idx, line_num, record) for each data line; returns lines seen."""
    fallback = path.name[: -len(path.suffix)] if path.suffix else path.name
    n = 0
    try:
        for line_num, raw in enumerate(iter_lines(path, config.max_line_bytes)):
            n = line_num + 1
            if raw is None:
                raise DeconError(f"{path}:{n}: line longer than max_line_bytes ({config.max_line_bytes:,} bytes) "
                                 "in reference file")
            if raw.startswith(b"#") or not raw.strip():
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise DeconError(f"{path}:{line_num + 1}: invalid JSON in reference file ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise DeconError(f"{path}:{line_num + 1}: reference record is not a JSON object")
            doc_id = obj.get("doc_id")
            if not isinstance(doc_id, int) or isinstance(doc_id, bool) or doc_id < 0:
                raise DeconError(f"{path}:{line_num + 1}: missing or invalid doc_id in reference record")
            if "eval_key" not in obj or not isinstance(obj.get("eval_key"), str):
                obj["eval_key"] = obj["eval_name"] if isinstance(obj.get("eval_name"), str) else fallback
            out.append((file_idx, line_num, obj))
    except DataFileError as exc:
        raise DeconError(f"cannot read reference file {exc}") from None
    except UnicodeDecodeError as exc:
        raise DeconError(f"cannot read reference file {path}: {exc}") from None
    return n


def _str_or(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _uint_or(value: Any, default: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return default


def _snippet(cleaned: str) -> str:
    words = cleaned.split(" ") if cleaned else []
    return " ".join(words[:SNIPPET_WORDS])


class _Cleaner:
    """clean_text with a memo: identical strings are cleaned once."""

    def __init__(self, punct: str) -> None:
        self.punct = punct
        self.memo: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        got = self.memo.get(text)
        if got is None:
            got = self.memo[text] = clean_text(text, self.punct)
        return got


@dataclass
class _Texts:
    """One role's texts (questions, answers or passages): distinct texts tokenised once.

    ``of`` maps each record to its distinct text (-1: none); ``tokens`` rows are the distinct texts.
    """

    of: np.ndarray
    tokens: Ragged

    @classmethod
    def build(cls, per_record: list[str | None], tok: Tokenizer, threads: int) -> _Texts:
        index: dict[str, int] = {}
        of = np.fromiter((-1 if t is None else index.setdefault(t, len(index)) for t in per_record),
                         dtype=np.int64, count=len(per_record))
        return cls(of, encode_flat(tok, list(index), threads))

    def select(self, records: np.ndarray) -> _Texts:
        return _Texts(self.of[records], self.tokens)

    def lengths(self) -> np.ndarray:
        """Token count per record (0 without text)."""
        return self.per_record(np.diff(self.tokens.ptr))

    def per_record(self, per_text: np.ndarray) -> np.ndarray:
        out = np.zeros(len(self.of), dtype=per_text.dtype if len(per_text) else np.int64)
        has = self.of >= 0
        out[has] = per_text[self.of[has]]
        return out

    def nonspace_counts(self, space: np.ndarray) -> np.ndarray:
        r = self.tokens
        nonspace = ~np.isin(r.values, space) if len(space) else np.ones(len(r.values), bool)
        csum = np.zeros(len(r.values) + 1, dtype=np.int64)
        np.cumsum(nonspace, out=csum[1:])
        return csum[r.ptr[1:]] - csum[r.ptr[:-1]]


def encode_flat(tok: Tokenizer, texts: list[str | None], threads: int) -> Ragged:
    """Tokenise ``" " + text`` for each text (upstream pads evals with a leading space) into one
    flat array; ``None`` or empty texts get no tokens. Threads each take a contiguous share."""
    idx = [i for i, t in enumerate(texts) if t]
    enc = tok.encoding
    lengths = np.zeros(len(texts), dtype=np.int64)
    pieces: list[np.ndarray] = []
    pool = None
    if enc is not None and threads > 1 and len(idx) > 1000:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(threads)
    try:
        # chunk by chunk, so Python lists of ints (36 bytes a token) never pile up
        for c0 in range(0, len(idx), _ENCODE_CHUNK):
            chunk_idx = idx[c0:c0 + _ENCODE_CHUNK]
            padded = [" " + texts[i] for i in chunk_idx]  # type: ignore[operator]
            if enc is None:
                encoded = tok.encode_batch(padded)
            elif pool is not None:
                step = -(-len(padded) // threads)
                parts = pool.map(lambda c: [enc.encode_ordinary(t) for t in c],
                                 [padded[i:i + step] for i in range(0, len(padded), step)])
                encoded = [e for part in parts for e in part]
            else:
                encoded = [enc.encode_ordinary(t) for t in padded]
            chunk_len = [len(e) for e in encoded]
            lengths[chunk_idx] = chunk_len
            pieces.append(np.fromiter(chain.from_iterable(encoded), dtype=np.int64, count=sum(chunk_len)))
            del encoded, padded
    finally:
        if pool is not None:
            pool.shutdown()
    ptr = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=ptr[1:])
    flat = np.concatenate(pieces) if pieces else np.empty(0, dtype=np.int64)
    return Ragged(flat, ptr)


def _take(r: Ragged, rows: np.ndarray) -> Ragged:
    """The given rows of ``r``, in that order, as a new Ragged."""
    lengths = np.diff(r.ptr)[rows]
    ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=ptr[1:])
    if ptr[-1] == 0:
        return Ragged(np.empty(0, dtype=r.values.dtype), ptr)
    starts = np.repeat(r.ptr[:-1][rows] - ptr[:-1], lengths)
    return Ragged(r.values[np.arange(ptr[-1]) + starts], ptr)


def build_index(config: DetectionConfig, *, progress: bool = True) -> ReferenceIndex:
    """Build the reference index from ``config.evals_dir`` (see module docstring)."""
    started = time.perf_counter()
    evals_dir = config.resolved_evals_dir()
    files = find_data_files(evals_dir) if evals_dir.is_dir() else []
    if not files:
        raise DeconError(f"no reference files found in {evals_dir} (expected .jsonl/.json, optionally compressed)")
    tok = get_tokenizer(config.tokenizer_str)
    threads = max(1, int(config.worker_threads or 1))
    stats = IndexStats(files_processed=len(files))
    punct = config.punctuation_chars

    raw: list[tuple[int, int, dict]] = []
    with progress_bar(len(files), "Reference files", enabled=progress) as bar:
        for i, f in enumerate(files):
            _parse_file(f, i, config, raw)
            bar.advance()

    # Clean and tokenise each distinct text once (eval sets repeat passages and questions a lot).
    cleaner = _Cleaner(punct)
    q_clean = [cleaner(_str_or(r.get("question"))) for _, _, r in raw]
    a_clean = [cleaner(_str_or(r.get("answer"))) for _, _, r in raw]
    p_clean = [cleaner(_str_or(r.get("passage"))) for _, _, r in raw]
    has_answer_field = [("answer" in r) for _, _, r in raw]

    # A record's token count is the sum over its parts: tokens never span the single space that
    # joins cleaned parts, so this equals counting the joined text as upstream does.
    q_in = [q or None for q in q_clean]
    a_in = [a if (config.index_answers and has_answer_field[k] and a) else None for k, a in enumerate(a_clean)]
    p_in = [p if (config.index_passages and p) else None for p in p_clean]
    texts: dict[str, _Texts] = {}
    for name, per_rec in (("q", q_in), ("a", a_in), ("p", p_in)):
        texts[name] = _Texts.build(per_rec, tok, threads)

    def words(k: int) -> list[str]:
        return [w for part in (p_in[k], q_in[k], a_in[k]) if part for w in part.split()]

    token_ok = np.ones(len(raw), dtype=bool)
    if config.eval_min_token_length > 0:
        if config.tokenizer_str == "word":
            counts = np.array([len(words(k)) for k in range(len(raw))], dtype=np.int64)
        else:
            space = np.fromiter(tok.space_token_ids, dtype=np.int64) if tok.space_token_ids else _EMPTY_I64
            counts = np.zeros(len(raw), dtype=np.int64)
            for t in texts.values():
                counts += t.per_record(t.nonspace_counts(space))
        token_ok = counts >= config.eval_min_token_length

    seen_fp: set[tuple[str, str]] = set()
    records: list[_Record] = []
    for k, (file_idx, line_num, r) in enumerate(raw):
        if not token_ok[k]:
            stats.skipped_min_tokens += 1
            continue
        if config.eval_min_unique_word_count > 0 and len(set(words(k))) < config.eval_min_unique_word_count:
            stats.skipped_min_unique_words += 1
            continue
        fp = r.get("fingerprint") if isinstance(r.get("fingerprint"), str) else None
        if config.eval_dedup and fp is not None:
            key = (r["eval_key"], fp)
            if key in seen_fp:
                stats.skipped_duplicates += 1
                continue
            seen_fp.add(key)
        if not _str_or(r.get("question")):
            continue
        a_processed = config.index_answers and has_answer_field[k] and bool(_str_or(r.get("answer")))
        p_processed = config.index_passages and bool(_str_or(r.get("passage")))
        is_correct = r.get("is_correct")
        records.append(_Record(
            raw_idx=k,
            doc_id=int(r["doc_id"]) & 0xFFFFFFFF,
            eval_key=r["eval_key"],
            line_num=line_num,
            file_idx=file_idx,
            eval_instance_index=_uint_or(r.get("eval_instance_index"), line_num),
            fingerprint=fp,
            is_correct=is_correct if isinstance(is_correct, bool) else None,
            split=r.get("split") if isinstance(r.get("split"), str) else None,
            q_clean=q_clean[k],
            a_clean=a_clean[k] if a_processed else None,
            p_clean=p_clean[k] if p_processed else None,
        ))
    kept = np.array([r.raw_idx for r in records], dtype=np.int64)
    del raw, q_clean, a_clean, p_clean

    arrays, meta = _assemble(records, config, {k: t.select(kept) for k, t in texts.items()}, stats)
    meta["reference_files"] = [f.name for f in files]
    stats.total_lines_examined = (stats.lines_indexed + stats.skipped_duplicates + stats.skipped_min_tokens
                                  + stats.skipped_min_unique_words)
    stats.build_seconds = time.perf_counter() - started
    return ReferenceIndex(arrays=arrays, meta=meta, stats=stats)


def sorted_unique(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values; sort-based, faster than np.unique here."""
    a = np.sort(x)
    if len(a) == 0:
        return a
    flag = np.empty(len(a), dtype=bool)
    flag[0] = True
    np.not_equal(a[1:], a[:-1], out=flag[1:])
    return a[flag]


def first_seen_ids(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For ``keys`` in processing order: (sorted distinct keys, their ids, id of every key).

    Ids number the distinct keys in order of first appearance.
    """
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    flag = np.empty(len(sk), dtype=bool)
    if len(sk):
        flag[0] = True
        np.not_equal(sk[1:], sk[:-1], out=flag[1:])
    group = np.cumsum(flag) - 1
    uniq = sk[flag]
    first = order[flag]  # stable sort: the first occurrence of each key
    id_of_uniq = np.empty(len(uniq), dtype=np.int64)
    id_of_uniq[np.argsort(first, kind="stable")] = np.arange(len(uniq), dtype=np.int64)
    ids = np.empty(len(keys), dtype=np.int64)
    ids[order] = id_of_uniq[group]
    return uniq, id_of_uniq, ids


def _unique_rows(seg: np.ndarray, values: np.ndarray, n_seg: int) -> Ragged:
    """Per segment, the sorted distinct values (``seg`` gives each value's segment)."""
    if len(values) == 0:
        return Ragged(np.empty(0, dtype=np.int64), np.zeros(n_seg + 1, dtype=np.int64))
    seg = seg.astype(np.int64, copy=False)
    values = values.astype(np.int64, copy=False)
    if values.min() >= 0 and values.max() < (1 << 32) and n_seg < (1 << 31):
        packed = sorted_unique((seg << 32) | values)
        s, v = packed >> 32, packed & 0xFFFFFFFF
    else:
        order = np.lexsort((values, seg))
        s, v = seg[order], values[order]
        keep = np.ones(len(v), dtype=bool)
        keep[1:] = (s[1:] != s[:-1]) | (v[1:] != v[:-1])
        s, v = s[keep], v[keep]
    ptr = np.zeros(n_seg + 1, dtype=np.int64)
    np.cumsum(np.bincount(s, minlength=n_seg), out=ptr[1:])
    return Ragged(v, ptr)


def _weighted_unique(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values with the sum of their weights."""
    if len(values) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    flag = np.empty(len(v), dtype=bool)
    flag[0] = True
    np.not_equal(v[1:], v[:-1], out=flag[1:])
    starts = np.flatnonzero(flag)
    return v[starts], np.add.reduceat(w, starts)


def _with_empty_row(r: Ragged) -> Ragged:
    """``r`` plus one empty row at the end (row -1 then reads as empty)."""
    return Ragged(r.values, np.append(r.ptr, r.ptr[-1]))


def _rows_for(r: Ragged, text_of: np.ndarray) -> Ragged:
    """Rows of ``r`` for each entry of ``text_of`` (-1: an empty row)."""
    return _take(_with_empty_row(r), np.where(text_of >= 0, text_of, len(r)))


def _assemble(records: list[_Record], config: DetectionConfig, texts: dict[str, _Texts],
              stats: IndexStats) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    n_rec = len(records)
    q, a, p = texts["q"], texts["a"], texts["p"]
    q_len, a_len, p_len = q.lengths(), a.lengths(), p.lengths()
    q_valid = q_len > 0
    has_a_tok = a_len > 0
    has_p_tok = p_len > 0

    stats.lines_indexed = int(q_valid.sum())
    if stats.lines_indexed == 0:
        raise DeconError(
            f"No evaluation data was indexed: {stats.files_processed} files, 0 records passed the filters "
            f"(min {config.eval_min_token_length} tokens, min {config.eval_min_unique_word_count} unique words)"
            f" in {config.resolved_evals_dir()}")

    # ---- document slots: doc_id -> slot, in first-seen order of indexed records ------------
    slot_of_doc: dict[int, int] = {}
    rec_slot = np.full(n_rec, -1, dtype=np.int64)
    for i in np.flatnonzero(q_valid):
        rec_slot[i] = slot_of_doc.setdefault(records[i].doc_id, len(slot_of_doc))
    n_docs = len(slot_of_doc)
    final_rec = np.full(n_docs, -1, dtype=np.int64)
    valid_idx = np.flatnonzero(q_valid)
    final_rec[rec_slot[valid_idx]] = valid_idx  # later records overwrite earlier ones
    fr = final_rec
    total_docs = np.float32(n_docs)

    # ---- n-gram keys of each distinct text ------------------------------------------------------
    n, an, pn = config.ngram_size, config.answer_ngram_size, config.passage_ngram_size
    qk, qu, _ = flat_ngram_hashes(q.tokens.values, q.tokens.ptr, n)
    qt_len = np.diff(q.tokens.ptr)
    short = np.flatnonzero((qt_len > 0) & (qt_len < n))
    if len(short):  # a question shorter than n is one n-gram of all its tokens
        qk = np.concatenate([qk, np.array([sequence_hash(q.tokens.row(i)) for i in short], dtype=np.uint64)])
        qu = np.concatenate([qu, short.astype(np.int64)])
        order = np.argsort(qu, kind="stable")
        qk, qu = qk[order], qu[order]
    at_len = np.diff(a.tokens.ptr)
    a_text_ng = (at_len > config.short_answer_token_threshold) & (at_len >= an)
    ak, au, _ = flat_ngram_hashes(a.tokens.values, a.tokens.ptr, an)
    sel = a_text_ng[au]
    ak, au = ak[sel], au[sel]
    pk, pu, _ = flat_ngram_hashes(p.tokens.values, p.tokens.ptr, pn)
    a_ng_rec_ok = a.per_record(a_text_ng) if len(a_text_ng) else np.zeros(n_rec, bool)

    # ---- ids in first-seen order: a text's n-grams count from the first record that uses it ---
    def first_use(t: _Texts, used: np.ndarray) -> np.ndarray:
        first = np.full(len(t.tokens), np.iinfo(np.int64).max, dtype=np.int64)
        recs = np.flatnonzero(used & (t.of >= 0))
        np.minimum.at(first, t.of[recs], recs)
        return first

    q_first = first_use(q, q_valid)
    a_first = first_use(a, a_ng_rec_ok)
    p_first = first_use(p, has_p_tok)
    big = np.iinfo(np.int64).max
    sort_key = np.concatenate([
        np.where(q_first[qu] < big, q_first[qu] * 3, big),
        np.where(a_first[au] < big, a_first[au] * 3 + 1, big),
        np.where(p_first[pu] < big, p_first[pu] * 3 + 2, big),
    ])
    keys = np.concatenate([qk, ak, pk])
    n_q_windows, n_a_windows = len(qk), len(ak)
    del qk, ak, pk
    order = np.argsort(sort_key, kind="stable")  # windows of one text stay in position order
    used = sort_key[order] < big
    order = order[used]
    del sort_key
    uniq, id_of_uniq, ids_o = first_seen_ids(keys[order])
    n_ids = len(uniq)
    ids = np.full(len(keys), -1, dtype=np.int64)
    ids[order] = ids_o
    del keys, order, ids_o
    q_ids, a_ids, p_ids = np.split(ids, [n_q_windows, n_q_windows + n_a_windows])
    stats.unique_ngrams = n_ids

    # distinct ids of each distinct text (sorted)
    def text_rows(u: np.ndarray, i: np.ndarray, count: int) -> Ragged:
        keep = i >= 0  # texts no kept record uses got no ids
        return _unique_rows(u[keep], i[keep], count)

    q_text_ids = text_rows(qu, q_ids, len(q.tokens))
    a_text_ids = text_rows(au, a_ids, len(a.tokens))
    p_text_ids = text_rows(pu, p_ids, len(p.tokens))
    del q_ids, a_ids, p_ids, ids, qu, au, pu

    # ---- question n-gram -> documents (union over records) ----------------------------------
    rec_q_ids = _rows_for(q_text_ids, np.where(q_valid, q.of, -1))
    q_pairs_slot = np.repeat(rec_slot, np.diff(rec_q_ids.ptr))
    q_sets = _unique_rows(rec_q_ids.values, q_pairs_slot, n_ids)  # rows: ids, values: slots (sorted)
    del rec_q_ids, q_pairs_slot
    q_df = np.diff(q_sets.ptr)
    hot_threshold = max(2000, int(math.sqrt(np.float32(stats.lines_indexed))) * 2)
    hot = q_df > hot_threshold
    stats.hot_buckets_replaced = int(hot.sum())
    q_idf = idf_array(total_docs, np.maximum(q_df, 1))
    text_q_idf_sum = segmented_f32_sum(q_idf[q_text_ids.values], q_text_ids.ptr)
    fq = q.of[fr]
    unique_ngrams = np.diff(q_text_ids.ptr)[fq]
    question_idf_sum = text_q_idf_sum[fq]
    token_count = q_len[fr]

    # ---- token document frequencies (question, answer and passage sets each count) ----------
    tok_vals, tok_wts = [], []
    text_tokens: dict[str, Ragged] = {}
    for name, t, used_rec in (("q", q, q_valid), ("a", a, has_a_tok), ("p", p, has_p_tok)):
        lens = np.diff(t.tokens.ptr)
        distinct = _unique_rows(np.repeat(np.arange(len(lens)), lens), t.tokens.values, len(lens))
        text_tokens[name] = distinct
        mult = np.bincount(t.of[used_rec & (t.of >= 0)], minlength=len(lens))
        tok_vals.append(distinct.values)
        tok_wts.append(np.repeat(mult, np.diff(distinct.ptr)))
    tok_keys, tok_freq = _weighted_unique(np.concatenate(tok_vals), np.concatenate(tok_wts))
    del tok_vals, tok_wts

    # ---- answers -----------------------------------------------------------------------------
    a_mult = np.bincount(a.of[a_ng_rec_ok], minlength=len(a.tokens))
    a_df = np.bincount(a_text_ids.values, weights=np.repeat(a_mult, np.diff(a_text_ids.ptr)),
                       minlength=n_ids).astype(np.int64) if len(a_text_ids.values) else np.zeros(n_ids, np.int64)
    answer_ngram_idf = np.full(n_ids, np.nan, dtype=np.float32)
    nz = a_df > 0
    answer_ngram_idf[nz] = idf_array(total_docs, a_df[nz])
    a_used = np.bincount(a.of[has_a_tok], minlength=len(a.tokens)) > 0
    a_tok_rows = text_tokens["a"]
    answer_token_keys = sorted_unique(_take(a_tok_rows, np.flatnonzero(a_used)).values)
    freq_pos = np.searchsorted(tok_keys, answer_token_keys)
    answer_token_idf = idf_array(total_docs, tok_freq[freq_pos]) if len(answer_token_keys) else np.empty(0, np.float32)

    # ---- passages ----------------------------------------------------------------------------
    p_mult = np.bincount(p.of[has_p_tok], minlength=len(p.tokens))
    p_df = np.bincount(p_text_ids.values, weights=np.repeat(p_mult, np.diff(p_text_ids.ptr)),
                       minlength=n_ids).astype(np.int64) if len(p_text_ids.values) else np.zeros(n_ids, np.int64)
    passage_ngram_idf = np.full(n_ids, np.nan, dtype=np.float32)
    nz = p_df > 0
    passage_ngram_idf[nz] = idf_array(total_docs, p_df[nz])
    text_p_idf_total = segmented_f32_sum(
        np.nan_to_num(passage_ngram_idf[p_text_ids.values], nan=0.0), p_text_ids.ptr)

    fa = a.of[fr]
    fp_ = p.of[fr]
    a_ng_text_ok = np.append(a_text_ng, False)
    arrays: dict[str, np.ndarray] = {
        "ngram.keys": uniq,
        "ngram.ids": id_of_uniq.astype(np.int32),
        "q.docs": q_sets.values.astype(np.int32),
        "q.ptr": q_sets.ptr,
        "q.hot": hot,
        "q.idf": q_idf.astype(np.float32),
        "answer.ngram_idf": answer_ngram_idf,
        "passage.ngram_idf": passage_ngram_idf,
        "answer.token_keys": answer_token_keys.astype(np.int64),
        "answer.token_idf": answer_token_idf.astype(np.float32),
        "doc.id": np.array([records[i].doc_id for i in fr], dtype=np.int64),
        "doc.unique_ngrams": unique_ngrams.astype(np.int64),
        "doc.token_count": token_count.astype(np.int64),
        "doc.question_idf_sum": question_idf_sum.astype(np.float32),
        "doc.answer_len": a_len[fr].astype(np.int64),
        "doc.passage_len": p_len[fr].astype(np.int64),
        "doc.has_answer": has_a_tok[fr],
        "doc.has_answer_ngrams": a_ng_text_ok[np.where(fa >= 0, fa, len(a_text_ng))],
        "doc.has_passage": has_p_tok[fr],
        "doc.has_passage_ngrams": (has_p_tok & (p_len >= pn))[fr],
        "doc.passage_idf_total": np.append(text_p_idf_total, np.float32(0))[
            np.where(fp_ >= 0, fp_, len(text_p_idf_total))].astype(np.float32),
    }
    for name, rg, text_of in (("answer.tokens", a.tokens, fa), ("answer.token_set", a_tok_rows, fa),
                              ("answer.ngrams", a_text_ids, np.where(a_ng_text_ok[np.where(fa >= 0, fa, -1)], fa, -1)),
                              ("passage.token_set", text_tokens["p"], fp_), ("passage.ngrams", p_text_ids, fp_)):
        d = _rows_for(rg, text_of)
        arrays[name] = d.values.astype(np.int64)
        arrays[name + "_ptr"] = d.ptr

    key_idx: dict[str, int] = {}
    for r in records:
        key_idx.setdefault(r.eval_key, len(key_idx))
    eval_keys = list(key_idx)
    stats.eval_suites = len(key_idx)
    finals = [records[i] for i in fr]
    arrays["meta.eval_key"] = np.array([key_idx[r.eval_key] for r in finals], dtype=np.int32)
    arrays["meta.line"] = np.array([r.line_num for r in finals], dtype=np.int64)
    arrays["meta.instance"] = np.array([r.eval_instance_index for r in finals], dtype=np.int64)
    arrays["meta.file"] = np.array([r.file_idx for r in finals], dtype=np.int32)
    arrays["meta.is_correct"] = np.array([-1 if r.is_correct is None else int(r.is_correct) for r in finals],
                                         dtype=np.int8)
    arrays.update(StringTable.from_list([r.fingerprint for r in finals]).arrays("meta.fingerprint"))
    arrays.update(StringTable.from_list([r.split for r in finals]).arrays("meta.split"))
    arrays.update(StringTable.from_list([_snippet(r.q_clean) for r in finals]).arrays("text.question"))
    arrays.update(StringTable.from_list(
        [None if r.a_clean is None else _snippet(r.a_clean) for r in finals]).arrays("text.answer"))
    arrays.update(StringTable.from_list(
        [None if r.p_clean is None else _snippet(r.p_clean) for r in finals]).arrays("text.passage"))
    meta = {"tokenizer": config.tokenizer_str, "eval_keys": eval_keys, "total_docs": float(total_docs),
            "ngram_size": n, "answer_ngram_size": an, "passage_ngram_size": pn}
    return arrays, meta
