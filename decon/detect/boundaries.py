"""Locating an eval's answer (after the question) and passage (before it) in a training document."""

from __future__ import annotations

import numpy as np

from decon.common.ngram_hash import ngram_hashes, ngram_seed
from decon.detect.hitpath import ngram_keys
from decon.detect.reference_index import ReferenceIndex
from decon.detect.scoring import F32, ZERO, f32_sum


def _window_keys(tokens: np.ndarray, start: int, last_pos: int, n: int) -> np.ndarray:
    """n-gram keys at positions start..last_pos (inclusive) of ``tokens`` (compiled hashing)."""
    window = np.ascontiguousarray(tokens[start:last_pos + n], dtype=np.int64)
    if not window.flags.writeable:
        window = window.copy()
    return ngram_keys(window, n, ngram_seed(n))


def _window_ids(index: ReferenceIndex, tokens: np.ndarray, start: int, last_pos: int, n: int) -> np.ndarray:
    """n-gram ids at positions start..last_pos (inclusive) of ``tokens``."""
    return index.lookup(_window_keys(tokens, start, last_pos, n))


def passage_boundaries(index: ReferenceIndex, slot: int, question_start: int, tokens: np.ndarray,
                       window: int, n: int, max_misses: int) -> tuple[int, int, np.float32] | None:
    """Walk back from the question over the passage's n-grams: (start, end, idf overlap) or None."""
    window_end = max(question_start - 1, 0)
    window_start = max(window_end - window, 0)
    if window_start >= window_end or window_end - window_start < n:
        return None
    if not index.has_passage_ngrams[slot]:
        return None
    total = index.passage_idf_total[slot]
    if total == 0.0:
        return None
    passage_ids = index.passage_ngrams.row(slot)
    last = window_end - n
    ids = _window_ids(index, tokens, window_start, last, n)
    found = passage_walk(ids, np.isin(ids, passage_ids), max_misses, index.passage_ngram_idf)
    if found is None:
        return None
    first, last, acc = found
    overlap = F32(acc / total) if total > 0 else ZERO
    return window_start + first, window_start + last + n - 1, overlap


def passage_walk(ids: np.ndarray, member: np.ndarray, max_misses: int, idf: np.ndarray
                 ) -> tuple[int, int, np.float32] | None:
    """Walk back over a window's n-grams (``member``: passage n-gram or not): the offsets of the
    first and last match reached and the float32 IDF sum of the distinct matched n-grams, summed
    in walk order; None without a match."""
    offs = np.flatnonzero(member)
    if len(offs) == 0:
        return None
    # walking back from the last match, the walk stops at the first run of non-matches longer
    # than max_misses: keep the matches after the last such gap
    gaps = np.flatnonzero(np.diff(offs) - 1 > max_misses)
    chain = offs[gaps[-1] + 1 if len(gaps) else 0:][::-1]
    matched: set[int] = set()
    acc = ZERO
    for nid in ids[chain].tolist():
        if nid not in matched:
            matched.add(nid)
            v = idf[nid]
            if not np.isnan(v):
                acc = F32(acc + v)
    return int(chain[-1]), int(offs[-1]), acc


class AnswerKeys:
    """Per eval document, the sorted keys of its answer n-grams with their ids and IDF total, so a
    window is matched against the answer alone (no lookup in the whole index). Documents whose
    stored answer tokens do not give exactly the stored answer n-grams get None (generic path)."""

    def __init__(self, index: ReferenceIndex, n: int) -> None:
        self.index = index
        self.n = n
        self.memo: dict[int, tuple[np.ndarray, np.ndarray, np.float32] | None] = {}

    def __call__(self, slot: int) -> tuple[np.ndarray, np.ndarray, np.float32] | None:
        if slot in self.memo:
            return self.memo[slot]
        index = self.index
        keys = np.unique(ngram_hashes(index.answer_tokens.row(slot), self.n))
        ids = index.lookup(keys)
        got = None
        if len(keys) and (ids >= 0).all() and np.array_equal(np.sort(ids), index.answer_ngrams.row(slot)):
            got = (keys, ids, _answer_total(index, index.answer_ngrams.row(slot)))
        self.memo[slot] = got
        return got


def _answer_total(index: ReferenceIndex, answer_ids: np.ndarray) -> np.float32:
    """Sequential float32 sum of the answer n-grams' IDFs (those that have one), in id order."""
    v = index.answer_ngram_idf[answer_ids]
    v = v[~np.isnan(v)].astype(np.float32, copy=False)
    return np.add.accumulate(v, dtype=np.float32)[-1] if len(v) else ZERO


def _answer_window(index: ReferenceIndex, slot: int, tokens: np.ndarray, start: int, last: int, n: int,
                   keys: AnswerKeys | None) -> tuple[np.ndarray, np.ndarray, np.float32]:
    """(n-gram ids of the window, which of them are answer n-grams, the answer's IDF total)."""
    known = keys(slot) if keys is not None else None
    if known is None:
        answer_ids = index.answer_ngrams.row(slot)  # sorted
        ids = _window_ids(index, tokens, start, last, n)
        return ids, np.isin(ids, answer_ids), _answer_total(index, answer_ids)
    akeys, aids, total = known
    wkeys = _window_keys(tokens, start, last, n)
    pos = np.minimum(np.searchsorted(akeys, wkeys), len(akeys) - 1)
    return aids[pos], akeys[pos] == wkeys, total


def answer_ngram_boundaries(index: ReferenceIndex, slot: int, question_end: int, tokens: np.ndarray,
                            window: int, n: int, keys: AnswerKeys | None = None
                            ) -> tuple[list[tuple[int, int]], np.float32] | None:
    """Long answers: clusters of matching answer n-grams after the question, and their IDF overlap."""
    window_start = question_end + 1
    window_end = min(window_start + window, len(tokens))
    if window_end <= window_start or window_end - window_start < n:
        return None
    if not index.has_answer_ngrams[slot]:
        return None
    ids, member, total = _answer_window(index, slot, tokens, window_start, window_end - n, n, keys)
    if total == 0.0:
        return None
    idf = index.answer_ngram_idf
    matched: set[int] = set()
    acc = ZERO
    positions: list[tuple[int, int]] = []
    for off in np.flatnonzero(member).tolist():
        nid = int(ids[off])
        if nid not in matched:
            matched.add(nid)
            if not np.isnan(idf[nid]):
                acc = F32(acc + idf[nid])
        pos = window_start + off
        positions.append((pos, pos + n - 1))
    overlap = F32(acc / total) if total > 0 else ZERO
    if not positions:
        return None
    clusters: list[tuple[int, int]] = []
    cur_start, cur_end = positions[0]
    for start, end in positions[1:]:
        if start <= cur_end + n:
            cur_end = max(cur_end, end)
        else:
            clusters.append((cur_start, cur_end))
            cur_start, cur_end = start, end
    clusters.append((cur_start, cur_end))
    return clusters, overlap


def short_answer_match(index: ReferenceIndex, slot: int, question_end: int, tokens: np.ndarray,
                       window: int) -> tuple[list[tuple[int, int]], np.float32] | None:
    """Short answers: the first exact occurrence of the answer tokens in the window after the question."""
    answer = index.answer_tokens.row(slot)
    a_len = len(answer)
    start = question_end + 1
    end = min(start + window, len(tokens))
    if a_len == 0 or start >= end:
        return None
    last_start = min(end - 1, len(tokens) - a_len)
    if last_start < start:
        return None
    seg = tokens[start:last_start + a_len]
    # candidate starts where the first token matches, then confirm the whole sequence
    for off in np.flatnonzero(seg[: last_start - start + 1] == answer[0]).tolist():
        if np.array_equal(seg[off:off + a_len], answer):
            s = start + off
            return [(s, s + a_len - 1)], _answer_token_overlap(index, slot, answer)
    return None


def _answer_token_overlap(index: ReferenceIndex, slot: int, matched_tokens: np.ndarray) -> np.float32:
    reference = index.answer_token_set.row(slot)  # sorted distinct
    ref_idf = index.answer_token_idf_of(reference)
    ref_sum = f32_sum(v for v in ref_idf if not np.isnan(v))
    cluster = np.unique(matched_tokens)
    in_ref = np.isin(cluster, reference)
    c_idf = index.answer_token_idf_of(cluster[in_ref])
    matched_sum = f32_sum(v for v in c_idf if not np.isnan(v))
    return F32(matched_sum / ref_sum) if ref_sum > 0 else ZERO
