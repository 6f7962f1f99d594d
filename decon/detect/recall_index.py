"""The recall index: what ``--recall`` needs beyond SIMPLE's index, built from the same reference lines.

Unlike SIMPLE's index it keeps every record with a question, however short (SIMPLE drops records
under ``eval_min_token_length``), and it is organised by *question*:

- a **question** is one distinct cleaned question text, with its tokens and its distinct n-grams
  (the same hash as the training scan), each n-gram's document frequency over questions, and up to
  ``ANCHORS`` *anchors*: its rarest n-grams with their offset, from which a copy's start is found;
- an **item** is one eval instance (eval_key, eval_instance_index, question): the records of one
  multiple-choice question are one item, with its choices and the correct one; each item has the
  *answer evidence* datasets really write (GSM8K's final answer after ``####``, the last number of
  a worked solution, the correct choice text, a short answer) as token sequences.

Every array sits under ``recall.`` in the index's arrays, so the index cache, forked workers and
Ray's object store carry it with the rest.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from decon.common.config import DetectionConfig
from decon.common.ngram_hash import flat_ngram_hashes
from decon.common.string_table import StringTable
from decon.common.tokenizer import Tokenizer

ANCHORS = 3
TAIL_NGRAMS = 3  # a long question's last n-grams: a copy must hold most of them (its real question)
FILTER_BITS = 26
MAX_EVIDENCE_TOKENS = 32  # a whole answer longer than this is not used as answer evidence

# answer evidence kinds (``recall.ev.kind``)
EV_FINAL, EV_LAST_NUMBER, EV_CHOICE, EV_ANSWER = 1, 2, 3, 4
EVIDENCE_NAMES = {EV_FINAL: "final_answer", EV_LAST_NUMBER: "last_number", EV_CHOICE: "correct_choice",
                  EV_ANSWER: "answer"}
CHOICE_LETTERS = "abcdefghij"

_FINAL = re.compile(r"####\s*(.+?)\s*$", re.S)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_I64 = np.int64


@dataclass
class _Item:
    eval_key: str
    instance: int
    question: int
    records: list[int]  # indexes into the raw records, file order


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def _ragged(rows: Sequence[Sequence[int] | np.ndarray], dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.zeros(len(rows) + 1, dtype=_I64)
    if rows:
        np.cumsum([len(r) for r in rows], out=ptr[1:])
    vals = np.concatenate([np.asarray(r, dtype=dtype) for r in rows]) if int(ptr[-1]) else np.empty(0, dtype)
    return vals.astype(dtype, copy=False), ptr


def final_answers(answer: str) -> list[str]:
    """GSM8K-style final answers of a worked solution: the text after ``####`` (with and without
    thousands separators); else the last number of a solution that spans several sentences."""
    m = _FINAL.search(answer)
    if m:
        text = m.group(1).strip()
        out = [text]
        if "," in text and text.replace(",", "") not in out:
            out.append(text.replace(",", ""))
        return [t for t in out if t]
    return []


def last_number(answer: str) -> str | None:
    nums = _NUMBER.findall(answer)
    return nums[-1].rstrip(".,") if nums else None


def _readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view (as :func:`decon.detect.hitpath.readonly`: one array type for the kernel,
    whether built or memory-mapped; not imported from there, so the build child never loads numba)."""
    v = a.view()
    v.flags.writeable = False
    return v


def _group_starts(*cols: np.ndarray) -> np.ndarray:
    """Mask of rows that start a new run of equal (cols...) in sorted order."""
    m = np.ones(len(cols[0]), dtype=bool)
    if len(m) > 1:
        diff = np.zeros(len(m) - 1, dtype=bool)
        for c in cols:
            diff |= c[1:] != c[:-1]
        m[1:] = diff
    return m


def _question_grams(flat: np.ndarray, ptr: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """The n-gram tables of the questions ``flat``/``ptr`` (token ids back to back), all at once:

    - ``keys``/``df``/``idf``: every distinct n-gram (sorted key = id), in how many questions;
    - ``q_grams``: each question's distinct n-gram ids (ascending), ``q_tail``: the ids of its last
      ``TAIL_NGRAMS`` n-grams;
    - ``rare_share``/``idf_sum``: per question, the share of its n-grams no other question has and
      its IDF total;
    - anchors: in each of ``ANCHORS`` equal parts of a question, its rarest n-gram (ties: the
      earliest), as (gram id, question, offset) sorted, so that a copy missing the question's start
      or end is still proposed.
    """
    n_q = len(ptr) - 1
    keys, seq, pos = flat_ngram_hashes(flat, ptr, n)
    order = np.lexsort((pos, keys, seq))
    keys, seq, pos = keys[order], seq[order], pos[order]
    del order
    windows = np.bincount(seq, minlength=n_q)
    tail = pos >= windows[seq] - TAIL_NGRAMS  # each question's last TAIL_NGRAMS windows
    t_keys, t_q = keys[tail], seq[tail]
    first = _group_starts(seq, keys)  # the first position of each (question, n-gram)
    u_keys, u_q, u_pos = keys[first], seq[first], pos[first]
    del keys, seq, pos, first, tail
    gram_keys, gram_of, df = np.unique(u_keys, return_inverse=True, return_counts=True)
    gram_of = gram_of.astype(np.int64, copy=False)
    del u_keys
    idf = np.log(np.float64(max(n_q, 1)) / np.maximum(df, 1)).astype(np.float32)
    counts = np.bincount(u_q, minlength=n_q)
    q_ptr = np.zeros(n_q + 1, dtype=np.int64)
    np.cumsum(counts, out=q_ptr[1:])
    own = (df[gram_of] == 1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rare_share = np.where(counts > 0, np.bincount(u_q, weights=own, minlength=n_q) / np.maximum(counts, 1), 0.0)
    idf_sum = np.bincount(u_q, weights=idf[gram_of].astype(np.float64), minlength=n_q)

    t_ids = np.searchsorted(gram_keys, t_keys).astype(np.int64)
    o = np.lexsort((t_ids, t_q))
    t_q, t_ids = t_q[o], t_ids[o]
    keep = _group_starts(t_q, t_ids)
    t_q, t_ids = t_q[keep], t_ids[keep]
    qt_ptr = np.zeros(n_q + 1, dtype=np.int64)
    np.cumsum(np.bincount(t_q, minlength=n_q), out=qt_ptr[1:])

    # anchors: per (question, part), the rarest n-gram, ties the earliest
    span = np.zeros(n_q, dtype=np.int64)
    np.maximum.at(span, u_q, u_pos + 1)
    part = u_pos * ANCHORS // np.maximum(span[u_q], 1)
    o = np.lexsort((u_pos, df[gram_of], part, u_q))
    pick = o[_group_starts(u_q[o], part[o])]
    a = np.lexsort((u_pos[pick], u_q[pick], gram_of[pick]))
    pick = pick[a]
    return {"keys": gram_keys.astype(np.uint64), "df": df.astype(np.int64), "idf": idf,
            "q_grams": gram_of, "q_grams_ptr": q_ptr, "q_tail": t_ids, "q_tail_ptr": qt_ptr,
            "rare_share": rare_share.astype(np.float32), "idf_sum": idf_sum.astype(np.float32),
            "anchor_gram": gram_of[pick], "anchor_question": u_q[pick].astype(np.int64),
            "anchor_offset": u_pos[pick].astype(np.int64)}


def build_recall_arrays(raw: list[tuple[int, int, dict]], q_clean: list[str], a_clean: list[str],
                        tok: Tokenizer, config: DetectionConfig, clean: Any,
                        file_names: list[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The recall arrays (``recall.*``) and meta for the parsed reference lines ``raw``.

    ``q_clean``/``a_clean`` are the cleaned question/answer of each raw record; ``clean`` cleans
    one more text (final answers, numbers) the same way.
    """
    n = config.ngram_size
    # ---- items and distinct questions -------------------------------------------------------
    question_of: dict[str, int] = {}
    questions: list[str] = []
    items: list[_Item] = []
    item_of: dict[tuple[str, int, int], int] = {}
    for k, (_fi, line_num, r) in enumerate(raw):
        q = q_clean[k]
        if not q:
            continue
        qi = question_of.setdefault(q, len(questions))
        if qi == len(questions):
            questions.append(q)
        inst = r.get("eval_instance_index")
        inst = inst if isinstance(inst, int) and not isinstance(inst, bool) and inst >= 0 else line_num
        key = (r["eval_key"], inst, qi)
        it = item_of.get(key)
        if it is None:
            item_of[key] = len(items)
            items.append(_Item(r["eval_key"], inst, qi, [k]))
        else:
            items[it].records.append(k)

    # ---- question tokens and n-grams --------------------------------------------------------
    if questions:
        flat, ptr = tok.encode_flat([" " + q for q in questions])
        flat = flat.astype(np.int64, copy=False)
    else:
        flat, ptr = np.empty(0, np.int64), np.zeros(1, np.int64)
    g = _question_grams(flat, ptr, n)
    gram_keys, df, idf = g["keys"], g["df"], g["idf"]
    qg_vals, qg_ptr, qt_vals, qt_ptr = g["q_grams"], g["q_grams_ptr"], g["q_tail"], g["q_tail_ptr"]
    rare_share, idf_sum = g["rare_share"], g["idf_sum"]
    a_gram, a_question, a_offset = g["anchor_gram"], g["anchor_question"], g["anchor_offset"]
    n_q = max(len(questions), 1)
    anchor_ptr = np.zeros(len(gram_keys) + 1, dtype=np.int64)
    if len(a_gram):
        np.cumsum(np.bincount(a_gram, minlength=len(gram_keys)), out=anchor_ptr[1:])
    bits = np.zeros(1 << (FILTER_BITS - 6), dtype=np.uint64)
    if len(gram_keys):
        top = (gram_keys >> np.uint64(64 - FILTER_BITS)).astype(np.int64)
        np.bitwise_or.at(bits, top >> 6, np.left_shift(np.uint64(1), (top & 63).astype(np.uint64)))

    # ---- items: records, choices, answer evidence -------------------------------------------
    eval_keys = sorted({it.eval_key for it in items})
    ek_idx = {k: i for i, k in enumerate(eval_keys)}
    ev_texts: list[str] = []
    ev_kind: list[int] = []
    ev_item_rows: list[list[int]] = []
    choice_texts: list[str] = []
    choice_rows: list[list[int]] = []
    correct_choice = np.full(len(items), -1, dtype=np.int64)
    rep = np.zeros(len(items), dtype=np.int64)
    q_items: list[list[int]] = [[] for _ in questions]
    for i, it in enumerate(items):
        q_items[it.question].append(i)
        recs = it.records
        flags = [raw[k][2].get("is_correct") for k in recs]
        correct = [j for j, f in enumerate(flags) if f is True]
        rep[i] = recs[correct[0]] if correct else recs[0]
        evs: list[tuple[int, str]] = []
        rows: list[int] = []
        if len(recs) >= 2 and correct:  # multiple choice: one record per choice
            correct_choice[i] = correct[0]
            for k in recs:
                rows.append(len(choice_texts))
                choice_texts.append(a_clean[k])
            if a_clean[recs[correct[0]]]:
                evs.append((EV_CHOICE, a_clean[recs[correct[0]]]))
        else:
            ans = _str(raw[rep[i]][2].get("answer"))
            finals = final_answers(ans)
            if finals:
                evs.extend((EV_FINAL, clean(t)) for t in finals)
            elif a_clean[rep[i]]:
                words = a_clean[rep[i]].split()
                if len(words) <= MAX_EVIDENCE_TOKENS:
                    evs.append((EV_ANSWER, a_clean[rep[i]]))
                else:
                    last = last_number(ans)
                    if last:
                        evs.append((EV_LAST_NUMBER, clean(last)))
        choice_rows.append(rows)
        er: list[int] = []
        for kind, text in evs:
            if text and text not in (ev_texts[j] for j in er):
                er.append(len(ev_texts))
                ev_texts.append(text)
                ev_kind.append(kind)
        ev_item_rows.append(er)

    def encode(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        if not texts:
            return np.empty(0, np.int64), np.zeros(1, np.int64)
        f, p = tok.encode_flat([" " + t for t in texts])
        return f.astype(np.int64, copy=False), p.astype(np.int64, copy=False)

    ev_tok, ev_ptr = encode(ev_texts)
    ch_tok, ch_ptr = encode(choice_texts)
    ev_item_vals, ev_item_ptr = _ragged(ev_item_rows, np.int64)
    ch_item_vals, ch_item_ptr = _ragged(choice_rows, np.int64)
    qi_vals, qi_ptr = _ragged(q_items, np.int64)

    def rec_field(name: str) -> list[Any]:
        return [raw[int(k)][2].get(name) for k in rep.tolist()]

    is_correct = np.array([-1 if not isinstance(v, bool) else int(v) for v in rec_field("is_correct")],
                          dtype=np.int8)
    arrays: dict[str, np.ndarray] = {
        "recall.q.tokens": flat, "recall.q.tokens_ptr": ptr.astype(np.int64),
        "recall.q.grams": qg_vals, "recall.q.grams_ptr": qg_ptr,
        "recall.q.tail": qt_vals, "recall.q.tail_ptr": qt_ptr,
        "recall.q.items": qi_vals, "recall.q.items_ptr": qi_ptr,
        "recall.q.rare_share": rare_share, "recall.q.idf_sum": idf_sum,
        "recall.gram.keys": gram_keys.astype(np.uint64), "recall.gram.ids": np.arange(len(gram_keys), dtype=np.int64),
        "recall.gram.idf": idf, "recall.gram.df": df.astype(np.int64), "recall.gram.bits": bits,
        "recall.anchor.ptr": anchor_ptr,
        "recall.anchor.question": a_question, "recall.anchor.offset": a_offset,
        "recall.item.eval_key": np.array([ek_idx[it.eval_key] for it in items], dtype=np.int32),
        "recall.item.instance": np.array([it.instance for it in items], dtype=np.int64),
        "recall.item.question": np.array([it.question for it in items], dtype=np.int64),
        "recall.item.line": np.array([raw[int(k)][1] for k in rep.tolist()], dtype=np.int64),
        "recall.item.file": np.array([raw[int(k)][0] for k in rep.tolist()], dtype=np.int32),
        "recall.item.doc_id": np.array([int(raw[int(k)][2]["doc_id"]) & 0xFFFFFFFF for k in rep.tolist()],
                                       dtype=np.int64),
        "recall.item.is_correct": is_correct,
        "recall.item.correct_choice": correct_choice,
        "recall.item.answer_tokens": np.array([len(a_clean[int(k)].split()) for k in rep.tolist()], dtype=np.int64),
        "recall.item.ev": ev_item_vals, "recall.item.ev_ptr": ev_item_ptr,
        "recall.item.choices": ch_item_vals, "recall.item.choices_ptr": ch_item_ptr,
        "recall.ev.tokens": ev_tok, "recall.ev.tokens_ptr": ev_ptr,
        "recall.ev.kind": np.array(ev_kind, dtype=np.int8),
        "recall.choice.tokens": ch_tok, "recall.choice.tokens_ptr": ch_ptr,
    }
    arrays.update(StringTable.from_list([_str(raw[int(k)][2].get("question")) for k in rep.tolist()])
                  .arrays("recall.text.question"))
    arrays.update(StringTable.from_list([raw[int(k)][2].get("answer") if isinstance(raw[int(k)][2].get("answer"), str)
                                         else None for k in rep.tolist()]).arrays("recall.text.answer"))
    arrays.update(StringTable.from_list([v if isinstance(v, str) else None for v in rec_field("fingerprint")])
                  .arrays("recall.text.fingerprint"))
    arrays.update(StringTable.from_list([v if isinstance(v, str) else None for v in rec_field("split")])
                  .arrays("recall.text.split"))
    meta = {"eval_keys": eval_keys, "questions": len(questions), "items": len(items),
            "reference_files": list(file_names), "ngram_size": n,
            "max_idf": float(math.log(n_q)) if n_q > 1 else 0.0}
    return arrays, meta


class RecallIndex:
    """Read-only views of the ``recall.*`` arrays of an index (built, cached or shared)."""

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        a = {k: _readonly(np.ascontiguousarray(v)) for k, v in arrays.items() if k.startswith("recall.")}
        self.a = a
        self.meta = meta
        self.eval_keys: list[str] = meta["eval_keys"]
        self.reference_files: list[str] = meta["reference_files"]
        self.question_text = StringTable.from_arrays(a, "recall.text.question")
        self.answer_text = StringTable.from_arrays(a, "recall.text.answer")
        self.fingerprint = StringTable.from_arrays(a, "recall.text.fingerprint")
        self.split = StringTable.from_arrays(a, "recall.text.split")

    @staticmethod
    def row(a: np.ndarray, ptr: np.ndarray, i: int) -> np.ndarray:
        return a[int(ptr[i]):int(ptr[i + 1])]

    def q_tokens(self, q: int) -> np.ndarray:
        return self.row(self.a["recall.q.tokens"], self.a["recall.q.tokens_ptr"], q)

    def q_items(self, q: int) -> np.ndarray:
        return self.row(self.a["recall.q.items"], self.a["recall.q.items_ptr"], q)

    def q_grams(self, q: int) -> np.ndarray:
        return self.row(self.a["recall.q.grams"], self.a["recall.q.grams_ptr"], q)

    def evidence(self, item: int) -> list[tuple[int, np.ndarray]]:
        """(kind, tokens) of each answer evidence of ``item``."""
        a = self.a
        out = []
        for e in self.row(a["recall.item.ev"], a["recall.item.ev_ptr"], item).tolist():
            out.append((int(a["recall.ev.kind"][e]), self.row(a["recall.ev.tokens"], a["recall.ev.tokens_ptr"], e)))
        return out

    def choices(self, item: int) -> list[np.ndarray]:
        a = self.a
        return [self.row(a["recall.choice.tokens"], a["recall.choice.tokens_ptr"], c)
                for c in self.row(a["recall.item.choices"], a["recall.item.choices_ptr"], item).tolist()]

    def find_items(self, eval_key: str, instance: int) -> list[int]:
        if eval_key not in self.eval_keys:
            return []
        ek = self.eval_keys.index(eval_key)
        a = self.a
        return np.flatnonzero((a["recall.item.eval_key"] == ek) & (a["recall.item.instance"] == instance)).tolist()
