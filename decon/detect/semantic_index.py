"""The semantic pass's candidate index (``--semantic``): which eval questions a training window may
be a rewording of, from the words a rewording keeps.

A rephrased question keeps its rare words, its numbers and its names while the words around them
change, so no n-gram of it survives. The index is built from the recall index's distinct questions
(the same cleaned tokens the training scan makes) and holds, per question, up to ``MAX_KEYS``
*key tokens*: its distinct tokens that at most ``key_df_cap`` questions share (a rare word, a
number, a name, or a piece of one), rarest first. Its ``ANCHORS`` rarest keys are *anchors*: an
inverted index maps each anchor token to (question, slot) postings, one dense row per token id, so
a training token finds the questions it anchors with two array reads. Only anchors have postings:
the keys of a proposed question are counted around its anchor hits (:mod:`semantic_kernel`), so the
scan's cost follows the rarest tokens, not the moderately common ones.

A question with fewer than ``MIN_KEYS`` key tokens, or shorter than ``MIN_QUESTION_TOKENS``, says
too little to be recognised reworded and has no postings. Every array sits under ``semantic.`` in
the index's arrays, so the index cache, forked workers and Ray's object store carry it with the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from decon.detect.recall_index import _readonly

MAX_KEYS = 32  # key tokens per question
ANCHORS = 4  # a question's rarest keys, which propose it ...
ANCHOR_HITS = 2  # ... when at least this many of them are in a document
MIN_KEYS = 4  # a question with fewer key tokens has no postings
MIN_QUESTION_TOKENS = 14  # a shorter question reworded is an ordinary sentence
KEY_SHARE = 0.5  # of its key tokens, a window must hold at least this share ...
MIN_KEY_HITS = 4  # ... and at least this many
DF_CAP_SHARE = 0.02  # a key token is in at most this share of the questions ...
DF_CAP_MIN = 24  # ... or this many, whichever is more
ANCHOR_DF_SHARE = 0.005  # an anchor is rarer still: in at most this share of the questions (or DF_CAP_MIN)
LAYOUT = 2  # the semantic arrays' layout version (part of the index cache key)


def key_df_cap(n_questions: int) -> int:
    return max(DF_CAP_MIN, int(DF_CAP_SHARE * n_questions))


def required_hits(n_keys: np.ndarray) -> np.ndarray:
    """Distinct key tokens a window needs for a question with ``n_keys`` key tokens."""
    return np.maximum(MIN_KEY_HITS, np.ceil(KEY_SHARE * n_keys)).astype(np.int64)


def anchorable_tokens(token_ids: np.ndarray, token_bytes: Callable[[int], bytes] | None) -> np.ndarray:
    """Which of ``token_ids`` may anchor a question: a word piece with at least three letters (or
    a non-ASCII piece); digits, symbols and short pieces are common in any text (numbers are still
    keys, and the agreement check compares them)."""
    if token_bytes is None:
        return np.ones(len(token_ids), dtype=bool)
    out = np.zeros(len(token_ids), dtype=bool)
    for i, t in enumerate(token_ids.tolist()):  # once per distinct question token, at build time
        b = token_bytes(t).strip()
        out[i] = sum(65 <= c <= 90 or 97 <= c <= 122 for c in b) >= 3 or (len(b) >= 2 and max(b) >= 0x80)
    return out


def build_semantic_arrays(q_tokens: np.ndarray, q_ptr: np.ndarray, token_bytes: Callable[[int], bytes] | None = None,
                          ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The ``semantic.*`` arrays and meta for the questions ``q_tokens``/``q_ptr`` (token ids back to
    back, the recall index's ``recall.q.tokens``), with numpy; ``token_bytes`` (a token id's bytes)
    tells which keys may be anchors (:func:`anchorable_tokens`)."""
    started = time.perf_counter()
    n_q = len(q_ptr) - 1
    q_tokens = np.asarray(q_tokens, dtype=np.int64)
    lengths = np.diff(q_ptr).astype(np.int64)
    seq = np.repeat(np.arange(n_q, dtype=np.int64), lengths)
    pos = np.arange(len(q_tokens), dtype=np.int64) - np.repeat(q_ptr[:-1].astype(np.int64), lengths)
    # distinct (question, token), first position
    order = np.lexsort((pos, q_tokens, seq))
    s, t, p = seq[order], q_tokens[order], pos[order]
    first = np.ones(len(s), dtype=bool)
    if len(s) > 1:
        first[1:] = (s[1:] != s[:-1]) | (t[1:] != t[:-1])
    s, t, p = s[first], t[first], p[first]
    vocab = int(q_tokens.max()) + 1 if len(q_tokens) else 1
    df = np.bincount(t, minlength=vocab)
    cap = key_df_cap(n_q)
    keep = df[t] <= cap
    s, t, p, d = s[keep], t[keep], p[keep], df[t[keep]]
    # per question: the MAX_KEYS rarest (ties: earliest)
    order = np.lexsort((p, d, s))
    s, t, p = s[order], t[order], p[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]]) if len(s) else np.empty(0, np.int64)
    rank = np.arange(len(s), dtype=np.int64) - np.repeat(starts, np.diff(np.r_[starts, len(s)]))
    keep = rank < MAX_KEYS
    s, t, rank = s[keep], t[keep], rank[keep]
    n_keys = np.bincount(s, minlength=n_q).astype(np.int64)
    eligible = (n_keys >= MIN_KEYS) & (lengths >= MIN_QUESTION_TOKENS)
    keep = eligible[s]
    s, t, rank = s[keep], t[keep], rank[keep]
    n_keys[~eligible] = 0
    # each question's key tokens in slot order (CSR), and the postings per token id (CSR over the vocabulary)
    key_ptr = np.zeros(n_q + 1, dtype=np.int64)
    np.cumsum(n_keys, out=key_ptr[1:])
    o = np.lexsort((rank, s))
    keys = t[o]
    # anchors: the ANCHORS rarest anchorable keys of each question
    uniq, inv = np.unique(t, return_inverse=True)
    ok = (anchorable_tokens(uniq, token_bytes) & (df[uniq] <= max(DF_CAP_MIN, int(ANCHOR_DF_SHARE * n_q))))[inv]
    s, t, rank = s[ok], t[ok], rank[ok]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]]) if len(s) else np.empty(0, np.int64)
    a_rank = np.arange(len(s), dtype=np.int64) - np.repeat(starts, np.diff(np.r_[starts, len(s)]))
    anchor = a_rank < ANCHORS
    s, t, rank = s[anchor], t[anchor], rank[anchor]
    o = np.lexsort((rank, s, t))
    post_q, post_slot, post_t = s[o].astype(np.int32), rank[o].astype(np.int8), t[o]
    post_ptr = np.zeros(vocab + 1, dtype=np.int64)
    np.cumsum(np.bincount(post_t, minlength=vocab), out=post_ptr[1:])
    arrays = {
        "semantic.q.keys": keys.astype(np.int64), "semantic.q.keys_ptr": key_ptr,
        "semantic.q.need": np.where(eligible, required_hits(n_keys), 0).astype(np.int64),
        "semantic.post.ptr": post_ptr, "semantic.post.q": post_q, "semantic.post.slot": post_slot,
    }
    meta = {"layout": LAYOUT, "questions": int(n_q), "eligible": int(eligible.sum()), "key_df_cap": cap,
            "postings": int(len(post_q)), "max_keys": MAX_KEYS, "anchors": ANCHORS,
            "anchor_hits": ANCHOR_HITS, "build_seconds": round(time.perf_counter() - started, 3)}
    return arrays, meta


class SemanticIndex:
    """Read-only views of the ``semantic.*`` arrays of an index (built, cached or shared)."""

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.a = {k: _readonly(np.ascontiguousarray(v)) for k, v in arrays.items() if k.startswith("semantic.")}
        self.meta = meta

    def keys(self, q: int) -> np.ndarray:
        a = self.a
        return a["semantic.q.keys"][int(a["semantic.q.keys_ptr"][q]):int(a["semantic.q.keys_ptr"][q + 1])]

    def need(self, q: int) -> int:
        return int(self.a["semantic.q.need"][q])

