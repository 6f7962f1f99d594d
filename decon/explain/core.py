"""Why a document was or was not flagged: SIMPLE's gates for each candidate eval instance, with the
numbers the detector computes (and, with ``--recall``, what the recall pass found).

The verdict comes from the detector itself (the same ``scan_batch`` `decon detect` runs), so it
always agrees with a report; the gates are recomputed next to it on the reference walk, gate by
gate in the order the detector applies them:

1. ``indexed``: the eval instance is in the index (records under ``eval_min_token_length`` and the
   like are not);
2. ``document_length``: the document has at least ``2 x ngram_size`` tokens (else skipped whole);
3. ``probed``: a probe (every ``sample_every_m_tokens`` positions) landed on one of its n-grams, not a
   hot one;
4. ``cluster``: the question's IDF overlap in the expanded cluster against the length-adjusted
   minimum, with matched n-grams and the span;
5. ``passage`` and ``answer`` (where the eval has them): found or not, how, their overlaps;
6. ``score``: the combined contamination score against the threshold;
7. ``reported``: a report entry names the instance (several records of one instance, the choices of
   a multiple-choice question, compete; the best one is reported).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from decon.common.ngram_hash import ngram_hashes
from decon.common.text import clean_text
from decon.detect.checks import Measurements
from decon.detect.cluster import Cluster, find_clusters
from decon.detect.detection import Scanner
from decon.detect.documents import FileResult
from decon.detect.entry import question_end
from decon.detect.scoring import segmented_f32_sum

LABEL = "explain"


@dataclass
class Gate:
    name: str
    passed: bool
    value: Any = None
    bound: Any = None
    detail: str = ""


@dataclass
class CandidateExplanation:
    eval_key: str
    eval_instance_index: int
    doc_id: int | None  # the eval record examined (of the instance's records, the best placed)
    contaminated: bool  # a report entry names this instance
    methods: list[str] = field(default_factory=list)
    coverage: float = 0.0  # share of the question's IDF found anywhere in the document (for ranking)
    gates: list[Gate] = field(default_factory=list)
    matched_text: str | None = None
    question_text: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["gates"] = [_plain(asdict(g)) for g in self.gates]
        return _plain(d)


def _plain(v: Any) -> Any:
    """JSON-ready values: numpy scalars to Python, floats rounded to float32 precision."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        return float(np.float32(v))
    return v


@dataclass
class _Doc:
    """One document as the detector sees it."""

    tokens: np.ndarray
    qid: list[int]  # question n-gram id at each position, -1 where none
    hits: list[int]
    clusters: list[Cluster] | None  # None: the document is too short to be walked


class Explainer:
    """Explains documents against one index and config (built once, reused per document)."""

    def __init__(self, scanner: Scanner) -> None:
        self.scanner = scanner
        self.index = scanner.index
        self.config = scanner.config
        self.n = scanner.n

    # ---- the document ----------------------------------------------------------------------
    def _doc(self, text: str) -> _Doc:
        cfg, index, n = self.config, self.index, self.n
        cleaned = clean_text(text, cfg.punctuation_chars)
        flat, _ptr = self.scanner.tok.encode_flat([" " + cleaned])
        tokens = np.asarray(flat, dtype=np.int64)
        qid = index.lookup_question(ngram_hashes(tokens, n)).tolist() if len(tokens) >= n else []
        hits = [i for i, v in enumerate(qid) if v >= 0]
        clusters = None
        if len(tokens) >= 2 * n:
            clusters = find_clusters(qid, hits, index.hot, cfg.sample_every_m_tokens, self.scanner.docs_of,
                                     cfg.question_max_consecutive_misses)
        return _Doc(tokens, qid, hits, clusters)

    def verdict(self, text: str) -> list[dict[str, Any]]:
        """The report entries `decon detect` writes for this document (its own code path)."""
        res = FileResult(path=LABEL)
        self.scanner.scan_batch([(0, text)], res, LABEL)
        return res.entries

    # ---- candidates ------------------------------------------------------------------------
    def _coverage(self, doc: _Doc) -> dict[int, float]:
        """slot -> share of its question IDF among the document's n-grams (anywhere, no walk)."""
        index = self.index
        per_slot: dict[int, set[int]] = {}
        for p in doc.hits:
            nid = doc.qid[p]
            for s in self.scanner.docs_of(nid):
                per_slot.setdefault(s, set()).add(nid)
        out = {}
        for s, ids in per_slot.items():
            total = float(index.question_idf_sum[s])
            out[s] = float(np.float32(index.q_idf[np.fromiter(ids, dtype=np.int64)].sum())) / total if total else 0.0
        return out

    def _slots_of(self, eval_key: str, instance: int) -> list[int]:
        index = self.index
        if eval_key not in index.eval_keys:
            return []
        k = index.eval_keys.index(eval_key)
        return np.flatnonzero((np.asarray(index.eval_key_idx) == k)
                              & (np.asarray(index.eval_instance_index) == instance)).tolist()

    def explain(self, text: str, *, eval_key: str | None = None, instance: int | None = None,
                top: int = 5) -> dict[str, Any]:
        """The verdict for ``text`` and, per candidate eval instance, the gates with their numbers."""
        entries = self.verdict(text)
        doc = self._doc(text)
        coverage = self._coverage(doc)
        index = self.index
        by_instance: dict[tuple[str, int], list[int]] = {}
        if eval_key is not None and instance is not None:
            by_instance[(eval_key, instance)] = self._slots_of(eval_key, instance)
        else:
            for s in sorted(coverage, key=lambda s: (-coverage[s], int(index.doc_id[s]))):
                key = (index.eval_keys[int(index.eval_key_idx[s])], int(index.eval_instance_index[s]))
                if key not in by_instance and len(by_instance) >= top:
                    continue
                by_instance.setdefault(key, []).append(s)
            for key in {(e["eval_key"], e["eval_instance_index"]) for e in entries}:
                # every reported instance is explained, whatever its rank, over all its records
                by_instance[key] = self._slots_of(*key)
        candidates = [self._candidate(doc, key, slots, coverage, entries) for key, slots in by_instance.items()]
        candidates.sort(key=lambda c: (not c.contaminated, -c.coverage, c.eval_key, c.eval_instance_index))
        return {
            "contaminated": bool(entries),
            "document_tokens": int(len(doc.tokens)),
            "matches": [{"eval_key": e["eval_key"], "eval_instance_index": e["eval_instance_index"],
                         "method": e.get("method", "simple"), "contamination_score": e["contamination_score"]}
                        for e in entries],
            "candidates": [c.to_dict() for c in candidates],
        }

    def _candidate(self, doc: _Doc, key: tuple[str, int], slots: list[int], coverage: dict[int, float],
                   entries: list[dict[str, Any]]) -> CandidateExplanation:
        eval_key, instance = key
        mine = [e for e in entries if (e["eval_key"], e["eval_instance_index"]) == key]
        c = CandidateExplanation(eval_key, instance, None, bool(mine),
                                 sorted({e.get("method", "simple") for e in mine}))
        if not slots:
            from decon.explain.indexing import not_indexed_reasons

            reasons = not_indexed_reasons(self.config, self.scanner.tok, eval_key, instance)
            if not reasons:
                c.gates.append(Gate("indexed", False, detail="the reference set has no record of this eval "
                                                             "instance"))
            for r in reasons:
                c.gates.append(Gate("indexed", False, value=r["value"], bound=r["bound"],
                                    detail=f"{r['file']} line {r['line']} (doc_id {r['doc_id']}): dropped by "
                                           f"{r['gate']}: {r['detail']}"))
            self._recall_gate(c, mine, doc)
            self._semantic_gate(c, mine, doc)
            return c
        index = self.index
        # the record to examine: the one the walk reached furthest with (best gates), ties lowest doc_id
        results = [self._gates(doc, s) for s in slots]
        order = sorted(range(len(slots)), key=lambda i: (-len(results[i][0]), -(results[i][2] or 0.0),
                                                         -coverage.get(slots[i], 0.0), int(index.doc_id[slots[i]])))
        best = order[0]
        slot = slots[best]
        c.gates, c.matched_text, _ = results[best]
        c.doc_id = int(index.doc_id[slot])
        c.coverage = max(coverage.get(s, 0.0) for s in slots)
        c.question_text = index.question_text[slot]
        c.gates.append(Gate("reported", bool([e for e in mine if e.get("method", "simple") == "simple"]),
                            detail="SIMPLE reports the best-scoring record of an instance at each question start"))
        self._recall_gate(c, mine, doc)
        self._semantic_gate(c, mine, doc)
        return c

    def _semantic_gate(self, c: CandidateExplanation, mine: list[dict[str, Any]], doc: _Doc) -> None:
        if self.scanner.semantic is None:
            return
        from decon.explain.semantic_gates import semantic_gates

        others = {(0, e["eval_key"], e["eval_instance_index"]) for e in mine if e.get("method") != "semantic"}
        c.gates.extend(semantic_gates(self.scanner.semantic, doc.tokens, c.eval_key, c.eval_instance_index, others))
        sem = [e for e in mine if e.get("method") == "semantic"]
        if sem and c.matched_text is None:
            c.matched_text = sem[0].get("training_overlap_text")

    def _recall_gate(self, c: CandidateExplanation, mine: list[dict[str, Any]], doc: _Doc) -> None:
        if self.scanner.recall is None:
            return
        from decon.explain.recall_gates import recall_gates

        c.gates.extend(recall_gates(self.scanner.recall, doc.tokens, c.eval_key, c.eval_instance_index))
        rec = [e for e in mine if "recall_evidence" in e]
        if rec:
            ev = rec[0]["recall_evidence"]
            c.gates.append(Gate("recall", True, value=ev.get("coverage"), bound=ev.get("coverage_threshold"),
                                detail=f"{rec[0]['method']}: {ev.get('why')}"))
            if c.matched_text is None:
                c.matched_text = rec[0].get("training_overlap_text")
        else:
            why = "SIMPLE reports it already" if mine else "no recall rule fired"
            c.gates.append(Gate("recall", False, detail=why))

    def _gates(self, doc: _Doc, slot: int) -> tuple[list[Gate], str | None, float | None]:
        """Gates of one eval record, up to the first that fails; the matched text once measured."""
        cfg, index, n = self.config, self.index, self.n
        gates = [Gate("indexed", True, value=int(index.token_count[slot]),
                      detail="in the index; value: its question's tokens")]
        ok = doc.clusters is not None
        gates.append(Gate("document_length", ok, value=int(len(doc.tokens)), bound=2 * n,
                          detail="documents under 2 x ngram_size tokens are skipped whole"))
        if not ok:
            return gates, None, None
        mine = [p for p in doc.hits if slot in self.scanner.docs_of(doc.qid[p])]
        found = [(cl, self._overlap(cl, slot)) for cl in doc.clusters if _has(cl, slot)]
        if not found:
            step = cfg.sample_every_m_tokens
            hot = [p for p in mine if bool(index.hot[doc.qid[p]])]
            why = (f"its n-grams sit at positions {mine[:8]}{' ...' if len(mine) > 8 else ''}; probes land every "
                   f"{step} tokens from each cluster's end" + (f", and {len(hot)} of them are hot n-grams, where "
                                                               "no cluster starts" if hot else ""))
            gates.append(Gate("probed", False, value=len(mine), bound=step, detail=why))
            return gates, None, None
        cl, (overlap, required) = max(found, key=lambda t: t[1][0])
        gates.append(Gate("probed", True, value=int(cl.hit), bound=cfg.sample_every_m_tokens,
                          detail="the probe position that started its cluster"))
        start, end = cl.bound(slot)
        n_matched = len(cl.matched(slot))
        need = max(float(self.scanner.min_q), float(required))
        passed = bool(overlap >= self.scanner.min_q and overlap >= required)
        span = range(start, end + 1)
        misses = sum(1 for p in span if doc.qid[p] < 0 or slot not in self.scanner.docs_of(doc.qid[p]))
        gates.append(Gate("cluster", passed, value=float(overlap), bound=need,
                          detail=f"question IDF overlap: {n_matched} of {int(index.unique_ngrams[slot])} n-grams "
                                 f"matched over tokens {start}-{end + n - 1}, {misses} position(s) in that span "
                                 f"without a match; a record drops out after "
                                 f"{cfg.question_max_consecutive_misses} consecutive misses"))
        if not passed:
            return gates, None, float(overlap)
        m = self.scanner.measure((slot, overlap, required, n_matched, start, end), doc.tokens)
        gates.extend(_measured_gates(m))
        q_end = question_end(m, n)
        text = self.scanner._overlap_text(doc.tokens, start, q_end, m.passage.bounds, m.answer.bounds)
        return gates, text, float(m.score.score)

    def _overlap(self, cl: Cluster, slot: int) -> tuple[np.float32, np.float32]:
        """The question IDF overlap of ``slot`` in cluster ``cl`` as the detector computes it."""
        index = self.index
        ids = np.array(sorted(cl.matched(slot)), dtype=np.int64)
        ptr = np.array([0, len(ids)], dtype=np.int64)
        s = segmented_f32_sum(index.q_idf[ids], ptr)[0]
        total = index.question_idf_sum[slot]
        overlap = np.float32(s / total) if total > 0 else np.float32(0.0)
        return overlap, self.scanner.required_q[slot]


def _has(cl: Cluster, slot: int) -> bool:
    return slot in cl.matches or bool(len(cl.seed_docs)) and bool(np.isin(slot, cl.seed_docs))


def _measured_gates(m: Measurements) -> list[Gate]:
    out = []
    p = m.passage
    if p.present:
        out.append(Gate("passage", p.bounds is not None, value=None if p.idf is None else float(p.idf),
                        detail=(f"found at tokens {p.bounds[0]}-{p.bounds[1]}" if p.bounds else "not found")
                        + f" within {p.window} tokens before the question; token overlap "
                          f"{float(p.ratio or 0):.3f}; IDF overlap (value) feeds the score"))
    a = m.answer
    if a.present:
        how = "token by token (short answer)" if a.short else "by n-gram overlap (long answer)"
        where = (f"found at tokens {a.bounds[0][0]}-{a.bounds[-1][1]}" if a.bounds else "not found")
        out.append(Gate("answer", bool(a.bounds), value=None if a.idf is None else float(a.idf),
                        detail=f"{where}, {how}, within {a.window} tokens after the question; token overlap "
                               f"{float(a.ratio or 0):.3f}; IDF overlap (value) feeds the score"))
    out.append(Gate("score", m.score.passed, value=float(m.score.score), bound=float(m.score.threshold),
                    detail="question, answer and passage combined, against contamination_score_threshold"))
    return out
