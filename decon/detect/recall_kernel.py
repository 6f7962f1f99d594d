"""Compiled candidate search of the recall pass (numba): anchors -> aligned question copies.

For every document of a batch, each hit on an *anchor* n-gram (one of a question's rarest n-grams)
proposes that question at ``start = position - anchor offset``. A short question is then compared
token by token at that start; a long one is scored by its n-gram coverage in a window around it
(IDF-weighted: n-grams that many questions share weigh little), and its last n-grams are counted
apart (a copy of the shared first part of a question, a long passage with another question after
it, lacks them). One call per batch.
"""

from __future__ import annotations

import numpy as np

from decon.detect.hitpath import _contains, _grow_rows, _jit

# doc, question, start, matched first token, matched last token, matched n-grams, the question's last
# n-grams matched and how many it has, its own n-grams (in no other question) matched and how many
ROW_COLUMNS = 10


@_jit
def recall_candidates(flat: np.ndarray, doc_lo: np.ndarray, doc_hi: np.ndarray, gid: np.ndarray, n: int,
                      anchor_ptr: np.ndarray, anchor_q: np.ndarray, anchor_off: np.ndarray,
                      q_tok: np.ndarray, q_tok_ptr: np.ndarray, q_gram: np.ndarray, q_gram_ptr: np.ndarray,
                      q_tail: np.ndarray, q_tail_ptr: np.ndarray,
                      gram_idf: np.ndarray, gram_df: np.ndarray, q_idf_sum: np.ndarray, long_min: int, min_cov: float,
                      mark: np.ndarray, last_doc: np.ndarray, last_s: np.ndarray, stamp: int,
                      doc_stamp: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    rows = np.empty((64, ROW_COLUMNS), dtype=np.int64)
    cov_out = np.empty(64, dtype=np.float64)
    out = 0
    for d in range(len(doc_lo)):
        ds, de = doc_lo[d], doc_hi[d]
        doc_stamp += 1
        for p in range(ds, de - n + 1):
            g = gid[p]
            if g < 0:
                continue
            for k in range(anchor_ptr[g], anchor_ptr[g + 1]):
                q = anchor_q[k]
                s = p - anchor_off[k]
                length = q_tok_ptr[q + 1] - q_tok_ptr[q]
                slack = 0 if length < long_min else max(8, length // 5)
                if last_doc[q] == doc_stamp and abs(s - last_s[q]) <= slack:
                    continue
                last_doc[q] = doc_stamp
                last_s[q] = s
                gl, gh = q_gram_ptr[q], q_gram_ptr[q + 1]
                tl, th = q_tail_ptr[q], q_tail_ptr[q + 1]
                tail_hits = th - tl
                own = 0
                own_hits = 0
                if length < long_min:
                    if s < ds or s + length > de:
                        continue
                    t0 = q_tok_ptr[q]
                    ok = True
                    for i in range(length):
                        if flat[s + i] != q_tok[t0 + i]:
                            ok = False
                            break
                    if not ok:
                        continue
                    first, last, cnt, cov = s, s + length - 1, gh - gl, 1.0
                else:
                    ws = max(ds, s - slack)
                    we = min(de, s + length + slack)
                    stamp += 1
                    for t in range(ws, we - n + 1):
                        if gid[t] >= 0:
                            mark[gid[t]] = stamp
                    w = 0.0
                    cnt = 0
                    for j in range(gl, gh):
                        g2 = q_gram[j]
                        if gram_df[g2] == 1:
                            own += 1
                        if mark[g2] == stamp:
                            w += gram_idf[g2]
                            cnt += 1
                            if gram_df[g2] == 1:
                                own_hits += 1
                    tail_hits = 0
                    for j in range(tl, th):
                        if mark[q_tail[j]] == stamp:
                            tail_hits += 1
                    tot = q_idf_sum[q]
                    if tot > 0:
                        cov = w / tot
                    else:
                        cov = cnt / max(gh - gl, 1)
                    if cov < min_cov:
                        continue
                    first = -1
                    last = -1
                    for t in range(ws, we - n + 1):
                        if gid[t] >= 0 and _contains(q_gram, gl, gh, gid[t]):
                            if first < 0:
                                first = t
                            last = t
                    last = last + n - 1
                if out == len(rows):
                    rows = _grow_rows(rows, out + 1)
                    grown = np.empty(len(rows), dtype=np.float64)
                    grown[:out] = cov_out[:out]
                    cov_out = grown
                rows[out, 0] = d
                rows[out, 1] = q
                rows[out, 2] = s
                rows[out, 3] = first
                rows[out, 4] = last
                rows[out, 5] = cnt
                rows[out, 6] = tail_hits
                rows[out, 7] = th - tl
                rows[out, 8] = own_hits
                rows[out, 9] = own
                cov_out[out] = cov
                out += 1
    return rows[:out], cov_out[:out], stamp, doc_stamp


@_jit
def find_tokens(tokens: np.ndarray, seq: np.ndarray, lo: int, hi: int) -> int:
    """First start in ``[lo, hi - len(seq)]`` where ``tokens`` holds ``seq``, or -1."""
    m = len(seq)
    hi = min(hi, len(tokens))
    if m == 0 or lo < 0:
        return -1
    for s in range(lo, hi - m + 1):
        ok = True
        for i in range(m):
            if tokens[s + i] != seq[i]:
                ok = False
                break
        if ok:
            return s
    return -1
