"""The compiled hit path equals the Python reference walk (cluster.py + Scanner._question_candidates)."""

from __future__ import annotations

import gzip
import random
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from decon.common.config import DetectionConfig
from decon.common.ngram_hash import ngram_hashes, ngram_seed
from decon.detect import hitpath
from decon.detect.api import build_index
from decon.detect.boundaries import _answer_total, passage_walk
from decon.detect.cluster import find_clusters
from decon.detect.detection import Scanner
from decon.detect.reference_index import FILTER_BITS
from decon.detect.scoring import f32_sum

GOLDEN_INPUT = Path(__file__).resolve().parent / "golden" / "synthetic-input"


def _random_case(rng: random.Random) -> dict:
    n_docs = rng.randint(1, 12)
    n_ids = rng.randint(1, 10)
    rows = [sorted(rng.sample(range(n_docs), rng.randint(0, n_docs))) for _ in range(n_ids)]
    ptr = np.zeros(n_ids + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=ptr[1:])
    docs = [[rng.randrange(n_ids) if rng.random() < rng.choice((0.2, 0.5, 0.9)) else -1
             for _ in range(rng.randint(1, 50))] for _ in range(rng.randint(1, 4))]
    return {
        "rows": rows, "ptr": ptr,
        "vals": np.array([d for r in rows for d in r], dtype=np.int32),
        "hot": np.array([rng.random() < 0.15 for _ in range(n_ids)]),
        "q_idf": np.array([rng.uniform(0.01, 5) for _ in range(n_ids)], dtype=np.float32),
        "qsum": np.array([rng.choice((0.0, rng.uniform(0.5, 20))) for _ in range(n_docs)], dtype=np.float32),
        "required": np.array([rng.uniform(0, 0.6) for _ in range(n_docs)], dtype=np.float32),
        "min_q": np.float32(rng.choice((0.0, 0.1, 0.3))),
        "sample": rng.randint(1, 4), "misses": rng.randint(0, 6), "docs": docs, "n_docs": n_docs,
    }


def _reference(case: dict) -> list[tuple]:
    """Candidates as the Python path finds them: (doc, cluster, slot, matched, lo, hi, overlap, required)."""
    sets = [frozenset(r) for r in case["rows"]]
    fake = SimpleNamespace(index=SimpleNamespace(q_idf=case["q_idf"], question_idf_sum=case["qsum"]),
                           min_q=case["min_q"], required_q=case["required"])
    out, cluster_no = [], 0
    for k, qid in enumerate(case["docs"]):
        hits = [i for i, v in enumerate(qid) if v >= 0]
        for cl in find_clusters(qid, hits, case["hot"], case["sample"], sets.__getitem__, case["misses"]):
            for slot, ov, req in Scanner._question_candidates(fake, cl):
                lo, hi = cl.bound(slot)
                out.append((k, cluster_no, slot, len(cl.matched(slot)), lo, hi, ov, req))
            cluster_no += 1
    return out


def _compiled(case: dict) -> list[tuple]:
    qid = np.array([v for d in case["docs"] for v in d], dtype=np.int64)
    lens = np.array([len(d) for d in case["docs"]], dtype=np.int64)
    q0 = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    st = np.zeros((case["n_docs"], hitpath.STATE_COLUMNS), dtype=np.int64)
    seen = np.zeros(len(case["rows"]), dtype=np.int64)
    small = np.empty(2, dtype=np.int64)  # tiny buffers: the grow-and-rewalk path runs too
    rows, vals, _, _, _ = hitpath.scan_hits(
        qid, q0, lens, *(hitpath.readonly(a) for a in (case["vals"], case["ptr"], case["hot"], case["q_idf"],
                                                         case["qsum"], case["required"])),
        case["min_q"], case["sample"], case["misses"], st, seen, 0, small, small.copy())
    return [(*r, vals[i, 0], vals[i, 1]) for i, r in enumerate(rows.tolist())]


def test_kernel_equals_reference_walk_on_random_documents():
    rng = random.Random(5)
    for trial in range(2500):
        case = _random_case(rng)
        ref, got = _reference(case), _compiled(case)
        assert got == ref, trial
        for a, b in zip(ref, got, strict=True):
            assert np.float32(a[6]).tobytes() == np.float32(b[6]).tobytes(), trial


@pytest.fixture(scope="module")
def golden_corpus(tmp_path_factory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("hitpath")
    refs = work / "refs"
    shutil.copytree(GOLDEN_INPUT / "refs", refs)
    train = work / "train.jsonl"
    with gzip.open(GOLDEN_INPUT / "synthetic.jsonl.gz", "rb") as src:
        train.write_bytes(b"".join(src.readlines()[:1200]))
    return refs, train


@pytest.mark.parametrize("options", [
    {},
    {"ngram_size": 4, "sample_every_m_tokens": 3, "question_max_consecutive_misses": 6},
    {"contamination_score_threshold": 0.3, "question_max_consecutive_misses": 2},
])
def test_compiled_scanner_equals_reference_scanner(golden_corpus, options):
    refs, train = golden_corpus
    cfg = DetectionConfig(evals_dir=str(refs), **options)
    index = build_index(cfg, progress=False, use_cache=False)
    fast = Scanner(index, cfg).scan_file(train)
    slow = Scanner(index, cfg, compiled=False).scan_file(train)
    assert fast.entries, "the corpus has contaminated documents"
    assert fast.entries == slow.entries


def _passage_walk_stepwise(ids: np.ndarray, member: np.ndarray, max_misses: int, idf: np.ndarray):
    """The backward walk one position at a time (the reference for boundaries.passage_walk)."""
    matched, first, last, misses, acc = set(), None, None, 0, np.float32(0.0)
    for off in range(len(ids) - 1, -1, -1):
        if member[off]:
            nid = int(ids[off])
            if nid not in matched:
                matched.add(nid)
                if not np.isnan(idf[nid]):
                    acc = np.float32(acc + idf[nid])
            if first is None:
                last = off
            first = off
            misses = 0
        elif first is not None:
            misses += 1
            if misses > max_misses:
                break
    return None if first is None else (first, last, acc)


def test_passage_walk_equals_stepwise_walk():
    rng = np.random.default_rng(3)
    for trial in range(3000):
        length = int(rng.integers(0, 60))
        ids = rng.integers(0, 12, size=length)
        member = rng.random(length) < rng.choice([0.1, 0.4, 0.8])
        idf = rng.uniform(0.1, 4, size=12).astype(np.float32)
        idf[rng.random(12) < 0.2] = np.nan
        max_misses = int(rng.integers(0, 6))
        got = passage_walk(ids, member, max_misses, idf)
        want = _passage_walk_stepwise(ids, member, max_misses, idf)
        assert (got is None) == (want is None), trial
        if got is not None:
            assert got[:2] == want[:2] and got[2].tobytes() == want[2].tobytes(), trial


def test_fused_question_ids_equal_hash_then_lookup(golden_corpus):
    refs, train = golden_corpus
    cfg = DetectionConfig(evals_dir=str(refs))
    index = build_index(cfg, progress=False)
    qkeys, qids, bits = index.question_table()
    rng = np.random.default_rng(9)
    real = index.answer_tokens.values[:5000]  # eval text: many question n-gram hits
    for n in (1, 3, 5, 8):
        for tokens in (real, rng.integers(0, 100_000, size=3000), real[:n - 1], real[:n]):
            tokens = np.ascontiguousarray(tokens, dtype=np.int64)
            want = index.lookup_question(ngram_hashes(tokens, n))
            got = hitpath.question_ids(tokens, n, ngram_seed(n), bits, 64 - FILTER_BITS, qkeys, qids)
            assert np.array_equal(got, want)
    assert (index.lookup_question(ngram_hashes(np.ascontiguousarray(real, dtype=np.int64), 5)) >= 0).any()


def test_compiled_window_keys_equal_ngram_hashes():
    rng = np.random.default_rng(4)
    for n in (1, 2, 3, 5, 13):
        for size in (0, 1, n - 1, n, 50, 700):
            tokens = rng.integers(0, 1 << 62, size=size, dtype=np.int64)
            assert np.array_equal(hitpath.ngram_keys(tokens, n, ngram_seed(n)), ngram_hashes(tokens, n))


def test_answer_idf_total_is_the_sequential_float32_sum():
    rng = np.random.default_rng(8)
    idf = rng.uniform(0, 12, size=500).astype(np.float32)
    idf[rng.random(500) < 0.1] = np.nan
    index = SimpleNamespace(answer_ngram_idf=idf)
    for _ in range(500):
        ids = np.sort(rng.choice(500, size=int(rng.integers(0, 300)), replace=False))
        want = f32_sum(idf[i] for i in ids if not np.isnan(idf[i]))
        assert _answer_total(index, ids).tobytes() == np.float32(want).tobytes()
