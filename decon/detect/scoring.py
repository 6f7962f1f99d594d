"""SIMPLE scoring: IDF overlaps, the combined score and length-adjusted thresholds.

All arithmetic is float32, as upstream's f32, so scores and threshold decisions agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

F32 = np.float32

# Weights of the combined score per eval shape: question+answer+passage, question+answer,
# question+passage.
W_QAP = (F32(0.7), F32(0.2), F32(0.1))
W_QA = (F32(0.75), F32(0.25))
W_QP = (F32(0.85), F32(0.15))
MIN_INFORMATIVE_QUESTION_NGRAMS = F32(20.0)
MIN_INFORMATIVE_ANSWER_TOKENS = F32(4.0)
ONE = F32(1.0)
HALF = F32(0.5)
ZERO = F32(0.0)


def f32_ln(x: float | np.floating) -> np.float32:
    """Natural log of a float32 value, correctly rounded to float32."""
    return F32(math.log(float(x)))


def idf(total_docs: np.float32, doc_freq: int) -> np.float32:
    """ln(total_docs / doc_freq) with upstream's float32 steps."""
    return f32_ln(F32(total_docs) / F32(doc_freq))


def idf_array(total_docs: np.float32, doc_freq: np.ndarray) -> np.ndarray:
    ratio = (F32(total_docs) / doc_freq.astype(np.float32)).astype(np.float64)
    return np.log(ratio).astype(np.float32)


def f32_sum(values: Iterable[np.float32]) -> np.float32:
    """Sequential float32 sum (the order matters in the last bits)."""
    acc = ZERO
    for v in values:
        acc = F32(acc + v)
    return acc


def segmented_f32_sum(values: np.ndarray, ptr: np.ndarray) -> np.ndarray:
    """Per-segment sequential float32 sums of ``values`` split at ``ptr`` (len = segments + 1)."""
    values = values.astype(np.float32, copy=False)
    lengths = np.diff(ptr)
    n_seg = len(lengths)
    if n_seg == 0:
        return np.zeros(0, dtype=np.float32)
    max_len = int(lengths.max(initial=0))
    if max_len == 0:
        return np.zeros(n_seg, dtype=np.float32)
    if n_seg * max_len <= 4_000_000:
        # pad rows with zeros and accumulate along each row: sequential, one numpy call
        grid = np.zeros((n_seg, max_len), dtype=np.float32)
        row = np.repeat(np.arange(n_seg), lengths)
        col = np.arange(len(values)) - np.repeat(ptr[:-1], lengths)
        grid[row, col] = values[ptr[0]:ptr[-1]] if ptr[0] else values[:ptr[-1]]
        return np.add.accumulate(grid, axis=1, dtype=np.float32)[:, -1].copy()
    out = np.zeros(n_seg, dtype=np.float32)
    starts = ptr[:-1]
    active = np.arange(n_seg)
    for k in range(max_len):
        active = active[lengths[active] > k]
        out[active] += values[starts[active] + k]
    return out


def minimum_question_idf_threshold(contamination_score_threshold: float) -> np.float32:
    """The lowest question IDF overlap that could still reach the threshold with perfect answer/passage."""
    other = F32(W_QAP[1] + W_QAP[2])
    value = F32(F32(F32(contamination_score_threshold) - other) / W_QAP[0])
    return max(value, ZERO)


def interpolate_threshold(token_length: int, perfect_start: int | None, threshold_end: int | None,
                          target: float) -> np.float32:
    """Required score for an eval of ``token_length`` tokens: 1.0 when short, ``target`` when long."""
    target = F32(target)
    if perfect_start is not None and threshold_end is not None:
        if token_length <= perfect_start:
            return ONE
        if token_length >= threshold_end:
            return target
        if perfect_start == threshold_end:
            return target
        rng = F32(threshold_end - perfect_start)
        pos = F32(token_length - perfect_start)
        ratio = F32(pos / rng)
        return F32(ONE - F32(F32(ONE - target) * ratio))
    if perfect_start is not None:
        return ONE if token_length <= perfect_start else target
    return target


def answer_confidence(answer_token_length: int | None) -> np.float32:
    if answer_token_length is None:
        return ONE
    tokens = F32(answer_token_length)
    if tokens < MIN_INFORMATIVE_ANSWER_TOKENS:
        return F32(HALF + F32(F32(tokens / MIN_INFORMATIVE_ANSWER_TOKENS) * HALF))
    return ONE


def combined_score(
    *,
    question_idf: np.float32,
    eval_unique_ngrams: int,
    eval_token_length: int | None,
    eval_has_answer: bool,
    answer_idf_overlap: np.float32 | None,
    answer_token_length: int | None,
    eval_has_passage: bool,
    passage_idf_overlap: np.float32 | None,
    passage_token_length: int | None,
    contamination_score_threshold: float,
    perfect_match_decay_start: int | None,
    perfect_match_decay_end: int | None,
) -> np.float32:
    """The weighted question/answer/passage score, with confidence redistribution and length decay."""
    q = F32(question_idf)
    a = F32(answer_idf_overlap) if answer_idf_overlap is not None else ZERO
    p = F32(passage_idf_overlap) if passage_idf_overlap is not None else ZERO
    q_ngrams = F32(eval_unique_ngrams)
    if q_ngrams < MIN_INFORMATIVE_QUESTION_NGRAMS:
        q_conf = F32(HALF + F32(F32(q_ngrams / MIN_INFORMATIVE_QUESTION_NGRAMS) * HALF))
    else:
        q_conf = ONE

    if eval_has_answer and eval_has_passage:
        a_conf = answer_confidence(answer_token_length)
        wq, wa, wp = W_QAP
        if q_conf < ONE or a_conf < ONE:
            q_weight = F32(wq * q_conf)
            q_redis = F32(wq * F32(ONE - q_conf))
            a_after = F32(wa + F32(q_redis * HALF))
            p_after = F32(wp + F32(q_redis * HALF))
            a_final = F32(a_after * a_conf)
            a_redis = F32(a_after * F32(ONE - a_conf))
            p_final = F32(p_after + a_redis)
            base = F32(F32(F32(q * q_weight) + F32(a * a_final)) + F32(p * p_final))
        else:
            base = F32(F32(F32(q * wq) + F32(a * wa)) + F32(p * wp))
    elif eval_has_answer:
        wq, wa = W_QA
        if q_conf < ONE:
            q_weight = F32(wq * q_conf)
            a_weight = F32(wa + F32(wq * F32(ONE - q_conf)))
            base = F32(F32(q * q_weight) + F32(a * a_weight))
        else:
            base = F32(F32(q * wq) + F32(a * wa))
    elif eval_has_passage:
        wq, wp = W_QP
        if q_conf < ONE:
            q_weight = F32(wq * q_conf)
            p_weight = F32(wp + F32(wq * F32(ONE - q_conf)))
            base = F32(F32(q * q_weight) + F32(p * p_weight))
        else:
            base = F32(F32(q * wq) + F32(p * wp))
    else:
        base = q

    capped = min(base, ONE)
    if perfect_match_decay_start is None and perfect_match_decay_end is None:
        return capped
    q_len = eval_token_length or 0
    a_len = (answer_token_length or 0) if eval_has_answer else 0
    p_len = (passage_token_length or 0) if eval_has_passage else 0
    threshold = F32(contamination_score_threshold)
    required = interpolate_threshold(q_len + a_len + p_len, perfect_match_decay_start,
                                     perfect_match_decay_end, threshold)
    if required > threshold:
        scale = F32(threshold / required)
        bonus = ONE if capped == ONE else ZERO
        return F32(F32(capped * scale) + F32(F32(ONE - scale) * bonus))
    return capped
