"""The recall pass's gates for one eval instance in one document (`decon explain --recall`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from decon.detect.recall_scan import TAIL_MIN, Coverage, RecallPass


def recall_gates(recall: RecallPass, tokens: np.ndarray, eval_key: str, instance: int) -> list[Any]:
    """Gates of the recall rules for (``eval_key``, ``instance``) in ``tokens``: proposed by an anchor,
    the question's end and own n-grams, coverage, answer evidence, and which rule fired."""
    from decon.explain.core import Gate

    cfg, r = recall.cfg, recall.r
    items = r.find_items(eval_key, instance)
    if not items:
        return [Gate("recall_indexed", False, detail="no question of this instance in the recall index")]
    item = items[0]
    a = r.a
    q = int(a["recall.item.question"][item])
    length = int(a["recall.q.tokens_ptr"][q + 1] - a["recall.q.tokens_ptr"][q])
    short = length < cfg.recall_long_question_tokens
    gates = []
    rows = _rows(recall, tokens, q)
    if not rows:
        if short:
            detail = (f"the whole question ({length} tokens < recall_long_question_tokens "
                      f"{cfg.recall_long_question_tokens}) is not in the document token by token")
            gates.append(Gate("recall_proposed", False, value=length, detail=detail))
        else:
            cov = _whole_doc_coverage(recall, tokens, q)
            gates.append(Gate("recall_proposed", False, value=cov, bound=recall.min_cov,
                              detail="no anchor n-gram of the question aligned a copy whose IDF coverage reaches "
                                     "the lower of the two coverage bounds (value: coverage over the whole "
                                     "document)"))
        return gates
    cov, first, last = max(rows, key=lambda t: t[0].idf)
    gates.append(Gate("recall_proposed", True, value=first, detail=f"an anchor aligned a copy at tokens "
                                                                   f"{first}-{last}"))
    if not short:
        gates.append(Gate("recall_question_end", cov.has_end(), value=cov.tail_hits, bound=min(TAIL_MIN, cov.tail_n),
                          detail=f"of the question's last {cov.tail_n} n-grams, found in the copy"))
        gates.append(Gate("recall_coverage", cov.idf >= cfg.recall_answer_coverage, value=cov.idf,
                          bound=cfg.recall_answer_coverage,
                          detail=f"IDF-weighted n-gram coverage; {cfg.recall_question_coverage:.2f} needed without "
                                 f"an answer; own n-grams (in no other question): {cov.own:.3f} of {cov.own_n}"))
    ev = recall.evidence(item, tokens, last, short)
    gates.append(Gate("recall_answer", ev is not None, value=None if ev is None else ev.kind,
                      detail="answer evidence after the question (final answer, correct choice or letter)"
                      + ("" if ev is None else f" at tokens {ev.start}-{ev.end}")))
    fired = [x for x in recall._decide(q, cov, tokens, last) if x[0] == item]
    gates.append(Gate("recall_rule", bool(fired), value=fired[0][1] if fired else None,
                      detail=fired[0][3] if fired else _why_not(recall, q, short, length, len(r.q_items(q)))))
    return gates


def _why_not(recall: RecallPass, q: int, short: bool, length: int, shared: int) -> str:
    cfg, a = recall.cfg, recall.r.a
    if short:
        rare = float(a["recall.q.rare_share"][q])
        return (f"a short question needs its answer within {cfg.recall_answer_gap} tokens after it, or on its own "
                f"{cfg.recall_short_alone_tokens}+ tokens (has {length}), one instance (has {shared}) and "
                f"{cfg.recall_short_alone_rare_share:.2f} of its n-grams in no other question (has {rare:.2f})")
    return "no rule's bounds were all met (see the gates above)"


def _rows(recall: RecallPass, tokens: np.ndarray, q: int) -> list[tuple[Coverage, int, int]]:
    if len(tokens) < recall.n:
        return []
    flat = np.ascontiguousarray(tokens, dtype=np.int64)
    gid = recall.gram_ids(flat)
    rows, cov = recall.candidates(flat, np.array([0]), np.array([len(flat)]), gid)
    out = []
    for (_d, rq, _s, first, last, _cnt, th, tn, oh, on), c in zip(rows.tolist(), cov.tolist(), strict=True):
        if rq == q:
            out.append((Coverage(c, th, tn, oh, on), first, last))
    return out


def _whole_doc_coverage(recall: RecallPass, tokens: np.ndarray, q: int) -> float:
    if len(tokens) < recall.n:
        return 0.0
    gid = recall.gram_ids(np.ascontiguousarray(tokens, dtype=np.int64))
    grams = recall.r.q_grams(q)
    idf = recall.r.a["recall.gram.idf"]
    total = float(idf[grams].astype(np.float64).sum())
    have = np.isin(grams, gid[gid >= 0])
    return float(idf[grams[have]].astype(np.float64).sum() / total) if total else float(have.mean())
