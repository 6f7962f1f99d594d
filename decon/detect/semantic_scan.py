"""The semantic pass (``--semantic``): reworded eval questions, added to the same reports.

It runs after SIMPLE and the recall pass on the tokens they already made for a batch, and reports only
(training line, eval instance) pairs neither reported. Three steps, kept apart:

1. **Candidates** (:mod:`decon.detect.semantic_kernel`): windows holding enough of a question's key
   tokens (rare words, numbers, names) close together.
2. **Measurements** (:func:`SemanticPass.measure`): per candidate and eval instance, the window (the
   key tokens' span, widened to the question's length), the *agreement* evidence and the cosine of
   the window's and the question's sentence embeddings (:mod:`decon.detect.semantic_model`):

   - *numbers*: every number of the question appears within the width the kernel allows around
     the key tokens (a rewording may be longer than the question). Cosine barely sees numbers: the same problem with other numbers
     scores about as high as the original, so it is the numbers that tell a copy from a template.
   - *answer*: the eval's answer evidence as the recall pass finds it (GSM8K's final answer, the
     correct choice, its letter after the listed choices) after the window.

3. **Decision** (:func:`decide`): the cosine reaches ``semantic_threshold`` and the agreement holds:
   a multiple-choice question needs its correct answer (and its numbers, where it has any); another
   question with numbers needs all of them (and, with a single number, the answer too); a question
   without numbers needs its answer. An instance whose question many instances share
   (a generic stem) needs its own answer, as in the recall pass.

Entries carry ``method: semantic`` and ``semantic_evidence``: the cosine and its threshold, the
model, the agreement (numbers matched, answer found), the key tokens found, the window and its text.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from decon.common.config import DetectionConfig
from decon.detect.recall_scan import MAX_EVIDENCE_ITEMS, MAX_SHARED_ITEMS, Evidence, OverlapText, RecallPass
from decon.detect.semantic_index import SemanticIndex
from decon.detect.semantic_kernel import WINDOW_SLACK, CandidateSearch

ANSWER_KINDS = ("final_answer", "last_number", "correct_choice", "choice_letter", "answer")  # the right answer
EMBED_CACHE = 50_000  # question embeddings kept per process
_DIGITS = re.compile(r"\d+")


def numbers_of(text: str) -> set[str]:
    """The digit runs of a cleaned text (cleaning splits 1,200 into 1 and 200 on both sides alike)."""
    return {m.lstrip("0") or "0" for m in _DIGITS.findall(text)}


@dataclass
class Measurement:
    """What the semantic pass measured for one (window, eval instance) candidate."""

    doc: int  # index into the batch
    question: int
    item: int
    start: int  # window, inclusive token positions in the training document
    end: int
    key_hits: int
    key_count: int
    need: int
    question_numbers: list[str]
    numbers_found: list[str]
    answer: Evidence | None
    items_sharing: int
    multiple_choice: bool
    cosine: float = field(default=float("nan"))

    @property
    def numbers_agree(self) -> bool:
        return bool(self.question_numbers) and len(self.numbers_found) == len(self.question_numbers)


def decide(m: Measurement, threshold: float | None) -> tuple[bool, str]:
    """(flagged, reason) for one measurement; ``threshold`` None: the agreement alone."""
    if m.items_sharing > MAX_SHARED_ITEMS and m.answer is None:
        return False, f"question shared by {m.items_sharing} instances and no answer after it"
    if m.multiple_choice:  # the answer tells a copy from a question with the same words and another answer
        if m.answer is None:
            return False, "multiple choice and the correct answer not after it"
        if m.question_numbers and not m.numbers_agree:
            missing = sorted(set(m.question_numbers) - set(m.numbers_found))
            return False, f"numbers differ: {', '.join(missing)} of the question not in the window"
        agreement = "answer" + (" and numbers" if m.question_numbers else "")
    elif m.question_numbers:
        if not m.numbers_agree:
            missing = sorted(set(m.question_numbers) - set(m.numbers_found))
            return False, f"numbers differ: {', '.join(missing)} of the question not in the window"
        if len(m.question_numbers) < 2 and m.answer is None:
            return False, "a single number and no answer after it"
        agreement = "numbers" + (" and answer" if m.answer is not None else "")
    elif m.answer is None:
        return False, "no numbers in the question and no answer after it"
    else:
        agreement = "answer"
    if threshold is None:
        return True, f"{agreement} agree"
    if not m.cosine >= threshold:
        return False, f"cosine {m.cosine:.3f} < {threshold:.2f}"
    return True, f"cosine {m.cosine:.3f} >= {threshold:.2f}, {agreement} agree"


class SemanticPass:
    """The semantic pass of one process: index views, kernel buffers, the model (loaded on first use)."""

    def __init__(self, semantic: SemanticIndex, recall: RecallPass, config: DetectionConfig) -> None:
        self.s = semantic
        self.rp = recall
        self.r = recall.r
        self.cfg = config
        self.threshold = float(config.semantic_threshold)
        self.search = CandidateSearch(semantic.a, semantic.meta, self.r.a["recall.q.tokens_ptr"])
        self._model: Any = None
        self._q_emb: OrderedDict[int, np.ndarray] = OrderedDict()
        self._q_text: dict[int, str] = {}

    @property
    def model(self) -> Any:
        if self._model is None:
            from decon.detect.semantic_model import load_model

            self._model = load_model(self.cfg.semantic_model)
        return self._model

    # ---- candidates and measurements ---------------------------------------------------------
    def candidates(self, flat: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        return self.search.run(flat, lo, hi)

    def question_text(self, q: int) -> str:
        t = self._q_text.get(q)
        if t is None:
            t = self.rp.decode(self.r.q_tokens(q), "replace") or ""
            self._q_text[q] = t
        return t

    def measure(self, flat: np.ndarray, ptr: np.ndarray, docs: np.ndarray, rows: np.ndarray, lines: list[int],
                skip: set[tuple[int, str, int]]) -> list[Measurement]:
        """A measurement per candidate row and eval instance of its question not in ``skip``
        (cosines filled in by :meth:`score`)."""
        out: list[Measurement] = []
        ra = self.r.a
        for d_i, q, hits, lo, hi in rows.tolist():
            d = int(docs[d_i])
            line = lines[d]
            items = self.r.q_items(q).tolist()
            todo = [i for i in items if (line, self.r.eval_keys[int(ra["recall.item.eval_key"][i])],
                                         int(ra["recall.item.instance"][i])) not in skip]
            if not todo:
                continue
            base, end = int(ptr[d]), int(ptr[d + 1])
            tokens = flat[base:end]
            q_len = int(ra["recall.q.tokens_ptr"][q + 1] - ra["recall.q.tokens_ptr"][q])
            start, stop = lo - base, hi - base
            extra = q_len - (stop - start + 1)
            if extra > 0:
                start, stop = start - extra // 2, stop + extra - extra // 2
            start, stop = max(start, 0), min(stop, len(tokens) - 1)
            q_nums = sorted(numbers_of(self.question_text(q)))
            # a rewording may be longer than the question: its numbers are looked for in the whole
            # width the kernel allows around the key tokens' span
            slack = max(0, (2 * q_len + WINDOW_SLACK - (hi - lo + 1)) // 4)
            near = self.rp.decode(tokens[max(lo - base - slack, 0):hi - base + 1 + slack], "replace") or ""
            found = sorted(set(q_nums) & numbers_of(near))
            key_count = int(self.s.a["semantic.q.keys_ptr"][q + 1] - self.s.a["semantic.q.keys_ptr"][q])
            for item in todo:
                ev = self.rp.evidence(item, tokens, stop, short=False)
                if ev is not None and ev.kind not in ANSWER_KINDS:
                    ev = None  # another choice after it (a copy's sign for recall) says nothing of agreement
                out.append(Measurement(d, q, item, start, stop, int(hits), key_count, self.s.need(q), q_nums, found,
                                       ev, len(items), bool(ra["recall.item.correct_choice"][item] >= 0)))
        return out

    def score(self, flat: np.ndarray, ptr: np.ndarray, ms: list[Measurement]) -> None:
        """Fill in the cosine of each measurement whose agreement holds (one embedding batch for the
        windows, one for the questions not cached yet)."""
        todo = [m for m in ms if decide(m, None)[0]]
        if not todo:
            return
        windows: dict[tuple[int, int, int], int] = {}
        texts: list[str] = []
        for m in todo:
            key = (m.doc, m.start, m.end)
            if key not in windows:
                windows[key] = len(texts)
                base = int(ptr[m.doc])
                texts.append(self.rp.decode(flat[base + m.start:base + m.end + 1], "replace") or "")
        w_emb = self.model.embed(texts)
        missing = sorted({m.question for m in todo if m.question not in self._q_emb})
        if missing:
            q_emb = self.model.embed([self.question_text(q) for q in missing])
            for q, e in zip(missing, q_emb, strict=True):
                self._q_emb[q] = e
                if len(self._q_emb) > EMBED_CACHE:
                    self._q_emb.popitem(last=False)
        for m in todo:
            qe = self._q_emb.get(m.question)
            if qe is None:  # evicted within this batch (more questions than the cache holds)
                qe = self.model.embed([self.question_text(m.question)])[0]
            m.cosine = float(np.dot(w_emb[windows[(m.doc, m.start, m.end)]], qe))

    # ---- the pass ----------------------------------------------------------------------------
    def scan(self, flat: np.ndarray, ptr: np.ndarray, docs: np.ndarray, lines: list[int], label: str,
             skip: set[tuple[int, str, int]], overlap_text: OverlapText) -> list[dict[str, Any]]:
        """Semantic entries of the batch documents ``docs`` (indexes into ``ptr``), not in ``skip``."""
        if len(docs) == 0 or len(flat) == 0:
            return []
        rows = self.candidates(flat, ptr[docs], ptr[docs + 1])
        if len(rows) == 0:
            return []
        ms = self.measure(flat, ptr, docs, rows, lines, skip)
        self.score(flat, ptr, ms)
        best: dict[tuple[int, int], tuple[tuple[Any, ...], dict[str, Any]]] = {}
        by_doc_q: dict[tuple[int, int], list[Measurement]] = {}
        for m in ms:
            by_doc_q.setdefault((m.doc, m.question), []).append(m)
        for group in by_doc_q.values():
            passed = [(m, why) for m in group for ok, why in [decide(m, self.threshold)] if ok]
            if len(passed) > MAX_EVIDENCE_ITEMS:
                continue  # as many instances agree as share the question: nothing tells them apart
            for m, why in passed:
                base = int(ptr[m.doc])
                entry = self.entry(m, why, flat[base:int(ptr[m.doc + 1])], lines[m.doc], label, overlap_text)
                rank = (-m.cosine, m.start, int(self.r.a["recall.item.doc_id"][m.item]))
                key = (m.doc, m.item)
                if key not in best or rank < best[key][0]:
                    best[key] = (rank, entry)
        out = [v[1] for v in best.values()]
        out.sort(key=lambda e: (e["training_line"], e["question_start_idx"], e["eval_key"], e["eval_instance_index"]))
        return out

    def entry(self, m: Measurement, why: str, tokens: np.ndarray, line: int, label: str,
              overlap_text: OverlapText) -> dict[str, Any]:
        a = self.r.a
        q_len = int(a["recall.q.tokens_ptr"][m.question + 1] - a["recall.q.tokens_ptr"][m.question])
        window_len = m.end - m.start + 1
        e: dict[str, Any] = {
            **self.rp.item_fields(m.item, line, label),
            "ngram_match_cnt": m.key_hits,
            "eval_unique_ngrams": m.key_count,
            "contamination_score": float(np.float32(m.cosine)),
            "length_adjusted_question_threshold": float(np.float32(self.threshold)),
            "method": "semantic",
            "question_start_idx": m.start,
            "question_end_idx": m.end,
            "cluster_token_length": window_len,
            "eval_token_length": q_len,
            "token_length_delta": window_len - q_len,
        }
        self.rp.add_item_texts(e, m.item, tokens, m.start, m.end, m.answer, overlap_text)
        e["semantic_evidence"] = {
            "why": why,
            "cosine": round(m.cosine, 6),
            "cosine_threshold": self.threshold,
            "model": self.model.name,
            "agreement": {
                "question_numbers": m.question_numbers,
                "numbers_found": m.numbers_found,
                "answer": self.rp.evidence_fields(m.answer),
            },
            "key_tokens_found": [m.key_hits, m.key_count],
            "key_tokens_needed": m.need,
            "instances_sharing_question": m.items_sharing,
            "window": [m.start, m.end],
            "window_text": self.rp.decode(tokens[m.start:m.end + 1], "replace"),
            "eval_question_cleaned": self.question_text(m.question),
        }
        return e
