"""Vectorised 64-bit hashing of token n-grams.

Every window of ``n`` consecutive tokens gets a 64-bit key that depends on the tokens and on ``n``
(so a 3-gram never equals a 5-gram). Keys only identify n-grams; like upstream's SipHash keys,
a collision would merge two n-grams, with probability ~1e-19 per pair.
"""

from __future__ import annotations

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, in place on a uint64 array."""
    h ^= h >> _S30
    h *= _M1
    h ^= h >> _S27
    h *= _M2
    h ^= h >> _S31
    return h


def ngram_seed(n: int) -> np.uint64:
    """The starting value of every ``n``-gram key."""
    return np.uint64((0x243F6A8885A308D3 * (n + 1)) & 0xFFFFFFFFFFFFFFFF)


def ngram_hashes(tokens: np.ndarray, n: int) -> np.ndarray:
    """Keys of all windows ``tokens[i:i+n]`` (length ``len(tokens) - n + 1``, empty if shorter)."""
    t = np.asarray(tokens).astype(np.uint64, copy=False)
    count = t.shape[0] - n + 1
    if count <= 0:
        return np.empty(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = np.full(count, ngram_seed(n), dtype=np.uint64)
        for k in range(n):
            h ^= t[k:k + count] * _GOLDEN
            _mix(h)
    return h


def sequence_hash(tokens: np.ndarray) -> np.uint64:
    """Key of one whole token sequence (as ``ngram_hashes(tokens, len(tokens))[0]``)."""
    return ngram_hashes(tokens, len(tokens))[0]


def sequence_hashes(flat: np.ndarray, ptr: np.ndarray) -> np.ndarray:
    """``sequence_hash`` of every sequence stored back to back in ``flat`` (boundaries ``ptr``);
    empty sequences get 0. Vectorised over the sequences: one step per token position, each step
    on the sequences at least that long (sorted longest first, so they are a prefix)."""
    lengths = np.diff(ptr)
    out = np.zeros(len(lengths), dtype=np.uint64)
    if len(lengths) == 0:
        return out
    order = np.argsort(-lengths, kind="stable")
    lens = lengths[order]
    starts = np.asarray(ptr[:-1])[order]
    t = np.asarray(flat).astype(np.uint64, copy=False)
    seed = np.uint64(0x243F6A8885A308D3)
    with np.errstate(over="ignore"):
        h = (lens.astype(np.uint64) + np.uint64(1)) * seed  # ngram_seed(len) for every sequence
        active = np.searchsorted(-lens, -np.arange(int(lens[0])), side="left")  # count of lens > k
        for k in range(int(lens[0])):
            m = int(active[k])  # sequences longer than k
            hk = h[:m]
            hk ^= t[starts[:m] + k] * _GOLDEN
            _mix(hk)
    out[order] = np.where(lens > 0, h, np.uint64(0))
    return out


def flat_ngram_hashes(flat: np.ndarray, ptr: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hash the n-grams of many sequences stored back to back.

    ``flat`` holds the sequences, ``ptr`` their boundaries (len = count + 1). Returns
    ``(keys, seq_index, position)`` for every window that lies inside one sequence, in
    sequence order then position order.
    """
    keys = ngram_hashes(flat, n)
    if len(keys) == 0:
        e = np.empty(0, dtype=np.int64)
        return np.empty(0, dtype=np.uint64), e, e
    lengths = np.diff(ptr)
    seq_of_token = np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)
    valid = seq_of_token[: len(keys)] == seq_of_token[n - 1:]  # window inside one sequence
    start = np.flatnonzero(valid)
    del valid
    seq = seq_of_token[start].astype(np.int64)
    del seq_of_token
    pos = start - ptr[seq]
    return keys[start], seq, pos
