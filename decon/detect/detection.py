"""Scanning training documents against the reference index (upstream's SIMPLE algorithm).

Per file: lines are parsed and cleaned in batches, tokenised with the batch encoder, hashed and
looked up in the index for the whole batch at once (numpy); only documents with index hits take
the sequential path (cluster expansion, scoring, answer/passage boundaries), and only for the
positions around their hits.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from decon.common.config import DetectionConfig
from decon.common.data_reader import DataFile
from decon.common.ngram_hash import ngram_hashes
from decon.common.text import clean_text
from decon.detect.boundaries import answer_ngram_boundaries, passage_boundaries, short_answer_match
from decon.detect.cluster import Cluster, find_clusters
from decon.detect.reference_index import ReferenceIndex
from decon.detect.scoring import (
    F32,
    ZERO,
    combined_score,
    interpolate_threshold,
    minimum_question_idf_threshold,
    segmented_f32_sum,
)

BATCH_LINES = 2048
BATCH_CHARS = 64 << 20
CONTEXT_BEFORE = 30
CONTEXT_AFTER = 60


@dataclass
class FileResult:
    """What scanning one training file found."""

    path: str
    lines_total: int = 0
    lines_processed: int = 0
    contaminated_lines: list[int] = field(default_factory=list)  # sorted, 0-based
    entries: list[dict[str, Any]] = field(default_factory=list)  # report records, in report order
    skipped: dict[str, int] = field(default_factory=dict)  # invalid_json / missing_content_key / non_utf8 /
    #                                                         line_too_long
    long_lines: list[int] = field(default_factory=list)  # 0-based numbers of lines over max_line_bytes
    tokens: int = 0
    bytes_read: int = 0  # uncompressed bytes of the lines read


def training_file_label(path: str | os.PathLike[str]) -> str:
    """The ``training_file`` value upstream writes: .gz/.zst/.zstd lose their last suffix."""
    name = Path(path).name
    for suffix in (".gz", ".zst", ".zstd"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _get_content(doc: Any, key_path: list[str]) -> str | None:
    cur = doc
    for k in key_path:
        if not isinstance(cur, dict) or k not in cur:
            return None
        cur = cur[k]
    return cur if isinstance(cur, str) else None


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


class Scanner:
    """Detection for one process: holds the index, the config and per-process caches."""

    def __init__(self, index: ReferenceIndex, config: DetectionConfig) -> None:
        self.index = index
        self.config = config
        self.tok = index.tokenizer
        self.n = config.ngram_size
        self.key_path = config.content_key.split(".")
        self.min_q = minimum_question_idf_threshold(config.contamination_score_threshold)
        self.threshold = F32(config.contamination_score_threshold)
        self.docs_of = _DocSets(index, config.ngram_bucket_lru_cache)
        self.has_q = index.q_df > 0
        self.required_q = np.array(
            [interpolate_threshold(int(t), config.perfect_match_decay_start, config.perfect_match_decay_end,
                                   self.min_q) for t in index.token_count], dtype=np.float32)

    # ---- file level ------------------------------------------------------------------------
    def scan_file(self, source: str | os.PathLike[str] | DataFile, label: str | None = None) -> FileResult:
        """Scan a file (a path, or a :class:`DataFile` already open) line by line."""
        if not isinstance(source, DataFile):
            with DataFile(source) as data:
                return self.scan_file(data, label)
        res = FileResult(path=source.path)
        label = label or training_file_label(source.path)
        batch: list[tuple[int, str]] = []
        batch_chars = 0  # long lines fill a batch by size before they fill it by count
        for line_num, raw in enumerate(source.lines(self.config.max_line_bytes)):
            res.lines_total += 1
            if raw is not None:  # a line over max_line_bytes was never held, so its size is unknown
                res.bytes_read += len(raw)
            text = self.parse_line(raw, res, line_num)
            if text is None:
                continue
            batch.append((line_num, text))
            batch_chars += len(text)
            if len(batch) >= BATCH_LINES or batch_chars >= BATCH_CHARS:
                self.scan_batch(batch, res, label)
                batch, batch_chars = [], 0
        if batch:
            self.scan_batch(batch, res, label)
        res.contaminated_lines = sorted({e["training_line"] for e in res.entries})
        return res

    def parse_line(self, raw: bytes | None, res: FileResult, line_num: int) -> str | None:
        """The document text of one line, or None (counted in ``res.skipped``) when there is none;
        ``raw`` is None for a line longer than ``max_line_bytes``."""
        if raw is None:
            res.skipped["line_too_long"] = res.skipped.get("line_too_long", 0) + 1
            res.long_lines.append(line_num)
            return None
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                res.skipped["non_utf8"] = res.skipped.get("non_utf8", 0) + 1
                return None
            if raw.strip():
                res.skipped["invalid_json"] = res.skipped.get("invalid_json", 0) + 1
            return None
        text = _get_content(doc, self.key_path)
        if text is None:
            res.skipped["missing_content_key"] = res.skipped.get("missing_content_key", 0) + 1
        return text

    def scan_batch(self, batch: list[tuple[int, str]], res: FileResult, label: str) -> None:
        punct = self.config.punctuation_chars
        cleaned = [clean_text(t, punct) for _, t in batch]
        encoded = self.tok.encode_batch([" " + c for c in cleaned], num_threads=1)
        lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
        total = int(lengths.sum())
        res.tokens += total
        flat = np.fromiter(chain.from_iterable(encoded), dtype=np.int64, count=total)
        ptr = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum(lengths, out=ptr[1:])
        n = self.n
        long_enough = lengths >= 2 * n
        res.lines_processed += int(long_enough.sum())
        if total < n:
            return
        qid = self.index.lookup_question(ngram_hashes(flat, n))
        hits = np.flatnonzero(qid >= 0)
        if len(hits) == 0:
            return
        doc_of_hit = np.searchsorted(ptr, hits, side="right") - 1
        inside = hits + n <= ptr[doc_of_hit + 1]
        candidate_docs = np.unique(doc_of_hit[inside & long_enough[doc_of_hit]])
        for d in candidate_docs.tolist():
            start, end = int(ptr[d]), int(ptr[d + 1])
            tokens = flat[start:end]
            local = qid[start:end - n + 1].tolist()
            line_num = batch[d][0]
            entries = self.scan_tokens(tokens, local, cleaned[d], line_num, label)
            res.entries.extend(entries)

    # ---- document level --------------------------------------------------------------------
    def scan_tokens(self, tokens: np.ndarray, qid_at: list[int], cleaned: str, line_num: int,
                    label: str) -> list[dict[str, Any]]:
        cfg = self.config
        hit_positions = [i for i, v in enumerate(qid_at) if v >= 0]
        clusters = find_clusters(qid_at, hit_positions, self.index.hot, cfg.sample_every_m_tokens,
                                 self.docs_of, cfg.question_max_consecutive_misses)
        seen: set[tuple[int, int, int]] = set()
        out: list[dict[str, Any]] = []
        for cluster in clusters:
            passing = []
            for slot, idf_overlap, required in self._question_candidates(cluster):
                entry = self._evaluate(slot, cluster, tokens, line_num, label, idf_overlap, required)
                if entry is not None:
                    passing.append((slot, entry))
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

    def _evaluate(self, slot: int, cluster: Cluster, tokens: np.ndarray, line_num: int,
                  label: str, idf_overlap: np.float32, required: np.float32) -> dict[str, Any] | None:
        cfg, index, n = self.config, self.index, self.n
        matched = cluster.matched(slot)
        eval_len = int(index.token_count[slot])
        start, end = cluster.bound(slot)
        cluster_len = (end + n - 1) - start + 1
        excess = max(cluster_len - eval_len, 0)

        # passage (before the question)
        has_passage = bool(index.has_passage[slot])
        p_ratio = p_idf = None
        p_bounds = None
        p_total = int(index.passage_len[slot])
        if has_passage:
            window = max(p_total * 2, cfg.min_passage_distance)
            found = passage_boundaries(index, slot, start, tokens, window, cfg.passage_ngram_size,
                                       cfg.passage_max_consecutive_misses)
            p_set = index.passage_token_set.row(slot)
            if found is not None:
                ps, pe, p_idf = found
                p_bounds = (ps, pe)
                hits = np.unique(tokens[ps:pe + 1])
                p_match = int(np.isin(hits, p_set).sum())
            else:
                p_idf = ZERO
                p_match = 0
            p_ratio = F32(F32(p_match) / F32(len(p_set))) if len(p_set) else ZERO

        # answer (after the question)
        has_answer = bool(index.has_answer[slot])
        a_ratio = a_idf = None
        a_bounds: list[tuple[int, int]] | None = None
        a_unique = None
        if has_answer:
            a_set = index.answer_token_set.row(slot)
            a_unique = len(a_set)
            a_total = int(index.answer_len[slot])
            short = a_total <= cfg.short_answer_token_threshold
            window = cfg.short_answer_window_length if short else max(a_total * 2, cfg.min_long_answer_window)
            q_end = max((end + n - 1) - excess, 0)
            if short:
                found_a = short_answer_match(index, slot, q_end, tokens, window)
            else:
                found_a = answer_ngram_boundaries(index, slot, q_end, tokens, window, cfg.answer_ngram_size)
            if found_a is not None:
                a_bounds, a_idf = found_a
                in_bounds = np.unique(np.concatenate([tokens[s:e + 1] for s, e in a_bounds]))
                a_match = int(np.isin(in_bounds, a_set).sum())
            else:
                a_idf = ZERO
                s0 = q_end + 1
                s1 = min(s0 + window, len(tokens))
                suffix = np.unique(tokens[s0:s1]) if s0 < s1 else np.empty(0, np.int64)
                a_match = int(np.isin(a_set, suffix).sum())
            a_ratio = F32(F32(a_match) / F32(a_unique)) if a_unique else ZERO

        score = combined_score(
            question_idf=idf_overlap, eval_unique_ngrams=int(index.unique_ngrams[slot]),
            eval_token_length=eval_len, eval_has_answer=has_answer, answer_idf_overlap=a_idf,
            answer_token_length=a_unique, eval_has_passage=has_passage, passage_idf_overlap=p_idf,
            passage_token_length=p_total if has_passage else None,
            contamination_score_threshold=cfg.contamination_score_threshold,
            perfect_match_decay_start=cfg.perfect_match_decay_start,
            perfect_match_decay_end=cfg.perfect_match_decay_end,
        )
        if not score >= self.threshold:
            return None

        question_end = end + n - 1
        if a_bounds:
            first_answer = a_bounds[0][0]
            if first_answer <= question_end and cluster_len > eval_len:
                question_end = max(first_answer - 1, 0)

        e: dict[str, Any] = {
            "training_file": label,
            "training_line": line_num,
            "eval_dataset": index.eval_keys[int(index.eval_key_idx[slot])],
            "eval_key": index.eval_keys[int(index.eval_key_idx[slot])],
            "eval_line": int(index.eval_line[slot]),
            "eval_instance_index": int(index.eval_instance_index[slot]),
            "ngram_match_cnt": len(matched),
            "eval_unique_ngrams": int(index.unique_ngrams[slot]),
            "contamination_score": float(score),
            "length_adjusted_question_threshold": float(required),
            "method": "simple",
            "idf_overlap": float(idf_overlap),
            "question_start_idx": start,
            "question_end_idx": question_end,
        }
        overlap = self._overlap_text(tokens, start, question_end, p_bounds, a_bounds)
        if overlap is not None:
            e["training_overlap_text"] = overlap
        q_text = index.question_text[slot]
        if q_text is not None:
            e["eval_question_text"] = q_text
            e["eval_overlap_text"] = q_text
        a_text = index.answer_text[slot]
        if a_text is not None:
            e["eval_answer_text"] = a_text
        p_text = index.passage_text[slot]
        if p_text is not None:
            e["eval_passage_text"] = p_text
        if a_ratio is not None:
            e["answer_overlap_ratio"] = float(a_ratio)
        if a_idf is not None:
            e["answer_idf_overlap"] = float(a_idf)
        if a_bounds:
            e["answer_start_idx"] = a_bounds[0][0]
            e["answer_end_idx"] = a_bounds[-1][1]
        if a_bounds is not None:
            e["answer_boundaries"] = [list(b) for b in a_bounds]
        if p_ratio is not None:
            e["passage_overlap_ratio"] = float(p_ratio)
        if p_idf is not None:
            e["passage_idf_overlap"] = float(p_idf)
        e["cluster_token_length"] = cluster_len
        e["eval_token_length"] = eval_len
        e["token_length_delta"] = cluster_len - eval_len
        fp = index.fingerprint[slot]
        if fp is not None:
            e["fingerprint"] = fp
        ic = int(index.is_correct[slot])
        if ic >= 0:
            e["is_correct"] = bool(ic)
        files = index.reference_files
        fi = int(index.file_idx[slot])
        if 0 <= fi < len(files):
            e["reference_file"] = files[fi]
        split = index.split[slot]
        if split is not None:
            e["split"] = split
        return e

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
