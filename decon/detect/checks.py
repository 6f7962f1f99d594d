"""SIMPLE's checks of one question candidate, one function each, returning what they measured.

A candidate is a cluster's match of one eval document (its question). The passage check looks
before the question, the answer check after it, and the score check combines the three overlaps
into the contamination score and compares it with the threshold. Each returns its measurements
(found or not, bounds, overlaps, the window it searched), so that building a report entry
(:mod:`decon.detect.entry`) and explaining a verdict use the same numbers (upstream splits
``contamination_entry.rs`` the same way).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain

import numpy as np

from decon.common.config import DetectionConfig
from decon.detect.boundaries import (
    AnswerKeys,
    answer_ngram_boundaries,
    passage_boundaries,
    short_answer_match,
)
from decon.detect.reference_index import Ragged, ReferenceIndex
from decon.detect.scoring import F32, ZERO, combined_score

# (token-set rows, slot) -> that eval document's distinct tokens
TokenSet = Callable[[Ragged, int], frozenset[int]]


@dataclass(frozen=True)
class QuestionMatch:
    """A cluster's match of one eval document's question."""

    slot: int
    idf_overlap: np.float32
    required: np.float32  # the length-adjusted minimum the overlap met
    n_matched: int
    start: int  # first token of the first matched n-gram
    end: int  # first token of the last matched n-gram
    eval_len: int
    cluster_len: int

    @classmethod
    def of(cls, cand: tuple[int, np.float32, np.float32, int, int, int], index: ReferenceIndex,
           n: int) -> QuestionMatch:
        slot, idf_overlap, required, n_matched, start, end = cand
        return cls(slot, idf_overlap, required, n_matched, start, end, int(index.token_count[slot]),
                   (end + n - 1) - start + 1)

    @property
    def excess(self) -> int:
        return max(self.cluster_len - self.eval_len, 0)


@dataclass(frozen=True)
class PassageCheck:
    present: bool  # the eval document has a passage
    total: int = 0  # its token length
    window: int = 0  # tokens searched before the question
    bounds: tuple[int, int] | None = None
    idf: np.float32 | None = None
    ratio: np.float32 | None = None


@dataclass(frozen=True)
class AnswerCheck:
    present: bool  # the eval document has an answer
    unique: int | None = None  # its distinct tokens
    short: bool = False  # matched token by token (else by n-gram overlap)
    window: int = 0  # tokens searched after the question
    bounds: list[tuple[int, int]] | None = None
    idf: np.float32 | None = None
    ratio: np.float32 | None = None


@dataclass(frozen=True)
class ScoreCheck:
    score: np.float32
    threshold: float
    passed: bool


def passage_check(index: ReferenceIndex, m: QuestionMatch, tokens: np.ndarray, config: DetectionConfig,
                  token_set: TokenSet) -> PassageCheck:
    """The eval's passage before the question: its span, IDF overlap and token overlap ratio."""
    slot = m.slot
    if not bool(index.has_passage[slot]):
        return PassageCheck(present=False)
    total = int(index.passage_len[slot])
    window = max(total * 2, config.min_passage_distance)
    found = passage_boundaries(index, slot, m.start, tokens, window, config.passage_ngram_size,
                               config.passage_max_consecutive_misses)
    p_set = token_set(index.passage_token_set, slot)
    bounds = None
    if found is not None:
        ps, pe, p_idf = found
        bounds = (ps, pe)
        p_match = len(p_set.intersection(tokens[ps:pe + 1].tolist()))
    else:
        p_idf = ZERO
        p_match = 0
    ratio = F32(F32(p_match) / F32(len(p_set))) if len(p_set) else ZERO
    return PassageCheck(True, total, window, bounds, p_idf, ratio)


def answer_check(index: ReferenceIndex, m: QuestionMatch, tokens: np.ndarray, config: DetectionConfig,
                 token_set: TokenSet, answer_keys: AnswerKeys | None, n: int) -> AnswerCheck:
    """The eval's answer after the question: a short answer token by token within the window, a
    long one by n-gram overlap; its spans, IDF overlap and token overlap ratio."""
    slot = m.slot
    if not bool(index.has_answer[slot]):
        return AnswerCheck(present=False)
    a_set = token_set(index.answer_token_set, slot)
    unique = len(a_set)
    a_total = int(index.answer_len[slot])
    short = a_total <= config.short_answer_token_threshold
    window = config.short_answer_window_length if short else max(a_total * 2, config.min_long_answer_window)
    q_end = max((m.end + n - 1) - m.excess, 0)
    if short:
        found = short_answer_match(index, slot, q_end, tokens, window)
    else:
        found = answer_ngram_boundaries(index, slot, q_end, tokens, window, config.answer_ngram_size, answer_keys)
    bounds = None
    if found is not None:
        bounds, a_idf = found
        a_match = len(a_set.intersection(chain.from_iterable(tokens[s:e + 1].tolist() for s, e in bounds)))
    else:
        a_idf = ZERO
        s0 = q_end + 1
        s1 = min(s0 + window, len(tokens))
        a_match = len(a_set.intersection(tokens[s0:s1].tolist())) if s0 < s1 else 0
    ratio = F32(F32(a_match) / F32(unique)) if unique else ZERO
    return AnswerCheck(True, unique, short, window, bounds, a_idf, ratio)


def score_check(index: ReferenceIndex, m: QuestionMatch, answer: AnswerCheck, passage: PassageCheck,
                config: DetectionConfig, threshold: float) -> ScoreCheck:
    """The combined contamination score of question, answer and passage against ``threshold``."""
    score = combined_score(
        question_idf=m.idf_overlap, eval_unique_ngrams=int(index.unique_ngrams[m.slot]),
        eval_token_length=m.eval_len, eval_has_answer=answer.present, answer_idf_overlap=answer.idf,
        answer_token_length=answer.unique, eval_has_passage=passage.present, passage_idf_overlap=passage.idf,
        passage_token_length=passage.total if passage.present else None,
        contamination_score_threshold=config.contamination_score_threshold,
        perfect_match_decay_start=config.perfect_match_decay_start,
        perfect_match_decay_end=config.perfect_match_decay_end,
    )
    return ScoreCheck(score, threshold, bool(score >= threshold))


@dataclass(frozen=True)
class Measurements:
    """Everything SIMPLE measured of one candidate, in the order it checks."""

    question: QuestionMatch
    passage: PassageCheck
    answer: AnswerCheck
    score: ScoreCheck
