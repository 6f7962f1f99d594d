"""MinHash mode: signatures and banding against datasketch, detection, windowing, CLI, purify."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest
from datasketch import LeanMinHash, MinHash, MinHashLSH

from decon.common.config import DetectionConfig
from decon.common.ngram_hash import ngram_hashes
from decon.common.text import clean_text
from decon.common.tokenizer import get_tokenizer
from decon.detect.minhash_index import (
    SCHEME,
    MinHashParams,
    Permutations,
    TextKeys,
    build_minhash_index,
    document_keys,
    text_signatures,
)
from decon.detect.minhash_scan import MinHashScanner, document_windows

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "fixtures" / "reference"


def _records(name: str, count: int) -> list[dict]:
    with gzip.open(BUNDLED / name, "rb") as f:
        return [orjson.loads(line) for _, line in zip(range(count), f, strict=False)]


@pytest.fixture(scope="module")
def refs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small reference set: agi_eval records with passages, gsm8k and mmlu questions."""
    d = tmp_path_factory.mktemp("mh-refs")
    for name in ("agi_eval_train-2.jsonl.gz", "gsm8k_test-1.jsonl.gz", "mmlu_dev-1.jsonl.gz"):
        with gzip.open(d / name, "wb") as f:
            for r in _records(name, 150):
                f.write(orjson.dumps(r) + b"\n")
    return d


def _config(refs: Path, **kw) -> DetectionConfig:
    base = dict(mode="minhash", evals_dir=str(refs), exact_override=True, worker_threads=1)
    base.update(kw)
    return DetectionConfig(**base)


def _scan(cfg: DetectionConfig, texts: list[str]) -> list[dict]:
    from decon.detect.documents import FileResult

    index = build_minhash_index(cfg, progress=False)
    res = FileResult(path="t")
    MinHashScanner(index, cfg).scan_batch(list(enumerate(texts)), res, "t.jsonl")
    return res.entries


# ---- against datasketch ------------------------------------------------------------------------

def test_signatures_equal_datasketch_update_batch():
    params = MinHashParams(num_bands=7, band_size=8, ngram_size=5, seed=3, exact=True)
    perm = Permutations(params)
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**63, 5000, dtype=np.uint64)
    ptr = np.array([0, 1, 40, 1000, 5000])
    sigs = perm.signatures(keys, ptr)
    for i in range(len(ptr) - 1):
        m = MinHash(num_perm=56, seed=3, scheme=SCHEME, hashfunc=int)
        m.update_batch(keys[ptr[i]:ptr[i + 1]])
        assert np.array_equal(sigs[i], m.hashvalues)


def test_long_segment_running_minimum_equals_datasketch():
    params = MinHashParams(num_bands=2, band_size=4, ngram_size=5, seed=0, exact=True)
    keys = np.random.default_rng(1).integers(0, 2**63, 80_000, dtype=np.uint64)
    sig = Permutations(params).signatures(keys, np.array([0, len(keys)]))[0]
    m = MinHash(num_perm=8, seed=0, scheme=SCHEME, hashfunc=int)
    m.update_batch(keys)
    assert np.array_equal(sig, m.hashvalues)


def test_band_candidates_equal_minhashlsh(refs):
    cfg = _config(refs)
    index = build_minhash_index(cfg, progress=False)
    lsh = MinHashLSH(num_perm=56, params=(7, 8))
    for r in range(index.num_records):
        lsh.insert(r, LeanMinHash(seed=0, hashvalues=index.signatures[r], scheme=SCHEME), check_duplication=False)
    # queries: perturbed copies of indexed signatures (some bands kept) and random ones
    rng = np.random.default_rng(5)
    q = index.signatures[rng.integers(0, index.num_records, 60)].copy()
    mask = rng.random(q.shape) < 0.08
    q[mask] = rng.integers(0, 2**63, int(mask.sum()), dtype=np.uint64)
    q = np.concatenate([q, rng.integers(0, 2**63, (10, 56), dtype=np.uint64)])
    rows, recs = index.candidates(q)
    got = {i: set() for i in range(len(q))}
    for r, c in zip(rows.tolist(), recs.tolist(), strict=True):
        got[r].add(c)
    for i in range(len(q)):
        want = set(lsh.query(LeanMinHash(seed=0, hashvalues=q[i], scheme=SCHEME)))
        assert got[i] == want, i
    assert sum(len(v) for v in got.values()) > 60


def test_estimated_jaccard_close_to_exact_on_a_sample(refs):
    cfg = _config(refs, num_bands=16, band_size=16)
    index = build_minhash_index(cfg, progress=False)
    tok = get_tokenizer("cl100k")
    perm = Permutations(index.params)
    recs = _records("agi_eval_train-2.jsonl.gz", 30)
    for k, r in enumerate(recs):
        words = clean_text(r["passage"] + " " + r["question"] + " " + r["answer"], cfg.punctuation_chars).split()
        cut = " ".join(words[: int(len(words) * (0.3 + 0.023 * k))])  # prefixes: exact Jaccard ~0.3 .. ~1
        a = set(ngram_hashes(np.array(tok.encode(" " + cut)), 5).tolist())
        b = set(ngram_hashes(np.array(tok.encode(" " + " ".join(words))), 5).tolist())
        exact = len(a & b) / len(a | b)
        sig, _ = text_signatures(perm, TextKeys.of(tok, [cut], 5))
        est = index.jaccard(sig, np.array([0]), np.array([k]))[0]
        assert abs(est - exact) <= 0.1, (k, exact, est)


# ---- detection ---------------------------------------------------------------------------------

def test_exact_copy_of_long_record_found_and_unrelated_text_not(refs):
    cfg = _config(refs)
    r = _records("agi_eval_train-2.jsonl.gz", 5)[3]
    copy = f"{r['passage']} {r['question']} {r['answer']}"
    unrelated = "zebra quantum marmalade " * 40
    entries = _scan(cfg, [unrelated, copy])
    assert {e["training_line"] for e in entries} == {1}
    best = [e for e in entries if e["eval_line"] == 3]
    assert best and best[0]["jaccard_similarity"] == 1.0
    e = best[0]
    assert e["eval_dataset"] == "agi_eval_train-2" and e["method"] == "minhash"
    assert e["training_file"] == "t.jsonl"
    assert e["eval_overlap_text"].startswith(clean_text(r["passage"], cfg.punctuation_chars)[:50])
    assert e["training_overlap_text"] == ""


def test_no_shared_ngram_never_scanned_even_at_threshold_zero(refs):
    cfg = _config(refs, jaccard_similarity_threshold=0.0)
    assert _scan(cfg, ["zebra quantum marmalade " * 40, "xylophone"]) == []


def test_exact_override_false_matches_identical_text_only(refs):
    cfg = _config(refs, exact_override=False)
    r = _records("gsm8k_test-1.jsonl.gz", 3)[2]
    text = f"{r['question']} {r['answer']}"
    entries = _scan(cfg, [text, text + " extra words here"])
    assert [(e["training_line"], e["eval_line"], e["jaccard_similarity"]) for e in entries] == [(0, 2, 1.0)]


def test_debug_puts_the_training_text_in_the_report(refs):
    cfg = _config(refs, debug=True)
    r = _records("gsm8k_test-1.jsonl.gz", 2)[1]
    text = f"{r['question']} {r['answer']}"
    entries = _scan(cfg, [text])
    assert entries and entries[0]["training_overlap_text"] == text


def test_document_windows_follow_upstream_scheme():
    def upstream(length, inc, count, step):  # the scheme, written out step by step
        if length <= inc:
            return [(0, length)]
        out, start = [], 0
        while start < length:
            for w in range(count):
                end = min(start + inc * (w + 1), length)
                if end > start:
                    out.append((start, end))
            start += step
            if start >= length - inc:
                break
        return out

    for length in (1, 5, 10, 11, 29, 30, 31, 100, 257):
        for inc, count, step in ((10, 5, 20), (10, 3, 7), (4, 2, 1), (50, 2, 10)):
            got = [tuple(w) for w in document_windows(length, inc, count, step).tolist()]
            assert got == upstream(length, inc, count, step), (length, inc, count, step)


def test_windowing_finds_a_record_inside_a_long_document(refs):
    r = _records("gsm8k_test-1.jsonl.gz", 6)[5]
    item = f"{r['question']} {r['answer']}"
    filler = " ".join(f"filler{i} text{i % 7} about nothing" for i in range(600))
    doc = filler[: len(filler) // 2] + " " + item + " " + filler[len(filler) // 2:]
    plain = _scan(_config(refs), [doc])
    assert not [e for e in plain if e["eval_line"] == 5]
    windowed = _scan(_config(refs, window_size_increment=40, num_windows=4, window_step_size=10, debug=True), [doc])
    hit = [e for e in windowed if e["eval_dataset"] == "gsm8k_test-1" and e["eval_line"] == 5]
    assert hit and hit[0]["jaccard_similarity"] > 0.5
    assert "filler" not in hit[0]["training_overlap_text"] or len(hit[0]["training_overlap_text"]) < 2 * len(item)


def test_document_keys_short_documents_hash_whole_sequence():
    flat = np.array([1, 2, 3, 4, 5, 6, 7, 9, 9], dtype=np.int64)
    ptr = np.array([0, 2, 2, 9])
    keys, kptr = document_keys(flat, ptr, 5)
    assert kptr.tolist() == [0, 1, 1, 4]
    assert keys[0] == ngram_hashes(flat[0:2], 2)[0]


# ---- CLI: reports, workers, purify, config errors ---------------------------------------------

def _corpus(tmp: Path) -> Path:
    train = tmp / "train"
    train.mkdir()
    recs = _records("agi_eval_train-2.jsonl.gz", 40) + _records("gsm8k_test-1.jsonl.gz", 40)
    lines = []
    for i in range(300):
        if i % 7 == 0:
            r = recs[i % len(recs)]
            text = " ".join(x for x in (r.get("passage"), r["question"], r.get("answer")) if x)
        else:
            text = f"background document {i} with words that say little about anything in particular"
        lines.append(json.dumps({"text": text}))
    (train / "a.jsonl").write_text("\n".join(lines[:150]) + "\n")
    with gzip.open(train / "b.jsonl.gz", "wt") as f:
        f.write("\n".join(lines[150:]) + "\n")
    return train


def _detect(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "decon", "detect", *args], capture_output=True, text=True)


def test_cli_reports_identical_for_one_and_two_workers_and_purify_drops_reported_lines(refs, tmp_path):
    train = _corpus(tmp_path)
    outs = {}
    for w in (1, 2):
        rep, clean = tmp_path / f"rep{w}", tmp_path / f"clean{w}"
        p = _detect("--mode", "minhash", "--exact-override", "true", "--training-dir", str(train),
                    "--evals-dir", str(refs), "--report-output-dir", str(rep), "--worker-threads", str(w),
                    "--purify", "--cleaned-output-dir", str(clean))
        assert p.returncode == 0, p.stderr
        outs[w] = {f.name: f.read_bytes() for f in sorted(rep.iterdir())}
    assert outs[1] == outs[2]
    assert sorted(outs[1]) == ["a-minhash-0.50.jsonl", "b.jsonl-minhash-0.50.jsonl"]
    for name, rname, src in (("a", "a", train / "a.jsonl"), ("b", "b.jsonl", train / "b.jsonl.gz")):
        report = [orjson.loads(x) for x in outs[1][f"{rname}-minhash-0.50.jsonl"].splitlines()]
        bad = {e["training_line"] for e in report}
        assert bad == {i for i in range(150) if (i + (150 if name == "b" else 0)) % 7 == 0}
        opener = gzip.open if src.suffix == ".gz" else open
        with opener(src, "rt") as f:
            original = f.read().splitlines()
        with gzip.open(tmp_path / "clean1" / f"{name}.jsonl.gz", "rt") as f:
            cleaned = f.read().splitlines()
        assert cleaned == [x for i, x in enumerate(original) if i not in bad]


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--num-bands", "0", "num_bands"),
    ("--band-size", "-2", "band_size"),
    ("--jaccard-similarity-threshold", "1.5", "jaccard_similarity_threshold"),
    ("--window-size-increment", "10", "windowing needs"),
])
def test_bad_minhash_option_is_one_line_error(refs, tmp_path, flag, value, message):
    train = _corpus(tmp_path)
    p = _detect("--mode", "minhash", flag, value, "--training-dir", str(train), "--evals-dir", str(refs),
                "--report-output-dir", str(tmp_path / "r"))
    assert p.returncode != 0
    assert message in p.stderr and "Traceback" not in p.stderr
    assert len([x for x in p.stderr.strip().splitlines() if x.startswith("Error")]) == 1


def test_bad_minhash_key_in_config_file_is_one_line_error(refs, tmp_path):
    train = _corpus(tmp_path)
    cfg = tmp_path / "mh.yaml"
    cfg.write_text("mode: minhash\nband_size: 0\n")
    p = _detect("--config", str(cfg), "--training-dir", str(train), "--evals-dir", str(refs),
                "--report-output-dir", str(tmp_path / "r"))
    assert p.returncode != 0 and "band_size" in p.stderr and "Traceback" not in p.stderr


def test_review_and_compare_read_minhash_reports_grouped_by_eval_dataset(refs, tmp_path):
    train = _corpus(tmp_path)
    rep = tmp_path / "rep"
    p = _detect("--mode", "minhash", "--exact-override", "true", "--training-dir", str(train),
                "--evals-dir", str(refs), "--report-output-dir", str(rep), "--worker-threads", "1")
    assert p.returncode == 0, p.stderr
    datasets = {orjson.loads(x)["eval_dataset"] for f in rep.iterdir() for x in f.read_bytes().splitlines()}
    assert datasets == {"agi_eval_train-2", "gsm8k_test-1"}
    out = subprocess.run([sys.executable, "-m", "decon", "review", str(rep), "--stats"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "agi_eval_train-2" in out.stdout and "gsm8k_test-1" in out.stdout
    cmp = subprocess.run([sys.executable, "-m", "decon", "compare", str(rep), str(rep), "--stats"],
                         capture_output=True, text=True)
    assert cmp.returncode == 0, cmp.stderr
    assert "Mean contamination score:        0.000" not in cmp.stdout  # jaccard_similarity is the score


@pytest.mark.slow
def test_server_runs_minhash_jobs(refs, tmp_path):
    from decon.detect import api
    from tests.test_server_harness import ServerProcess, engine_config, read_jsonl

    train = _corpus(tmp_path)
    flags = ["--mode", "minhash", "--exact-override", "true"]
    server = ServerProcess(["--reference-input", str(refs), "--no-index-cache", "--worker-threads", "1",
                            "--report-output-dir", str(tmp_path / "reports"), *flags])
    try:
        server.wait_ready()
        job = server.submit_ok(train / "a.jsonl")
        body = server.wait_status(job, {"completed", "failed"})
        assert body["status"] == "completed", body
        cfg = engine_config(["--reference-input", str(refs), *flags])
        expected = api.scan_file(str(train / "a.jsonl"), api.build_index(cfg, progress=False, use_cache=False), cfg)
        assert expected.entries
        assert read_jsonl(body["output_path"]) == [orjson.loads(api_line) for api_line in
                                                   (orjson.dumps(e) for e in expected.entries)]
    finally:
        server.kill()


def test_shares_key_equals_set_membership(refs):
    index = build_minhash_index(_config(refs), progress=False)
    rng = np.random.default_rng(2)
    keys = np.concatenate([index.ngram_keys[rng.integers(0, len(index.ngram_keys), 500)],
                           rng.integers(0, 2**64 - 1, 5000, dtype=np.uint64)])
    assert np.array_equal(index.shares_key(keys), np.isin(keys, index.ngram_keys))


def test_index_cache_keeps_minhash_indexes_keyed_by_every_option(refs):
    from decon.detect.index_cache import cache_key, load_or_build_index
    from decon.detect.minhash_index import MinHashIndex

    cfg = _config(refs, hash_seed=77)  # a key no other test builds: the first load must build
    keys = {cache_key(cfg)}
    for change in ({"num_bands": 8}, {"band_size": 4}, {"hash_seed": 1}, {"exact_override": False},
                   {"ngram_size": 4}, {"tokenizer_str": "o200k"}, {"mode": "simple"}):
        keys.add(cache_key(_config(refs, **{"hash_seed": 77, **change})))
    assert len(keys) == 8
    first = load_or_build_index(cfg, progress=False)
    again = load_or_build_index(cfg, progress=False)
    assert isinstance(again, MinHashIndex) and again.stats.from_cache and not first.stats.from_cache
    for name, arr in first.arrays.items():
        assert np.array_equal(arr, again.arrays[name]), name
    from decon.detect.documents import FileResult

    r = _records("gsm8k_test-1.jsonl.gz", 1)[0]
    text = f"{r['question']} {r['answer']}"
    res_a, res_b = FileResult(path="x"), FileResult(path="x")
    MinHashScanner(first, cfg).scan_batch([(0, text)], res_a, "x")
    MinHashScanner(again, cfg).scan_batch([(0, text)], res_b, "x")
    assert res_a.entries and res_a.entries == res_b.entries
