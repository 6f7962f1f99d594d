"""Upstream's unit tests (the ``#[cfg(test)] mod tests`` blocks of src/), ported to the Python engine.

Upstream's tests reach private Rust helpers; where the Python engine folds a helper into a larger
function (reference-file parsing and filtering into ``build_index``, the answer/passage lookups into
``Scanner``), the same inputs go through the public function and the same outcome is checked. Boundary
tests use a small hand-made ``ReferenceIndex`` whose n-gram ids stand for upstream's (1000 -> 0,
1001 -> 1, 2000 -> 2, 3000 -> 3).
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from decon.common.config import DEFAULT_PUNCTUATION, DetectionConfig
from decon.common.file_io import find_data_files
from decon.common.ngram_hash import ngram_hashes
from decon.common.string_table import StringTable
from decon.common.text import clean_text
from decon.common.tokenizer import get_tokenizer
from decon.detect.boundaries import answer_ngram_boundaries, passage_boundaries, short_answer_match
from decon.detect.cluster import Cluster, expand_cluster, find_clusters
from decon.detect.detection import Scanner
from decon.detect.purify import write_purified
from decon.detect.reference_index import Ragged, ReferenceIndex, build_index, encode_flat, first_seen_ids
from decon.detect.report import purified_names, report_names
from decon.detect.scoring import (
    F32,
    answer_confidence,
    f32_sum,
    idf,
    idf_array,
    interpolate_threshold,
    minimum_question_idf_threshold,
)
from decon.errors import DeconError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


# =================================================================================================
# src/common/text.rs
# =================================================================================================

def test_clean_text_with_default_punctuation():
    assert clean_text("  Hello, world! This is a test.  ", DEFAULT_PUNCTUATION) == "hello world this is a test"


def test_clean_text_with_custom_punctuation():
    assert clean_text("Remove|these|character!s", "|") == "remove these character!s"


def test_clean_text_multiple_whitespace():
    assert clean_text("lots   of   whitespace", DEFAULT_PUNCTUATION) == "lots of whitespace"


def test_clean_text_uppercase():
    assert clean_text("UPPERCASE", DEFAULT_PUNCTUATION) == "uppercase"


def test_clean_text_empty_string():
    assert clean_text("", DEFAULT_PUNCTUATION) == ""


def test_clean_text_no_changes():
    assert clean_text("this should not change", DEFAULT_PUNCTUATION) == "this should not change"


# =================================================================================================
# src/common/file_io.rs
# =================================================================================================

def test_generate_report_filename_with_simple_mode():
    f = Path("/data/input/subdir/test.jsonl")
    assert report_names([f], Path("/data/input"), 0.75, "simple")[f] == "subdir/test-simple-0.75.jsonl"


def test_generate_report_filename_with_other_mode():
    f = Path("/data/input/test.jsonl")
    assert report_names([f], Path("/data/input"), 0.75, "minhash")[f] == "test-minhash-0.75.jsonl"


def test_generate_report_filename_strip_prefix_fails():
    f = Path("/data/input/test.jsonl")
    assert report_names([f], Path("/different/path"), 0.5, "simple")[f] == "test-simple-0.50.jsonl"


def test_generate_purified_filename_with_jsonl_gz():
    f = Path("/data/input/subdir/test.jsonl.gz")
    assert purified_names([f], Path("/data/input"))[f] == "subdir/test.jsonl.gz"


def test_generate_purified_filename_with_jsonl():
    f = Path("/data/input/test.jsonl")
    assert purified_names([f], Path("/data/input"))[f] == "test.jsonl.gz"


def test_generate_purified_filename_without_jsonl():
    f = Path("/data/input/test.txt")
    assert purified_names([f], Path("/data/input"))[f] == "test.jsonl.gz"


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def test_write_purified_file_basic(tmp_path):
    src = tmp_path / "input.jsonl"
    _write_lines(src, ['{"text": "line 0"}', '{"text": "line 1"}', '{"text": "line 2"}'])
    name = purified_names([src], tmp_path)[src]
    dest = tmp_path / "output" / name
    write_purified(src, dest, {1})
    assert dest.exists()
    assert str(dest).endswith(".jsonl.gz")
    with gzip.open(dest, "rt", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    assert lines == ['{"text": "line 0"}', '{"text": "line 2"}']


def test_write_purified_file_with_job_id_basic(tmp_path):
    src = tmp_path / "input.jsonl"
    _write_lines(src, ['{"text": "line 0"}', '{"text": "line 1"}'])
    dest = tmp_path / "output" / "job123.jsonl.gz"
    write_purified(src, dest, set())
    assert dest.name == "job123.jsonl.gz"
    assert dest.exists()
    with gzip.open(dest, "rb") as fh:
        assert fh.read() == src.read_bytes()


def test_write_purified_file_creates_directories(tmp_path):
    src = tmp_path / "input.jsonl"
    src.touch()
    out_dir = tmp_path / "deep" / "nested" / "output"
    dest = out_dir / purified_names([src], tmp_path)[src]
    write_purified(src, dest, set())
    assert out_dir.exists()
    assert dest.exists()


# =================================================================================================
# src/common/json_util.rs (get_nested_json_val) — the content-key lookup of Scanner
# =================================================================================================

@pytest.fixture(scope="module")
def question_index(tmp_path_factory):
    evals = tmp_path_factory.mktemp("qref")
    (evals / "question_reference.jsonl").write_bytes(
        (FIXTURES / "test-reference" / "question_reference.jsonl").read_bytes())
    cfg = DetectionConfig(evals_dir=str(evals), worker_threads=1, eval_min_token_length=0,
                          eval_min_unique_word_count=0)
    return cfg, build_index(cfg, progress=False)


EIFFEL = ("Intro text. The Eiffel Tower, a landmark in Paris, France, was constructed in 1889. It is a global "
          "cultural icon. What year was the Eiffel Tower constructed? The answer is 1889.")


def _scan(tmp_path: Path, cfg: DetectionConfig, index: ReferenceIndex, docs: list[object], content_key: str):
    train = tmp_path / "train.jsonl"
    _write_lines(train, [json.dumps(d) for d in docs])
    c = DetectionConfig(**{**cfg.to_dict(), "content_key": content_key})
    return Scanner(index, c).scan_file(train)


def test_get_nested_json_val_simple_key(tmp_path, question_index):
    cfg, index = question_index
    res = _scan(tmp_path, cfg, index, [{"text": EIFFEL, "id": 123}], "text")
    assert res.skipped == {}
    assert res.contaminated_lines == [0]


def test_get_nested_json_val_nested_key(tmp_path, question_index):
    cfg, index = question_index
    doc = {"user": {"name": "John Doe", "details": {"email": EIFFEL}}}
    res = _scan(tmp_path, cfg, index, [doc], "user.details.email")
    assert res.skipped == {}
    assert res.contaminated_lines == [0]
    # "user.name" resolves to a (clean) string: read, not skipped
    res = _scan(tmp_path, cfg, index, [doc], "user.name")
    assert res.skipped == {}
    assert res.contaminated_lines == []


def test_get_nested_json_val_missing_key(tmp_path, question_index):
    cfg, index = question_index
    res = _scan(tmp_path, cfg, index, [{"text": "Hello"}], "missing")
    assert res.skipped == {"missing_content_key": 1}


def test_get_nested_json_val_missing_nested_key(tmp_path, question_index):
    cfg, index = question_index
    res = _scan(tmp_path, cfg, index, [{"user": {"name": "John"}}], "user.email")
    assert res.skipped == {"missing_content_key": 1}


def test_get_nested_json_val_non_string_value(tmp_path, question_index):
    cfg, index = question_index
    docs = [{"count": 42, "active": True}]
    assert _scan(tmp_path, cfg, index, docs, "count").skipped == {"missing_content_key": 1}
    assert _scan(tmp_path, cfg, index, docs, "active").skipped == {"missing_content_key": 1}


def test_get_nested_json_val_empty_string(tmp_path, question_index):
    cfg, index = question_index
    res = _scan(tmp_path, cfg, index, [{"empty": ""}], "empty")
    assert res.skipped == {}
    assert res.entries == []


# =================================================================================================
# src/detect/scoring.rs
# =================================================================================================

# n-gram id -> number of eval documents holding it
DOC_FREQ = {1: 3, 2: 1, 3: 2}
TOTAL_DOCS = F32(10.0)


def _question_idf_overlap(matched: set[int], eval_total_idf: float) -> np.float32:
    """Matched IDF sum (ids in sorted order, float32) over the eval's total, as the engine computes it."""
    acc = f32_sum(idf(TOTAL_DOCS, DOC_FREQ[i]) for i in sorted(matched) if i in DOC_FREQ)
    total = F32(eval_total_idf)
    return F32(acc / total) if total > 0 else F32(0.0)


def test_question_idf_sum_calculation():
    idf_sum = f32_sum(idf(TOTAL_DOCS, DOC_FREQ[i]) for i in sorted({1, 2}))
    assert abs(idf_sum - 3.507) < 0.01  # ln(10/3) + ln(10/1)


def test_question_idf_overlap_empty():
    assert _question_idf_overlap(set(), 5.0) == 0.0


def test_question_idf_overlap_partial():
    overlap = _question_idf_overlap({1, 2}, 5.116)
    assert abs(overlap - 0.685) < 0.01  # 3.507 / 5.116


def test_question_idf_overlap_no_match():
    assert _question_idf_overlap(set(), 5.116) == 0.0


def test_question_idf_overlap_consistency():
    assert _question_idf_overlap({1}, 5.116) == _question_idf_overlap({1}, 5.116)


def test_calculate_minimum_question_idf_threshold():
    assert abs(minimum_question_idf_threshold(0.8) - 0.714285) < 0.0001
    assert abs(minimum_question_idf_threshold(1.0) - 1.0) < 0.0001
    assert abs(minimum_question_idf_threshold(0.5) - 0.2857) < 0.001
    assert minimum_question_idf_threshold(0.2) == 0.0


# =================================================================================================
# src/detect/contamination_entry.rs
# =================================================================================================

def test_get_required_threshold_with_token_length():
    min_q = minimum_question_idf_threshold(0.8)
    short = interpolate_threshold(10, 20, 50, min_q)
    assert short > 0.0
    long = interpolate_threshold(1000, 20, 50, min_q)
    assert long > 0.0
    assert long <= short
    # upstream's "no token length" falls back to usize::MAX
    none = interpolate_threshold(sys.maxsize, 20, 50, min_q)
    assert none > 0.0


def test_calculate_answer_confidence():
    short = answer_confidence(2)
    assert 0.0 <= short < 1.0
    medium = answer_confidence(3)
    assert 0.0 <= medium < 1.0
    assert medium > short
    assert answer_confidence(5) == 1.0
    assert answer_confidence(None) == 1.0


# test_match_answer_tokens_empty_answer / test_passage_tokens_lookup_empty_passage: an eval document
# without answer (passage) data yields no answer (passage) boundaries.

def test_match_answer_tokens_empty_answer():
    index = _boundary_index()
    tokens = np.array([1, 2, 3, 4, 5], dtype=np.int64)
    assert short_answer_match(index, SLOT_EMPTY, 104, tokens, 50) is None
    assert answer_ngram_boundaries(index, SLOT_EMPTY, 104, tokens, 100, 2) is None


def test_passage_tokens_lookup_empty_passage():
    index = _boundary_index()
    tokens = np.array([1, 2, 3, 4, 5], dtype=np.int64)
    assert passage_boundaries(index, SLOT_EMPTY, 0, tokens, 300, 3, 5) is None


# =================================================================================================
# A hand-made reference index for the cluster/boundary tests
# =================================================================================================

# upstream's n-gram hashes -> ids: [100,101,102] -> 1000, [102,103,104] -> 1001, [200,201,202] -> 2000,
# [300,301,302] -> 3000; here ids 0..3.
NG_1000, NG_1001, NG_2000, NG_3000 = 0, 1, 2, 3
NGRAMS = {(100, 101, 102): NG_1000, (102, 103, 104): NG_1001, (200, 201, 202): NG_2000, (300, 301, 302): NG_3000}
SLOT_ANSWER, SLOT_PASSAGE, SLOT_PASSAGE2, SLOT_EMPTY = 0, 1, 2, 3
NAN = np.float32(np.nan)


def _make_index(ngrams: dict[tuple[int, ...], int], docs: list[dict], *, answer_ngram_idf: dict[int, float],
                passage_ngram_idf: dict[int, float], answer_token_idf: dict[int, float],
                question_docs: dict[int, list[int]] | None = None) -> ReferenceIndex:
    """A ReferenceIndex holding exactly the given n-grams, documents and IDF values."""
    n_ids = max(ngrams.values(), default=-1) + 1
    keys = np.array([ngram_hashes(np.array(t, dtype=np.int64), len(t))[0] for t in ngrams], dtype=np.uint64)
    ids = np.array(list(ngrams.values()), dtype=np.int32)
    order = np.argsort(keys)
    question_docs = question_docs or {}
    q = Ragged.from_rows([np.array(sorted(question_docs.get(i, [])), dtype=np.int64) for i in range(n_ids)],
                         np.int32)

    def per_id(values: dict[int, float]) -> np.ndarray:
        out = np.full(n_ids, NAN, dtype=np.float32)
        for i, v in values.items():
            out[i] = v
        return out

    def rows(field: str, *, sort: bool = False) -> Ragged:
        return Ragged.from_rows([np.array(sorted(d.get(field, [])) if sort else d.get(field, []), dtype=np.int64)
                                 for d in docs], np.int64)

    tok_keys = np.array(sorted(answer_token_idf), dtype=np.int64)
    nd = len(docs)
    arrays: dict[str, np.ndarray] = {
        "ngram.keys": keys[order], "ngram.ids": ids[order],
        "q.docs": q.values.astype(np.int32), "q.ptr": q.ptr, "q.hot": np.zeros(n_ids, dtype=bool),
        "q.idf": idf_array(F32(nd), np.maximum(np.diff(q.ptr), 1)),
        "answer.ngram_idf": per_id(answer_ngram_idf), "passage.ngram_idf": per_id(passage_ngram_idf),
        "answer.token_keys": tok_keys,
        "answer.token_idf": np.array([answer_token_idf[t] for t in tok_keys], dtype=np.float32),
        "doc.id": np.array([d["doc_id"] for d in docs], dtype=np.int64),
        "doc.unique_ngrams": np.zeros(nd, np.int64), "doc.token_count": np.zeros(nd, np.int64),
        "doc.question_idf_sum": np.zeros(nd, np.float32),
        "doc.answer_len": np.array([len(d.get("answer_tokens", [])) for d in docs], dtype=np.int64),
        "doc.passage_len": np.zeros(nd, np.int64),
        "doc.has_answer": np.array([bool(d.get("answer_tokens")) for d in docs]),
        "doc.has_answer_ngrams": np.array([bool(d.get("answer_ngrams")) for d in docs]),
        "doc.has_passage": np.array([bool(d.get("passage_ngrams")) for d in docs]),
        "doc.has_passage_ngrams": np.array([bool(d.get("passage_ngrams")) for d in docs]),
        "doc.passage_idf_total": np.array([d.get("passage_idf_total", 0.0) for d in docs], dtype=np.float32),
        "meta.eval_key": np.zeros(nd, np.int32), "meta.line": np.arange(nd, dtype=np.int64),
        "meta.instance": np.arange(nd, dtype=np.int64), "meta.file": np.zeros(nd, np.int32),
        "meta.is_correct": np.full(nd, -1, np.int8),
    }
    for name, field, sort in (("answer.tokens", "answer_tokens", False), ("answer.token_set", "answer_tokens", True),
                              ("answer.ngrams", "answer_ngrams", True), ("passage.token_set", "passage_tokens", True),
                              ("passage.ngrams", "passage_ngrams", True)):
        r = rows(field, sort=sort)
        if name == "answer.token_set":
            r = Ragged.from_rows([np.unique(r.row(i)) for i in range(nd)], np.int64)
        arrays[name], arrays[name + "_ptr"] = r.values, r.ptr
    for prefix in ("meta.fingerprint", "meta.split", "text.question", "text.answer", "text.passage"):
        arrays.update(StringTable.from_list([None] * nd).arrays(prefix))
    meta = {"tokenizer": "cl100k", "eval_keys": ["test"], "reference_files": [], "total_docs": float(nd)}
    return ReferenceIndex(arrays=arrays, meta=meta)


def _boundary_index() -> ReferenceIndex:
    """upstream's create_test_index of answer_boundary.rs and passage_boundary.rs in one index.

    doc 1 (answers): answer n-grams 1000, 1001, 3000; ordered answer tokens 500 501 502.
    doc 1 (passages): passage n-grams 1000 (idf 2.0), 1001 (idf 3.0), total 5.0.
    doc 2 (passages): passage n-gram 2000 (idf 4.0), total 4.0.
    doc 999: nothing.
    """
    docs = [
        {"doc_id": 1, "answer_tokens": [500, 501, 502], "answer_ngrams": [NG_1000, NG_1001, NG_3000]},
        {"doc_id": 1001, "passage_ngrams": [NG_1000, NG_1001], "passage_idf_total": 5.0},
        {"doc_id": 2, "passage_ngrams": [NG_2000], "passage_idf_total": 4.0},
        {"doc_id": 999},
    ]
    return _make_index(
        NGRAMS, docs,
        answer_ngram_idf={NG_1000: 2.5, NG_1001: 3.0, NG_2000: 1.5, NG_3000: 4.0},
        passage_ngram_idf={NG_1000: 2.0, NG_1001: 3.0, NG_2000: 4.0},
        answer_token_idf={500: 1.0, 501: 1.5, 502: 2.0},
    )


def _t(*tokens: int) -> np.ndarray:
    return np.array(tokens, dtype=np.int64)


# =================================================================================================
# src/detect/answer_boundary.rs
# =================================================================================================

def test_find_answer_boundaries_happy_path():
    tokens = _t(0, 1, 2, 3, 4, 5, 100, 101, 102, 103, 104, 200, 201, 202)
    clusters, overlap = answer_ngram_boundaries(_boundary_index(), SLOT_ANSWER, 5, tokens, 10, 3)
    assert clusters == [(6, 10)]
    assert abs(overlap - 0.579) < 0.01  # (2.5 + 3.0) / (2.5 + 3.0 + 4.0)


def test_find_answer_boundaries_multiple_clusters():
    tokens = _t(0, 1, 2, 3, 4, 5, 100, 101, 102, 103, 104, 200, 201, 202, 203, 204, 205, 300, 301, 302)
    clusters, overlap = answer_ngram_boundaries(_boundary_index(), SLOT_ANSWER, 5, tokens, 20, 3)
    assert clusters == [(6, 10), (17, 19)]
    assert overlap == 1.0


def test_find_answer_boundaries_window_too_small():
    tokens = _t(0, 1, 2, 3, 4, 5, 100)
    assert answer_ngram_boundaries(_boundary_index(), SLOT_ANSWER, 5, tokens, 1, 3) is None


def test_find_answer_boundaries_no_matching_ngrams():
    tokens = _t(0, 1, 2, 3, 4, 5, 400, 401, 402, 403, 404)
    assert answer_ngram_boundaries(_boundary_index(), SLOT_ANSWER, 5, tokens, 10, 3) is None


def test_find_answer_boundaries_missing_doc_id():
    tokens = _t(0, 1, 2, 3, 4, 5, 100, 101, 102)
    assert answer_ngram_boundaries(_boundary_index(), SLOT_EMPTY, 5, tokens, 10, 3) is None


def test_find_answer_boundaries_zero_idf():
    # 1000 and 1001 have IDF 0.0, 3000 has none: the answer's total IDF is zero
    docs = [{"doc_id": 1, "answer_tokens": [500, 501, 502], "answer_ngrams": [NG_1000, NG_1001, NG_3000]}]
    index = _make_index(NGRAMS, docs, answer_ngram_idf={NG_1000: 0.0, NG_1001: 0.0}, passage_ngram_idf={},
                        answer_token_idf={500: 1.0, 501: 1.5, 502: 2.0})
    tokens = _t(0, 1, 2, 3, 4, 5, 100, 101, 102, 103, 104)
    assert answer_ngram_boundaries(index, 0, 5, tokens, 10, 3) is None


def test_find_short_answer_exact_match_happy_path():
    tokens = _t(0, 1, 2, 3, 4, 5, 500, 501, 502, 600, 601)
    clusters, overlap = short_answer_match(_boundary_index(), SLOT_ANSWER, 5, tokens, 10)
    assert clusters == [(6, 8)]
    assert overlap == 1.0


def test_find_short_answer_at_window_start():
    tokens = _t(0, 1, 2, 500, 501, 502, 600, 601)
    clusters, _ = short_answer_match(_boundary_index(), SLOT_ANSWER, 2, tokens, 5)
    assert clusters[0] == (3, 5)


def test_find_short_answer_at_window_end():
    tokens = _t(0, 1, 2, 600, 601, 602, 500, 501, 502)
    clusters, _ = short_answer_match(_boundary_index(), SLOT_ANSWER, 2, tokens, 6)
    assert clusters[0] == (6, 8)


def test_find_short_answer_no_match():
    tokens = _t(0, 1, 2, 3, 4, 5, 500, 501, 600, 700, 701)
    assert short_answer_match(_boundary_index(), SLOT_ANSWER, 5, tokens, 10) is None


def test_find_short_answer_outside_window():
    tokens = _t(0, 1, 2, 3, 4, 5, 600, 601, 500, 501, 502)
    assert short_answer_match(_boundary_index(), SLOT_ANSWER, 5, tokens, 2) is None


def test_find_short_answer_empty_answer():
    """Upstream's helper reports an empty span (6, 5) for an empty answer; in detection that state is
    unreachable (answers are only stored with tokens). The port reports no match instead."""
    from decon.detect.reference_index import Ragged

    index = _boundary_index()
    empty = Ragged(np.empty(0, dtype=np.int64), np.zeros(len(index.answer_tokens) + 1, dtype=np.int64))
    index.answer_tokens = empty
    tokens = _t(0, 1, 2, 3, 4, 5, 500, 501, 502)
    assert short_answer_match(index, SLOT_ANSWER, 5, tokens, 10) is None


# =================================================================================================
# src/detect/passage_boundary.rs
# =================================================================================================

def _passage(tokens: np.ndarray, q_start: int, window: int, max_misses: int, *, slot: int = SLOT_PASSAGE,
             index: ReferenceIndex | None = None):
    return passage_boundaries(index or _boundary_index(), slot, q_start, tokens, window, 3, max_misses)


def test_find_passage_boundaries_happy_path():
    tokens = _t(0, 1, 2, 100, 101, 102, 103, 104, 105, 106, 200, 201, 202)
    assert _passage(tokens, 10, 10, 2) == (3, 7, 1.0)


def test_find_passage_boundaries_no_matches():
    tokens = _t(400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 200, 201, 202)
    assert _passage(tokens, 10, 10, 2) is None


def test_find_passage_boundaries_partial_match():
    tokens = _t(0, 1, 2, 3, 100, 101, 102, 105, 106, 200, 201, 202)
    start, end, overlap = _passage(tokens, 10, 10, 2)
    assert (start, end) == (4, 6)
    assert overlap == F32(0.4)  # 2.0 / 5.0


def test_find_passage_boundaries_with_gaps():
    ngrams = {(100, 101, 102): NG_1000, (300, 301, 302): 1}
    docs = [{"doc_id": 3, "passage_ngrams": [NG_1000, 1], "passage_idf_total": 5.0}]
    index = _make_index(ngrams, docs, answer_ngram_idf={}, passage_ngram_idf={NG_1000: 2.0, 1: 3.0},
                        answer_token_idf={})
    tokens = _t(100, 101, 102, 200, 201, 300, 301, 302, 400, 401, 402, 403, 404, 500, 501, 502)
    start, end, overlap = _passage(tokens, 15, 15, 2, slot=0, index=index)
    assert (start, end) == (5, 7)  # the gap before 3000 exceeds the miss limit
    assert overlap == F32(0.6)


def test_find_passage_boundaries_exceeds_consecutive_misses():
    tokens = _t(100, 101, 102, 200, 201, 202, 203, 204, 205, 206, 102, 103, 104, 500, 501)
    start, end, overlap = _passage(tokens, 15, 15, 2)
    assert (start, end) == (10, 12)
    assert overlap == F32(0.6)  # only 1001: 3.0 / 5.0


def test_find_passage_boundaries_window_too_small():
    tokens = _t(100, 101, 102, 103, 104, 200, 201, 202)
    assert _passage(tokens, 5, 2, 2) is None


def test_find_passage_boundaries_doc_not_in_index():
    tokens = _t(100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 200, 201, 202)
    assert _passage(tokens, 10, 10, 2, slot=SLOT_EMPTY) is None


def test_find_passage_boundaries_zero_idf_cache():
    docs = [{"doc_id": 4, "passage_ngrams": [NG_1000], "passage_idf_total": 0.0}]
    index = _make_index({(100, 101, 102): NG_1000}, docs, answer_ngram_idf={}, passage_ngram_idf={NG_1000: 2.0},
                        answer_token_idf={})
    tokens = _t(100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 200, 201)
    assert _passage(tokens, 10, 10, 2, slot=0, index=index) is None


def test_find_passage_boundaries_backward_traversal():
    tokens = _t(100, 101, 102, 103, 104, 105, 102, 103, 104, 106, 200, 201, 202)
    assert _passage(tokens, 10, 10, 5) == (0, 8, 1.0)


def test_find_passage_boundaries_duplicate_ngrams():
    tokens = _t(100, 101, 102, 100, 101, 102, 100, 101, 102, 103, 104, 105, 200, 201)
    assert _passage(tokens, 15, 12, 2) == (3, 10, 1.0)


def test_find_passage_boundaries_at_window_edge():
    tokens = _t(100, 101, 102, 103, 104, 105, 200, 201, 202)
    assert _passage(tokens, 6, 6, 2) == (0, 4, 1.0)


def test_find_passage_boundaries_other_document():
    """doc 2 of upstream's index (n-gram 2000 only) does not match doc 1's passage n-grams."""
    tokens = _t(0, 1, 2, 100, 101, 102, 103, 104, 105, 106, 200, 201, 202)
    assert _passage(tokens, 10, 10, 2, slot=SLOT_PASSAGE2) is None
    tokens = _t(0, 1, 2, 200, 201, 202, 5, 6, 7, 8, 9, 9, 9)
    assert _passage(tokens, 10, 10, 2, slot=SLOT_PASSAGE2) == (3, 5, 1.0)


# =================================================================================================
# src/detect/cluster.rs
# =================================================================================================

# upstream's create_test_maps: id 1 -> {10, 11}, id 2 -> {11, 12}, id 3 -> {10, 12, 13}, id 4 -> {}
DOCS = {1: frozenset({10, 11}), 2: frozenset({11, 12}), 3: frozenset({10, 12, 13}), 4: frozenset()}


def docs_of(nid: int) -> frozenset[int]:
    return DOCS.get(nid, frozenset())


def test_check_ngram_for_match_found():
    index = _make_index({(100, 101, 102): 0}, [{"doc_id": d} for d in (10, 11)], answer_ngram_idf={},
                        passage_ngram_idf={}, answer_token_idf={}, question_docs={0: [0, 1]})
    nid = int(index.lookup(ngram_hashes(_t(100, 101, 102), 3))[0])
    assert nid == 0
    slots = index.q_docs.row(nid).tolist()
    assert sorted(int(index.doc_id[s]) for s in slots) == [10, 11]


def test_check_ngram_for_match_not_found():
    index = _make_index({(100, 101, 102): 0}, [{"doc_id": 10}], answer_ngram_idf={}, passage_ngram_idf={},
                        answer_token_idf={}, question_docs={0: [0]})
    assert index.lookup(ngram_hashes(_t(9, 9, 9), 3)).tolist() == [-1]


def test_check_ngram_for_match_empty_docs(tmp_path):
    """An n-gram in the index with no question documents (an answer-only n-gram) starts no cluster."""
    evals = tmp_path / "evals"
    evals.mkdir()
    _write_lines(evals / "e.jsonl", [json.dumps({
        "doc_id": 1, "question": "What is the boiling point of water at sea level in degrees?",
        "answer": "completely unrelated words forming the long answer text here"})])
    cfg = DetectionConfig(evals_dir=str(evals), worker_threads=1, eval_min_token_length=0,
                          eval_min_unique_word_count=0, ngram_size=3, answer_ngram_size=3)
    index = build_index(cfg, progress=False)
    answer_ids = index.answer_ngrams.row(0)
    assert len(answer_ids) > 0
    assert all(index.q_df[i] == 0 for i in answer_ids)
    # the scanner finds no question hit (and so no cluster) in a document made of the answer only
    train = tmp_path / "t.jsonl"
    _write_lines(train, [json.dumps({"text": "completely unrelated words forming the long answer text here " * 3})])
    assert Scanner(index, cfg).scan_file(train).entries == []


def test_simple_contamination_cluster_new():
    cluster = Cluster(matches={1: {100, 101}}, bounds={1: [5, 10]}, doc_freq={100: 5, 101: 3}, end_idx=15)
    assert len(cluster.matches) == 1
    assert len(cluster.bounds) == 1
    assert cluster.end_idx == 15
    assert len(cluster.matches[1]) == 2
    assert tuple(cluster.bounds[1]) == (5, 10)


def test_simple_contamination_cluster_clone():
    import copy

    cluster = Cluster(matches={1: {100}}, bounds={1: [5, 10]}, doc_freq={100: 5}, end_idx=15)
    cloned = copy.deepcopy(cluster)
    assert cloned == cluster
    assert len(cloned.matches) == len(cluster.matches)
    assert cloned.end_idx == cluster.end_idx


# Upstream's traversal tests use training tokens that hash to none of the test n-grams, so every
# position beside the hit misses; here such positions have qid -1. The hit itself is n-gram 1
# (docs {10, 11}) unless stated.

def test_traverse_left_basic():
    qid = [-1] * 7  # 9 tokens, 3-grams
    qid[5] = 1
    c = expand_cluster(5, qid, docs_of, 2)
    assert all(b[0] <= 5 for b in c.full_bounds().values())
    assert {d: tuple(b) for d, b in c.full_bounds().items()} == {10: (5, 5), 11: (5, 5)}


def test_traverse_left_boundary():
    c = expand_cluster(0, [1], docs_of, 2)  # 3 tokens: one n-gram, nothing to the left or right
    assert {d: tuple(b) for d, b in c.full_bounds().items()} == {10: (0, 0), 11: (0, 0)}
    assert c.end_idx == 0


def test_traverse_right_basic():
    qid = [-1] * 7
    qid[3] = 1
    c = expand_cluster(3, qid, docs_of, 2)
    assert 3 <= c.end_idx < 7
    assert c.end_idx == 5  # two consecutive misses drop both documents


def test_traverse_right_boundary():
    c = expand_cluster(0, [1], docs_of, 2)
    assert c.end_idx == 0


def test_expand_contamination_cluster_insufficient_tokens():
    # fewer tokens than the n-gram size: no n-gram positions, no cluster
    assert find_clusters([], [], np.zeros(5, dtype=bool), 1, docs_of, 2) == []


def test_expand_contamination_cluster_basic():
    qid = [-1] * 5  # 7 tokens
    qid[2] = 1
    c = expand_cluster(2, qid, docs_of, 2)
    for d in (10, 11):
        assert d in c.full_matches()
        assert d in c.full_bounds()
    for start, end in c.full_bounds().values():
        assert start <= end < 7


def test_expand_contamination_cluster_single_document():
    DOCS_SINGLE = {7: frozenset({10})}
    qid = [-1, 7, -1]  # 5 tokens
    c = expand_cluster(1, qid, lambda i: DOCS_SINGLE.get(i, frozenset()), 2)
    assert list(c.full_matches()) == [10]
    assert list(c.full_bounds()) == [10]


def test_document_removal_on_misses():
    # max 2 consecutive misses: after two missing positions to the right no document is left
    qid = [1] + [-1] * 5
    c = expand_cluster(0, qid, docs_of, 2)
    assert c.end_idx == 2


def test_empty_active_documents():
    # a hit whose n-gram has no documents: nothing to expand, no walk
    qid = [-1, -1, 4]
    c = expand_cluster(2, qid, docs_of, 2)
    assert c.full_matches() == {}
    assert c.end_idx == 2


def test_cluster_intersection_and_miss_semantics():
    """Beyond upstream's smoke tests: a walk through upstream's test maps, worked out by hand.

    positions: 0:3  1:-  2:1(hit)  3:2  4:2  5:-  6:3  7:-
    left from 2: pos 1 misses (10,11: 1 miss); pos 0 is n-gram 3 = {10,12,13} -> 10 extends left to 0
      (misses reset), 11 misses twice -> dropped.
    right from 2 (misses reset): pos 3 is n-gram 2 = {11,12} -> 11 extends to 3, 10 misses (1);
      pos 4 repeats n-gram 2 -> 11's bound moves to 4, 10 misses (2) -> dropped; pos 5 misses 11 (1); pos 6 is n-gram 3, 11 not in it -> 11 misses (2)
      -> dropped. end_idx = 6.
    """
    qid = [3, -1, 1, 2, 2, -1, 3, -1]
    c = expand_cluster(2, qid, docs_of, 2)
    assert {d: tuple(b) for d, b in c.full_bounds().items()} == {10: (0, 2), 11: (2, 4)}
    assert c.full_matches() == {10: {1, 3}, 11: {1, 2}}
    assert c.doc_freq == {1: 2, 3: 3, 2: 2}
    assert c.end_idx == 6


def test_cluster_repeated_ngram_does_not_reset_misses():
    """Upstream resets a document's miss count only on an n-gram new to it (``is_new_ngram``).

    max 3 misses; right of the hit: 3: n-gram 2 (new for 11, misses 0), 4: miss (1), 5: n-gram 2 again
    (bound moves to 5, misses stay 1), 6: miss (2), 7: miss (3) -> dropped, walk ends at 7 (a reset at
    5 would end it at 8).
    """
    qid = [-1, -1, 1, 2, -1, 2, -1, -1, -1, -1]
    c = expand_cluster(2, qid, docs_of, 3)
    assert tuple(c.full_bounds()[11]) == (2, 5)
    assert c.end_idx == 7


# test_stats_tracking (StatsContainer timing counters) has no counterpart: the engine keeps no
# per-expansion statistics.


# =================================================================================================
# src/detect/reference_index.rs
# =================================================================================================

def test_hash_ngram_consistency():
    assert ngram_hashes(_t(1, 2, 3), 3)[0] == ngram_hashes(_t(1, 2, 3), 3)[0]
    assert ngram_hashes(_t(1, 2, 3), 3)[0] != ngram_hashes(_t(1, 2, 4), 3)[0]
    assert len(ngram_hashes(_t(), 3)) == 0  # empty input works


def test_get_or_create_ngram_id():
    h1 = ngram_hashes(_t(1, 2, 3), 3)[0]
    h3 = ngram_hashes(_t(4, 5, 6), 3)[0]
    _, _, ids = first_seen_ids(np.array([h1, h1, h3], dtype=np.uint64))
    assert ids.tolist() == [0, 0, 1]


def test_extract_tokens_bpe_mode():
    tok = get_tokenizer("cl100k")
    r = encode_flat(tok, ["hello world test", "", "   "], 1)
    assert len(r.row(0)) > 0
    assert len(r.row(1)) == 0  # empty text: no tokens
    assert len(r.row(2)) > 0   # whitespace only (plus the padding space) still tokenises


def _evals(tmp_path: Path, records: list[dict | str], name: str = "evals.jsonl") -> Path:
    d = tmp_path / "evals"
    d.mkdir(exist_ok=True)
    _write_lines(d / name, [r if isinstance(r, str) else json.dumps(r) for r in records])
    return d


def _cfg(evals: Path, **kw) -> DetectionConfig:
    base = dict(evals_dir=str(evals), worker_threads=1, ngram_size=3, answer_ngram_size=3, passage_ngram_size=4,
                punctuation_chars=".,!?", short_answer_token_threshold=10, eval_min_token_length=0,
                eval_min_unique_word_count=0)
    base.update(kw)
    return DetectionConfig(**base)


FILLER = {"doc_id": 900, "question": "this filler question always passes every filter because it is rather long "
                                     "and has many distinct words in it"}


def test_should_skip_by_token_count(tmp_path):
    long_text = "This is a much longer text with many words that should exceed the threshold"
    evals = _evals(tmp_path, [{"doc_id": 1, "question": "test"}])
    assert build_index(_cfg(evals, eval_min_token_length=0), progress=False).stats.skipped_min_tokens == 0

    evals = _evals(tmp_path, [{"doc_id": 1, "question": "hi"}, {"doc_id": 2, "question": long_text}])
    index = build_index(_cfg(evals, eval_min_token_length=10), progress=False)
    assert index.stats.skipped_min_tokens == 1
    assert index.doc_id.tolist() == [2]


def test_should_skip_by_unique_words(tmp_path):
    evals = _evals(tmp_path, [{"doc_id": 1, "question": "test"}])
    assert build_index(_cfg(evals, eval_min_unique_word_count=0), progress=False).stats.lines_indexed == 1

    evals = _evals(tmp_path, [{"doc_id": 1, "question": "test test"}, {"doc_id": 2, "question": "one two three"},
                              {"doc_id": 3, "question": "one two three three"}])
    index = build_index(_cfg(evals, eval_min_unique_word_count=3), progress=False)
    assert index.stats.skipped_min_unique_words == 1
    assert index.doc_id.tolist() == [2, 3]


# passage "alpha beta", question "gamma delta", answer "epsilon zeta": six distinct words in all
P, Q, A = "Alpha beta.", "Gamma delta?", "Epsilon zeta!"


def _kept(tmp_path: Path, record: dict, min_unique: int, **kw) -> bool:
    evals = _evals(tmp_path, [record, FILLER])
    index = build_index(_cfg(evals, eval_min_unique_word_count=min_unique, **kw), progress=False)
    return 1 in index.doc_id.tolist()


def test_build_combined_text_for_filtering(tmp_path):
    full = {"doc_id": 1, "passage": P, "question": Q, "answer": A}
    assert _kept(tmp_path, full, 6)                       # passage + question + answer words count
    no_answer_field = {"doc_id": 1, "passage": P, "question": Q}
    assert not _kept(tmp_path, no_answer_field, 5)        # only 4 words without the answer field
    assert _kept(tmp_path, no_answer_field, 4)
    only_question = {"doc_id": 1, "passage": "", "question": "gamma", "answer": ""}
    assert _kept(tmp_path, only_question, 1)
    assert not _kept(tmp_path, only_question, 2)


def test_index_control_flags(tmp_path):
    full = {"doc_id": 1, "passage": P, "question": Q, "answer": A}
    assert _kept(tmp_path, full, 6, index_passages=True, index_answers=True)
    # questions only
    assert _kept(tmp_path, full, 2, index_passages=False, index_answers=False)
    assert not _kept(tmp_path, full, 3, index_passages=False, index_answers=False)
    # questions and answers
    assert _kept(tmp_path, full, 4, index_passages=False, index_answers=True)
    assert not _kept(tmp_path, full, 5, index_passages=False, index_answers=True)
    # questions and passages
    assert _kept(tmp_path, full, 4, index_passages=True, index_answers=False)
    assert not _kept(tmp_path, full, 5, index_passages=True, index_answers=False)


def test_check_and_mark_duplicate(tmp_path):
    entry = {"doc_id": 1, "eval_key": "test_eval", "fingerprint": "fp123", "question": "test question one"}
    records = [
        entry,
        {**entry, "doc_id": 2},                                   # same (eval_key, fingerprint): duplicate
        {**entry, "doc_id": 3, "eval_key": "different_eval"},     # other eval_key: kept
        {k: v for k, v in {**entry, "doc_id": 4}.items() if k != "fingerprint"},  # no fingerprint: kept
    ]
    index = build_index(_cfg(_evals(tmp_path, records), eval_dedup=True), progress=False)
    assert index.stats.skipped_duplicates == 1
    assert index.doc_id.tolist() == [1, 3, 4]
    # dedup disabled
    index = build_index(_cfg(_evals(tmp_path, records), eval_dedup=False), progress=False)
    assert index.stats.skipped_duplicates == 0
    assert index.doc_id.tolist() == [1, 2, 3, 4]


def test_parse_reference_entry(tmp_path):
    complete = {"doc_id": 42, "eval_key": "test_dataset", "eval_instance_index": 5,
                "question": "What is the capital?", "answer": "Paris", "passage": "France is a country...",
                "fingerprint": "abc123", "is_correct": True, "split": "train"}
    minimal = {"doc_id": 1, "question": "Test?"}
    # the minimal entry sits on line 10 (0-based) of a file named fallback_eval.jsonl
    lines: list[dict | str] = [complete] + ["# comment"] * 9 + [minimal]
    index = build_index(_cfg(_evals(tmp_path, lines, "fallback_eval.jsonl")), progress=False)
    assert index.doc_id.tolist() == [42, 1]

    s = 0
    assert index.eval_keys[int(index.eval_key_idx[s])] == "test_dataset"
    assert int(index.eval_instance_index[s]) == 5
    assert index.question_text[s] == "what is the capital"   # stored cleaned
    assert index.answer_text[s] == "paris"
    assert index.passage_text[s] == "france is a country"
    assert index.fingerprint[s] == "abc123"
    assert int(index.is_correct[s]) == 1
    assert index.split[s] == "train"
    assert bool(index.has_answer[s])

    s = 1
    assert index.eval_keys[int(index.eval_key_idx[s])] == "fallback_eval"
    assert int(index.eval_instance_index[s]) == 10  # falls back to the line number
    assert index.question_text[s] == "test"
    assert index.answer_text[s] is None
    assert index.passage_text[s] is None
    assert index.fingerprint[s] is None
    assert int(index.is_correct[s]) == -1
    assert not bool(index.has_answer[s])


def test_parse_reference_entry_missing_doc_id(tmp_path):
    evals = _evals(tmp_path, [{"question": "Test?"}])
    with pytest.raises(DeconError):
        build_index(_cfg(evals), progress=False)


def test_process_question_field(tmp_path):
    entry = {"doc_id": 1, "eval_key": "test_eval", "eval_instance_index": 5, "fingerprint": "fp123",
             "is_correct": True, "split": "train", "question": "This is a test question with multiple words"}
    index = build_index(_cfg(_evals(tmp_path, [entry])), progress=False)
    assert index.stats.lines_indexed == 1
    assert index.stats.skipped_min_tokens == index.stats.skipped_min_unique_words == 0
    assert index.doc_id.tolist() == [1]
    assert index.eval_keys[int(index.eval_key_idx[0])] == "test_eval"
    assert int(index.is_correct[0]) == 1
    assert int(index.eval_instance_index[0]) == 5
    assert index.question_text[0] == "this is a test question with multiple words"
    assert len(index.key_sorted) > 0
    assert int(index.unique_ngrams[0]) > 0
    # every question n-gram maps back to the document
    tokens = np.array(get_tokenizer("cl100k").encode(" " + index.question_text[0]), dtype=np.int64)
    ids = index.lookup(ngram_hashes(tokens, 3))
    assert (ids >= 0).all()
    assert all(index.q_docs.row(i).tolist() == [0] for i in ids)


def test_process_answer_field(tmp_path):
    long_answer = "This is a much longer answer that exceeds the token threshold for ngram indexing"
    records = [{"doc_id": 1, "question": "first question here", "answer": "Short"},
               {"doc_id": 2, "question": "second question here", "answer": long_answer}]
    index = build_index(_cfg(_evals(tmp_path, records)), progress=False)
    # short answer (<= short_answer_token_threshold = 10 tokens): tokens, no n-grams
    assert bool(index.has_answer[0])
    assert len(index.answer_token_set.row(0)) > 0
    assert len(index.answer_tokens.row(0)) > 0
    assert int(index.answer_len[0]) > 0
    assert not bool(index.has_answer_ngrams[0])
    assert len(index.answer_ngrams.row(0)) == 0
    # long answer: n-grams with document frequencies (IDFs)
    assert bool(index.has_answer[1])
    assert bool(index.has_answer_ngrams[1])
    a_ids = index.answer_ngrams.row(1)
    assert len(a_ids) > 0
    assert not np.isnan(index.answer_ngram_idf[a_ids]).any()
    assert int(index.answer_len[1]) > 0


def test_process_passage_field(tmp_path):
    passage = "This is a test passage with enough words to create multiple ngrams"
    index = build_index(_cfg(_evals(tmp_path, [{"doc_id": 1, "question": "a question", "passage": passage}])),
                        progress=False)
    assert len(index.passage_token_set.row(0)) > 0
    assert int(index.passage_len[0]) > 0
    p_ids = index.passage_ngrams.row(0)
    assert len(p_ids) > 0
    assert not np.isnan(index.passage_ngram_idf[p_ids]).any()
    assert "passage" in index.passage_text[0]


def test_get_reference_files(tmp_path):
    refs = tmp_path / "refs"
    refs.mkdir()
    for name in ("test1.jsonl", "test2.jsonl.gz", "ignore.txt"):
        (refs / name).touch()
    files = find_data_files(refs)
    assert sorted(f.name for f in files) == ["test1.jsonl", "test2.jsonl.gz"]
    with pytest.raises(DeconError):
        build_index(_cfg(tmp_path / "nonexistent" / "path"), progress=False)


# test_ngram_id_overflow_detection has no counterpart: ids are numpy int64 positions, with no u32
# id space to exhaust.


# =================================================================================================
# src/detect/detection.rs
# =================================================================================================

def test_detection_hash_ngram_consistency():
    assert ngram_hashes(_t(1, 2, 3), 3)[0] == ngram_hashes(_t(1, 2, 3), 3)[0]
    assert ngram_hashes(_t(1, 2, 3), 3)[0] != ngram_hashes(_t(3, 2, 1), 3)[0]


def test_ngram_maps_basic():
    index = _make_index({(1, 2, 3): 0}, [{"doc_id": d} for d in (1, 2, 3)], answer_ngram_idf={},
                        passage_ngram_idf={}, answer_token_idf={}, question_docs={0: [0, 1, 2]})
    nid = index.lookup(ngram_hashes(_t(1, 2, 3), 3)).tolist()
    assert nid == [0]
    assert len(index.q_docs.row(0)) == 3


# A literal step-by-step port of upstream's walk, the reference for the gap-based expansion.
def expand_cluster_stepwise(hit: int, qid_at: list[int], docs_of: Callable[[int], frozenset[int]],
                            max_misses: int) -> Cluster:
    """Step-by-step expansion, literally as upstream walks (kept as the reference for tests)."""
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


def test_fast_expansion_equals_stepwise_walk():
    """The gap-based expansion gives exactly the step-by-step walk's clusters (random documents)."""
    import random

    rng = random.Random(11)
    for trial in range(3000):
        n_ids = rng.randint(1, 8)
        sets = {i: frozenset(rng.sample(range(6), rng.randint(1, 4))) for i in range(n_ids)}
        length = rng.randint(1, 40)
        qid = [rng.randrange(n_ids) if rng.random() < 0.45 else -1 for _ in range(length)]
        hits = [i for i, v in enumerate(qid) if v >= 0]
        if not hits:
            continue
        hit = rng.choice(hits)
        max_misses = rng.randint(0, 5)
        a = expand_cluster(hit, qid, sets.__getitem__, max_misses)
        b = expand_cluster_stepwise(hit, qid, sets.__getitem__, max_misses)
        assert (a.full_matches(), a.full_bounds(), a.end_idx) == (b.matches, b.bounds, b.end_idx), (trial, qid, hit,
                                                                                           max_misses)


def test_sequence_hashes_equal_sequence_hash_per_row():
    from decon.common.ngram_hash import sequence_hash, sequence_hashes

    rng = np.random.default_rng(3)
    lens = rng.integers(0, 200, size=400)
    lens[:4] = [0, 1, 5, 0]
    ptr = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(lens, out=ptr[1:])
    flat = rng.integers(0, 200_000, size=int(ptr[-1]))
    expected = [sequence_hash(flat[ptr[i]:ptr[i + 1]]) if lens[i] else 0 for i in range(len(lens))]
    assert sequence_hashes(flat, ptr).tolist() == [int(x) for x in expected]
    assert sequence_hashes(flat[:0], np.zeros(3, dtype=np.int64)).tolist() == [0, 0]
