"""The reference index cache: identical results from a cached index, invalidation, no-cache mode."""

from __future__ import annotations

import json
import mmap
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import decon.detect.index_cache as ic
from decon.cli import main
from decon.common.config import DetectionConfig
from decon.detect import index_build

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
EVAL_FILE = FIXTURES / "test-reference" / "question_answer_reference.jsonl"


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("DECON_CACHE_DIR", str(d))
    monkeypatch.setenv("DECON_QUIET", "1")
    monkeypatch.delenv("DECON_INDEX_CACHE_MAX_ENTRIES", raising=False)
    ic._warned.clear()
    return d


@pytest.fixture
def evals(tmp_path) -> Path:
    d = tmp_path / "evals"
    d.mkdir()
    shutil.copy(EVAL_FILE, d / EVAL_FILE.name)
    return d


@pytest.fixture
def training(tmp_path) -> Path:
    d = tmp_path / "training"
    d.mkdir()
    for f in sorted((FIXTURES / "training").glob("*.jsonl")):
        shutil.copy(f, d / f.name)
    return d


@pytest.fixture
def builds(monkeypatch) -> list[DetectionConfig]:
    """Records every real index build (each runs in a child process) done through the cache layer."""
    calls: list[DetectionConfig] = []
    real = index_build.build_files

    def counting(config, dest, **kw):
        calls.append(config)
        return real(config, dest, **kw)

    monkeypatch.setattr(index_build, "build_files", counting)
    return calls


def _detect(training: Path, evals: Path, out: Path, *extra: str) -> dict[str, bytes]:
    argv = ["detect", "--training-dir", str(training), "--evals-dir", str(evals),
            "--report-output-dir", str(out), "--worker-threads", "1", *extra]
    assert main(argv) == 0
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _entries(cache_dir: Path) -> list[Path]:
    return ic.entries(cache_dir)


def _config(evals: Path, **kw) -> DetectionConfig:
    cfg = DetectionConfig(evals_dir=str(evals), worker_threads=1)
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


# ---- identical results --------------------------------------------------------------------------

def test_cached_index_gives_byte_identical_reports(cache_dir, evals, training, tmp_path, builds, capsys):
    first = _detect(training, evals, tmp_path / "r1", "--purify", "--cleaned-output-dir", str(tmp_path / "c1"))
    assert len(builds) == 1
    assert len(_entries(cache_dir)) == 1
    assert "built and saved to cache" in capsys.readouterr().err

    second = _detect(training, evals, tmp_path / "r2", "--purify", "--cleaned-output-dir", str(tmp_path / "c2"))
    captured = capsys.readouterr()
    assert len(builds) == 1, "second run must not build"
    assert "loaded from cache" in captured.err
    assert "(cached)" in captured.out
    assert first and first == second  # reports, byte for byte
    assert any(name.endswith(".jsonl") for name in first)
    c1 = {p.name: p.read_bytes() for p in (tmp_path / "c1").iterdir()}
    c2 = {p.name: p.read_bytes() for p in (tmp_path / "c2").iterdir()}
    assert c1 and c1 == c2


def test_loaded_index_matches_built_index(cache_dir, evals):
    cfg = _config(evals)
    built = ic.load_or_build_index(cfg, progress=False)
    loaded = ic.load_or_build_index(cfg, progress=False)
    assert not built.stats.from_cache and loaded.stats.from_cache
    assert built.meta == loaded.meta
    assert built.arrays.keys() == loaded.arrays.keys()
    for name, arr in built.arrays.items():
        other = loaded.arrays[name]
        assert arr.dtype == other.dtype and arr.shape == other.shape, name
        assert np.array_equal(arr, other, equal_nan=arr.dtype.kind == "f"), name
        assert not other.flags.writeable, name  # memory-mapped read-only
    b, s = built.stats.to_dict(), loaded.stats.to_dict()
    for k in ("build_seconds", "from_cache"):
        b.pop(k), s.pop(k)
    assert b == s


def test_same_evals_at_different_paths_share_a_cache_key(cache_dir, evals, tmp_path):
    """Keyed by content, not location: a checkout and a site-packages copy hit the same entry."""
    a = tmp_path / "checkout" / "fixtures" / "reference"
    b = tmp_path / "venv" / "lib" / "site-packages" / "decon" / "data" / "reference"
    shutil.copytree(evals, a)
    shutil.copytree(evals, b)
    key = ic.cache_key(_config(a))
    assert key == ic.cache_key(_config(b)) == ic.cache_key(_config(evals))
    ic.load_or_build_index(_config(a), progress=False)
    assert ic.load_or_build_index(_config(b), progress=False).stats.from_cache
    assert [p.name for p in _entries(cache_dir)] == [key]
    (b / EVAL_FILE.name).rename(b / f"renamed-{EVAL_FILE.name}")  # names are part of the index
    assert ic.cache_key(_config(b)) != key


# ---- invalidation -------------------------------------------------------------------------------

def test_content_change_of_same_size_invalidates(cache_dir, evals, training, tmp_path, builds):
    _detect(training, evals, tmp_path / "r1")
    f = evals / EVAL_FILE.name
    data = f.read_bytes()
    changed = data.replace(b"Eiffel", b"Eiffle", 1)
    assert changed != data and len(changed) == len(data)
    st = f.stat()
    f.write_bytes(changed)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size and mtime: only content differs
    _detect(training, evals, tmp_path / "r2")
    assert len(builds) == 2
    assert len(_entries(cache_dir)) == 2


def test_added_removed_renamed_files_invalidate(cache_dir, evals):
    base = ic.cache_key(_config(evals))
    extra = evals / "more.jsonl"
    shutil.copy(FIXTURES / "test-reference" / "question_reference.jsonl", extra)
    added = ic.cache_key(_config(evals))
    assert added != base
    extra.rename(evals / "renamed.jsonl")
    renamed = ic.cache_key(_config(evals))
    assert renamed not in (base, added)
    (evals / "renamed.jsonl").unlink()
    assert ic.cache_key(_config(evals)) == base  # back to the original set: same key again
    (evals / EVAL_FILE.name).rename(evals / "other_name.jsonl")
    assert ic.cache_key(_config(evals)) != base
    sub = evals / "sub"
    sub.mkdir()
    (evals / "other_name.jsonl").rename(sub / "other_name.jsonl")
    assert ic.cache_key(_config(evals)) not in (base, renamed)


@pytest.mark.parametrize("option, value", [
    ("ngram_size", 4), ("tokenizer_str", "o200k"), ("eval_min_token_length", 3),
    ("answer_ngram_size", 2), ("passage_ngram_size", 5), ("index_passages", False),
    ("index_answers", False), ("eval_min_unique_word_count", 2), ("punctuation_chars", "!?"),
    ("short_answer_token_threshold", 2), ("eval_dedup", False),
])
def test_index_options_change_the_key(evals, option, value):
    assert ic.cache_key(_config(evals)) != ic.cache_key(_config(evals, **{option: value}))


def test_scan_only_options_share_the_key(evals):
    base = ic.cache_key(_config(evals))
    assert base == ic.cache_key(_config(evals, contamination_score_threshold=0.5, worker_threads=2,
                                         sample_every_m_tokens=3, report_output_dir="/x"))


@pytest.mark.parametrize("flags", [["--ngram-size", "4"], ["--tokenizer", "o200k"],
                                   ["--eval-min-token-length", "5"]])
def test_cli_option_change_rebuilds(cache_dir, evals, training, tmp_path, builds, flags):
    _detect(training, evals, tmp_path / "r1")
    _detect(training, evals, tmp_path / "r2", *flags)
    assert len(builds) == 2
    _detect(training, evals, tmp_path / "r3", *flags)  # and that variant is now cached too
    assert len(builds) == 2
    assert len(_entries(cache_dir)) == 2


# ---- no-cache mode, robustness ------------------------------------------------------------------

def test_no_index_cache_neither_reads_nor_writes(cache_dir, evals, training, tmp_path, builds):
    _detect(training, evals, tmp_path / "r0", "--no-index-cache")
    assert len(builds) == 1
    assert not cache_dir.exists() or not any(cache_dir.iterdir())  # nothing written
    _detect(training, evals, tmp_path / "r1")  # populate
    assert len(builds) == 2
    before = {p: (p / ic.META_FILE).stat().st_mtime_ns for p in _entries(cache_dir)}
    _detect(training, evals, tmp_path / "r2", "--no-index-cache")
    assert len(builds) == 3  # built although a matching entry exists
    after = {p: (p / ic.META_FILE).stat().st_mtime_ns for p in _entries(cache_dir)}
    assert before == after  # not even touched


def test_unwritable_cache_dir_warns_once_and_continues(tmp_path, monkeypatch, evals, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("DECON_CACHE_DIR", str(blocker / "cache"))
    ic._warned.clear()
    cfg = _config(evals)
    a = ic.load_or_build_index(cfg, progress=False)
    b = ic.load_or_build_index(cfg, progress=False)
    assert not a.stats.from_cache and not b.stats.from_cache
    assert capsys.readouterr().err.count("not writable") == 1


def test_corrupt_entry_is_rebuilt(cache_dir, evals, builds):
    cfg = _config(evals)
    ic.load_or_build_index(cfg, progress=False)
    entry = _entries(cache_dir)[0]
    (entry / "ngram.keys.npy").write_bytes(b"garbage")
    idx = ic.load_or_build_index(cfg, progress=False)
    assert len(builds) == 2 and not idx.stats.from_cache
    assert ic.load_or_build_index(cfg, progress=False).stats.from_cache


def test_concurrent_save_keeps_first_copy(cache_dir, evals):
    cfg = _config(evals)
    index = ic.load_or_build_index(cfg, progress=False)
    entry = _entries(cache_dir)[0]
    stamp = (entry / ic.META_FILE).read_bytes()
    with pytest.raises(FileExistsError):
        ic.save_index(index, entry)
    assert (entry / ic.META_FILE).read_bytes() == stamp
    assert [p.name for p in cache_dir.iterdir()] == [entry.name]  # no temp folder left behind


def test_lru_eviction(cache_dir, evals, monkeypatch):
    monkeypatch.setenv("DECON_INDEX_CACHE_MAX_ENTRIES", "2")
    cfgs = [_config(evals, ngram_size=n) for n in (3, 4, 5)]
    ic.load_or_build_index(cfgs[0], progress=False)
    ic.load_or_build_index(cfgs[1], progress=False)
    keys = [ic.cache_key(c) for c in cfgs]
    # make entry 0 the most recently used, then add a third: entry 1 goes
    os.utime(cache_dir / keys[1] / ic.META_FILE, (1, 1))
    assert ic.load_or_build_index(cfgs[0], progress=False).stats.from_cache
    ic.load_or_build_index(cfgs[2], progress=False)
    assert sorted(p.name for p in _entries(cache_dir)) == sorted([keys[0], keys[2]])


def test_meta_json_is_plain_json(cache_dir, evals):
    ic.load_or_build_index(_config(evals), progress=False)
    doc = json.loads((_entries(cache_dir)[0] / ic.META_FILE).read_text())
    assert doc["format"] == ic.CACHE_FORMAT_VERSION
    assert set(doc) >= {"meta", "stats", "arrays"}


# ---- the build runs in a child process ------------------------------------------------------------

def test_build_without_cache_maps_arrays_and_leaves_no_temp_folder(evals, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    index = ic.load_or_build_index(_config(evals), use_cache=False, progress=False)
    assert not index.stats.from_cache and index.stats.lines_indexed > 0
    def is_mapped(a: np.ndarray) -> bool:
        while a is not None and not isinstance(a, mmap.mmap):
            a = getattr(a, "base", None)
        return a is not None

    big = [a for a in index.arrays.values() if a.size]
    assert big and all(is_mapped(a) and not a.flags.writeable for a in big)  # the child's files, read-only
    assert not any(tmp_path.glob("decon-index-*"))  # the hand-over folder is gone


def test_child_build_imports_only_the_builder():
    """The build process must not carry the scanners' weight (numba, datasketch for SIMPLE)."""
    code = ("import sys; from decon.common.config import DetectionConfig; from decon.detect import index_build; "
            "from decon.detect.detector import detector_for; detector_for(DetectionConfig()).build; "
            "import decon.detect.reference_index; "
            "print(sorted(m for m in ('numba', 'datasketch', 'decon.detect.detection') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_child_build_with_recall_imports_only_the_builder():
    """The recall arrays are built in numpy alone: a --recall build loads no numba either."""
    refs = Path(__file__).resolve().parent / "golden" / "synthetic-input" / "refs"
    code = ("import sys; from decon.common.config import DetectionConfig; "
            "from decon.detect.reference_index import build_index; "
            f"index = build_index(DetectionConfig(recall=True, evals_dir={str(refs)!r}), progress=False); "
            "assert index.recall is not None and len(index.recall.a['recall.gram.keys']) > 0; "
            "print(sorted(m for m in ('numba', 'datasketch', 'decon.detect.detection') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_bad_reference_file_is_one_line_error_from_the_child(tmp_path, training):
    evals = tmp_path / "bad-evals"
    evals.mkdir()
    (evals / "broken.jsonl").write_text('{"doc_id": 1, "question": "q"}\nnot json\n')
    proc = subprocess.run([sys.executable, "-m", "decon", "detect", "--training-dir", str(training),
                           "--evals-dir", str(evals), "--report-output-dir", str(tmp_path / "out"),
                           "--no-index-cache"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"{evals / 'broken.jsonl'}:2: invalid JSON" in proc.stderr


def test_a_killed_build_process_is_reported():
    with pytest.raises(RuntimeError, match="killed by signal SIGKILL"):
        index_build._parse_reply(b"", -9)
    with pytest.raises(RuntimeError, match="exited with code 1"):
        index_build._parse_reply(b"garbage", 1)
