"""Comparing our reports with the upstream binary's golden reports (rule: tests/golden/README.md)."""

from __future__ import annotations

import gzip
import math
import shlex
import shutil
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
FIXTURES = ROOT / "fixtures"

# Fields that do not depend on which of several same-instance records was reported.
PICK_INDEPENDENT = ("idf_overlap", "question_start_idx", "eval_question_text", "ngram_match_cnt",
                    "eval_unique_ngrams", "eval_passage_text", "passage_idf_overlap", "split", "method")
REF_FILES = {"refs1": "question_reference.jsonl", "refs2": "question_answer_reference.jsonl",
             "refs3": "passage_question_answer_reference.jsonl"}


def case_names() -> list[str]:
    return sorted(p.name for p in GOLDEN.iterdir() if (p / "COMMAND").is_file())


def prepare_inputs(case: str, work: Path) -> tuple[list[str], Path, Path]:
    """Translate a golden COMMAND into our argv with real paths under ``work``."""
    argv = shlex.split((GOLDEN / case / "COMMAND").read_text())
    assert argv[:2] == ["decon", "detect"], argv
    out: list[str] = []
    reports = work / "reports"
    cleaned = work / "cleaned"
    for arg in argv[2:]:
        if arg == "WORK/plain":
            d = work / "plain"
            d.mkdir()
            for f in sorted((FIXTURES / "training").glob("*.jsonl")):
                shutil.copy(f, d / f.name)
            arg = str(d)
        elif arg.startswith("WORK/refs"):
            d = work / arg.split("/")[1]
            d.mkdir()
            shutil.copy(FIXTURES / "test-reference" / REF_FILES[d.name], d)
            arg = str(d)
        elif arg.startswith("WORK/comp-"):
            ext = arg.split("-", 1)[1]
            d = work / f"comp-{ext}"
            d.mkdir()
            shutil.copy(FIXTURES / "training" / f"contaminated_mixed.jsonl.{ext}", d)
            arg = str(d)
        elif arg == "WORK/pub-train":
            d = work / "pub-train"
            d.mkdir()
            with gzip.open(GOLDEN / "synthetic-input" / "synthetic.jsonl.gz", "rb") as src, \
                    open(d / "synthetic.jsonl", "wb") as dst:
                shutil.copyfileobj(src, dst)
            arg = str(d)
        elif arg == "WORK/pub-refs":
            arg = str(GOLDEN / "synthetic-input" / "refs")
        elif arg == "shared/upstream/bundled-evals":
            arg = str(FIXTURES / "reference")
        elif arg == "CLEANED":
            arg = str(cleaned)
        out.append(arg)
    out += ["--report-output-dir", str(reports), "--no-index-cache"]
    return out, reports, cleaned


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if not isinstance(a, int | float) or not isinstance(b, int | float):
            return False
        return math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-5)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def records_equal(ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    return set(ours) == set(theirs) and all(_equal(ours[k], theirs[k]) for k in ours)


def _key(r: dict[str, Any]) -> tuple:
    return (r["training_file"], r["training_line"], r["eval_key"], r["eval_instance_index"])


def compare_case(case: str, reports: Path) -> list[str]:
    """Problems found (empty list: parity holds)."""
    problems: list[str] = []
    golden_reports = sorted((GOLDEN / case / "reports").glob("*.jsonl"))
    ours_files = sorted(p.relative_to(reports) for p in reports.rglob("*.jsonl")) if reports.exists() else []
    if [p.name for p in golden_reports] != [str(p) for p in ours_files]:
        problems.append(f"report files differ: golden {[p.name for p in golden_reports]} ours {ours_files}")
    variants: dict[tuple, list[dict]] = {}
    for v in load_jsonl(GOLDEN / case / "variants.jsonl"):
        variants.setdefault(_key(v), []).append(v)
    ours: dict[tuple, dict] = {}
    for p in ours_files:
        for r in load_jsonl(reports / p):
            k = _key(r)
            if k in ours:
                problems.append(f"duplicate record for {k}")
            ours[k] = r
    missing = sorted(set(variants) - set(ours))
    extra = sorted(set(ours) - set(variants))
    if missing:
        problems.append(f"missing {len(missing)} records, e.g. {missing[:3]}")
    if extra:
        problems.append(f"unexpected {len(extra)} records, e.g. {extra[:3]}")
    for k in sorted(set(ours) & set(variants)):
        mine = ours[k]
        if any(records_equal(mine, v) for v in variants[k]):
            continue
        best = max(variants[k], key=lambda v: v["contamination_score"])
        ok = mine["contamination_score"] >= best["contamination_score"] - 1e-6 and all(
            _equal(mine.get(f), best.get(f)) for f in PICK_INDEPENDENT)
        if not ok:
            diff = {f: (mine.get(f), best.get(f)) for f in set(mine) | set(best) if not _equal(mine.get(f), best.get(f))}
            problems.append(f"record {k} differs: {dict(sorted(diff.items()))}")
    return problems


def compare_cleaned(case: str, cleaned: Path) -> list[str]:
    problems = []
    gdir = GOLDEN / case / "cleaned"
    if not gdir.exists():
        return problems
    for g in sorted(gdir.rglob("*.gz")):
        mine = cleaned / g.relative_to(gdir)
        if not mine.exists():
            problems.append(f"cleaned file missing: {mine.name}")
            continue
        if gzip.decompress(mine.read_bytes()) != gzip.decompress(g.read_bytes()):
            problems.append(f"cleaned file differs after decompression: {mine.name}")
    return problems
