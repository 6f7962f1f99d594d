"""Compiled candidate search of the semantic pass (numba): key tokens -> (window, question) pairs.

For every document of a batch, each token that is a key token of some questions sets that question's
slot bit (one uint64 mask per question, reset by a stamp). A question whose mask holds at least its
``need`` distinct key tokens over the whole document is then checked by a sliding window: its key
tokens must come together within ``2 * length + WINDOW_SLACK`` tokens (a rewording may be longer
than the question, never scattered over a page). One call per batch; the cost is the postings the
document's tokens touch, which the index bounds by the key tokens' document frequency.
"""

from __future__ import annotations

import numpy as np

from decon.detect.hitpath import _jit

# doc, question, distinct key tokens in the best window, its first and last key token position
ROW_COLUMNS = 5
WINDOW_SLACK = 8


@_jit
def _popcount(x: np.uint64) -> int:
    c = 0
    while x:
        x &= x - np.uint64(1)
        c += 1
    return c


@_jit
def semantic_candidates(flat: np.ndarray, doc_lo: np.ndarray, doc_hi: np.ndarray, post_ptr: np.ndarray,
                        post_q: np.ndarray, post_slot: np.ndarray, q_need: np.ndarray, q_len_ptr: np.ndarray,
                        mask: np.ndarray, seen: np.ndarray, stamp: int) -> tuple[np.ndarray, int]:
    rows = np.empty((16, ROW_COLUMNS), dtype=np.int64)
    out = 0
    vocab = len(post_ptr) - 1
    cap = 1024
    ev_q = np.empty(cap, dtype=np.int64)
    ev_p = np.empty(cap, dtype=np.int64)
    ev_s = np.empty(cap, dtype=np.int64)
    counts = np.zeros(64, dtype=np.int64)
    for d in range(len(doc_lo)):
        stamp += 1
        ne = 0
        for p in range(doc_lo[d], doc_hi[d]):
            t = flat[p]
            if t < 0 or t >= vocab:
                continue
            for k in range(post_ptr[t], post_ptr[t + 1]):
                q = post_q[k]
                if seen[q] != stamp:
                    seen[q] = stamp
                    mask[q] = np.uint64(0)
                mask[q] |= np.uint64(1) << np.uint64(post_slot[k])
                if ne == cap:
                    cap *= 2
                    ev_q = np.concatenate((ev_q, np.empty(cap - ne, dtype=np.int64)))
                    ev_p = np.concatenate((ev_p, np.empty(cap - ne, dtype=np.int64)))
                    ev_s = np.concatenate((ev_s, np.empty(cap - ne, dtype=np.int64)))
                ev_q[ne] = q
                ev_p[ne] = p
                ev_s[ne] = post_slot[k]
                ne += 1
        if ne == 0:
            continue
        # the events of questions whose whole-document mask is enough, grouped by question (stable:
        # positions stay ascending within a question)
        m = 0
        for i in range(ne):
            q = ev_q[i]
            if _popcount(mask[q]) >= q_need[q]:
                ev_q[m] = q
                ev_p[m] = ev_p[i]
                ev_s[m] = ev_s[i]
                m += 1
        if m == 0:
            continue
        order = np.argsort(ev_q[:m], kind="mergesort")
        i = 0
        while i < m:
            q = ev_q[order[i]]
            j = i
            while j < m and ev_q[order[j]] == q:
                j += 1
            width = 2 * (q_len_ptr[q + 1] - q_len_ptr[q]) + WINDOW_SLACK
            counts[:] = 0
            distinct = 0
            best = 0
            blo = 0
            bhi = 0
            left = i
            for r in range(i, j):
                e = order[r]
                if counts[ev_s[e]] == 0:
                    distinct += 1
                counts[ev_s[e]] += 1
                while ev_p[e] - ev_p[order[left]] >= width:
                    le = order[left]
                    counts[ev_s[le]] -= 1
                    if counts[ev_s[le]] == 0:
                        distinct -= 1
                    left += 1
                if distinct > best:
                    best = distinct
                    blo = ev_p[order[left]]
                    bhi = ev_p[e]
            if best >= q_need[q]:
                if out == len(rows):
                    grown = np.empty((2 * len(rows), ROW_COLUMNS), dtype=np.int64)
                    grown[:out] = rows[:out]
                    rows = grown
                rows[out, 0] = d
                rows[out, 1] = q
                rows[out, 2] = best
                rows[out, 3] = blo
                rows[out, 4] = bhi
                out += 1
            i = j
    return rows[:out], stamp
