"""Finding candidate clusters: sampled index hits expanded left and right per eval document.

A cluster starts at a sampled training position whose n-gram is a question n-gram of some eval
documents. From there the walk goes left, then right, one n-gram at a time, keeping for every
candidate document the matched n-gram ids and its left/right boundary; a document drops out after
``max_misses`` consecutive positions that do not extend it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Cluster:
    """Candidate eval documents of one expansion.

    Documents that matched nothing beyond the seed n-gram are kept compactly in ``seed_docs``
    (sorted slots, matched ids ``{seed_id}``, bounds ``[hit, hit]``); ``matches``/``bounds`` hold
    the documents that matched more.
    """

    matches: dict[int, set[int]]          # doc slot -> matched question n-gram ids
    bounds: dict[int, list[int]]          # doc slot -> [first, last] n-gram position
    doc_freq: dict[int, int]              # n-gram id -> number of eval documents holding it
    end_idx: int                          # where the right walk stopped
    hit: int = 0
    seed_id: int = -1
    seed_docs: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def seed_only(self) -> np.ndarray:
        """Sorted slots of documents whose only match is the seed n-gram."""
        if not self.matches:
            return self.seed_docs
        return self.seed_docs[~np.isin(self.seed_docs, np.fromiter(self.matches, dtype=np.int64))]

    def matched(self, slot: int) -> set[int]:
        got = self.matches.get(slot)
        return got if got is not None else {self.seed_id}

    def bound(self, slot: int) -> list[int]:
        got = self.bounds.get(slot)
        return got if got is not None else [self.hit, self.hit]

    def full_matches(self) -> dict[int, set[int]]:
        return {**{int(d): {self.seed_id} for d in self.seed_docs}, **self.matches}

    def full_bounds(self) -> dict[int, list[int]]:
        return {**{int(d): [self.hit, self.hit] for d in self.seed_docs}, **self.bounds}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Cluster):
            return NotImplemented
        return (self.full_matches(), self.full_bounds(), self.doc_freq, self.end_idx) == (
            other.full_matches(), other.full_bounds(), other.doc_freq, other.end_idx)


def expand_cluster(hit: int, qid_at: list[int], docs_of: Callable[[int], frozenset[int]], max_misses: int,
                   hit_positions: list[int] | None = None) -> Cluster:
    """Expand around ``hit``; ``qid_at[i]`` is the question n-gram id at position i or -1.

    Same result as the step-by-step walk, but each document is only touched where it matches:
    a document's consecutive misses are the gaps between its matches, so a walk direction ends
    once no document could still be alive (``frontier``), without visiting every miss.
    """
    if hit_positions is None:
        hit_positions = [i for i, v in enumerate(qid_at) if v >= 0]
    init_id = qid_at[hit]
    init_docs = docs_of(init_id)
    cache = getattr(docs_of, "cache", {})
    doc_freq = {init_id: len(init_docs)}
    matches: dict[int, set[int]] = {}
    bounds: dict[int, list[int]] = {}
    total = len(qid_at)
    k = bisect_left(hit_positions, hit)
    end_idx = hit
    for side in (0, 1):
        limit = hit if side == 0 else total - 1 - hit  # steps available before the edge
        if side == 0:
            order = hit_positions[k - 1::-1] if k > 0 else []
        else:
            order = hit_positions[k + 1:]
        misses: dict[int, int] = {}
        last: dict[int, int] = {}
        dead: set[int] = set()
        frontier = max(max_misses, 1)  # every document drops this many steps after its last event
        for p in order:
            step = hit - p if side == 0 else p - hit
            if step > frontier or step > limit:
                break
            nid = qid_at[p]
            docs = cache.get(nid)
            if docs is None:
                docs = docs_of(nid)
            if nid not in doc_freq:
                doc_freq[nid] = len(docs)
            common = docs & init_docs if len(docs) < len(init_docs) else init_docs & docs
            for d in common:
                if d in dead:
                    continue
                m = misses.get(d, 0)
                gap = step - last.get(d, 0) - 1
                if gap > 0 and m + gap >= max_misses:
                    dead.add(d)
                    continue
                m += gap
                got = matches.get(d)
                if got is None:
                    got = matches[d] = {init_id}
                    bounds[d] = [hit, hit]
                if nid not in got:
                    got.add(nid)
                    m = 0
                misses[d] = m
                last[d] = step
                bounds[d][side] = p
                reach = step + max(max_misses - m, 1)
                if reach > frontier:
                    frontier = reach
        if side == 1:
            end_idx = hit + min(frontier, limit)
    arr = getattr(docs_of, "array", None)
    seed_docs = arr(init_id) if arr is not None else np.array(sorted(init_docs), dtype=np.int64)
    return Cluster(matches, bounds, doc_freq, end_idx, hit=hit, seed_id=init_id, seed_docs=seed_docs)


def find_clusters(qid_at: list[int], hit_positions: list[int], hot: np.ndarray, sample_every: int,
                  docs_of: Callable[[int], frozenset[int]], max_misses: int) -> list[Cluster]:
    """Walk a document: probe every ``sample_every`` positions, expand each non-hot hit.

    ``hit_positions`` are the (sorted) positions where ``qid_at`` is not -1; only positions on the
    sampling grid are probed, so the walk jumps straight from one grid hit to the next.
    """
    clusters: list[Cluster] = []
    i = 0
    n_hits = len(hit_positions)
    while True:
        k = bisect_left(hit_positions, i)
        found = -1
        while k < n_hits:
            h = hit_positions[k]
            if (h - i) % sample_every == 0:
                found = h
                break
            k += 1
        if found < 0:
            break
        i = found
        if hot[qid_at[i]]:
            i += 1  # common n-gram: no cluster starts here; probe the next position
            continue
        cluster = expand_cluster(i, qid_at, docs_of, max_misses, hit_positions)
        clusters.append(cluster)
        i = max(i, cluster.end_idx + 1)
    return clusters
