"""Finding candidate clusters: sampled index hits expanded left and right per eval document.

A cluster starts at a sampled training position whose n-gram is a question n-gram of some eval
documents. From there the walk goes left, then right, one n-gram at a time, keeping for every
candidate document the matched n-gram ids and its left/right boundary; a document drops out after
``max_misses`` consecutive positions that do not extend it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class Cluster:
    matches: dict[int, set[int]]          # doc slot -> matched question n-gram ids
    bounds: dict[int, list[int]]          # doc slot -> [first, last] n-gram position
    doc_freq: dict[int, int]              # n-gram id -> number of eval documents holding it
    end_idx: int                          # where the right walk stopped


def expand_cluster(hit: int, qid_at: list[int], docs_of: Callable[[int], frozenset[int]],
                   max_misses: int) -> Cluster:
    """Expand around ``hit``; ``qid_at[i]`` is the question n-gram id at position i or -1."""
    init_id = qid_at[hit]
    init_docs = docs_of(init_id)
    cache = getattr(docs_of, "cache", {})
    doc_freq = {init_id: len(init_docs)}
    matches = {d: {init_id} for d in init_docs}
    misses = dict.fromkeys(init_docs, 0)
    bounds = {d: [hit, hit] for d in init_docs}
    total = len(qid_at)

    for direction in (-1, 1):
        active = set(init_docs)
        if direction == 1:
            for d in init_docs:
                misses[d] = 0
        cur = hit
        side = 0 if direction == -1 else 1
        while active:
            if direction == -1:
                if cur == 0:
                    break
            elif cur + 1 >= total:
                break
            cur += direction
            nid = qid_at[cur]
            if nid >= 0:
                docs = cache.get(nid)
                if docs is None:
                    docs = docs_of(nid)
                if nid not in doc_freq:
                    doc_freq[nid] = len(docs)
                inter = active & docs
                if inter:
                    for d in inter:
                        m = matches[d]
                        if nid not in m:
                            m.add(nid)
                            misses[d] = 0
                        bounds[d][side] = cur
                    for d in active - docs:
                        misses[d] += 1
                        if misses[d] >= max_misses:
                            active.discard(d)
                    continue
            dropped = []
            for d in active:
                misses[d] += 1
                if misses[d] >= max_misses:
                    dropped.append(d)
            active.difference_update(dropped)
        if direction == 1:
            end_idx = cur
    return Cluster(matches, bounds, doc_freq, end_idx)


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
        cluster = expand_cluster(i, qid_at, docs_of, max_misses)
        clusters.append(cluster)
        i = max(i, cluster.end_idx + 1)
    return clusters
