"""Scanning training documents with MinHash (``mode: minhash``).

Per batch of documents: clean and tokenise as SIMPLE does, hash every token n-gram, and keep only
the documents (or windows) that share at least one n-gram key with the reference set. That filter
is exact: the permutations are bijections on 64-bit values, so two signatures can agree in a band
only where the two key sets share a key. The survivors get signatures, their LSH band candidates
are looked up in the index, and each (training line, eval record) keeps its best estimated
Jaccard similarity above ``jaccard_similarity_threshold``.

Windowing (upstream's scheme; on when ``exact_override`` and all three window keys are set): from
start 0, then every ``window_step_size`` tokens while the start is below ``len - increment``,
windows of ``increment * 1 .. increment * num_windows`` tokens (cut at the document's end); a
document of at most ``increment`` tokens is one window.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from decon.common.config import DetectionConfig
from decon.common.ngram_hash import sequence_hash
from decon.common.text import clean_text
from decon.detect.documents import DocumentScanner, FileResult
from decon.detect.minhash_index import MinHashIndex, Permutations, TextKeys, text_signatures

_CHUNK_KEYS = 1 << 15


def document_windows(length: int, increment: int, num_windows: int, step: int) -> np.ndarray:
    """``(count, 2)`` token [start, end) windows of a document of ``length`` tokens."""
    if length <= increment:
        return np.array([[0, length]], dtype=np.int64)
    last = length - increment
    starts = np.arange(0, max(last, 1), step, dtype=np.int64)  # 0 always; then while start < last
    sizes = increment * np.arange(1, num_windows + 1, dtype=np.int64)
    ends = np.minimum(starts[:, None] + sizes[None, :], length)
    win = np.stack([np.broadcast_to(starts[:, None], ends.shape), ends], axis=-1).reshape(-1, 2)
    return win[win[:, 1] > win[:, 0]]


class MinHashScanner(DocumentScanner):
    """MinHash detection for one process."""

    def __init__(self, index: MinHashIndex, config: DetectionConfig) -> None:
        super().__init__(config)
        self.index = index
        self.tok = index.tokenizer
        self.perm = Permutations(index.params)
        self.threshold = np.float32(config.jaccard_similarity_threshold)
        windows = (config.window_size_increment, config.num_windows, config.window_step_size)
        self.windows = windows if index.params.exact and all(w for w in windows) else None

    def scan_batch(self, batch: list[tuple[int, str]], res: FileResult, label: str) -> None:
        cleaned = [clean_text(t, self.config.punctuation_chars) for _, t in batch]
        tk = TextKeys.of(self.tok, cleaned, self.index.params.ngram_size)
        res.tokens += len(tk.flat)
        res.lines_processed += len(tk.present())
        if self.windows is None:
            docs, recs, sims, texts = self._whole_documents(tk, batch)
        else:
            docs, recs, sims, texts = self._windows(tk)
        res.entries.extend(self._entries(docs, recs, sims, texts, batch, label))

    # ---- candidates ------------------------------------------------------------------------
    def _shares_key(self, keys: np.ndarray) -> np.ndarray:
        return self.index.shares_key(keys)

    def _best(self, sigs: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Best similarity above the threshold per (owner document, record); also the winning row."""
        rows, recs = self.index.candidates(sigs)
        sims = self.index.jaccard(sigs, rows, recs)
        keep = sims > self.threshold
        rows, recs, sims = rows[keep], recs[keep], sims[keep]
        docs = owner[rows]
        # per (doc, record): highest similarity, first row (window order) among equals
        order = np.lexsort((rows, -sims, recs, docs))
        docs, recs, sims, rows = docs[order], recs[order], sims[order], rows[order]
        first = np.ones(len(docs), dtype=bool)
        first[1:] = (docs[1:] != docs[:-1]) | (recs[1:] != recs[:-1])
        return docs[first], recs[first], sims[first], rows[first]

    def _whole_documents(self, tk: TextKeys, batch: list[tuple[int, str]]
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str | None]]:
        present = tk.present()
        if self.index.params.exact:
            hit = self._shares_key(tk.keys)
            counts = np.add.reduceat(hit, tk.kptr[:-1][present]) if len(present) else np.zeros(0, np.int64)
            present = present[counts > 0] if len(present) else present
            if not len(present):
                return _empty()
            sub = TextKeys(tk.flat, tk.ptr, *_select_segments(tk.keys, tk.kptr, present))
            sigs, _ = text_signatures(self.perm, sub)
        else:
            sigs, present = text_signatures(self.perm, tk)
            if not len(present):
                return _empty()
        docs, recs, sims, _ = self._best(sigs, present)
        texts = [batch[d][1] for d in docs.tolist()] if self.config.debug else []
        return docs, recs, sims, texts

    def _windows(self, tk: TextKeys) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str | None]]:
        lengths = np.diff(tk.ptr)
        cum = np.concatenate([[0], np.cumsum(self._shares_key(tk.keys))])
        parts = [self._doc_windows(tk, d, cum) for d in np.flatnonzero(lengths > 0).tolist()]
        parts = [p for p in parts if len(p[0])]
        if not parts:
            return _empty()
        spans = np.concatenate([p[0] for p in parts])
        short_keys = np.concatenate([p[1] for p in parts])
        owner = np.concatenate([np.full(len(p[0]), p[2], dtype=np.int64) for p in parts])
        sigs = self._window_signatures(tk.keys, spans, short_keys)
        docs, recs, sims, rows = self._best(sigs, owner)
        texts: list[str | None] = []
        if self.config.debug:
            texts = [self._window_text(tk, spans[r], int(owner[r])) for r in rows.tolist()]
        return docs, recs, sims, texts

    def _doc_windows(self, tk: TextKeys, d: int, cum: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Key spans of document ``d``'s windows that share a key with the reference set, and for
        windows shorter than one n-gram (empty span) their whole-window key."""
        inc, count, step = self.windows  # type: ignore[misc]
        n = self.index.params.ngram_size
        k0, t0, length = int(tk.kptr[d]), int(tk.ptr[d]), int(tk.ptr[d + 1] - tk.ptr[d])
        if length < n:  # the document's one key is its whole-sequence hash
            win = np.array([[k0, k0 + 1]], dtype=np.int64)
            tw = np.array([[0, length]], dtype=np.int64)
        else:
            tw = document_windows(length, inc, count, step)
            win = np.stack([k0 + tw[:, 0], k0 + tw[:, 1] - n + 1], axis=1)
        short = win[:, 1] <= win[:, 0]
        keep = ~short & (cum[np.maximum(win[:, 1], win[:, 0])] > cum[win[:, 0]])
        keys = np.zeros(len(win), dtype=np.uint64)
        for i in np.flatnonzero(short).tolist():  # rare: increment below the n-gram size
            keys[i] = sequence_hash(tk.flat[t0 + tw[i, 0]:t0 + tw[i, 1]])
            keep[i] = bool(self._shares_key(keys[i:i + 1])[0])
            win[i] = (win[i, 0], win[i, 0])
        return win[keep], keys[keep], d

    def _window_signatures(self, keys: np.ndarray, spans: np.ndarray, short_keys: np.ndarray) -> np.ndarray:
        """Signature of each key span; an empty span stands for its one ``short_keys`` value."""
        out = np.empty((len(spans), self.index.params.num_perm), dtype=np.uint64)
        empty = spans[:, 1] <= spans[:, 0]
        if empty.any():
            out[empty] = self.perm.values(short_keys[empty])
        rows = np.flatnonzero(~empty)
        i = 0
        while i < len(rows):  # windows of one document are contiguous: permute each block once
            lo = int(spans[rows[i], 0])
            j = i + 1
            while j < len(rows) and spans[rows[j], 0] >= lo and spans[rows[j], 1] - lo <= _CHUNK_KEYS:
                j += 1
            block = rows[i:j]
            hi = int(spans[block, 1].max())
            vals = self.perm.values(keys[lo:hi])
            vals = np.concatenate([vals, vals[-1:]])  # reduceat needs every index < len
            idx = np.stack([spans[block, 0] - lo, spans[block, 1] - lo], axis=1).ravel()
            out[block] = np.minimum.reduceat(vals, idx, axis=0)[::2]
            i = j
        return out

    def _window_text(self, tk: TextKeys, span: np.ndarray, doc: int) -> str:
        n = self.index.params.ngram_size
        s, e = int(span[0]), int(span[1])
        k0, t0 = int(tk.kptr[doc]), int(tk.ptr[doc])
        a, b = (t0 + s - k0, t0 + e - k0 + n - 1) if e > s else (t0, int(tk.ptr[doc + 1]))
        return self.tok.decode(tk.flat[a:b].tolist()).strip()

    # ---- report records --------------------------------------------------------------------
    def _entries(self, docs: np.ndarray, recs: np.ndarray, sims: np.ndarray, texts: list[str | None],
                 batch: list[tuple[int, str]], label: str) -> list[dict[str, Any]]:
        ix = self.index
        out = []
        for k, (d, r, sim) in enumerate(zip(docs.tolist(), recs.tolist(), sims.tolist(), strict=True)):
            out.append({
                "training_file": label,
                "training_line": batch[d][0],
                "eval_dataset": ix.datasets[int(ix.dataset_idx[r])],
                "eval_line": int(ix.line[r]),
                "jaccard_similarity": sim,
                "method": "minhash",
                "eval_overlap_text": ix.snippet[r] or "",
                "training_overlap_text": (texts[k] or "") if texts else "",
            })
        return out


def _empty() -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str | None]]:
    e = np.empty(0, dtype=np.int64)
    return e, e, np.empty(0, dtype=np.float32), []


def _select_segments(keys: np.ndarray, kptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keys of the chosen segments only, with boundaries where every other segment is empty."""
    counts = np.zeros(len(kptr) - 1, dtype=np.int64)
    counts[rows] = np.diff(kptr)[rows]
    new_ptr = np.zeros(len(kptr), dtype=np.int64)
    np.cumsum(counts, out=new_ptr[1:])
    take = np.repeat(kptr[:-1][rows], counts[rows]) + (np.arange(int(new_ptr[-1])) - np.repeat(new_ptr[:-1][rows],
                                                                                            counts[rows]))
    return keys[take], new_ptr
