"""Compiled candidate search of the semantic pass (numba): anchors -> key tokens in a window.

For every document of a batch, each token that anchors some questions (one of their ``ANCHORS``
rarest key tokens) sets that question's slot bit (one uint64 mask per question, reset by a stamp)
and is recorded. A question with at least ``anchor_hits`` distinct anchors in the document is then
checked around each of its anchor hits: the document's tokens within ``width = 2 * length +
WINDOW_SLACK`` of a hit (overlapping regions merged) are looked up in the question's key tokens, and a
sliding window of ``width`` tokens finds the most distinct keys together (a rewording may be longer
than the question, never scattered over a page). The cost is the anchors' postings plus the regions
around anchor hits, both bounded by the anchors' rarity. One call per batch.
"""

from __future__ import annotations

import numpy as np

from decon.detect.hitpath import _grow, _grow_rows, _jit

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
def _pair(flat: np.ndarray, p: int, q: int, width: int) -> bool:
    """Anchor hits at ``p < q`` count as two: other tokens, within a window, not side by side."""
    return 2 <= q - p < width and flat[p] != flat[q]


@_jit
def semantic_candidates(flat: np.ndarray, doc_lo: np.ndarray, doc_hi: np.ndarray, post_ptr: np.ndarray,
                        post_q: np.ndarray, post_slot: np.ndarray, q_keys: np.ndarray, q_keys_ptr: np.ndarray,
                        q_need: np.ndarray, q_len_ptr: np.ndarray, anchor_hits: int, mask: np.ndarray,
                        seen: np.ndarray, slot_of: np.ndarray, stamp: int) -> tuple[np.ndarray, int]:
    rows = np.empty((16, ROW_COLUMNS), dtype=np.int64)
    out = 0
    vocab = len(post_ptr) - 1
    ev_q = np.empty(256, dtype=np.int64)
    ev_p = np.empty(256, dtype=np.int64)
    kp = np.empty(256, dtype=np.int64)
    ks = np.empty(256, dtype=np.int64)
    counts = np.zeros(64, dtype=np.int64)
    for d in range(len(doc_lo)):
        ds, de = doc_lo[d], doc_hi[d]
        stamp += 1
        ne = 0
        for p in range(ds, de):
            t = flat[p]
            if t < 0 or t >= vocab:
                continue
            for k in range(post_ptr[t], post_ptr[t + 1]):
                q = post_q[k]
                if seen[q] != stamp:
                    seen[q] = stamp
                    mask[q] = np.uint64(0)
                mask[q] |= np.uint64(1) << np.uint64(post_slot[k])
                ev_q = _grow(ev_q, ne + 1)
                ev_p = _grow(ev_p, ne + 1)
                ev_q[ne] = q
                ev_p[ne] = p
                ne += 1
        m = 0
        for i in range(ne):  # the anchor hits of proposed questions
            q = ev_q[i]
            kl, kh = q_keys_ptr[q], q_keys_ptr[q + 1]
            if _popcount(mask[q]) >= min(anchor_hits, kh - kl):
                ev_q[m] = q
                ev_p[m] = ev_p[i]
                m += 1
        if m == 0:
            continue
        order = np.argsort(ev_q[:m], kind="mergesort")  # by question; positions stay ascending
        i = 0
        while i < m:
            q = ev_q[order[i]]
            j = i
            while j < m and ev_q[order[j]] == q:
                j += 1
            kl, kh = q_keys_ptr[q], q_keys_ptr[q + 1]
            width = 2 * (q_len_ptr[q + 1] - q_len_ptr[q]) + WINDOW_SLACK
            # two of its anchors within one window, else its anchors are scattered words of a page
            # (and not side by side: two pieces of one word are one anchor's worth of evidence)
            close = False
            for r in range(i + 1, j):
                if _pair(flat, ev_p[order[r - 1]], ev_p[order[r]], width):
                    close = True
                    break
            if not close:
                i = j
                continue
            for s in range(kl, kh):
                slot_of[q_keys[s]] = s - kl
            # key tokens in the merged regions around the anchor hits
            nk = 0
            cursor = ds
            for r in range(i, j):
                p = ev_p[order[r]]
                # only around hits with another anchor of this question within a window
                near = (r > i and _pair(flat, ev_p[order[r - 1]], p, width)) or (
                    r + 1 < j and _pair(flat, p, ev_p[order[r + 1]], width))
                if not near:
                    continue
                lo = max(p - width, cursor, ds)
                hi = min(p + width, de)
                for x in range(lo, hi):
                    t = flat[x]
                    if 0 <= t < len(slot_of) and slot_of[t] >= 0:
                        kp = _grow(kp, nk + 1)
                        ks = _grow(ks, nk + 1)
                        kp[nk] = x
                        ks[nk] = slot_of[t]
                        nk += 1
                if hi > cursor:
                    cursor = hi
            for s in range(kl, kh):
                slot_of[q_keys[s]] = -1
            counts[:] = 0
            distinct = 0
            best = 0
            blo = 0
            bhi = 0
            left = 0
            for r in range(nk):
                if counts[ks[r]] == 0:
                    distinct += 1
                counts[ks[r]] += 1
                while kp[r] - kp[left] >= width:
                    counts[ks[left]] -= 1
                    if counts[ks[left]] == 0:
                        distinct -= 1
                    left += 1
                if distinct > best:
                    best = distinct
                    blo = kp[left]
                    bhi = kp[r]
            if best >= q_need[q]:
                rows = _grow_rows(rows, out + 1)
                rows[out, 0] = d
                rows[out, 1] = q
                rows[out, 2] = best
                rows[out, 3] = blo
                rows[out, 4] = bhi
                out += 1
            i = j
    return rows[:out], stamp


SEGMENT_TOKENS = 1 << 14  # a longer document is searched in overlapping segments of this many tokens


class CandidateSearch:
    """The kernel's per-process state (question masks, stamps, the key-slot lookup) over one index:
    ``search.run(flat, lo, hi)`` -> candidate rows of the documents ``flat[lo[d]:hi[d]]``.

    A document longer than ``SEGMENT_TOKENS`` is searched in segments that overlap by the widest
    window any question allows, so the kernel's buffers stay bounded whatever one line holds, and
    every window lies whole in some segment; a (document, question) found in several segments keeps
    its best row."""

    def __init__(self, a: dict[str, np.ndarray], meta: dict, q_len_ptr: np.ndarray) -> None:
        self.arrays = (a["semantic.post.ptr"], a["semantic.post.q"], a["semantic.post.slot"], a["semantic.q.keys"],
                       a["semantic.q.keys_ptr"], a["semantic.q.need"], q_len_ptr)
        self.anchor_hits = int(meta.get("anchor_hits", 2))
        n_q = len(a["semantic.q.need"])
        self._mask = np.zeros(n_q, dtype=np.uint64)
        self._seen = np.zeros(n_q, dtype=np.int64)
        self._slot_of = np.full(max(len(a["semantic.post.ptr"]) - 1, 1), -1, dtype=np.int16)
        self._stamp = 0
        longest = int(np.diff(q_len_ptr).max()) if len(q_len_ptr) > 1 else 0
        self.overlap = 2 * longest + WINDOW_SLACK
        self.segment = max(SEGMENT_TOKENS, 2 * self.overlap)

    def run(self, flat: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        post_ptr, post_q, post_slot, keys, keys_ptr, need, q_len_ptr = self.arrays
        lo, hi = np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64)
        seg_doc, seg_lo, seg_hi = self.segments(lo, hi)
        rows, self._stamp = semantic_candidates(flat.astype(np.int64, copy=False), seg_lo, seg_hi, post_ptr, post_q,
                                                post_slot, keys, keys_ptr, need, q_len_ptr, self.anchor_hits,
                                                self._mask, self._seen, self._slot_of, self._stamp)
        if len(seg_doc) == len(lo) or len(rows) == 0:
            return rows
        rows[:, 0] = seg_doc[rows[:, 0]]
        # one row per (document, question): the most key tokens, then the earliest window
        order = np.lexsort((rows[:, 3], -rows[:, 2], rows[:, 1], rows[:, 0]))
        rows = rows[order]
        first = np.ones(len(rows), dtype=bool)
        first[1:] = (rows[1:, 0] != rows[:-1, 0]) | (rows[1:, 1] != rows[:-1, 1])
        return rows[first]

    def segments(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(document, start, end) of the segments the documents ``lo``/``hi`` are searched in."""
        length = hi - lo
        step = self.segment - self.overlap
        count = np.where(length > self.segment, -(-(length - self.overlap) // step), 1).astype(np.int64)
        if int(count.max(initial=1)) == 1:
            return np.arange(len(lo), dtype=np.int64), lo, hi
        doc = np.repeat(np.arange(len(lo), dtype=np.int64), count)
        k = np.arange(len(doc), dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
        start = lo[doc] + k * step
        end = np.minimum(start + self.segment, hi[doc])
        return doc, start, end
