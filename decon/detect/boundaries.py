"""Locating an eval's answer (after the question) and passage (before it) in a training document."""

from __future__ import annotations

import numpy as np

from decon.common.ngram_hash import ngram_hashes
from decon.detect.reference_index import ReferenceIndex
from decon.detect.scoring import F32, ZERO, f32_sum


def _window_ids(index: ReferenceIndex, tokens: np.ndarray, start: int, last_pos: int, n: int) -> np.ndarray:
    """n-gram ids at positions start..last_pos (inclusive) of ``tokens``."""
    keys = ngram_hashes(tokens[start:last_pos + n], n)
    return index.lookup(keys)


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
    member = np.isin(ids, passage_ids)
    matched: set[int] = set()
    first = last_match = None
    misses = 0
    acc = ZERO
    for off in range(len(ids) - 1, -1, -1):
        i = window_start + off
        if member[off]:
            nid = int(ids[off])
            if nid not in matched:
                matched.add(nid)
                v = index.passage_ngram_idf[nid]
                if not np.isnan(v):
                    acc = F32(acc + v)
            if first is None:
                last_match = i + n - 1
            first = i
            misses = 0
        elif first is not None:
            misses += 1
            if misses > max_misses:
                break
    if first is None or last_match is None:
        return None
    overlap = F32(acc / total) if total > 0 else ZERO
    return first, last_match, overlap


def answer_ngram_boundaries(index: ReferenceIndex, slot: int, question_end: int, tokens: np.ndarray,
                            window: int, n: int) -> tuple[list[tuple[int, int]], np.float32] | None:
    """Long answers: clusters of matching answer n-grams after the question, and their IDF overlap."""
    window_start = question_end + 1
    window_end = min(window_start + window, len(tokens))
    if window_end <= window_start or window_end - window_start < n:
        return None
    if not index.has_answer_ngrams[slot]:
        return None
    answer_ids = index.answer_ngrams.row(slot)  # sorted
    idf = index.answer_ngram_idf
    total = f32_sum(idf[i] for i in answer_ids if not np.isnan(idf[i]))
    if total == 0.0:
        return None
    ids = _window_ids(index, tokens, window_start, window_end - n, n)
    member = np.isin(ids, answer_ids)
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
