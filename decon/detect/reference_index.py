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
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from decon.common.config import DetectionConfig
from decon.common.data_reader import DataFileError, iter_record_lines
from decon.common.file_io import find_data_files
from decon.common.ngram_hash import flat_ngram_hashes, sequence_hashes
from decon.common.progress import progress_bar
from decon.common.string_table import StringTable
from decon.common.text import clean_text
from decon.common.tokenizer import Tokenizer, get_tokenizer
from decon.detect.scoring import idf_array, segmented_f32_sum
from decon.errors import DeconError

SNIPPET_WORDS = 1000
FILTER_BITS = 26  # 2**26-bit filter = 8 MB
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
        self.recall = None  # the recall arrays, when the index was built with recall: true
        if "recall" in self.meta:
            from decon.detect.recall_index import RecallIndex

            self.recall = RecallIndex(a, self.meta["recall"])
        self.semantic = None  # the semantic pass's candidate arrays, when built with semantic: true
        if "semantic" in self.meta:
            from decon.detect.semantic_index import SemanticIndex

            self.semantic = SemanticIndex(a, self.meta["semantic"])

    @property
    def num_docs(self) -> int:
        return len(self.doc_id)

    def question_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sorted keys/ids of question n-grams only, plus a bit filter over their top key bits."""
        qt = getattr(self, "_qt", None)
        if qt is None:
            has_q = self.q_df[self.key_ids] > 0
            qkeys = np.ascontiguousarray(self.key_sorted[has_q])
            qids = np.ascontiguousarray(self.key_ids[has_q]).astype(np.int64)
            bits = np.zeros(1 << (FILTER_BITS - 6), dtype=np.uint64)
            top = (qkeys >> np.uint64(64 - FILTER_BITS)).astype(np.int64)
            np.bitwise_or.at(bits, top >> 6, np.left_shift(np.uint64(1), (top & 63).astype(np.uint64)))
            qt = self._qt = (qkeys, qids, bits)
        return qt

    def lookup_question(self, keys: np.ndarray) -> np.ndarray:
        """Question n-gram ids for ``keys`` (-1 where the key is not a question n-gram).

        A bit filter over the keys' top bits rejects almost every miss before the binary search.
        """
        qkeys, qids, bits = self.question_table()
        out = np.full(len(keys), -1, dtype=np.int64)
        if len(qkeys) == 0 or len(keys) == 0:
            return out
        top = (keys >> np.uint64(64 - FILTER_BITS)).astype(np.int64)
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

def parse_reference_file(path: Path, file_idx: int, config: DetectionConfig, out: list[tuple[int, int, dict]],
                         shared: dict[str, str] | None = None) -> int:
    """Append (file_idx, line_num, record) for each data line; returns lines seen.

    With ``shared``, equal question, answer and passage strings become one object (eval sets
    repeat a passage for each of its questions and a question for each answer choice), so the
    parsed records take a fraction of the memory.
    """
    fallback = path.name[: -len(path.suffix)] if path.suffix else path.name
    n = 0
    try:
        for line_num, raw in enumerate(iter_record_lines(path, config.max_line_bytes)):
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
            if shared is not None:
                for key in _TEXT_FIELDS:
                    value = obj.get(key)
                    if isinstance(value, str):
                        obj[key] = shared.setdefault(value, value)
            out.append((file_idx, line_num, obj))
    except DataFileError as exc:
        raise DeconError(f"cannot read reference file {exc}") from None
    except UnicodeDecodeError as exc:
        raise DeconError(f"cannot read reference file {path}: {exc}") from None
    return n


_TEXT_FIELDS = ("question", "answer", "passage")


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
    lengths = np.zeros(len(texts), dtype=np.int64)
    pieces: list[np.ndarray] = []
    pool = None
    if tok.is_bpe and threads > 1 and len(idx) > 1000:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(threads)
    try:
        # chunk by chunk, so Python lists of ints (36 bytes a token) never pile up
        for c0 in range(0, len(idx), _ENCODE_CHUNK):
            chunk_idx = idx[c0:c0 + _ENCODE_CHUNK]
            padded = [" " + texts[i] for i in chunk_idx]  # type: ignore[operator]
            if pool is None:
                parts = [tok.encode_flat(padded)]
            else:
                step = -(-len(padded) // threads)
                parts = list(pool.map(tok.encode_flat, [padded[i:i + step] for i in range(0, len(padded), step)]))
            lengths[chunk_idx] = np.concatenate([np.diff(ptr) for _, ptr in parts])
            pieces.extend(ids for ids, _ in parts)
            del parts, padded
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
    idx = np.repeat(r.ptr[:-1][rows] - ptr[:-1], lengths)
    idx += np.arange(ptr[-1])  # in place: one temporary fewer
    return Ragged(r.values[idx], ptr)


def build_index(config: DetectionConfig, *, progress: bool = True) -> ReferenceIndex:
    """Build the reference index from ``config.evals_dir`` (see module docstring)."""
    started = time.perf_counter()
    evals_dir = config.resolved_evals_dir()
    files = find_data_files(evals_dir, columnar=True) if evals_dir.is_dir() else []
    if not files:
        raise DeconError(f"no reference files found in {evals_dir} (expected .jsonl/.json, optionally compressed)")
    tok = get_tokenizer(config.tokenizer_str)
    threads = max(1, int(config.worker_threads or 1))
    stats = IndexStats(files_processed=len(files))

    parsed = _Parsed.of(_parse_all(files, config, progress), config)
    texts = {name: _Texts.build(per_rec, tok, threads) for name, per_rec in parsed.inputs().items()}
    records = _select_records(parsed, _token_ok(parsed, texts, tok, config), config, stats)
    kept = np.array([r.raw_idx for r in records], dtype=np.int64)
    recall = _recall_arrays(parsed, tok, config, files) if config.runs_recall else None
    # The raw records and the texts of dropped records are garbage from here on: free them
    # before the arrays are assembled, so their memory is reused rather than added to.
    del parsed

    arrays, meta = _assemble(records, config, {k: t.select(kept) for k, t in texts.items()}, stats)
    meta["reference_files"] = [f.name for f in files]
    if recall is not None:
        arrays.update(recall[0])
        meta["recall"] = recall[1]
        if config.semantic:
            from decon.detect.semantic_index import build_semantic_arrays

            enc = tok.encoding
            sem_arrays, meta["semantic"] = build_semantic_arrays(
                recall[0]["recall.q.tokens"], recall[0]["recall.q.tokens_ptr"],
                enc.decode_single_token_bytes if enc is not None else None)
            arrays.update(sem_arrays)
    stats.total_lines_examined = (stats.lines_indexed + stats.skipped_duplicates + stats.skipped_min_tokens
                                  + stats.skipped_min_unique_words)
    stats.build_seconds = time.perf_counter() - started
    return ReferenceIndex(arrays=arrays, meta=meta, stats=stats)


def _recall_arrays(parsed: _Parsed, tok: Tokenizer, config: DetectionConfig,
                   files: list[Path]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from decon.detect.recall_index import build_recall_arrays

    cleaner = _Cleaner(config.punctuation_chars)
    return build_recall_arrays(parsed.raw, parsed.q_clean, parsed.a_clean, tok, config, cleaner,
                               [f.name for f in files])


def _parse_all(files: list[Path], config: DetectionConfig, progress: bool) -> list[tuple[int, int, dict]]:
    raw: list[tuple[int, int, dict]] = []
    shared: dict[str, str] = {}
    with progress_bar(len(files), "Reference files", enabled=progress) as bar:
        for i, f in enumerate(files):
            parse_reference_file(f, i, config, raw, shared)
            bar.advance()
    return raw


@dataclass
class _Parsed:
    """Every reference line, parsed, with its cleaned texts (build-time only).

    ``*_in`` are the texts that get indexed: None where a record has none or the role is off.
    A record's token count is the sum over its parts: tokens never span the single space that
    joins cleaned parts, so this equals counting the joined text as upstream does.
    """

    raw: list[tuple[int, int, dict]]
    q_clean: list[str]
    a_clean: list[str]
    p_clean: list[str]
    has_answer_field: list[bool]
    q_in: list[str | None]
    a_in: list[str | None]
    p_in: list[str | None]

    @classmethod
    def of(cls, raw: list[tuple[int, int, dict]], config: DetectionConfig) -> _Parsed:
        # Clean each distinct text once (eval sets repeat passages and questions a lot).
        cleaner = _Cleaner(config.punctuation_chars)
        q_clean = [cleaner(_str_or(r.get("question"))) for _, _, r in raw]
        a_clean = [cleaner(_str_or(r.get("answer"))) for _, _, r in raw]
        p_clean = [cleaner(_str_or(r.get("passage"))) for _, _, r in raw]
        has_answer = [("answer" in r) for _, _, r in raw]
        return cls(
            raw, q_clean, a_clean, p_clean, has_answer,
            q_in=[q or None for q in q_clean],
            a_in=[a if (config.index_answers and has_answer[k] and a) else None for k, a in enumerate(a_clean)],
            p_in=[p if (config.index_passages and p) else None for p in p_clean],
        )

    def inputs(self) -> dict[str, list[str | None]]:
        return {"q": self.q_in, "a": self.a_in, "p": self.p_in}

    def words(self, k: int) -> list[str]:
        return [w for part in (self.p_in[k], self.q_in[k], self.a_in[k]) if part for w in part.split()]


def _token_ok(parsed: _Parsed, texts: dict[str, _Texts], tok: Tokenizer, config: DetectionConfig) -> np.ndarray:
    """Per record: has it at least ``eval_min_token_length`` tokens (spaces not counted)?"""
    n = len(parsed.raw)
    if config.eval_min_token_length <= 0:
        return np.ones(n, dtype=bool)
    if config.tokenizer_str == "word":
        counts = np.array([len(parsed.words(k)) for k in range(n)], dtype=np.int64)
    else:
        space = np.fromiter(tok.space_token_ids, dtype=np.int64) if tok.space_token_ids else _EMPTY_I64
        counts = np.zeros(n, dtype=np.int64)
        for t in texts.values():
            counts += t.per_record(t.nonspace_counts(space))
    return counts >= config.eval_min_token_length


def _select_records(parsed: _Parsed, token_ok: np.ndarray, config: DetectionConfig,
                    stats: IndexStats) -> list[_Record]:
    """The records that pass the filters (token count, unique words, fingerprint dedup, a question)."""
    seen_fp: set[tuple[str, str]] = set()
    records: list[_Record] = []
    for k, (file_idx, line_num, r) in enumerate(parsed.raw):
        if not token_ok[k]:
            stats.skipped_min_tokens += 1
            continue
        if config.eval_min_unique_word_count > 0 and len(set(parsed.words(k))) < config.eval_min_unique_word_count:
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
        records.append(_record(k, file_idx, line_num, r, parsed, config, fp))
    return records


def _record(k: int, file_idx: int, line_num: int, r: dict, parsed: _Parsed, config: DetectionConfig,
            fp: str | None) -> _Record:
    a_processed = config.index_answers and parsed.has_answer_field[k] and bool(_str_or(r.get("answer")))
    p_processed = config.index_passages and bool(_str_or(r.get("passage")))
    is_correct = r.get("is_correct")
    return _Record(
        raw_idx=k,
        doc_id=int(r["doc_id"]) & 0xFFFFFFFF,
        eval_key=r["eval_key"],
        line_num=line_num,
        file_idx=file_idx,
        eval_instance_index=_uint_or(r.get("eval_instance_index"), line_num),
        fingerprint=fp,
        is_correct=is_correct if isinstance(is_correct, bool) else None,
        split=r.get("split") if isinstance(r.get("split"), str) else None,
        q_clean=parsed.q_clean[k],
        a_clean=parsed.a_clean[k] if a_processed else None,
        p_clean=parsed.p_clean[k] if p_processed else None,
    )


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


def _ragged_hashes(r: Ragged) -> np.ndarray:
    """The whole-sequence key of every row of ``r``."""
    return sequence_hashes(r.values, r.ptr)


def _with_empty_row(r: Ragged) -> Ragged:
    """``r`` plus one empty row at the end (row -1 then reads as empty)."""
    return Ragged(r.values, np.append(r.ptr, r.ptr[-1]))


def _rows_for(r: Ragged, text_of: np.ndarray) -> Ragged:
    """Rows of ``r`` for each entry of ``text_of`` (-1: an empty row)."""
    return _take(_with_empty_row(r), np.where(text_of >= 0, text_of, len(r)))


@dataclass
class _Roles:
    """The three roles' texts of the kept records, plus what every stage needs to know of them."""

    q: _Texts
    a: _Texts
    p: _Texts
    config: DetectionConfig

    def __post_init__(self) -> None:
        self.q_len, self.a_len, self.p_len = self.q.lengths(), self.a.lengths(), self.p.lengths()
        self.q_valid = self.q_len > 0
        self.has_a_tok = self.a_len > 0
        self.has_p_tok = self.p_len > 0
        # answers long enough for answer n-grams (per distinct text, then per record)
        at_len = np.diff(self.a.tokens.ptr)
        self.a_text_ng = ((at_len > self.config.short_answer_token_threshold)
                          & (at_len >= self.config.answer_ngram_size))
        self.a_ng_rec_ok = (self.a.per_record(self.a_text_ng) if len(self.a_text_ng)
                            else np.zeros(len(self.q.of), bool))


@dataclass
class _Docs:
    """Document slots: doc_id -> slot in first-seen order of indexed records; ``fr`` is the final
    (last) record of each slot."""

    rec_slot: np.ndarray
    fr: np.ndarray

    @property
    def total(self) -> np.float32:
        return np.float32(len(self.fr))


@dataclass
class _Grams:
    """n-gram ids (first-seen order) and the sorted distinct ids of every distinct text."""

    uniq: np.ndarray
    id_of_uniq: np.ndarray
    q_text_ids: Ragged
    a_text_ids: Ragged
    p_text_ids: Ragged

    @property
    def n_ids(self) -> int:
        return len(self.uniq)


def _assemble(records: list[_Record], config: DetectionConfig, texts: dict[str, _Texts],
              stats: IndexStats) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Freeze the kept records into the index arrays (see ``ReferenceIndex`` for their names)."""
    roles = _Roles(texts["q"], texts["a"], texts["p"], config)
    stats.lines_indexed = int(roles.q_valid.sum())
    if stats.lines_indexed == 0:
        raise DeconError(
            f"No evaluation data was indexed: {stats.files_processed} files, 0 records passed the filters "
            f"(min {config.eval_min_token_length} tokens, min {config.eval_min_unique_word_count} unique words)"
            f" in {config.resolved_evals_dir()}")
    docs = _doc_slots(records, roles.q_valid)
    grams = _ngram_ids(roles)
    stats.unique_ngrams = grams.n_ids
    arrays: dict[str, np.ndarray] = {"ngram.keys": grams.uniq, "ngram.ids": grams.id_of_uniq.astype(np.int32)}
    arrays.update(_question_arrays(roles, docs, grams, stats))
    tok_keys, tok_freq, text_tokens = _token_frequencies(roles)
    arrays.update(_answer_arrays(roles, docs, grams, text_tokens["a"], tok_keys, tok_freq))
    del tok_keys, tok_freq
    passage_idf, text_p_idf_total = _passage_idf(roles, docs, grams)
    arrays["passage.ngram_idf"] = passage_idf
    arrays.update(_doc_arrays(roles, docs, records, text_p_idf_total))
    arrays.update(_row_arrays(roles, docs, grams, text_tokens))
    eval_keys = list(dict.fromkeys(r.eval_key for r in records))
    stats.eval_suites = len(eval_keys)
    arrays.update(_record_arrays([records[i] for i in docs.fr], eval_keys))
    meta = {"tokenizer": config.tokenizer_str, "eval_keys": eval_keys, "total_docs": float(docs.total),
            "ngram_size": config.ngram_size, "answer_ngram_size": config.answer_ngram_size,
            "passage_ngram_size": config.passage_ngram_size}
    return arrays, meta


def _doc_slots(records: list[_Record], q_valid: np.ndarray) -> _Docs:
    slot_of_doc: dict[int, int] = {}
    rec_slot = np.full(len(records), -1, dtype=np.int64)
    valid_idx = np.flatnonzero(q_valid)
    for i in valid_idx:
        rec_slot[i] = slot_of_doc.setdefault(records[i].doc_id, len(slot_of_doc))
    final_rec = np.full(len(slot_of_doc), -1, dtype=np.int64)
    final_rec[rec_slot[valid_idx]] = valid_idx  # later records overwrite earlier ones
    return _Docs(rec_slot, final_rec)


def _ngram_windows(roles: _Roles) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """(keys, text index) of the question, answer and passage n-gram windows, in text then
    position order. A question shorter than n is one n-gram of all its tokens; answers too short
    for answer n-grams have none."""
    cfg, q, a, p = roles.config, roles.q, roles.a, roles.p
    n = cfg.ngram_size
    qk, qu, _ = flat_ngram_hashes(q.tokens.values, q.tokens.ptr, n)
    qt_len = np.diff(q.tokens.ptr)
    short = np.flatnonzero((qt_len > 0) & (qt_len < n))
    if len(short):
        qk = np.concatenate([qk, _ragged_hashes(_take(q.tokens, short))])
        qu = np.concatenate([qu, short.astype(np.int64)])
        order = np.argsort(qu, kind="stable")
        qk, qu = qk[order], qu[order]
    ak, au, _ = flat_ngram_hashes(a.tokens.values, a.tokens.ptr, cfg.answer_ngram_size)
    sel = roles.a_text_ng[au]
    pk, pu, _ = flat_ngram_hashes(p.tokens.values, p.tokens.ptr, cfg.passage_ngram_size)
    return (qk, qu), (ak[sel], au[sel]), (pk, pu)


def _first_use(t: _Texts, used: np.ndarray) -> np.ndarray:
    """Per distinct text, the first record that uses it (int64 max: none)."""
    first = np.full(len(t.tokens), np.iinfo(np.int64).max, dtype=np.int64)
    recs = np.flatnonzero(used & (t.of >= 0))
    np.minimum.at(first, t.of[recs], recs)
    return first


def _ngram_ids(roles: _Roles) -> _Grams:
    """Ids in first-seen order: a text's n-grams count from the first record that uses it, and a
    record's question n-grams come before its answer's, then its passage's."""
    (qk, qu), (ak, au), (pk, pu) = _ngram_windows(roles)
    big = np.iinfo(np.int64).max
    sort_key = np.concatenate([
        np.where((f := _first_use(roles.q, roles.q_valid))[qu] < big, f[qu] * 3, big),
        np.where((f := _first_use(roles.a, roles.a_ng_rec_ok))[au] < big, f[au] * 3 + 1, big),
        np.where((f := _first_use(roles.p, roles.has_p_tok))[pu] < big, f[pu] * 3 + 2, big),
    ])
    keys = np.concatenate([qk, ak, pk])
    n_q, n_a = len(qk), len(ak)
    del qk, ak, pk
    order = np.argsort(sort_key, kind="stable")  # windows of one text stay in position order
    order = order[sort_key[order] < big]
    del sort_key
    uniq, id_of_uniq, ids_o = first_seen_ids(keys[order])
    ids = np.full(len(keys), -1, dtype=np.int64)
    ids[order] = ids_o
    del keys, order, ids_o
    q_ids, a_ids, p_ids = np.split(ids, [n_q, n_q + n_a])

    def text_rows(u: np.ndarray, i: np.ndarray, count: int) -> Ragged:
        keep = i >= 0  # texts no kept record uses got no ids
        return _unique_rows(u[keep], i[keep], count)

    return _Grams(uniq, id_of_uniq, text_rows(qu, q_ids, len(roles.q.tokens)),
                  text_rows(au, a_ids, len(roles.a.tokens)), text_rows(pu, p_ids, len(roles.p.tokens)))


def _question_arrays(roles: _Roles, docs: _Docs, grams: _Grams, stats: IndexStats) -> dict[str, np.ndarray]:
    """Question n-gram -> documents (union over records), hot flags and IDFs."""
    q = roles.q
    rec_q_ids = _rows_for(grams.q_text_ids, np.where(roles.q_valid, q.of, -1))
    q_pairs_slot = np.repeat(docs.rec_slot, np.diff(rec_q_ids.ptr))
    q_sets = _unique_rows(rec_q_ids.values, q_pairs_slot, grams.n_ids)  # rows: ids, values: slots (sorted)
    del rec_q_ids, q_pairs_slot
    q_df = np.diff(q_sets.ptr)
    hot_threshold = max(2000, int(math.sqrt(np.float32(stats.lines_indexed))) * 2)
    hot = q_df > hot_threshold
    stats.hot_buckets_replaced = int(hot.sum())
    q_idf = idf_array(docs.total, np.maximum(q_df, 1))
    text_q_idf_sum = segmented_f32_sum(q_idf[grams.q_text_ids.values], grams.q_text_ids.ptr)
    fq = q.of[docs.fr]
    return {
        "q.docs": q_sets.values.astype(np.int32),
        "q.ptr": q_sets.ptr,
        "q.hot": hot,
        "q.idf": q_idf.astype(np.float32),
        "doc.unique_ngrams": np.diff(grams.q_text_ids.ptr)[fq].astype(np.int64),
        "doc.question_idf_sum": text_q_idf_sum[fq].astype(np.float32),
    }


def _token_frequencies(roles: _Roles) -> tuple[np.ndarray, np.ndarray, dict[str, Ragged]]:
    """Token document frequencies (question, answer and passage sets each count), and the sorted
    distinct tokens of every distinct text per role."""
    tok_vals, tok_wts = [], []
    text_tokens: dict[str, Ragged] = {}
    for name, t, used_rec in (("q", roles.q, roles.q_valid), ("a", roles.a, roles.has_a_tok),
                              ("p", roles.p, roles.has_p_tok)):
        lens = np.diff(t.tokens.ptr)
        distinct = _unique_rows(np.repeat(np.arange(len(lens)), lens), t.tokens.values, len(lens))
        text_tokens[name] = distinct
        mult = np.bincount(t.of[used_rec & (t.of >= 0)], minlength=len(lens))
        tok_vals.append(distinct.values)
        tok_wts.append(np.repeat(mult, np.diff(distinct.ptr)))
    tok_keys, tok_freq = _weighted_unique(np.concatenate(tok_vals), np.concatenate(tok_wts))
    return tok_keys, tok_freq, text_tokens


def _role_ngram_idf(t: _Texts, used_rec: np.ndarray, text_ids: Ragged, n_ids: int,
                    total_docs: np.float32) -> np.ndarray:
    """Per n-gram id, the IDF over the records of one role that use it (NaN: no such record)."""
    mult = np.bincount(t.of[used_rec], minlength=len(t.tokens))
    df = (np.bincount(text_ids.values, weights=np.repeat(mult, np.diff(text_ids.ptr)), minlength=n_ids)
          .astype(np.int64) if len(text_ids.values) else np.zeros(n_ids, np.int64))
    out = np.full(n_ids, np.nan, dtype=np.float32)
    nz = df > 0
    out[nz] = idf_array(total_docs, df[nz])
    return out


def _answer_arrays(roles: _Roles, docs: _Docs, grams: _Grams, a_tok_rows: Ragged, tok_keys: np.ndarray,
                   tok_freq: np.ndarray) -> dict[str, np.ndarray]:
    a = roles.a
    answer_ngram_idf = _role_ngram_idf(a, roles.a_ng_rec_ok, grams.a_text_ids, grams.n_ids, docs.total)
    a_used = np.bincount(a.of[roles.has_a_tok], minlength=len(a.tokens)) > 0
    answer_token_keys = sorted_unique(_take(a_tok_rows, np.flatnonzero(a_used)).values)
    freq_pos = np.searchsorted(tok_keys, answer_token_keys)
    answer_token_idf = (idf_array(docs.total, tok_freq[freq_pos]) if len(answer_token_keys)
                        else np.empty(0, np.float32))
    return {
        "answer.ngram_idf": answer_ngram_idf,
        "answer.token_keys": answer_token_keys.astype(np.int64),
        "answer.token_idf": answer_token_idf.astype(np.float32),
    }


def _passage_idf(roles: _Roles, docs: _Docs, grams: _Grams) -> tuple[np.ndarray, np.ndarray]:
    """Passage n-gram IDFs, and per distinct passage the sum of its n-grams' IDFs."""
    passage_ngram_idf = _role_ngram_idf(roles.p, roles.has_p_tok, grams.p_text_ids, grams.n_ids, docs.total)
    text_p_idf_total = segmented_f32_sum(
        np.nan_to_num(passage_ngram_idf[grams.p_text_ids.values], nan=0.0), grams.p_text_ids.ptr)
    return passage_ngram_idf, text_p_idf_total


def _doc_arrays(roles: _Roles, docs: _Docs, records: list[_Record],
                text_p_idf_total: np.ndarray) -> dict[str, np.ndarray]:
    """Per document slot: id, lengths and flags of its final record."""
    fr = docs.fr
    fa, fp_ = roles.a.of[fr], roles.p.of[fr]
    a_ng_text_ok = np.append(roles.a_text_ng, False)
    return {
        "doc.id": np.array([records[i].doc_id for i in fr], dtype=np.int64),
        "doc.token_count": roles.q_len[fr].astype(np.int64),
        "doc.answer_len": roles.a_len[fr].astype(np.int64),
        "doc.passage_len": roles.p_len[fr].astype(np.int64),
        "doc.has_answer": roles.has_a_tok[fr],
        "doc.has_answer_ngrams": a_ng_text_ok[np.where(fa >= 0, fa, len(roles.a_text_ng))],
        "doc.has_passage": roles.has_p_tok[fr],
        "doc.has_passage_ngrams": (roles.has_p_tok & (roles.p_len >= roles.config.passage_ngram_size))[fr],
        "doc.passage_idf_total": np.append(text_p_idf_total, np.float32(0))[
            np.where(fp_ >= 0, fp_, len(text_p_idf_total))].astype(np.float32),
    }


def _row_arrays(roles: _Roles, docs: _Docs, grams: _Grams, text_tokens: dict[str, Ragged]) -> dict[str, np.ndarray]:
    """Per document slot, the rows (tokens, token sets, n-gram ids) of its answer and passage."""
    fa, fp_ = roles.a.of[docs.fr], roles.p.of[docs.fr]
    a_ng_text_ok = np.append(roles.a_text_ng, False)
    fa_ng = np.where(a_ng_text_ok[np.where(fa >= 0, fa, -1)], fa, -1)
    out: dict[str, np.ndarray] = {}
    for name, rg, text_of in (("answer.tokens", roles.a.tokens, fa), ("answer.token_set", text_tokens["a"], fa),
                              ("answer.ngrams", grams.a_text_ids, fa_ng),
                              ("passage.token_set", text_tokens["p"], fp_), ("passage.ngrams", grams.p_text_ids, fp_)):
        d = _rows_for(rg, text_of)
        out[name] = d.values.astype(np.int64, copy=False)
        out[name + "_ptr"] = d.ptr
    return out


def _record_arrays(finals: list[_Record], eval_keys: list[str]) -> dict[str, np.ndarray]:
    """Per document slot, what the report shows of its final record."""
    key_idx = {k: i for i, k in enumerate(eval_keys)}
    arrays = {
        "meta.eval_key": np.array([key_idx[r.eval_key] for r in finals], dtype=np.int32),
        "meta.line": np.array([r.line_num for r in finals], dtype=np.int64),
        "meta.instance": np.array([r.eval_instance_index for r in finals], dtype=np.int64),
        "meta.file": np.array([r.file_idx for r in finals], dtype=np.int32),
        "meta.is_correct": np.array([-1 if r.is_correct is None else int(r.is_correct) for r in finals],
                                    dtype=np.int8),
    }
    arrays.update(StringTable.from_list([r.fingerprint for r in finals]).arrays("meta.fingerprint"))
    arrays.update(StringTable.from_list([r.split for r in finals]).arrays("meta.split"))
    arrays.update(StringTable.from_list([_snippet(r.q_clean) for r in finals]).arrays("text.question"))
    arrays.update(StringTable.from_list(
        [None if r.a_clean is None else _snippet(r.a_clean) for r in finals]).arrays("text.answer"))
    arrays.update(StringTable.from_list(
        [None if r.p_clean is None else _snippet(r.p_clean) for r in finals]).arrays("text.passage"))
    return arrays
