"""Report entries from measurements: upstream's report fields of a SIMPLE match (and the eval
metadata every detection pass adds the same way). Scoring happens in :mod:`decon.detect.checks`."""

from __future__ import annotations

from typing import Any

from decon.detect.checks import Measurements
from decon.detect.reference_index import ReferenceIndex


def question_end(m: Measurements, n: int) -> int:
    """Last question token: the cluster's end, cut before the answer when the cluster ran into it."""
    q = m.question
    end = q.end + n - 1
    bounds = m.answer.bounds
    if bounds:
        first_answer = bounds[0][0]
        if first_answer <= end and q.cluster_len > q.eval_len:
            end = max(first_answer - 1, 0)
    return end


def add_texts(e: dict[str, Any], *, overlap: str | None, question: str | None, answer: str | None,
              passage: str | None = None) -> None:
    """The matched training text and the eval's own texts, where there are any."""
    if overlap is not None:
        e["training_overlap_text"] = overlap
    if question is not None:
        e["eval_question_text"] = question
        e["eval_overlap_text"] = question
    if answer is not None:
        e["eval_answer_text"] = answer
    if passage is not None:
        e["eval_passage_text"] = passage


def add_eval_metadata(e: dict[str, Any], *, fingerprint: str | None, is_correct: int, reference_file: str | None,
                      split: str | None) -> None:
    """The eval record's own fields, where it has them (``is_correct`` -1: not given)."""
    if fingerprint is not None:
        e["fingerprint"] = fingerprint
    if is_correct >= 0:
        e["is_correct"] = bool(is_correct)
    if reference_file is not None:
        e["reference_file"] = reference_file
    if split is not None:
        e["split"] = split


def simple_entry(index: ReferenceIndex, m: Measurements, q_end: int, line_num: int, label: str,
                 overlap_text: str | None) -> dict[str, Any]:
    """The report entry of a SIMPLE match that passed (``q_end``: :func:`question_end`)."""
    q, a, p = m.question, m.answer, m.passage
    slot = q.slot
    eval_key = index.eval_keys[int(index.eval_key_idx[slot])]
    e: dict[str, Any] = {
        "training_file": label,
        "training_line": line_num,
        "eval_dataset": eval_key,
        "eval_key": eval_key,
        "eval_line": int(index.eval_line[slot]),
        "eval_instance_index": int(index.eval_instance_index[slot]),
        "ngram_match_cnt": q.n_matched,
        "eval_unique_ngrams": int(index.unique_ngrams[slot]),
        "contamination_score": float(m.score.score),
        "length_adjusted_question_threshold": float(q.required),
        "method": "simple",
        "idf_overlap": float(q.idf_overlap),
        "question_start_idx": q.start,
        "question_end_idx": q_end,
    }
    add_texts(e, overlap=overlap_text, question=index.question_text[slot], answer=index.answer_text[slot],
              passage=index.passage_text[slot])
    if a.ratio is not None:
        e["answer_overlap_ratio"] = float(a.ratio)
    if a.idf is not None:
        e["answer_idf_overlap"] = float(a.idf)
    if a.bounds:
        e["answer_start_idx"] = a.bounds[0][0]
        e["answer_end_idx"] = a.bounds[-1][1]
    if a.bounds is not None:
        e["answer_boundaries"] = [list(b) for b in a.bounds]
    if p.ratio is not None:
        e["passage_overlap_ratio"] = float(p.ratio)
    if p.idf is not None:
        e["passage_idf_overlap"] = float(p.idf)
    e["cluster_token_length"] = q.cluster_len
    e["eval_token_length"] = q.eval_len
    e["token_length_delta"] = q.cluster_len - q.eval_len
    files = index.reference_files
    fi = int(index.file_idx[slot])
    add_eval_metadata(e, fingerprint=index.fingerprint[slot], is_correct=int(index.is_correct[slot]),
                      reference_file=files[fi] if 0 <= fi < len(files) else None, split=index.split[slot])
    return e
