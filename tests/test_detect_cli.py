"""`decon detect` end to end: bad inputs, determinism, naming, purify fixes."""

from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
from pathlib import Path

import orjson
import pytest

from decon.cli import main

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures"
QA_REF = FIX / "test-reference" / "question_answer_reference.jsonl"


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("DECON_QUIET", "1")


def _refs(tmp: Path) -> Path:
    d = tmp / "refs"
    d.mkdir()
    shutil.copy(QA_REF, d)
    return d


def _contaminated_line() -> bytes:
    return (FIX / "training" / "contaminated_at_beginning.jsonl").read_bytes().splitlines()[0]


def _detect(args: list[str]) -> int:
    return main(["detect", "--worker-threads", "1", "--no-index-cache", *args])


def test_bad_training_lines_are_counted_not_fatal(tmp_path, capsys):
    train = tmp_path / "train"
    train.mkdir()
    good = _contaminated_line()
    (train / "mixed.jsonl").write_bytes(b"\n".join([
        good,
        b"{not json",
        orjson.dumps({"other": "no text key"}),
        b'{"text": "caf\xe9 latin-1 bytes"}',
        good,
    ]) + b"\n")
    rc = _detect(["--training-dir", str(train), "--evals-dir", str(_refs(tmp_path)),
                  "--report-output-dir", str(tmp_path / "out")])
    assert rc == 0
    captured = capsys.readouterr()
    assert "1 invalid json" in captured.err
    assert "1 missing content key" in captured.err
    assert "1 non utf8" in captured.err
    report = tmp_path / "out" / "mixed-simple-0.80.jsonl"
    lines = [orjson.loads(x) for x in report.read_bytes().splitlines()]
    assert sorted({r["training_line"] for r in lines}) == [0, 4]


def test_empty_training_file_gives_no_report(tmp_path, capsys):
    train = tmp_path / "train"
    train.mkdir()
    (train / "empty.jsonl").write_bytes(b"")
    rc = _detect(["--training-dir", str(train), "--evals-dir", str(_refs(tmp_path)),
                  "--report-output-dir", str(tmp_path / "out")])
    assert rc == 0
    assert "No contamination detected!" in capsys.readouterr().out
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("case", ["missing_training", "empty_evals", "nothing_indexed", "missing_doc_id",
                                  "bad_eval_json", "missing_config"])
def test_user_errors_are_one_line(case, tmp_path, capsys):
    train = tmp_path / "train"
    train.mkdir()
    (train / "a.jsonl").write_bytes(_contaminated_line() + b"\n")
    evals = tmp_path / "evals"
    evals.mkdir()
    args = ["--training-dir", str(train), "--evals-dir", str(evals), "--report-output-dir", str(tmp_path / "out")]
    expect = ""
    if case == "missing_training":
        args[1] = str(tmp_path / "nope")
        shutil.copy(QA_REF, evals)
        expect = "does not exist"
    elif case == "empty_evals":
        expect = "holds no data files"
    elif case == "nothing_indexed":
        (evals / "tiny.jsonl").write_text('{"doc_id": 1, "question": "too short"}\n')
        expect = "No evaluation data was indexed"
    elif case == "missing_doc_id":
        (evals / "bad.jsonl").write_text('{"doc_id": 1, "question": "q"}\n{"question": "no id here"}\n')
        expect = "bad.jsonl:2"
    elif case == "bad_eval_json":
        (evals / "bad.jsonl").write_text('{"doc_id": 1, "question": "q"}\n{oops\n')
        expect = "bad.jsonl:2"
    elif case == "missing_config":
        shutil.copy(QA_REF, evals)
        args += ["--config", str(tmp_path / "missing.yaml")]
        expect = "config file not found"
    rc = _detect(args)
    err = capsys.readouterr().err
    assert rc == 2
    error_lines = [ln for ln in err.splitlines() if ln.startswith("Error:")]
    assert len(error_lines) == 1 and expect in error_lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing half-written


def _run_reports(tmp: Path, train: Path, refs: Path, workers: int) -> dict[str, bytes]:
    out = tmp / f"out-{workers}"
    rc = main(["detect", "--training-dir", str(train), "--evals-dir", str(refs), "--report-output-dir", str(out),
               "--worker-threads", str(workers), "--no-index-cache", "--sample-every-m-tokens", "1",
               "--eval-min-token-length", "0", "--eval-min-unique-word-count", "0"])
    assert rc == 0
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.jsonl"))}


def test_reports_identical_for_any_worker_count(tmp_path, monkeypatch):
    import decon.detect.documents as documents

    monkeypatch.setattr(documents, "BATCH_LINES", 3)  # many batches per file
    import decon.detect.runner as runner

    monkeypatch.setattr(runner, "BATCH_LINES", 3)
    train = tmp_path / "train"
    (train / "sub").mkdir(parents=True)
    for f in sorted((FIX / "training").glob("*.jsonl")):
        shutil.copy(f, train / f.name)
        shutil.copy(f, train / "sub" / f.name)
    refs = _refs(tmp_path)
    one = _run_reports(tmp_path, train, refs, 1)
    two = _run_reports(tmp_path, train, refs, 2)
    assert one and one == two
    assert any(name.startswith("sub/") for name in one)


def test_batches_are_cut_by_size_and_reports_stay_identical(tmp_path, monkeypatch):
    """Long lines fill a batch by bytes before they fill it by count; the file's end is an explicit
    flag, so reports do not change however the batches fall (1 and 2 workers)."""
    import decon.detect.runner as runner
    from decon.common.config import DetectionConfig

    train = tmp_path / "train"
    train.mkdir()
    for f in sorted((FIX / "training").glob("*.jsonl")):
        shutil.copy(f, train / f.name)
    refs = _refs(tmp_path)
    baseline = _run_reports(tmp_path / "base", train, refs, 1)

    monkeypatch.setattr(runner, "BATCH_CHARS", 100)
    files = sorted(train.glob("*.jsonl"))
    batches = list(runner._batches(files, {f: f.name for f in files}, None, DetectionConfig(), {}))
    longest = max(len(line) for f in files for line in f.read_bytes().splitlines())
    assert all(sum(len(raw) for _, raw in buf) < 100 + longest for _, _, buf, last in batches if not last)
    assert sum(1 for *_, last in batches if last) == len(files)
    for i, f in enumerate(files):  # every line exactly once, in order
        got = [raw for idx, _, buf, _ in batches if idx == i for _, raw in buf]
        assert got == f.read_bytes().splitlines()
    assert sum(1 for *_, last in batches if not last) > len(files)  # cut by size, many times

    assert baseline and _run_reports(tmp_path / "one", train, refs, 1) == baseline
    assert _run_reports(tmp_path / "two", train, refs, 2) == baseline


def test_report_names_never_collide(tmp_path):
    train = tmp_path / "train"
    train.mkdir()
    src = FIX / "training" / "contaminated_mixed.jsonl"
    data = src.read_bytes()
    (train / "contaminated_mixed.jsonl.gz").write_bytes(gzip.compress(data))
    (train / "contaminated_mixed.jsonl.bz2").write_bytes(bz2.compress(data))
    (train / "contaminated_mixed.jsonl.xz").write_bytes(lzma.compress(data))
    reports = _run_reports(tmp_path, train, _refs(tmp_path), 1)
    assert sorted(reports) == [
        "contaminated_mixed.jsonl.bz2-simple-0.80.jsonl",
        "contaminated_mixed.jsonl.gz-simple-0.80.jsonl",
        "contaminated_mixed.jsonl.xz-simple-0.80.jsonl",
    ]


def test_purify_decompresses_and_keys_by_relative_path(tmp_path):
    train = tmp_path / "train"
    (train / "a").mkdir(parents=True)
    (train / "b").mkdir(parents=True)
    dirty = _contaminated_line()
    clean = orjson.dumps({"text": "nothing to see here at all, just an ordinary sentence about weather."})
    (train / "a" / "part.jsonl.bz2").write_bytes(bz2.compress(dirty + b"\n" + clean + b"\n"))
    (train / "b" / "part.jsonl.xz").write_bytes(lzma.compress(clean + b"\n" + clean + b"\n"))
    cleaned = tmp_path / "cleaned"
    rc = _detect(["--training-dir", str(train), "--evals-dir", str(_refs(tmp_path)),
                  "--report-output-dir", str(tmp_path / "out"), "--purify", "--cleaned-output-dir", str(cleaned)])
    assert rc == 0
    assert gzip.decompress((cleaned / "a" / "part.jsonl.gz").read_bytes()) == clean + b"\n"
    # the same-named file in another folder is not touched by a's contaminated line 0
    assert gzip.decompress((cleaned / "b" / "part.jsonl.gz").read_bytes()) == clean + b"\n" + clean + b"\n"
    assert not list(cleaned.rglob("*.tmp"))


def test_single_file_and_nested_content_key(tmp_path):
    f = tmp_path / "one.jsonl"
    doc = orjson.loads(_contaminated_line())
    f.write_bytes(orjson.dumps({"meta": {"body": doc["text"]}}) + b"\n")
    rc = _detect(["--training-dir", str(f), "--evals-dir", str(_refs(tmp_path)), "--content-key", "meta.body",
                  "--report-output-dir", str(tmp_path / "out")])
    assert rc == 0
    assert (tmp_path / "out" / "one-simple-0.80.jsonl").exists()


def test_legacy_flags_and_answer_threshold_notice(tmp_path, capsys):
    train = tmp_path / "train"
    train.mkdir()
    (train / "a.jsonl").write_bytes(_contaminated_line() + b"\n")
    rc = _detect(["--training-dir", str(train), "--reference-input", str(_refs(tmp_path)),
                  "--question-threshold", "0.5", "--answer-threshold", "0.8",
                  "--report-output-dir", str(tmp_path / "out")])
    assert rc == 0
    err = capsys.readouterr().err
    assert err.count("--answer-threshold") == 1
    assert (tmp_path / "out" / "a-simple-0.50.jsonl").exists()


def test_config_file_precedence(tmp_path):
    train = tmp_path / "train"
    train.mkdir()
    (train / "a.jsonl").write_bytes(_contaminated_line() + b"\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"training_dir: {train}\nevals_dir: {_refs(tmp_path)}\ncontamination_score_threshold: 0.6\n")
    assert _detect(["--config", str(cfg), "--report-output-dir", str(tmp_path / "o1")]) == 0
    assert (tmp_path / "o1" / "a-simple-0.60.jsonl").exists()
    assert _detect(["--config", str(cfg), "--contamination-score-threshold", "0.7",
                    "--report-output-dir", str(tmp_path / "o2")]) == 0
    assert (tmp_path / "o2" / "a-simple-0.70.jsonl").exists()


def test_default_report_dir_is_announced(tmp_path, capsys):
    train = tmp_path / "train"
    train.mkdir()
    (train / "a.jsonl").write_bytes(_contaminated_line() + b"\n")
    assert _detect(["--training-dir", str(train), "--evals-dir", str(_refs(tmp_path))]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("Contamination report output directory:"))
    assert "(set report directory with --report-output-dir)" in line
    report_dir = Path(line.split(": ", 1)[1].split(" (")[0])
    assert (report_dir / "a-simple-0.80.jsonl").exists()
    shutil.rmtree(report_dir)


def test_summary_tables_match_upstream_layout():
    import re

    from decon.detect.display import detection_summary_table, index_summary_table
    from decon.detect.reference_index import IndexStats

    def boxes(text: str) -> list[str]:
        lines = [ln for ln in text.splitlines() if ln and ln[0] in "┌│├└"]
        return [re.sub(r"[0-9.]+ ?(s|μs/doc|ms/doc) │$", "T │", ln) for ln in lines]

    golden = (ROOT / "tests" / "golden" / "fixture-ref2" / "stdout.txt").read_text()
    ours = index_summary_table(IndexStats(total_lines_examined=4, lines_indexed=3, skipped_min_tokens=1,
                                          unique_ngrams=87, eval_suites=3, build_seconds=0.17))
    ours += detection_summary_table(index_seconds=0.17, detection_seconds=0.005, total_seconds=0.17,
                                    lines_processed=26, contaminated_matches=6, contaminated_documents=6)
    assert boxes(ours) == boxes(golden)


def test_cleaned_names_never_collide(tmp_path):
    from decon.detect.report import purified_names

    base = tmp_path
    names = ["x.jsonl", "x.jsonl.gz", "x.jsonl.bz2", "y.jsonl.zst", "z.json", "z.jsonl"]
    got = purified_names([base / n for n in names], base)
    assert [got[base / n] for n in names] == [
        "x.jsonl.gz", "x.gz.jsonl.gz", "x.bz2.jsonl.gz", "y.jsonl.gz", "z.json.jsonl.gz", "z.jsonl.gz"]


def test_reports_inside_training_dir_are_not_read_back(tmp_path, capsys):
    train = tmp_path / "train"
    train.mkdir()
    (train / "a.jsonl").write_bytes(_contaminated_line() + b"\n")
    args = ["--training-dir", str(train), "--evals-dir", str(_refs(tmp_path)),
            "--report-output-dir", str(train / "reports")]
    assert _detect(args) == 0
    capsys.readouterr()
    assert _detect(args) == 0  # a second run must not scan the first run's reports
    assert "Skipped training lines" not in capsys.readouterr().err
    assert sorted(p.name for p in (train / "reports").iterdir()) == ["a-simple-0.80.jsonl"]


def test_unwritable_report_dir_is_one_line(tmp_path, capsys):
    import os

    if os.geteuid() == 0:
        target = Path("/proc/decon-cannot-write-here")
    else:
        target = tmp_path / "ro" / "reports"
        (tmp_path / "ro").mkdir(mode=0o500)
    train = tmp_path / "train"
    train.mkdir()
    (train / "a.jsonl").write_bytes(_contaminated_line() + b"\n")
    rc = _detect(["--training-dir", str(train), "--evals-dir", str(_refs(tmp_path)),
                  "--report-output-dir", str(target)])
    err = capsys.readouterr().err
    assert rc == 1
    assert "Traceback" not in err
    assert [ln for ln in err.splitlines() if ln.startswith("Error:")]


def test_parallel_purify_of_a_big_file_equals_single_stream(tmp_path, monkeypatch):
    import decon.detect.purify as purify
    import decon.detect.runner as runner

    monkeypatch.setattr(runner, "PARALLEL_PURIFY_BYTES", 1)  # every file takes the parallel path
    monkeypatch.setattr(purify, "PARALLEL_CHUNK_BYTES", 200)  # many gzip members
    train = tmp_path / "train"
    train.mkdir()
    src = FIX / "training" / "contaminated_mixed.jsonl"
    shutil.copy(src, train / "big.jsonl")
    out = tmp_path / "clean"
    rc = main(["detect", "--training-dir", str(train), "--evals-dir", str(_refs(tmp_path)), "--worker-threads", "2",
               "--no-index-cache", "--report-output-dir", str(tmp_path / "r"), "--purify", "--cleaned-output-dir",
               str(out), "--sample-every-m-tokens", "1", "--eval-min-token-length", "0"])
    assert rc == 0
    report = [orjson.loads(x) for x in (tmp_path / "r" / "big-simple-0.80.jsonl").read_bytes().splitlines()]
    dropped = {r["training_line"] for r in report}
    assert dropped
    expected = b"".join(ln for i, ln in enumerate(src.read_bytes().splitlines(keepends=True)) if i not in dropped)
    data = (out / "big.jsonl.gz").read_bytes()
    assert data.count(b"\x1f\x8b\x08") > 1  # several members
    assert gzip.decompress(data) == expected
