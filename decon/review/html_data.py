"""The match list of the HTML report as one compact, compressed blob.

Matches are stored column-light: repeated strings (suites, training files, reference files,
methods) and eval texts (one per eval record, however many matches it has) go into tables, each
match row points at them. Training text keeps its highlighted spans and at most CONTEXT_CHARS of
context on each side, and a span whose text is part of the eval record's own text (the usual case)
is stored as a reference to it: ``REF + "start.length"``. The JSON is gzip-compressed (fixed mtime,
so the output is deterministic) and base64-encoded; the page inflates it with DecompressionStream.
"""

from __future__ import annotations

import base64
import gzip
import re
from collections.abc import Sequence
from typing import Any

import orjson

from decon.review.records import Match

CONTEXT_CHARS = 64
OPENERS = "【⟦⟨"
CLOSERS = "】⟧⟩"
REF = "\ue000"  # private-use character: "the next start.length of the eval text"
_SPAN = re.compile("([【⟦⟨])([^【】⟦⟧⟨⟩]*)([】⟧⟩])")
_EVAL_SLOT = {"⟨": 0, "【": 1, "⟦": 2}  # opener -> index in (passage, question, answer)
TRAINING_TEXT_FIELDS = ("training_overlap_text", "training_text", "text")
DETAIL_FIELDS = ("idf_overlap", "answer_overlap_ratio", "passage_overlap_ratio", "ngram_match_cnt",
                 "eval_unique_ngrams", "jaccard_similarity")


def match_score(m: Match) -> float | None:
    """contamination_score (SIMPLE), else jaccard_similarity (MinHash)."""
    score = m.contamination_score
    return score if score is not None else m.get_float("jaccard_similarity")


def trim_context(text: str, context: int = CONTEXT_CHARS) -> str:
    """Keep the marked spans whole and at most ``context`` characters around them (cut at a space)."""
    first = min((i for i in (text.find(c) for c in OPENERS) if i >= 0), default=-1)
    last = max(text.rfind(c) for c in CLOSERS)
    if first < 0 or last < 0:
        first, last = 0, min(len(text), 2 * context) - 1
    start = max(0, first - context)
    end = min(len(text), last + 1 + context)
    if start > 0:
        space = text.find(" ", start, first)
        start = space + 1 if space >= 0 else start
    if end < len(text):
        space = text.rfind(" ", last + 1, end)
        end = space if space >= 0 else end
    return ("… " if start > 0 else "") + text[start:end] + (" …" if end < len(text) else "")


def training_text(m: Match) -> str | None:
    for name in TRAINING_TEXT_FIELDS:
        value = m.get_str(name)
        if value is not None:
            return value
    return None


def eval_texts(m: Match) -> tuple[str | None, str | None, str | None]:
    """(passage, question, answer); a record with none of them shows its overlap or eval text."""
    passage, question, answer = (m.get_str("eval_passage_text"), m.get_str("eval_question_text"),
                                 m.get_str("eval_answer_text"))
    if passage is None and question is None and answer is None:
        question = m.get_str("eval_overlap_text") or m.get_str("eval_text")
    return passage, question, answer


def reference_spans(text: str, evals: tuple[str | None, str | None, str | None]) -> str:
    """Replace each span's text by a reference into the matching eval text where it is a part of it."""
    def swap(m: re.Match[str]) -> str:
        opener, body, closer = m.groups()
        source = evals[_EVAL_SLOT[opener]]
        core = body.strip()
        if not source or not core or REF in body:
            return m.group(0)
        at = source.find(core)
        if at < 0:
            return m.group(0)
        lead = body[: len(body) - len(body.lstrip())]
        trail = body[len(body.rstrip()):]
        return f"{opener}{lead}{REF}{at}.{len(core)}{trail}{closer}"

    return _SPAN.sub(swap, text.replace(REF, "\ufffd"))


class _Table:
    """Values -> small integer ids, in first-seen order."""

    def __init__(self) -> None:
        self.ids: dict[Any, int] = {}

    def id(self, value: Any) -> int:
        found = self.ids.get(value)
        if found is None:
            found = self.ids[value] = len(self.ids)
        return found

    def values(self) -> list[Any]:
        return list(self.ids)


def _detail(m: Match) -> list[float | int | None]:
    out: list[float | int | None] = []
    for name in DETAIL_FIELDS:
        value = m.get_float(name)
        out.append(None if value is None else (int(value) if value.is_integer() and name.endswith(("cnt", "ngrams"))
                                               else round(value, 4)))
    return out


def ordered(matches: Sequence[Match]) -> list[Match]:
    """Highest score first, then suite, training file and line (deterministic)."""
    return sorted(matches, key=lambda m: (-(match_score(m) or 0.0), m.suite, m.training_file, m.training_line,
                                          m.eval_line))


def build_payload(matches: Sequence[Match]) -> dict[str, Any]:
    """Tables plus one row per match: [suite, score, file, line, reference, eval line, eval text,
    training text, method, split, details]."""
    suites, files, refs, evals, methods = _Table(), _Table(), _Table(), _Table(), _Table()
    rows = []
    for m in ordered(matches):
        score = match_score(m)
        text = training_text(m)
        texts = eval_texts(m)
        rows.append([
            suites.id(m.suite), None if score is None else round(score, 6), files.id(m.training_file),
            m.training_line, refs.id(m.reference_file or m.eval_dataset), m.eval_line, evals.id(texts),
            None if text is None else reference_spans(trim_context(text), texts),
            methods.id(m.get_str("method") or ""),
            m.split, _detail(m),
        ])
    return {"suites": suites.values(), "files": files.values(), "refs": refs.values(),
            "evals": [list(t) for t in evals.values()], "methods": methods.values(),
            "details": list(DETAIL_FIELDS), "rows": rows}


def encode_payload(payload: dict[str, Any]) -> str:
    """gzip (mtime 0) + base64 of the JSON."""
    raw = orjson.dumps(payload)
    return base64.b64encode(gzip.compress(raw, compresslevel=9, mtime=0)).decode("ascii")
