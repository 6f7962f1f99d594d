"""Scanning training documents against the reference index (upstream's SIMPLE algorithm).

Per file: lines are parsed and cleaned in batches, tokenised with the batch encoder, hashed and
looked up in the index for the whole batch at once (numpy); only documents with index hits take
the sequential path (cluster expansion, scoring, answer/passage boundaries), and only for the
positions around their hits.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from decon.common.config import DetectionConfig
from decon.common.ngram_hash import ngram_hashes, ngram_seed
from decon.common.text import clean_text
from decon.detect import hitpath
from decon.detect.boundaries import AnswerKeys
from decon.detect.checks import (
    Measurements,
    QuestionMatch,
    answer_check,
    passage_check,
    score_check,
)
from decon.detect.cluster import Cluster, find_clusters
from decon.detect.documents import DocumentScanner, FileResult
from decon.detect.entry import question_end, simple_entry
from decon.detect.reference_index import FILTER_BITS, Ragged, ReferenceIndex
from decon.detect.scoring import (
    F32,
    interpolate_threshold,
    minimum_question_idf_threshold,
    segmented_f32_sum,
)
from decon.errors import DeconError

CONTEXT_BEFORE = 30
CONTEXT_AFTER = 60

# A question candidate of a cluster: (slot, idf overlap, required overlap, matched n-gram count,
# first and last matched position).
Candidate = tuple[int, np.float32, np.float32, int, int, int]


class _DocSets:
    """n-gram id -> frozenset of eval document slots, with a bounded cache."""

    def __init__(self, index: ReferenceIndex, capacity: int) -> None:
        self.index = index
        self.capacity = max(100_000, capacity)  # frozensets are small; misses cost a numpy row copy
        self.cache: OrderedDict[int, frozenset[int]] = OrderedDict()

    def array(self, nid: int) -> np.ndarray:
        """The same documents as a sorted int64 array (a view into the index)."""
        return self.index.q_docs.row(nid).astype(np.int64, copy=False)

    def __call__(self, nid: int) -> frozenset[int]:
        s = self.cache.get(nid)
        if s is None:
            s = frozenset(self.index.q_docs.row(nid).tolist())
            self.cache[nid] = s
            if len(self.cache) > self.capacity:
                self.cache.popitem(last=False)
        return s


class Scanner(DocumentScanner):
    """SIMPLE detection for one process: holds the index, the config and per-process caches."""

    def __init__(self, index: ReferenceIndex, config: DetectionConfig, compiled: bool = True) -> None:
        super().__init__(config)
        self.index = index
        self.tok = index.tokenizer
        self.n = config.ngram_size
        self.min_q = minimum_question_idf_threshold(config.contamination_score_threshold)
        self.threshold = F32(config.contamination_score_threshold)
        self.docs_of = _DocSets(index, config.ngram_bucket_lru_cache)
        self.has_q = index.q_df > 0
        self.required_q = np.array(
            [interpolate_threshold(int(t), config.perfect_match_decay_start, config.perfect_match_decay_end,
                                   self.min_q) for t in index.token_count], dtype=np.float32)
        self.compiled = compiled
        self._sets: dict[tuple[int, int], frozenset[int]] = {}
        self.answer_keys = AnswerKeys(index, config.answer_ngram_size) if compiled else None
        if compiled:
            self._init_kernel()
        self.recall = None
        self.semantic = None
        if config.runs_recall:
            if index.recall is None:
                raise DeconError("recall: true needs an index built with recall (rebuild it: the index cache "
                                 "keys on the option)")
            from decon.detect.recall_scan import RecallPass

            self.recall = RecallPass(index.recall, config, self.tok)
        if config.semantic:
            if index.semantic is None:
                raise DeconError("semantic: true needs an index built with semantic: true (rebuild it: the index "
                                 "cache keys on the option)")
            from decon.detect.semantic_scan import SemanticPass

            self.semantic = SemanticPass(index.semantic, self.recall, config)

    def _init_kernel(self) -> None:
        """State of the compiled hit path; one empty call loads (or compiles) the kernel now,
        so forked workers inherit it."""
        index = self.index
        self._index_arrays = tuple(hitpath.readonly(np.ascontiguousarray(a, dtype=t)) for a, t in (
            (index.q_docs.values, np.int32), (index.q_docs.ptr, np.int64), (index.hot, np.bool_),
            (index.q_idf, np.float32), (index.question_idf_sum, np.float32), (self.required_q, np.float32)))
        self._st = np.zeros((0, hitpath.STATE_COLUMNS), dtype=np.int64)
        self._nid_seen = np.zeros(0, dtype=np.int64)
        self._stamp = 0
        self._nid_buf = np.empty(1 << 16, dtype=np.int64)
        self._nxt_buf = np.empty(1 << 16, dtype=np.int64)
        empty = np.empty(0, dtype=np.int64)
        self._kernel(empty, empty, empty)
        qkeys, qids, bits = index.question_table()
        hitpath.question_ids(empty, self.n, ngram_seed(self.n), bits, 64 - FILTER_BITS, qkeys, qids)
        hitpath.ngram_keys(empty, self.n, ngram_seed(self.n))

    def scan_batch(self, batch: list[tuple[int, str]], res: FileResult, label: str) -> None:
        punct = self.config.punctuation_chars
        cleaned = [clean_text(t, punct) for _, t in batch]
        flat, ptr = self.tok.encode_flat([" " + c for c in cleaned])
        lengths = np.diff(ptr)
        total = int(ptr[-1])
        res.tokens += total
        long_enough = lengths >= 2 * self.n
        res.lines_processed += int(long_enough.sum())
        if total < self.n:
            return
        first_new = len(res.entries)
        n = self.n
        gid = None
        if self.compiled:
            qkeys, qids, bits = self.index.question_table()
            if self.recall is not None:  # one hashing pass for both n-gram tables
                qid, gid = hitpath.question_ids_pair(flat, n, ngram_seed(n), bits, 64 - FILTER_BITS, qkeys, qids,
                                                     *self.recall.gram_table())
            else:
                qid = hitpath.question_ids(flat, n, ngram_seed(n), bits, 64 - FILTER_BITS, qkeys, qids)
        else:
            qid = self.index.lookup_question(ngram_hashes(flat, n))
        self._scan_simple(batch, cleaned, flat, ptr, qid, long_enough, res, label)
        if self.recall is not None:
            found = {(e["training_line"], e["eval_key"], e["eval_instance_index"]) for e in res.entries[first_new:]}
            lines = [ln for ln, _ in batch]
            res.entries.extend(self.recall.scan(flat, ptr, np.flatnonzero(lengths >= n), lines,
                                                label, found, self._overlap_text, gid))
            if self.semantic is not None:
                found = {(e["training_line"], e["eval_key"], e["eval_instance_index"])
                         for e in res.entries[first_new:]}
                res.entries.extend(self.semantic.scan(flat, ptr, np.flatnonzero(lengths >= n), lines, label, found,
                                                      self._overlap_text))

    def _scan_simple(self, batch: list[tuple[int, str]], cleaned: list[str], flat: np.ndarray, ptr: np.ndarray,
                     qid: np.ndarray, long_enough: np.ndarray, res: FileResult, label: str) -> None:
        n = self.n
        hits = np.flatnonzero(qid >= 0)
        if len(hits) == 0:
            return
        doc_of_hit = np.searchsorted(ptr, hits, side="right") - 1
        inside = hits + n <= ptr[doc_of_hit + 1]
        candidate_docs = np.unique(doc_of_hit[inside & long_enough[doc_of_hit]])
        if self.compiled:
            self._scan_compiled(candidate_docs, ptr, flat, qid, batch, res, label)
            return
        for d in candidate_docs.tolist():
            start, end = int(ptr[d]), int(ptr[d + 1])
            tokens = flat[start:end]
            local = qid[start:end - n + 1].tolist()
            line_num = batch[d][0]
            entries = self.scan_tokens(tokens, local, cleaned[d], line_num, label)
            res.entries.extend(entries)

    def _kernel(self, qid: np.ndarray, doc_q0: np.ndarray, doc_len: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.config
        if len(doc_q0) and len(self._st) == 0:  # allocated on first use, in the worker (pages stay
            # untouched until used)
            self._st = np.zeros((self.index.num_docs, hitpath.STATE_COLUMNS), dtype=np.int64)
            self._nid_seen = np.zeros(len(self.index.q_df), dtype=np.int64)
        rows, vals, self._stamp, self._nid_buf, self._nxt_buf = hitpath.scan_hits(
            qid, doc_q0, doc_len, *self._index_arrays, self.min_q, cfg.sample_every_m_tokens,
            cfg.question_max_consecutive_misses, self._st, self._nid_seen, self._stamp, self._nid_buf,
            self._nxt_buf)
        return rows, vals

    def _scan_compiled(self, docs: np.ndarray, ptr: np.ndarray, flat: np.ndarray, qid: np.ndarray,
                       batch: list[tuple[int, str]], res: FileResult, label: str) -> None:
        """Clusters and question candidates of all ``docs`` in one compiled call, then scoring."""
        rows, vals = self._kernel(qid, ptr[docs], ptr[docs + 1] - ptr[docs] - self.n + 1)
        if len(rows) == 0:
            return
        # group rows by document, then by cluster (rows come ordered that way)
        doc_starts = np.flatnonzero(np.diff(rows[:, 0], prepend=-1))
        bounds = np.append(doc_starts, len(rows)).tolist()
        rows_l, ov, req = rows.tolist(), vals[:, 0], vals[:, 1]
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            d = int(docs[rows_l[a][0]])
            tokens = flat[ptr[d]:ptr[d + 1]]
            clusters: list[list[Candidate]] = []
            last = -1
            for r in range(a, b):
                _, c, slot, cnt, lo, hi = rows_l[r]
                if c != last:
                    clusters.append([])
                    last = c
                clusters[-1].append((slot, ov[r], req[r], cnt, lo, hi))
            res.entries.extend(self._select(clusters, tokens, batch[d][0], label))

    # ---- document level --------------------------------------------------------------------
    def scan_tokens(self, tokens: np.ndarray, qid_at: list[int], cleaned: str, line_num: int,
                    label: str) -> list[dict[str, Any]]:
        """The reference walk of one document (Python); the compiled path gives the same entries."""
        cfg = self.config
        hit_positions = [i for i, v in enumerate(qid_at) if v >= 0]
        clusters = find_clusters(qid_at, hit_positions, self.index.hot, cfg.sample_every_m_tokens,
                                 self.docs_of, cfg.question_max_consecutive_misses)
        per_cluster = []
        for cluster in clusters:
            cands = []
            for slot, idf_overlap, required in self._question_candidates(cluster):
                start, end = cluster.bound(slot)
                cands.append((slot, idf_overlap, required, len(cluster.matched(slot)), start, end))
            per_cluster.append(cands)
        return self._select(per_cluster, tokens, line_num, label)

    def _select(self, clusters: list[list[Candidate]], tokens: np.ndarray, line_num: int,
                label: str) -> list[dict[str, Any]]:
        """Score each cluster's candidates; keep the best record per (eval, instance, question start)."""
        seen: set[tuple[int, int, int]] = set()
        out: list[dict[str, Any]] = []
        for cands in clusters:
            passing = []
            for cand in cands:
                entry = self._evaluate(cand, tokens, line_num, label)
                if entry is not None:
                    passing.append((cand[0], entry))
            # the best-scoring record per (eval, instance, question start); ties: lowest doc_id
            passing.sort(key=lambda se: (-se[1]["contamination_score"], int(self.index.doc_id[se[0]])))
            chosen = []
            for slot, entry in passing:
                key = (int(self.index.eval_key_idx[slot]), entry["eval_instance_index"], entry["question_start_idx"])
                if key in seen:
                    continue
                seen.add(key)
                chosen.append((int(self.index.doc_id[slot]), entry))
            chosen.sort(key=lambda de: de[0])
            out.extend(e for _, e in chosen)
        return out

    def _question_candidates(self, cluster: Cluster) -> list[tuple[int, np.float32, np.float32]]:
        """Documents of a cluster whose question IDF overlap reaches the (length-adjusted) minimum,
        with that overlap and the required value; computed for the whole cluster at once."""
        index = self.index
        out: list[tuple[int, np.float32, np.float32]] = []
        # documents that matched only the seed n-gram: overlap = idf(seed) / their question total
        seed = cluster.seed_only()
        if len(seed):
            totals = index.question_idf_sum[seed]
            v = index.q_idf[cluster.seed_id]
            with np.errstate(divide="ignore", invalid="ignore"):
                overlap = np.where(totals > 0, v / totals, np.float32(0.0)).astype(np.float32)
            required = self.required_q[seed]
            keep = np.flatnonzero((overlap >= self.min_q) & (overlap >= required))
            out.extend((int(seed[i]), overlap[i], required[i]) for i in keep.tolist())
        if cluster.matches:
            slots = sorted(cluster.matches)
            rows = [sorted(cluster.matches[s]) for s in slots]
            ptr = np.zeros(len(rows) + 1, dtype=np.int64)
            np.cumsum([len(r) for r in rows], out=ptr[1:])
            ids = np.fromiter((i for r in rows for i in r), dtype=np.int64, count=int(ptr[-1]))
            sums = segmented_f32_sum(index.q_idf[ids], ptr)
            slot_arr = np.array(slots, dtype=np.int64)
            totals = index.question_idf_sum[slot_arr]
            with np.errstate(divide="ignore", invalid="ignore"):
                overlap = np.where(totals > 0, sums / totals, np.float32(0.0)).astype(np.float32)
            required = self.required_q[slot_arr]
            keep = np.flatnonzero((overlap >= self.min_q) & (overlap >= required))
            out.extend((slots[i], overlap[i], required[i]) for i in keep.tolist())
        out.sort(key=lambda t: t[0])
        return out

    def _token_set(self, rows: Ragged, slot: int) -> frozenset[int]:
        """An eval document's distinct answer or passage tokens as a set (memoised per process)."""
        key = (id(rows), slot)
        got = self._sets.get(key)
        if got is None:
            got = self._sets[key] = frozenset(rows.row(slot).tolist())
        return got

    def measure(self, cand: Candidate, tokens: np.ndarray) -> Measurements:
        """SIMPLE's checks of one question candidate in ``tokens``, each with its measurements."""
        cfg, index = self.config, self.index
        m = QuestionMatch.of(cand, index, self.n)
        passage = passage_check(index, m, tokens, cfg, self._token_set)
        answer = answer_check(index, m, tokens, cfg, self._token_set, self.answer_keys, self.n)
        return Measurements(m, passage, answer, score_check(index, m, answer, passage, cfg, self.threshold))

    def _evaluate(self, cand: Candidate, tokens: np.ndarray, line_num: int, label: str) -> dict[str, Any] | None:
        m = self.measure(cand, tokens)
        if not m.score.passed:
            return None
        q_end = question_end(m, self.n)
        overlap = self._overlap_text(tokens, m.question.start, q_end, m.passage.bounds, m.answer.bounds)
        return simple_entry(self.index, m, q_end, line_num, label, overlap)

    # ---- report text -----------------------------------------------------------------------
    def _decode(self, tokens: np.ndarray, a: int, b: int) -> str | None:
        enc = self.tok.encoding
        if enc is None:
            return None
        try:
            return enc.decode_bytes([int(t) for t in tokens[a:b]]).decode("utf-8")
        except (UnicodeDecodeError, KeyError, ValueError):
            return None

    def _overlap_text(self, tokens: np.ndarray, q_start: int, q_end: int, p_bounds: tuple[int, int] | None,
                      a_bounds: list[tuple[int, int]] | None) -> str | None:
        """The training text around the match: passage ⟨…⟩, question 【…】, answers ⟦…⟧."""
        if self.tok.encoding is None:
            return None
        ctx_start = max(q_start - CONTEXT_BEFORE, 0)
        base_end = a_bounds[-1][1] if a_bounds else q_end
        ctx_end = min(base_end + CONTEXT_AFTER, len(tokens) - 1)
        out: list[str] = []
        first_hl = min(p_bounds[0], q_start) if p_bounds else q_start
        if ctx_start < first_hl:
            prefix = self._decode(tokens, ctx_start, first_hl)
            if prefix is not None:
                out.append("... " + prefix)
        if p_bounds and p_bounds[1] < q_start:
            ptxt = self._decode(tokens, p_bounds[0], p_bounds[1] + 1)
            if ptxt is not None:
                out.append("⟨" + ptxt + "⟩")
            if p_bounds[1] + 1 < q_start:
                gap = self._decode(tokens, p_bounds[1] + 1, q_start)
                if gap is not None:
                    out.append(gap)
        qtxt = self._decode(tokens, q_start, q_end + 1)
        if qtxt is not None:
            out.append("【" + qtxt + "】")
        last = q_end
        for s, e in a_bounds or []:
            if s > last + 1:
                gap = self._decode(tokens, last + 1, s)
                if gap is not None:
                    out.append(gap)
            atxt = self._decode(tokens, s, e + 1)
            if atxt is not None:
                out.append("⟦" + atxt + "⟧")
            last = e
        if last < ctx_end:
            suffix = self._decode(tokens, last + 1, ctx_end + 1)
            if suffix is not None:
                out.append(" " + suffix + " ...")
        text = "".join(out)
        return text or None
