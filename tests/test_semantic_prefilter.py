"""The semantic pass's candidate index and kernel: key tokens of a question, found together in a window.

All questions are invented here (no eval text)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from decon.common.config import DetectionConfig
from decon.common.text import clean_text
from decon.common.tokenizer import get_tokenizer
from decon.detect.semantic_index import ANCHORS, MAX_KEYS, MIN_KEYS, build_semantic_arrays, key_df_cap
from decon.detect.semantic_kernel import CandidateSearch

PUNCT = DetectionConfig().punctuation_chars
QUESTION = ("Marisol bakes 14 trays of lemon biscuits for the Pellworth village fair and her cousin Teodor eats 3 "
            "biscuits from every tray. How many biscuits are left for the fair?")
REWORDED = ("For the fair in Pellworth village, Marisol made 14 trays of biscuits flavoured with lemon. Teodor, "
            "her cousin, took 3 biscuits off each tray. What number of biscuits remain for the fair?")


def _fillers(count: int, rng: random.Random) -> list[str]:
    vocab = [f"{a}{b}" for a in ("ka", "lo", "mi", "nu", "pe", "ri", "so", "tu", "va", "ze")
             for b in ("bar", "den", "fil", "gom", "hut", "jex", "lon", "mar", "pox", "wen")]
    common = "how many of the is are what which for and a to".split()
    return [" ".join(rng.choice(vocab + common * 3) for _ in range(16)) for _ in range(count)]


@pytest.fixture(scope="module")
def built():
    tok = get_tokenizer("cl100k")
    questions = [QUESTION] + _fillers(400, random.Random(3)) + ["too short to say much"]
    flat, ptr = tok.encode_flat([" " + clean_text(q, PUNCT) for q in questions])
    arrays, meta = build_semantic_arrays(flat.astype(np.int64), ptr.astype(np.int64),
                                         tok.encoding.decode_single_token_bytes)
    return tok, flat.astype(np.int64), ptr.astype(np.int64), arrays, meta


def _scan(built, texts: list[str]) -> np.ndarray:
    tok, _, q_ptr, a, meta = built
    flat, ptr = tok.encode_flat([" " + clean_text(t, PUNCT) for t in texts])
    return CandidateSearch(a, meta, q_ptr).run(flat.astype(np.int64), ptr[:-1], ptr[1:])


def test_key_tokens_are_the_rare_tokens_of_each_question(built):
    _, flat, ptr, a, meta = built
    n_q = len(ptr) - 1
    assert meta["questions"] == n_q and meta["key_df_cap"] == key_df_cap(n_q)
    df = np.zeros(int(flat.max()) + 1, dtype=np.int64)
    for q in range(n_q):
        df[np.unique(flat[ptr[q]:ptr[q + 1]])] += 1
    kp = a["semantic.q.keys_ptr"]
    for q in range(n_q):
        keys = a["semantic.q.keys"][kp[q]:kp[q + 1]]
        assert len(keys) <= MAX_KEYS and len(set(keys.tolist())) == len(keys)
        assert set(keys.tolist()) <= set(flat[ptr[q]:ptr[q + 1]].tolist())
        assert (df[keys] <= meta["key_df_cap"]).all()
        if len(keys):
            assert len(keys) >= MIN_KEYS and a["semantic.q.need"][q] >= MIN_KEYS
    # the invented question keeps its names and numbers as keys; the short one has none
    q0 = set(a["semantic.q.keys"][kp[0]:kp[1]].tolist())
    tok = built[0]
    for word in (" marisol", " pellworth", " teodor"):
        assert set(tok.encode_flat([word])[0].tolist()) & q0
    assert kp[-1] == kp[-2]
    # postings: the anchors (at most ANCHORS word pieces per question, no digits), each under its token
    pp = a["semantic.post.ptr"]
    per_q: dict[int, list[int]] = {}
    for t in range(len(pp) - 1):
        for k in range(pp[t], pp[t + 1]):
            q, slot = int(a["semantic.post.q"][k]), int(a["semantic.post.slot"][k])
            assert a["semantic.q.keys"][kp[q] + slot] == t
            assert not tok.encoding.decode_single_token_bytes(t).strip().isdigit()
            per_q.setdefault(q, []).append(slot)
    assert all(len(v) == len(set(v)) <= ANCHORS for v in per_q.values())
    assert set(per_q) == {q for q in range(n_q) if kp[q + 1] > kp[q]}


def test_a_reworded_question_is_a_candidate(built):
    rows = _scan(built, ["the ferry keeps its own timetable through the winter months. " + REWORDED,
                         "the harbour office opens at nine and closes at five on weekdays"])
    assert [(int(r[0]), int(r[1])) for r in rows] == [(0, 0)]
    d, q, hits, lo, hi = rows[0].tolist()
    assert hits >= built[3]["semantic.q.need"][0]
    assert 0 < lo < hi


def test_key_tokens_scattered_over_a_page_are_not_a_candidate(built):
    words = REWORDED.split()
    filler = " ".join(["the harbour office opens at nine and closes at five on weekdays"] * 8)
    scattered = f" {filler} ".join(words)
    assert len(_scan(built, [scattered])) == 0


def test_too_few_key_tokens_are_not_a_candidate(built):
    assert len(_scan(built, ["Marisol went to Pellworth on the ferry"])) == 0


def test_the_kernel_handles_empty_and_foreign_tokens(built):
    _, _, q_ptr, a, meta = built
    search = CandidateSearch(a, meta, q_ptr)
    empty = np.empty(0, np.int64)
    assert len(search.run(empty, empty, empty)) == 0
    big = np.array([10**9, -1, 10**9], dtype=np.int64)  # ids past the questions' vocabulary
    assert len(search.run(big, np.array([0]), np.array([3]))) == 0


def test_index_built_with_semantic_carries_the_arrays_and_a_separate_cache_key(tmp_path):
    from decon.detect.reference_index import build_index

    refs = tmp_path / "refs"
    refs.mkdir()
    import orjson

    recs = [{"eval_key": "gsmx", "eval_instance_index": 0, "split": "test", "doc_id": 1, "question": QUESTION,
             "answer": "14 * 11 = 154\n#### 154"}]
    recs += [{"eval_key": "fill", "eval_instance_index": i, "split": "test", "doc_id": 10 + i, "question": q,
              "answer": "x"} for i, q in enumerate(_fillers(50, random.Random(1)))]
    (refs / "r.jsonl").write_bytes(b"\n".join(orjson.dumps(r) for r in recs) + b"\n")
    plain = DetectionConfig(evals_dir=str(refs), recall=True)
    sem = DetectionConfig(evals_dir=str(refs), semantic=True)
    assert sem.runs_recall and not DetectionConfig().runs_recall
    assert plain.index_fingerprint_fields() != sem.index_fingerprint_fields()
    assert "semantic" not in plain.index_fingerprint_fields()
    index = build_index(sem, progress=False)
    assert index.recall is not None and index.semantic is not None
    assert index.meta["semantic"]["questions"] == index.meta["recall"]["questions"]
    assert build_index(plain, progress=False).semantic is None


def test_long_documents_are_searched_in_overlapping_segments(built):
    from decon.detect.semantic_kernel import SEGMENT_TOKENS

    tok, _, q_ptr, a, meta = built
    search = CandidateSearch(a, meta, q_ptr)
    words, _ = tok.encode_flat([" " + clean_text(REWORDED, PUNCT)])
    filler = tok.encode_flat([" the harbour office opens at nine"])[0]
    step = search.segment - search.overlap
    short = np.concatenate([filler, words]).astype(np.int64)
    base = search.run(short, np.array([0]), np.array([len(short)]))
    assert base[:, :3].tolist() == [[0, 0, base[0, 2]]]
    for at in (10, step - len(words) // 2, step + 3, search.segment - 5, 3 * step - 7):
        pad = np.resize(filler, at)
        doc = np.concatenate([pad, words, np.resize(filler, 2 * SEGMENT_TOKENS)]).astype(np.int64)
        two = np.concatenate([short, doc])  # a short document, then the long one
        rows = search.run(two, np.array([0, len(short)]), np.array([len(short), len(two)]))
        assert rows[:, :3].tolist() == [[0, 0, base[0, 2]], [1, 0, base[0, 2]]], at
        assert rows[1, 3] - len(short) - at == base[0, 3] - len(filler), at
