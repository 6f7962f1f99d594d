"""The semantic pass's gates for one eval instance in one document (`decon explain --semantic`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from decon.detect.semantic_index import ANCHOR_HITS, MIN_KEYS, MIN_QUESTION_TOKENS
from decon.detect.semantic_scan import SemanticPass, decide


def semantic_gates(sem: SemanticPass, tokens: np.ndarray, eval_key: str, instance: int,
                   skip: set[tuple[int, str, int]]) -> list[Any]:
    """Gates of the semantic pass for (``eval_key``, ``instance``) in ``tokens``: the question covered,
    its anchors, its key tokens together in a window, the agreement, the cosine, and the verdict."""
    from decon.explain.core import Gate

    r = sem.r
    items = r.find_items(eval_key, instance)
    if not items:
        return [Gate("semantic_indexed", False, detail="no question of this instance in the recall index")]
    item = items[0]
    q = int(r.a["recall.item.question"][item])
    length = int(r.a["recall.q.tokens_ptr"][q + 1] - r.a["recall.q.tokens_ptr"][q])
    keys = sem.s.keys(q)
    if len(keys) == 0:
        return [Gate("semantic_indexed", False, value=length,
                     detail=f"not covered: a question needs {MIN_QUESTION_TOKENS}+ tokens (has {length}) and "
                            f"{MIN_KEYS}+ key tokens (rare words, numbers, names) to be recognised reworded")]
    gates = [Gate("semantic_indexed", True, value=len(keys), detail="key tokens of the question (rarest first)")]
    anchors = _anchors(sem, q)
    present = sorted({int(t) for t in anchors} & {int(t) for t in tokens.tolist()})
    need = min(ANCHOR_HITS, len(keys))
    gates.append(Gate("semantic_anchors", len(present) >= need, value=len(present), bound=need,
                      detail=f"of its {len(anchors)} anchors (rarest word pieces): "
                             + (", ".join(repr(sem.rp.decode(np.array([t])) or t) for t in present) or "none")
                             + " in the document"))
    flat = np.ascontiguousarray(tokens, dtype=np.int64)
    rows = sem.candidates(flat, np.array([0]), np.array([len(flat)]))
    rows = rows[rows[:, 1] == q] if len(rows) else rows
    if len(rows) == 0:
        gates.append(Gate("semantic_keys", False, bound=sem.s.need(q),
                          detail="its anchors and key tokens never come together within 2 x its length + 8 tokens"))
        return gates
    ptr = np.array([0, len(flat)], dtype=np.int64)
    ms = [m for m in sem.measure(flat, ptr, np.array([0]), rows, [0], set()) if m.item == item]
    sem.score(flat, ptr, ms)
    m = max(ms, key=lambda m: (m.key_hits, -m.start))
    gates.append(Gate("semantic_keys", True, value=m.key_hits, bound=m.need,
                      detail=f"distinct key tokens together in a window, of {m.key_count}; window tokens "
                             f"{m.start}-{m.end}: {sem.rp.decode(flat[m.start:m.end + 1])!r}"))
    agree, why = decide(m, None)
    nums = (f"question numbers {m.question_numbers}, found {m.numbers_found}" if m.question_numbers
            else "no numbers in the question")
    answer = "no answer after it" if m.answer is None else f"answer ({m.answer.kind}) at {m.answer.start}-{m.answer.end}"
    gates.append(Gate("semantic_agreement", agree, detail=f"{nums}; {answer}" + ("" if agree else f": {why}")))
    if not agree:
        return gates
    gates.append(Gate("semantic_cosine", m.cosine >= sem.threshold, value=round(m.cosine, 6), bound=sem.threshold,
                      detail=f"cosine of the window's and the question's embeddings ({sem.model.name})"))
    ok, why = decide(m, sem.threshold)
    line = (0, eval_key, instance)
    if ok and line in skip:
        ok, why = False, "SIMPLE or the recall pass reports it already"
    gates.append(Gate("semantic", ok, detail=why))
    return gates


def _anchors(sem: SemanticPass, q: int) -> list[int]:
    """The question's anchor tokens (those with postings for it)."""
    a = sem.s.a
    keys = sem.s.keys(q)
    out = []
    for t in keys.tolist():
        lo, hi = int(a["semantic.post.ptr"][t]), int(a["semantic.post.ptr"][t + 1])
        if np.any(a["semantic.post.q"][lo:hi] == q):
            out.append(t)
    return out
