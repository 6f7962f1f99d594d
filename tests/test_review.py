"""Tests of ``decon review`` on report files written by the upstream detector."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import re
import shutil
from collections import defaultdict
from pathlib import Path

import pytest
import zstandard

from decon.cli import main
from decon.review import analysis
from decon.review.loader import load_reports
from decon.review.render import highlight_spans

DATA = Path(__file__).parent / "data" / "reports"
SYNTH = DATA / "synthetic-cl100k"
REF1 = DATA / "fixture-ref1"


def read_jsonl(directory: Path) -> list[tuple[Path, int, dict]]:
    """(file, line number, record) for every report line, read without decon's loader."""
    out = []
    for path in sorted(directory.rglob("*")):
        if not path.is_file():
            continue
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, start=1):
                if line.strip():
                    out.append((path, lineno, json.loads(line)))
    return out


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def section(out: str, title: str) -> dict[str, int]:
    """The rows ``name count │bars│`` printed under a bar chart titled ``title``."""
    lines = out.splitlines()
    start = lines.index(title)
    rows = {}
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        found = re.match(r"^\s+(\S+)\s+(\d+) │", line)
        if found:
            rows[found.group(1)] = int(found.group(2))
    return rows


def shown_records(out: str) -> list[tuple[str, int]]:
    """(report file, line) of every match printed, in order."""
    return [(m.group(1), int(m.group(2))) for m in re.finditer(r"^Report\s+(.+):(\d+)$", out, re.M)]


# -- loading -------------------------------------------------------------------------------


def test_loader_reads_every_line() -> None:
    expected = read_jsonl(SYNTH)
    matches = load_reports(SYNTH)
    assert len(matches) == len(expected) == 51
    assert [m.raw for m in matches] == [rec for _, _, rec in expected]


def test_compressed_reports_all_formats(tmp_path: Path, capsys) -> None:
    source = REF1 / "contaminated_at_beginning-simple-0.80.jsonl"
    data = source.read_bytes()
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(data))
    (tmp_path / "b.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(data))
    (tmp_path / "sub" / "c.jsonl.zstd").write_bytes(zstandard.ZstdCompressor().compress(data))
    (tmp_path / "d.jsonl.bz2").write_bytes(bz2.compress(data))
    (tmp_path / "e.jsonl.xz").write_bytes(lzma.compress(data))
    (tmp_path / "f.jsonl").write_bytes(data)
    (tmp_path / "notes.txt").write_text("not a report")
    matches = load_reports(tmp_path)
    assert len(matches) == 6
    assert all(m.training_file == "contaminated_at_beginning.jsonl" for m in matches)
    code, out, _ = run(capsys, "review", str(tmp_path), "--stats")
    assert code == 0
    assert section(out, "Contaminated training documents per eval suite") == {"test-sat-en": 1}


# -- --stats -------------------------------------------------------------------------------


@pytest.mark.parametrize("directory", [SYNTH, REF1, DATA / "fixture-ref1-sample1", DATA])
def test_stats_counts_match_independent_computation(directory: Path, capsys) -> None:
    records = [rec for _, _, rec in read_jsonl(directory)]
    docs = defaultdict(set)
    evals = defaultdict(set)
    for rec in records:
        suite = rec.get("eval_key") or rec["eval_dataset"]
        docs[suite].add((rec["training_file"], rec["training_line"]))
        evals[suite].add((rec["eval_dataset"], rec["eval_instance_index"]))
    code, out, err = run(capsys, "review", str(directory), "--stats")
    assert code == 0, err
    assert section(out, "Contaminated training documents per eval suite") == {k: len(v) for k, v in docs.items()}
    assert section(out, "Contaminated eval instances per eval suite") == {k: len(v) for k, v in evals.items()}
    all_docs = {(r["training_file"], r["training_line"]) for r in records}
    assert f"Contaminated training documents: {len(all_docs)}" in out
    assert f"Matches (report lines):          {len(records)}" in out
    counts = sorted(r["ngram_match_cnt"] for r in records)
    assert f"min {counts[0]}   max {counts[-1]}" in out
    # bars are ordered largest first
    rows = list(section(out, "Contaminated training documents per eval suite").values())
    assert rows == sorted(rows, reverse=True)


def test_stats_bar_lengths_scale(capsys) -> None:
    _, out, _ = run(capsys, "review", str(SYNTH), "--stats")
    bars = {}
    for line in out.splitlines():
        found = re.match(r"^\s+(mmlu|gsm8k|agi_eval)\s+(\d+) │(█*) *│$", line)
        if found and found.group(1) not in bars:
            bars[found.group(1)] = (int(found.group(2)), len(found.group(3)))
    assert bars["mmlu"] == (40, 50)
    assert bars["gsm8k"] == (5, int(5 / 40 * 50))


def test_stats_narrow_terminal(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    _, out, _ = run(capsys, "review", str(SYNTH), "--stats")
    assert max(len(line) for line in out.splitlines() if "│" in line) <= 40


def test_ngram_distribution_buckets() -> None:
    records = [rec for _, _, rec in read_jsonl(SYNTH)]
    dist = analysis.ngram_distribution(load_reports(SYNTH))
    assert dist is not None
    counts = sorted(r["ngram_match_cnt"] for r in records)
    assert dist.minimum == counts[0] and dist.maximum == counts[-1]
    assert sum(c for _, c in dist.buckets) == len(counts)
    assert dict(dist.buckets)["21-50"] == sum(1 for c in counts if 21 <= c <= 50)


# -- filters and order ---------------------------------------------------------------------


def _expected(directory: Path, keep) -> list[tuple[str, int]]:
    return [(str(p), n) for p, n, rec in read_jsonl(directory) if keep(rec)]


def test_dump_shows_everything_sorted_by_score(capsys) -> None:
    code, out, _ = run(capsys, "review", str(SYNTH), "--dump")
    assert code == 0
    shown = shown_records(out)
    assert sorted(shown) == sorted(_expected(SYNTH, lambda r: True))
    by_loc = {(str(p), n): rec for p, n, rec in read_jsonl(SYNTH)}
    scores = [by_loc[loc]["contamination_score"] for loc in shown]
    assert scores == sorted(scores)
    assert "Match 51 of 51" in out
    assert "\x1b[" not in out  # not a terminal: plain text


def test_min_score_filter(capsys) -> None:
    _, out, _ = run(capsys, "review", str(SYNTH), "--dump", "--min-score", "0.95")
    expected = _expected(SYNTH, lambda r: r["contamination_score"] >= 0.95)
    assert 0 < len(expected) < 51
    assert sorted(shown_records(out)) == sorted(expected)
    assert f"({51 - len(expected)} of 51 filtered out by min score 0.950)" in out


def test_min_length_filter(capsys) -> None:
    _, out, _ = run(capsys, "review", str(SYNTH), "--dump", "--min-length", "30")
    expected = _expected(SYNTH, lambda r: r["ngram_match_cnt"] >= 30)
    assert 0 < len(expected) < 51
    assert sorted(shown_records(out)) == sorted(expected)


def test_eval_filter(capsys) -> None:
    _, out, _ = run(capsys, "review", str(SYNTH), "--dump", "--eval", "gsm8k")
    expected = _expected(SYNTH, lambda r: r["eval_key"] == "gsm8k")
    assert len(expected) == 5
    assert sorted(shown_records(out)) == sorted(expected)
    # partial names do not match
    _, out, _ = run(capsys, "review", str(SYNTH), "--dump", "--eval", "gsm")
    assert shown_records(out) == []
    assert "None of the 51 matches pass the filters (eval suite gsm)" in out


def test_combined_filters_in_stats(capsys) -> None:
    _, out, _ = run(capsys, "review", str(SYNTH), "--stats", "--eval", "mmlu", "--min-score", "0.99")
    docs = {
        (r["training_file"], r["training_line"])
        for _, _, r in read_jsonl(SYNTH)
        if r["eval_key"] == "mmlu" and r["contamination_score"] >= 0.99
    }
    assert section(out, "Contaminated training documents per eval suite") == {"mmlu": len(docs)}


@pytest.mark.parametrize(
    ("flag", "reverse"),
    [("--sort-match-length-descending", True), ("--sort-match-length-ascending", False)],
)
def test_sort_by_match_length(capsys, flag: str, reverse: bool) -> None:
    _, out, _ = run(capsys, "review", str(SYNTH), "--dump", flag)
    by_loc = {(str(p), n): rec for p, n, rec in read_jsonl(SYNTH)}
    counts = [by_loc[loc]["ngram_match_cnt"] for loc in shown_records(out)]
    assert len(counts) == 51
    assert counts == sorted(counts, reverse=reverse)
    assert counts[0] != counts[-1]


def test_sort_flags_are_exclusive(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["review", str(SYNTH), "--sort-match-length-descending", "--sort-match-length-ascending"])
    assert exc.value.code == 2


def test_verbose_shows_metrics(capsys) -> None:
    _, out, _ = run(capsys, "review", str(SYNTH), "--dump", "-v", "--eval", "gsm8k")
    assert "Fingerprint" in out and "IDF overlap" in out and "Token spans" in out
    # spans keep their markers in plain output
    assert "【" in out and "】" in out


def test_non_tty_default_mode_does_not_wait(capsys, monkeypatch) -> None:
    def no_input(*_a, **_k):
        raise AssertionError("must not prompt when not on a terminal")

    monkeypatch.setattr("builtins.input", no_input)
    code, out, _ = run(capsys, "review", str(REF1))
    assert code == 0
    assert len(shown_records(out)) == 6


def test_top_eval_examples(capsys) -> None:
    records = [rec for _, _, rec in read_jsonl(DATA / "fixture-ref1-sample1")]
    per_line = defaultdict(int)
    for r in records:
        per_line[(r["eval_dataset"], r["eval_line"])] += 1
    code, out, _ = run(capsys, "review", str(DATA / "fixture-ref1-sample1"), "--top-eval-examples", "1")
    assert code == 0
    (dataset, line), count = max(per_line.items(), key=lambda kv: kv[1])
    assert f"#1  {dataset} line {line}: {count} matches" in out
    assert "#2 " not in out


def test_dataset_counts(tmp_path: Path, capsys) -> None:
    shutil.copytree(REF1, tmp_path / "web")
    shutil.copytree(DATA / "fixture-ref1-sample1", tmp_path / "books")
    code, out, _ = run(capsys, "review", str(tmp_path), "--dataset-counts")
    assert code == 0
    web = {(r["training_file"], r["training_line"]) for _, _, r in read_jsonl(REF1)}
    books = {(r["training_file"], r["training_line"]) for _, _, r in read_jsonl(DATA / "fixture-ref1-sample1")}
    rows = dict(line.split()[::-1] for line in out.splitlines()[-2:])
    assert rows == {"web": str(len(web)), "books": str(len(books))}


# -- highlighting --------------------------------------------------------------------------


def test_highlight_spans_styles_and_markers() -> None:
    text = "pre⟨ passage⟩ mid【 question】 ans⟦ 42⟧ post"
    coloured = highlight_spans(text, keep_markers=False)
    assert coloured.plain == "pre passage mid question ans 42 post"
    styled = {coloured.plain[s.start : s.end]: str(s.style) for s in coloured.spans}
    assert styled[" question"] == "bold red"
    assert styled[" 42"] == "bold magenta"
    assert styled[" passage"] == "cyan"
    assert highlight_spans(text, keep_markers=True).plain == text


def test_colour_on_terminal(monkeypatch, capsys) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr("sys.stdout.isatty", lambda: True, raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm-256color")
    code, out, _ = run(capsys, "review", str(REF1), "--dump")
    assert code == 0
    assert "\x1b[" in out
    monkeypatch.setenv("NO_COLOR", "1")
    _, out, _ = run(capsys, "review", str(REF1), "--dump")
    assert "\x1b[1;31m" not in out  # no red question span


# -- user errors ---------------------------------------------------------------------------


def _assert_clean_error(code: int, err: str, needle: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert needle in lines[0]


def test_missing_dir(tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "review", str(tmp_path / "nope"))
    _assert_clean_error(code, err, "not found")


def test_empty_dir(tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "review", str(tmp_path), "--stats")
    _assert_clean_error(code, err, "no report files")


def test_corrupt_line(tmp_path: Path, capsys) -> None:
    good = (REF1 / "contaminated_at_beginning-simple-0.80.jsonl").read_text()
    (tmp_path / "r.jsonl").write_text(good + '{"training_file": "x", "training_li\n')
    code, _, err = run(capsys, "review", str(tmp_path))
    _assert_clean_error(code, err, "r.jsonl:2: not valid JSON")


def test_record_missing_fields(tmp_path: Path, capsys) -> None:
    (tmp_path / "r.jsonl").write_text('{"hello": 1}\n')
    code, _, err = run(capsys, "review", str(tmp_path))
    _assert_clean_error(code, err, "r.jsonl:1: not a contamination report record (missing field 'training_file')")


def test_corrupt_compressed_file(tmp_path: Path, capsys) -> None:
    (tmp_path / "r.jsonl.gz").write_bytes(b"definitely not gzip")
    code, _, err = run(capsys, "review", str(tmp_path))
    _assert_clean_error(code, err, "r.jsonl.gz")


def test_empty_report_files_mean_no_contamination(tmp_path: Path, capsys) -> None:
    (tmp_path / "r.jsonl").write_text("")
    code, out, _ = run(capsys, "review", str(tmp_path), "--stats")
    assert code == 0
    assert "No contamination found" in out
