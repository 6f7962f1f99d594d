"""Compiled hit path: cluster expansion and question candidates for a whole batch (numba).

For every document of a batch that has question n-gram hits, this walks the document exactly as
``cluster.find_clusters`` / ``cluster.expand_cluster`` do and keeps, per cluster, the eval
documents whose question IDF overlap reaches the length-adjusted minimum (what
``Scanner._question_candidates`` keeps). One call per batch, no Python object per hit.

float32 arithmetic is done in float64 and rounded to float32 after every operation: for +, / on
float32 inputs that gives the correctly rounded float32 result (float64 has more than 2*24+2
bits), i.e. exactly what numpy's float32 operations give.

Per eval document slot the kernel keeps its walk state in one row of ``state`` (columns below);
rows are claimed by stamps (cluster and side counters), so nothing is cleared between clusters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np

_IN, _SIDE, _MISS, _LAST, _DEAD, _TOUCH, _LO, _HI, _HEAD, _CNT = range(10)
STATE_COLUMNS = 10



def _jit(fn: Callable[..., Any]) -> Any:
    """Compile ``fn``; compiled code is cached on disk (beside the module, else in the user's cache)
    when numba finds a writable place for it."""
    try:
        return numba.njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # no writable cache location: compile in memory, once per process
        return numba.njit(nogil=True)(fn)


def readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view: index arrays reach the kernel with one type whether built or memory-mapped,
    so the kernel is compiled once."""
    v = a.view()
    v.flags.writeable = False
    return v


@_jit
def _grow(a: np.ndarray, need: int) -> np.ndarray:
    if need <= len(a):
        return a
    out = np.empty(max(need, 2 * len(a)), dtype=a.dtype)
    out[:len(a)] = a
    return out


@_jit
def _contains(values: np.ndarray, lo: int, hi: int, x: int) -> bool:
    """Whether the sorted ``values[lo:hi]`` holds ``x`` (binary search)."""
    end = hi
    while lo < hi:
        mid = (lo + hi) >> 1
        if values[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo < end and values[lo] == x


@_jit
def _in_list(nid_buf: np.ndarray, nxt_buf: np.ndarray, head: int, nid: int) -> bool:
    k = head
    while k >= 0:
        if nid_buf[k] == nid:
            return True
        k = nxt_buf[k]
    return False


@_jit
def _visit(st: np.ndarray, d: int, step: int, p: int, side: int, stamp: int, nid: int, init: int,
           maybe_repeat: bool, max_misses: int, hit: int, counts: np.ndarray,
           nid_buf: np.ndarray, nxt_buf: np.ndarray) -> int:
    """Eval document ``d`` matches n-gram ``nid`` at ``step`` from the hit: update its walk state.

    Returns how far the walk must go for ``d`` (its reach), or -1 when ``d`` is (now) dropped.
    """
    sst = 2 * stamp + side
    if st[d, _SIDE] != sst:  # first event of this side: misses start from zero
        st[d, _SIDE] = sst
        st[d, _MISS] = 0
        st[d, _LAST] = 0
        st[d, _DEAD] = 0
    if st[d, _DEAD]:
        return -1
    m = st[d, _MISS]
    gap = step - st[d, _LAST] - 1
    if gap > 0 and m + gap >= max_misses:
        st[d, _DEAD] = 1
        return -1
    m += gap
    if st[d, _TOUCH] != stamp:
        st[d, _TOUCH] = stamp
        st[d, _LO] = hit
        st[d, _HI] = hit
        st[d, _HEAD] = -1
        st[d, _CNT] = 1
    if nid != init and not (maybe_repeat and _in_list(nid_buf, nxt_buf, st[d, _HEAD], nid)):
        k = counts[1]
        nid_buf[k] = nid
        nxt_buf[k] = st[d, _HEAD]
        st[d, _HEAD] = k
        st[d, _CNT] += 1
        counts[1] = k + 1
        m = 0
    st[d, _MISS] = m
    st[d, _LAST] = step
    if side == 0:
        st[d, _LO] = p
    else:
        st[d, _HI] = p
    return step + max(max_misses - m, 1)


@_jit
def _expand(qid: np.ndarray, q0: int, length: int, hit: int, q_vals: np.ndarray, q_ptr: np.ndarray,
            max_misses: int, stamp: int, st: np.ndarray, nid_seen: np.ndarray, counts: np.ndarray, nid_buf: np.ndarray, nxt_buf: np.ndarray) -> int:
    """Expand the cluster seeded at ``hit``: its end index, or -1 when the buffers are too small."""
    init = qid[q0 + hit]
    a0, a1 = q_ptr[init], q_ptr[init + 1]
    for j in range(a0, a1):
        st[q_vals[j], _IN] = stamp
    nid_seen[init] = stamp
    counts[1] = 0
    end_idx = hit
    for side in range(2):
        limit = hit if side == 0 else length - 1 - hit
        frontier = max(max_misses, 1)
        step = 1
        while step <= frontier and step <= limit:
            p = hit - step if side == 0 else hit + step
            nid = qid[q0 + p]
            if nid >= 0:
                r0, r1 = q_ptr[nid], q_ptr[nid + 1]
                if counts[1] + min(r1 - r0, a1 - a0) > len(nid_buf):
                    return -1
                maybe_repeat = nid_seen[nid] == stamp
                nid_seen[nid] = stamp
                if r1 - r0 <= a1 - a0:
                    for j in range(r0, r1):
                        d = q_vals[j]
                        if st[d, _IN] == stamp:
                            reach = _visit(st, d, step, p, side, stamp, nid, init, maybe_repeat, max_misses,
                                           hit, counts, nid_buf, nxt_buf)
                            frontier = max(frontier, reach)
                else:
                    for j in range(a0, a1):
                        d = q_vals[j]
                        if _contains(q_vals, r0, r1, d):
                            reach = _visit(st, d, step, p, side, stamp, nid, init, maybe_repeat, max_misses,
                                           hit, counts, nid_buf, nxt_buf)
                            frontier = max(frontier, reach)
            step += 1
        if side == 1:
            end_idx = hit + min(frontier, limit)
    return end_idx


@_jit
def _matched_sum(st: np.ndarray, d: int, init: int, q_idf: np.ndarray, nid_buf: np.ndarray,
                 nxt_buf: np.ndarray, tmp: np.ndarray) -> np.float32:
    """Sequential float32 sum of the IDFs of ``d``'s matched n-grams, in id order."""
    cnt = st[d, _CNT]
    tmp[0] = init
    k = st[d, _HEAD]
    i = 1
    while k >= 0:
        tmp[i] = nid_buf[k]
        k = nxt_buf[k]
        i += 1
    ids = np.sort(tmp[:cnt])
    acc = np.float32(0.0)
    for t in range(cnt):
        acc = np.float32(np.float64(acc) + np.float64(q_idf[ids[t]]))
    return acc


@_jit
def _grow_rows(a: np.ndarray, need: int) -> np.ndarray:
    if need <= a.shape[0]:
        return a
    out = np.empty((max(need, 2 * a.shape[0]), a.shape[1]), dtype=a.dtype)
    out[:a.shape[0]] = a
    return out


@_jit
def _candidates(init: int, hit: int, doc: int, cluster: int, q_vals: np.ndarray, q_ptr: np.ndarray,
                q_idf: np.ndarray, qsum: np.ndarray, required: np.ndarray, min_q: np.float32, stamp: int,
                st: np.ndarray, nid_buf: np.ndarray, nxt_buf: np.ndarray, tmp: np.ndarray,
                out_i: np.ndarray, out_f: np.ndarray, n_out: int) -> int:
    """Append the cluster's eval documents that pass the question minimum (slot order)."""
    v = q_idf[init]
    for j in range(q_ptr[init], q_ptr[init + 1]):
        d = q_vals[j]
        if st[d, _TOUCH] == stamp:
            acc = _matched_sum(st, d, init, q_idf, nid_buf, nxt_buf, tmp)
            cnt, lo, hi = st[d, _CNT], st[d, _LO], st[d, _HI]
        else:  # matched the seed n-gram only
            acc, cnt, lo, hi = v, 1, hit, hit
        tot = qsum[d]
        ov = np.float32(np.float64(acc) / np.float64(tot)) if tot > 0 else np.float32(0.0)
        req = required[d]
        if ov >= min_q and ov >= req:
            out_i[n_out, 0] = doc
            out_i[n_out, 1] = cluster
            out_i[n_out, 2] = d
            out_i[n_out, 3] = cnt
            out_i[n_out, 4] = lo
            out_i[n_out, 5] = hi
            out_f[n_out, 0] = ov
            out_f[n_out, 1] = req
            n_out += 1
    return n_out


@_jit
def scan_hits(qid: np.ndarray, doc_q0: np.ndarray, doc_len: np.ndarray, q_vals: np.ndarray,
              q_ptr: np.ndarray, hot: np.ndarray, q_idf: np.ndarray, qsum: np.ndarray, required: np.ndarray,
              min_q: np.float32, sample_every: int, max_misses: int, st: np.ndarray, nid_seen: np.ndarray,
              stamp: int, nid_buf: np.ndarray, nxt_buf: np.ndarray) -> tuple:
    """Clusters and question candidates of documents ``k``: n-gram ids ``qid[doc_q0[k]:][:doc_len[k]]``.

    Returns (rows, values, stamp, nid_buf, nxt_buf): one row per candidate, (document k, cluster
    number, slot, matched n-gram count, first, last position), with its (overlap, required) values,
    ordered by document, cluster, slot; the last stamp used; the (possibly grown) buffers.
    """
    out_i = np.empty((64, 6), dtype=np.int64)
    out_f = np.empty((64, 2), dtype=np.float32)
    tmp = np.empty(64, dtype=np.int64)
    counts = np.zeros(2, dtype=np.int64)
    n_out = 0
    cluster = 0
    for k in range(len(doc_q0)):
        q0, length = doc_q0[k], doc_len[k]
        i = 0
        while True:
            found = -1
            h = i
            while h < length:
                if qid[q0 + h] >= 0:
                    found = h
                    break
                h += sample_every
            if found < 0:
                break
            i = found
            init = qid[q0 + i]
            if hot[init]:
                i += 1
                continue
            stamp += 1
            end_idx = _expand(qid, q0, length, i, q_vals, q_ptr, max_misses, stamp, st, nid_seen,
                              counts, nid_buf, nxt_buf)
            while end_idx < 0:  # buffers too small: grow, and walk again under a fresh stamp
                nid_buf = _grow(nid_buf, 2 * len(nid_buf))
                nxt_buf = _grow(nxt_buf, 2 * len(nxt_buf))
                stamp += 1
                end_idx = _expand(qid, q0, length, i, q_vals, q_ptr, max_misses, stamp, st, nid_seen,
                                  counts, nid_buf, nxt_buf)
            a = q_ptr[init + 1] - q_ptr[init]
            out_i = _grow_rows(out_i, n_out + a)
            out_f = _grow_rows(out_f, n_out + a)
            tmp = _grow(tmp, counts[1] + 1)
            n_out = _candidates(init, i, k, cluster, q_vals, q_ptr, q_idf, qsum, required, min_q, stamp, st,
                                nid_buf, nxt_buf, tmp, out_i, out_f, n_out)
            cluster += 1
            i = max(i, end_idx + 1)
    return out_i[:n_out], out_f[:n_out], stamp, nid_buf, nxt_buf


@_jit
def _mix64(h: np.uint64) -> np.uint64:
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h


@_jit
def _lookup(keys: np.ndarray, ids: np.ndarray, h: np.uint64) -> int:
    """The id of key ``h`` in the sorted ``keys`` (binary search), or -1."""
    lo, hi = 0, len(keys)
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < h:
            lo = mid + 1
        else:
            hi = mid
    if lo < len(keys) and keys[lo] == h:
        return ids[lo]
    return -1


@_jit
def question_ids(tokens: np.ndarray, n: int, seed: np.uint64, bits: np.ndarray, filter_shift: int,
                 qkeys: np.ndarray, qids: np.ndarray) -> np.ndarray:
    """``lookup_question(ngram_hashes(tokens, n))`` in one pass: the question n-gram id of every
    window of ``n`` tokens, -1 where there is none (bit filter on the key's top bits, then a binary
    search in the sorted question keys)."""
    count = len(tokens) - n + 1
    out = np.full(max(count, 0), -1, dtype=np.int64)
    golden = np.uint64(0x9E3779B97F4A7C15)
    shift = np.uint64(filter_shift)
    for i in range(count):
        h = seed
        for k in range(n):
            h ^= np.uint64(tokens[i + k]) * golden
            h = _mix64(h)
        top = np.int64(h >> shift)
        if (bits[top >> 6] >> np.uint64(top & 63)) & np.uint64(1):
            out[i] = _lookup(qkeys, qids, h)
    return out


@_jit
def question_ids_pair(tokens: np.ndarray, n: int, seed: np.uint64, bits: np.ndarray, filter_shift: int,
                      qkeys: np.ndarray, qids: np.ndarray, bits2: np.ndarray, filter_shift2: int,
                      qkeys2: np.ndarray, qids2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`question_ids` against two n-gram tables (SIMPLE's and the recall pass's), each
    window hashed once."""
    count = len(tokens) - n + 1
    out = np.full(max(count, 0), -1, dtype=np.int64)
    out2 = np.full(max(count, 0), -1, dtype=np.int64)
    golden = np.uint64(0x9E3779B97F4A7C15)
    shift = np.uint64(filter_shift)
    shift2 = np.uint64(filter_shift2)
    for i in range(count):
        h = seed
        for k in range(n):
            h ^= np.uint64(tokens[i + k]) * golden
            h = _mix64(h)
        top = np.int64(h >> shift)
        if (bits[top >> 6] >> np.uint64(top & 63)) & np.uint64(1):
            out[i] = _lookup(qkeys, qids, h)
        top = np.int64(h >> shift2)
        if (bits2[top >> 6] >> np.uint64(top & 63)) & np.uint64(1):
            out2[i] = _lookup(qkeys2, qids2, h)
    return out, out2


@_jit
def ngram_keys(tokens: np.ndarray, n: int, seed: np.uint64) -> np.ndarray:
    """``ngram_hashes(tokens, n)`` in one compiled pass (for the short windows around a match)."""
    count = max(len(tokens) - n + 1, 0)
    out = np.empty(count, dtype=np.uint64)
    golden = np.uint64(0x9E3779B97F4A7C15)
    for i in range(count):
        h = seed
        for k in range(n):
            h ^= np.uint64(tokens[i + k]) * golden
            h = _mix64(h)
        out[i] = h
    return out
