"""The recall pass (``--recall``): leaks SIMPLE's scoring misses, added to the same reports.

It runs on the tokens SIMPLE already made for a batch and reports only (training line, eval
instance) pairs SIMPLE did not report. Its rules, each with its own ``method``:

- ``question_answer``: a question of at least ``recall_long_question_tokens`` tokens, covered to
  ``recall_answer_coverage`` (IDF-weighted n-gram coverage in a window around the aligned copy),
  with the eval's *answer evidence* after it: GSM8K's final answer (``#### 18``) or the last number
  of a worked solution; the correct choice text; with the choices listed, the correct letter.
- ``question_exact``: such a question covered to ``recall_question_coverage`` with no answer; the
  question may be shared by at most ``MAX_SHARED_ITEMS`` eval instances.
- Both need the question's end (at least ``TAIL_MIN`` of its last ``recall_index.TAIL_NGRAMS``
  n-grams in the copy) and the same coverage of its *own* n-grams (those no other question has)
  as of all of them. A long shared first part (MMLU's "This question refers to the following
  information" with a passage several questions share) followed by another question, or a
  templated question with another country or number in it, is not a copy of this one.
- ``short_exact``: a shorter question, equal token by token wherever it starts, with answer
  evidence at most ``recall_answer_gap`` tokens after it; without answer evidence only when it has
  ``recall_short_alone_tokens`` tokens, belongs to one eval instance, and at least
  ``recall_short_alone_rare_share`` of its n-grams occur in no other question (so "which of the
  following is true" on its own never fires).

Every entry carries upstream's report fields plus ``recall_evidence``: the rule, the coverage and
its threshold, the question's last n-grams found, the answer evidence found (kind, text, token
span) and the distinctiveness figures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from decon.common.config import DetectionConfig
from decon.common.ngram_hash import ngram_seed
from decon.detect import hitpath
from decon.detect.entry import add_eval_metadata, add_texts
from decon.detect.recall_index import (
    CHOICE_LETTERS,
    EV_FINAL,
    EV_LAST_NUMBER,
    EVIDENCE_NAMES,
    RecallIndex,
)
from decon.detect.recall_index import FILTER_BITS as RECALL_FILTER_BITS
from decon.detect.recall_kernel import find_tokens, recall_candidates

MAX_SHARED_ITEMS = 4  # a question alone names at most this many instances; more is a generic stem
MAX_EVIDENCE_ITEMS = 3  # an answer that several instances of one question share is no evidence
TAIL_MIN = 2  # of a long question's last TAIL_NGRAMS n-grams, a copy holds at least this many
LETTER_GAP = 6  # the letter of the correct choice within this many tokens after the listed choices

OverlapText = Callable[[np.ndarray, int, int, Any, Any], str | None]


@dataclass(frozen=True)
class Coverage:
    """How much of a long question a candidate copy holds (a short one is equal token by token)."""

    idf: float  # IDF-weighted share of its n-grams
    tail_hits: int  # of its last TAIL_NGRAMS n-grams
    tail_n: int
    own_hits: int  # of its n-grams that no other question has
    own_n: int

    @property
    def own(self) -> float:
        return self.own_hits / self.own_n if self.own_n else 1.0

    def has_end(self) -> bool:
        return self.tail_hits >= min(TAIL_MIN, self.tail_n)

    def reaches(self, bound: float) -> bool:
        """IDF coverage and coverage of its own n-grams both at least ``bound``."""
        return self.idf >= bound and self.own >= bound


@dataclass(frozen=True)
class Evidence:
    kind: str
    start: int
    end: int  # inclusive token positions in the training document
    text_tokens: np.ndarray


def find_seq(tokens: np.ndarray, seq: np.ndarray, lo: int, hi: int) -> int:
    """First start in ``[lo, hi - len(seq)]`` where ``tokens`` holds ``seq``, or -1."""
    return int(find_tokens(tokens, seq, lo, hi))


class RecallPass:
    """The recall pass of one process: the recall index views, the letter tokens, kernel buffers."""

    def __init__(self, recall: RecallIndex, config: DetectionConfig, tokenizer: Any) -> None:
        self.r = recall
        self.cfg = config
        self.n = config.ngram_size
        a = recall.a
        self.n_questions = len(a["recall.q.tokens_ptr"]) - 1
        self._mark = np.zeros(len(a["recall.gram.keys"]), dtype=np.int64)
        self._last_doc = np.zeros(self.n_questions, dtype=np.int64)
        self._last_s = np.zeros(self.n_questions, dtype=np.int64)
        self._stamp = 0
        self._doc_stamp = 0
        letters, lptr = tokenizer.encode_flat([" " + c for c in CHOICE_LETTERS])
        self.letters = [letters[lptr[i]:lptr[i + 1]].astype(np.int64) for i in range(len(CHOICE_LETTERS))]
        self.encoding = getattr(tokenizer, "encoding", None)
        self.min_cov = float(min(config.recall_answer_coverage, config.recall_question_coverage))

    def decode(self, tokens: np.ndarray, errors: str = "strict") -> str | None:
        """The text of ``tokens`` (None: the tokenizer cannot give text back, or, with ``errors``
        "strict", the bytes are not UTF-8: a span may cut a character in two)."""
        if self.encoding is None:
            return None
        try:
            return self.encoding.decode_bytes(np.asarray(tokens, dtype=np.int64).tolist()).decode("utf-8", errors).strip()
        except (UnicodeDecodeError, KeyError, ValueError):
            return None

    # ---- candidates --------------------------------------------------------------------------
    def gram_table(self) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
        """(filter bits, filter shift, sorted keys, ids) of the recall n-gram table."""
        a = self.r.a
        return a["recall.gram.bits"], 64 - RECALL_FILTER_BITS, a["recall.gram.keys"], a["recall.gram.ids"]

    def gram_ids(self, flat: np.ndarray) -> np.ndarray:
        bits, shift, keys, ids = self.gram_table()
        return hitpath.question_ids(flat, self.n, ngram_seed(self.n), bits, shift, keys, ids)

    def candidates(self, flat: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                   gid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = self.r.a
        rows, cov, self._stamp, self._doc_stamp = recall_candidates(
            flat, lo.astype(np.int64), hi.astype(np.int64), gid, self.n, a["recall.anchor.ptr"],
            a["recall.anchor.question"], a["recall.anchor.offset"], a["recall.q.tokens"], a["recall.q.tokens_ptr"],
            a["recall.q.grams"], a["recall.q.grams_ptr"], a["recall.q.tail"], a["recall.q.tail_ptr"],
            a["recall.gram.idf"], a["recall.gram.df"], a["recall.q.idf_sum"],
            int(self.cfg.recall_long_question_tokens), self.min_cov, self._mark, self._last_doc, self._last_s,
            self._stamp, self._doc_stamp)
        return rows, cov

    # ---- answer evidence ---------------------------------------------------------------------
    def answer_window(self, item: int) -> int:
        return int(self.cfg.short_answer_window_length) + 2 * int(self.r.a["recall.item.answer_tokens"][item])

    def evidence(self, item: int, tokens: np.ndarray, q_end: int, short: bool) -> Evidence | None:
        """The item's answer evidence after ``q_end`` (inclusive end of the question copy)."""
        cfg, r = self.cfg, self.r
        start = q_end + 1
        gap = int(cfg.recall_answer_gap)
        window_end = start + self.answer_window(item)
        choices = r.choices(item)
        correct = int(r.a["recall.item.correct_choice"][item])
        if choices and correct >= 0:
            listed_end = self._listed_choices(choices, correct, tokens, start, window_end)
            if listed_end is not None:  # the choices are listed: the answer is the letter (or the
                # correct text once more) right after them
                for seq, kind in ((self.letters[correct] if correct < len(self.letters) else None, "choice_letter"),
                                  (choices[correct], "correct_choice")):
                    if seq is None or not len(seq):
                        continue
                    pos = find_seq(tokens, seq, listed_end + 1, listed_end + 1 + LETTER_GAP + len(seq))
                    if pos >= 0:
                        return Evidence(kind, pos, pos + len(seq) - 1, seq)
                return None
        for kind, seq in r.evidence(item):
            reach = start + gap + len(seq) if (short and kind not in (EV_FINAL, EV_LAST_NUMBER)) else window_end
            pos = find_seq(tokens, seq, start, reach)
            if pos >= 0:
                return Evidence(EVIDENCE_NAMES[kind], pos, pos + len(seq) - 1, seq)
        # another choice right after the question: that choice's reference record, verbatim
        for j, seq in enumerate(choices):
            if j == correct or not len(seq):
                continue
            pos = find_seq(tokens, seq, start, start + gap + len(seq))
            if pos >= 0:
                return Evidence("other_choice", pos, pos + len(seq) - 1, seq)
        return None

    @staticmethod
    def _listed_choices(choices: list[np.ndarray], correct: int, tokens: np.ndarray, lo: int,
                        hi: int) -> int | None:
        """End of the last choice when at least two other choices follow the question in order."""
        cursor, others, last_end = lo, 0, None
        for j, seq in enumerate(choices):
            pos = find_seq(tokens, seq, cursor, hi)
            if pos < 0:
                continue
            cursor = pos + len(seq)
            last_end = cursor - 1
            others += j != correct
        return last_end if others >= 2 else None

    # ---- the pass ----------------------------------------------------------------------------
    def scan(self, flat: np.ndarray, ptr: np.ndarray, docs: np.ndarray, lines: list[int], label: str,
             skip: set[tuple[int, str, int]], overlap_text: OverlapText,
             gid: np.ndarray | None = None) -> list[dict[str, Any]]:
        """Recall entries of the batch documents ``docs`` (indexes into ``ptr``), not in ``skip``
        (``gid``: the recall n-gram ids of ``flat``, when the caller hashed them already)."""
        if len(docs) == 0 or self.n_questions == 0 or len(flat) < self.n:
            return []
        if gid is None:
            gid = self.gram_ids(flat)
        rows, cov = self.candidates(flat, ptr[docs], ptr[docs + 1], gid)
        if len(rows) == 0:
            return []
        a = self.r.a
        best: dict[tuple[int, int], tuple[tuple[Any, ...], dict[str, Any]]] = {}
        for (d_i, q, _s, first, last, cnt, tail_hits, tail_n, own_hits, own_n), c in zip(rows.tolist(), cov.tolist(),
                                                                                       strict=True):
            parts = Coverage(c, tail_hits, tail_n, own_hits, own_n)
            d = int(docs[d_i])
            line = lines[d]
            if skip and all((line, self.r.eval_keys[int(a["recall.item.eval_key"][i])],
                             int(a["recall.item.instance"][i])) in skip for i in self.r.q_items(q).tolist()):
                continue  # SIMPLE reported every instance of this question on this line
            base = int(ptr[d])
            tokens = flat[base:int(ptr[d + 1])]
            for item, method, ev, why in self._decide(q, parts, tokens, last - base):
                ek = self.r.eval_keys[int(a["recall.item.eval_key"][item])]
                inst = int(a["recall.item.instance"][item])
                if (line, ek, inst) in skip:
                    continue
                entry = self._entry(item, q, parts, cnt, first - base, last - base, ev, method,
                                    why, tokens, line, label, overlap_text)
                rank = (-c, first - base, int(self.r.a["recall.item.doc_id"][item]))
                key = (d, item)
                if key not in best or rank < best[key][0]:
                    best[key] = (rank, entry)
        out = [v[1] for v in best.values()]
        out.sort(key=lambda e: (e["training_line"], e["question_start_idx"], e["eval_key"], e["eval_instance_index"]))
        return out

    def _decide(self, q: int, cov: Coverage, tokens: np.ndarray,
                last: int) -> list[tuple[int, str, Evidence | None, str]]:
        """(item, method, evidence, reason) for each eval item a question candidate flags."""
        cfg, a = self.cfg, self.r.a
        items = self.r.q_items(q).tolist()
        length = int(a["recall.q.tokens_ptr"][q + 1] - a["recall.q.tokens_ptr"][q])
        short = length < cfg.recall_long_question_tokens
        if not short and not (cov.has_end() and cov.reaches(self.min_cov)):
            return []  # its end or its own n-grams missing: a shared first part, or another question
        with_evidence = []
        for item in items:
            ev = self.evidence(item, tokens, last, short)
            if ev is not None:
                with_evidence.append((item, ev))
        out: list[tuple[int, str, Evidence | None, str]] = []
        if with_evidence and len(with_evidence) <= MAX_EVIDENCE_ITEMS:
            if short:
                why = f"whole question equal token by token ({length} tokens), answer evidence after it"
                return [(i, "short_exact", ev, why) for i, ev in with_evidence]
            bound = cfg.recall_answer_coverage
            if cov.reaches(bound):
                why = (f"question coverage {cov.idf:.3f} (own n-grams {cov.own:.3f}) >= {bound:.2f} with answer "
                       "evidence after it")
                return [(i, "question_answer", ev, why) for i, ev in with_evidence]
        if len(items) > MAX_SHARED_ITEMS:
            return out
        if short:
            rare = float(a["recall.q.rare_share"][q])
            if (length >= cfg.recall_short_alone_tokens and len(items) == 1
                    and rare >= cfg.recall_short_alone_rare_share):
                why = (f"whole question equal token by token ({length} tokens >= {cfg.recall_short_alone_tokens}), "
                       f"one eval instance, {rare:.2f} of its n-grams in no other question")
                out = [(items[0], "short_exact", None, why)]
            return out
        bound = cfg.recall_question_coverage
        if cov.reaches(bound):
            why = f"question coverage {cov.idf:.3f} (own n-grams {cov.own:.3f}) >= {bound:.2f} (no answer needed)"
            out = [(i, "question_exact", None, why) for i in items]
        return out

    def _entry(self, item: int, q: int, cov: Coverage, cnt: int, first: int, last: int, ev: Evidence | None,
               method: str, why: str, tokens: np.ndarray, line: int, label: str,
               overlap_text: OverlapText) -> dict[str, Any]:
        r, a, cfg = self.r, self.r.a, self.cfg
        length = int(a["recall.q.tokens_ptr"][q + 1] - a["recall.q.tokens_ptr"][q])
        short = length < cfg.recall_long_question_tokens
        threshold = 1.0 if short else (cfg.recall_answer_coverage if ev is not None else cfg.recall_question_coverage)
        n_grams = int(a["recall.q.grams_ptr"][q + 1] - a["recall.q.grams_ptr"][q])
        cluster_len = last - first + 1
        e: dict[str, Any] = {
            **self.item_fields(item, line, label),
            "ngram_match_cnt": int(cnt),
            "eval_unique_ngrams": n_grams,
            "contamination_score": float(np.float32(cov.idf)),
            "length_adjusted_question_threshold": float(np.float32(threshold)),
            "method": method,
            "idf_overlap": float(np.float32(cov.idf)),
            "question_start_idx": first,
            "question_end_idx": last,
            "cluster_token_length": cluster_len,
            "eval_token_length": length,
            "token_length_delta": cluster_len - length,
        }
        self.add_item_texts(e, item, tokens, first, last, ev, overlap_text)
        e["recall_evidence"] = {
            "rule": method,
            "why": why,
            "coverage": round(cov.idf, 6),
            "own_ngram_coverage": round(cov.own, 6),
            "own_ngrams": cov.own_n,
            "coverage_threshold": threshold,
            "matched_ngrams": int(cnt),
            "question_ngrams": n_grams,
            "question_tokens": length,
            "question_end_ngrams_matched": [cov.tail_hits, cov.tail_n],
            "instances_sharing_question": len(r.q_items(q)),
            "rare_ngram_share": round(float(a["recall.q.rare_share"][q]), 6),
            "answer": self.evidence_fields(ev),
        }
        return e

    # ---- what every entry from the recall index has (the recall and the semantic pass) -------
    def item_fields(self, item: int, line: int, label: str) -> dict[str, Any]:
        """The training line and eval instance fields an entry starts with."""
        r, a = self.r, self.r.a
        ek = r.eval_keys[int(a["recall.item.eval_key"][item])]
        return {"training_file": label, "training_line": line, "eval_dataset": ek, "eval_key": ek,
                "eval_line": int(a["recall.item.line"][item]), "eval_instance_index": int(a["recall.item.instance"][item])}

    def add_item_texts(self, e: dict[str, Any], item: int, tokens: np.ndarray, first: int, last: int,
                       ev: Evidence | None, overlap_text: OverlapText) -> None:
        """The matched text (``first``..``last``, the answer marked), the eval's texts, the answer's
        span and the eval record's metadata."""
        r, a = self.r, self.r.a
        a_bounds = [(ev.start, ev.end)] if ev is not None else None
        add_texts(e, overlap=overlap_text(tokens, first, last, None, a_bounds), question=r.question_text[item],
                  answer=r.answer_text[item])
        if ev is not None:
            e["answer_start_idx"] = ev.start
            e["answer_end_idx"] = ev.end
            e["answer_boundaries"] = [[ev.start, ev.end]]
        fi = int(a["recall.item.file"][item])
        add_eval_metadata(e, fingerprint=r.fingerprint[item], is_correct=int(a["recall.item.is_correct"][item]),
                          reference_file=r.reference_files[fi] if 0 <= fi < len(r.reference_files) else None,
                          split=r.split[item])

    def evidence_fields(self, ev: Evidence | None) -> dict[str, Any] | None:
        return None if ev is None else {"kind": ev.kind, "start_idx": ev.start, "end_idx": ev.end,
                                        "text": self.decode(ev.text_tokens)}
