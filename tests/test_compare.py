"""Tests of ``decon compare`` on two pairs of upstream runs."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

from decon.cli import main
from decon.compare import core
from decon.review.loader import load_reports

DATA = Path(__file__).parent / "data" / "reports"
REF1 = DATA / "fixture-ref1"
REF1_SAMPLE = DATA / "fixture-ref1-sample1"
CL100K = DATA / "synthetic-cl100k"
O200K = DATA / "synthetic-o200k"


def read_jsonl(directory: Path) -> list[tuple[Path, int, dict]]:
    out = []
    for path in sorted(directory.rglob("*")):
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            out.extend((path, n, json.loads(line)) for n, line in enumerate(handle, 1) if line.strip())
    return out


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def keys(directory: Path, keep=lambda r: True) -> set[tuple]:
    return {
        (r["training_file"], r["training_line"], r["eval_dataset"], r["eval_line"])
        for _, _, r in read_jsonl(directory)
        if keep(r)
    }


def record_ids(directory: Path) -> set[str]:
    return {
        r.get("fingerprint") or f"{r['reference_file']}:{r['eval_line']}" for _, _, r in read_jsonl(directory)
    }


def counts(out: str) -> tuple[int, int, int]:
    a = int(re.search(r"Only in A: (\d+) matches", out).group(1))
    b = int(re.search(r"Only in B: (\d+) matches", out).group(1))
    both = int(re.search(r"In both:   (\d+) matches", out).group(1))
    return a, b, both


def groups(out: str) -> dict[str, int]:
    """Eval record id -> number of matches, from the --only-in-* listing."""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^Eval record \d+ of \d+: (\S+) \((\d+) matches\)$", out, re.M)}


def common_keys(out: str) -> set[tuple]:
    found = re.findall(r"^Training file: (\S+) \(line (\d+)\)\nEval record:   (\S+) \(line (\d+)\)$", out, re.M)
    return {(a, int(b), c, int(d)) for a, b, c, d in found}


def test_run_against_itself_is_all_common(capsys) -> None:
    n = len(keys(CL100K))
    code, out, err = run(capsys, "compare", str(CL100K), str(CL100K))
    assert code == 0, err
    assert counts(out) == (0, 0, n)
    assert f"score unchanged:   {n}" in out
    code, out, _ = run(capsys, "compare", str(CL100K), str(CL100K), "--common", "--only-in-first", "--only-in-second")
    assert common_keys(out) == keys(CL100K)
    assert "Every eval record matched in run A is also matched in run B." in out
    assert "Every eval record matched in run B is also matched in run A." in out
    assert "Only in A:" not in out  # stats only when asked for, or by default


def test_different_runs_key_sets(capsys) -> None:
    a, b = keys(CL100K), keys(O200K)
    _, out, _ = run(capsys, "compare", str(CL100K), str(O200K))
    assert counts(out) == (len(a - b), len(b - a), len(a & b))
    assert (len(a - b), len(b - a)) == (5, 4)
    _, out, _ = run(capsys, "compare", str(CL100K), str(O200K), "--common")
    assert common_keys(out) == a & b


def test_only_in_first_and_second_by_fingerprint(capsys) -> None:
    fa, fb = record_ids(CL100K), record_ids(O200K)
    _, out, _ = run(capsys, "compare", str(CL100K), str(O200K), "--only-in-first")
    assert set(groups(out)) == fa - fb
    assert len(fa - fb) == 5
    _, out, _ = run(capsys, "compare", str(CL100K), str(O200K), "--only-in-second")
    assert set(groups(out)) == fb - fa
    assert len(fb - fa) == 3


def test_only_in_second_without_fingerprints(capsys) -> None:
    # these reports carry no fingerprint: eval records are told apart by reference file and line
    a, b = keys(REF1), keys(REF1_SAMPLE)
    _, out, _ = run(capsys, "compare", str(REF1), str(REF1_SAMPLE), "--stats", "--only-in-first", "--only-in-second")
    assert counts(out) == (0, 4, 6)
    assert a <= b
    assert "Every eval record matched in run A is also matched in run B." in out
    ids_a, ids_b = record_ids(REF1), record_ids(REF1_SAMPLE)
    expected = {
        rid: sum(1 for _, _, r in read_jsonl(REF1_SAMPLE) if f"{r['reference_file']}:{r['eval_line']}" == rid)
        for rid in ids_b - ids_a
    }
    assert groups(out) == expected


def test_filters_apply_to_both_runs(capsys) -> None:
    def keep(r):
        return r["eval_key"] == "mmlu" and r["contamination_score"] >= 0.99

    a, b = keys(CL100K, keep), keys(O200K, keep)
    _, out, _ = run(capsys, "compare", str(CL100K), str(O200K), "--eval", "mmlu", "--min-score", "0.99")
    assert counts(out) == (len(a - b), len(b - a), len(a & b))
    assert "Filters: min score 0.990, eval suite mmlu" in out
    assert "agi_eval" not in out


def test_per_suite_deltas() -> None:
    comparison = core.compare(load_reports(CL100K), load_reports(O200K))
    rows = {r[0]: r[1:] for r in core.suite_deltas(comparison.first.values(), comparison.second.values(), "docs")}
    docs_a = {(r["training_file"], r["training_line"]) for _, _, r in read_jsonl(CL100K) if r["eval_key"] == "mmlu"}
    docs_b = {(r["training_file"], r["training_line"]) for _, _, r in read_jsonl(O200K) if r["eval_key"] == "mmlu"}
    assert rows["mmlu"] == (len(docs_a), len(docs_b), len(docs_b) - len(docs_a))


def test_missing_directory(tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "compare", str(CL100K), str(tmp_path / "missing"))
    assert code == 2
    assert "Traceback" not in err
    assert err.strip().startswith("Error: report directory not found")
    assert len(err.strip().splitlines()) == 1


def test_empty_directory(tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "compare", str(tmp_path), str(CL100K))
    assert code == 2
    assert "no report files" in err and "Traceback" not in err
