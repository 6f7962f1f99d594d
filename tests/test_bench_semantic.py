"""`make bench-semantic`'s own parts: the rewording rules and the scoring (invented text only)."""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import bench_semantic  # noqa: E402
from rephrase import renumber, rephrase  # noqa: E402

PROBLEM = ("Marisol bakes 14 trays of lemon biscuits for the Pellworth village fair and each tray holds 26 "
           "biscuits. Her cousin Teodor eats 3 biscuits from every tray before the fair opens. She sells the "
           "rest for $1,250 in total. How many biscuits are left for the fair?")


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def test_rephrase_keeps_numbers_and_names_and_changes_the_wording() -> None:
    for seed in range(20):
        out = rephrase(PROBLEM, random.Random(seed))
        assert re.findall(r"\d[\d,]*", out) and sorted(re.findall(r"\d[\d,]*", out)) == sorted(
            re.findall(r"\d[\d,]*", PROBLEM))
        for name in ("Marisol", "Pellworth", "Teodor"):
            assert name in out
        w, o = _words(PROBLEM), _words(out)
        grams = {tuple(w[i:i + 8]) for i in range(len(w) - 7)}
        assert sum(tuple(o[i:i + 8]) in grams for i in range(len(o) - 7)) < len(grams) / 2, out
    assert rephrase(PROBLEM, random.Random(1)) == rephrase(PROBLEM, random.Random(1))


def test_renumber_changes_every_number() -> None:
    out = renumber(PROBLEM, random.Random(3))
    assert out is not None
    before, after = re.findall(r"\d[\d,]*", PROBLEM), re.findall(r"\d[\d,]*", out)
    assert len(before) == len(after) and all(a != b for a, b in zip(before, after, strict=True))
    assert re.search(r"\$\d{1,3},\d{3}\b", out)  # 1,250 stays one number with its separator
    assert renumber("No numbers here.", random.Random(0)) is None


def test_score_counts_semantic_entries_at_the_threshold(tmp_path: Path) -> None:
    truth = [{"training_line": 0, "kind": "clean"}, {"training_line": 1, "kind": "negative"},
             {"training_line": 2, "kind": "gsm8k_rephrased_q_only/alone", "eval_key": "gsm8k",
              "eval_instance_index": 4}]
    (tmp_path / "truth.jsonl").write_text("".join(json.dumps(t) + "\n" for t in truth))
    (tmp_path / "templated.jsonl").write_text(json.dumps({"training_line": 3, "kind": "gsm8k_templated/alone",
                                                          "eval_key": "gsm8k", "eval_instance_index": 4}) + "\n")
    reports = tmp_path / "reports"
    reports.mkdir()
    entries = [{"training_line": 2, "eval_key": "gsm8k", "method": "semantic", "contamination_score": 0.93},
               {"training_line": 3, "eval_key": "gsm8k", "method": "semantic", "contamination_score": 0.8},
               {"training_line": 1, "eval_key": "mmlu", "method": "simple", "contamination_score": 0.85}]
    (reports / "a.jsonl").write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in entries))
    hits = bench_semantic._hits(reports)
    at_90 = bench_semantic.score(tmp_path, hits, 0.9)
    assert at_90["recall"] == {"gsm8k_rephrased_q_only/alone": 1.0}
    assert (at_90["clean_flagged"], at_90["negatives_flagged"], at_90["templated_flagged"]) == (0, 1, {})
    at_95 = bench_semantic.score(tmp_path, hits, 0.95)
    assert at_95["recall"] == {"gsm8k_rephrased_q_only/alone": 0.0}
    assert bench_semantic.score(tmp_path, hits, 0.75)["templated_flagged"] == {"gsm8k_templated": 1}
