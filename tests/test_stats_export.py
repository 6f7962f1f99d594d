"""Issue 31, machine-readable stats: `decon review/compare --stats --format json|csv`, validated
against docs/stats-schema.json and equal to the numbers of the text tables."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import jsonschema
import orjson
import pytest

from decon.cli import main
from decon.common.resources import bundled_reference_dir
from decon.compare import core
from decon.review import analysis
from decon.review.loader import load_reports

REPO = Path(__file__).resolve().parent.parent
REPORTS = REPO / "tests" / "data" / "reports"
RUN_A, RUN_B = REPORTS / "synthetic-cl100k", REPORTS / "fixture-ref1-sample1"
SCHEMA = json.loads((REPO / "docs" / "stats-schema.json").read_text())


def run_cli(capsys, *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def review_json(capsys, *extra: str) -> dict:
    document = orjson.loads(run_cli(capsys, "review", str(RUN_A), "--format", "json", *extra))
    jsonschema.validate(document, SCHEMA)
    return document


def test_schema_itself_is_valid_and_rejects_a_wrong_document(capsys):
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    document = review_json(capsys)
    for broken in ({**document, "schema": "decon.stats/2"}, {**document, "total": {"matches": -1}},
                   {k: v for k, v in document.items() if k != "suites"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, SCHEMA)


def test_review_json_equals_the_text_tables(capsys):
    document = review_json(capsys)
    matches = load_reports(RUN_A)
    summary = analysis.summarize(matches)
    assert document["schema"] == "decon.stats/1" and document["command"] == "review"
    assert document["report_lines"] == len(matches) and document["filters"] == []
    assert document["evals_dir"] == str(bundled_reference_dir())
    total = document["total"]
    assert (total["matches"], total["training_docs"], total["eval_instances"]) == \
        (summary.instances, summary.training_docs, summary.eval_instances)
    per_suite = {r["suite"]: r for r in document["suites"]}
    assert [r["suite"] for r in document["suites"]] == sorted(per_suite)
    assert {s: r["training_docs"] for s, r in per_suite.items()} == dict(analysis.training_docs_per_suite(matches))
    assert {s: r["eval_instances"] for s, r in per_suite.items()} == dict(analysis.eval_instances_per_suite(matches))

    # ... and the numbers the text view prints
    text = run_cli(capsys, "review", str(RUN_A), "--stats")
    assert f"Contaminated training documents: {summary.training_docs}" in text
    assert f"Matches (report lines):          {summary.instances}" in text
    assert f"Contaminated eval instances:     {summary.eval_instances}" in text

    scores = sorted(m.contamination_score for m in matches)
    assert total["score"]["min"] == pytest.approx(scores[0], abs=1e-6)
    assert total["score"]["max"] == pytest.approx(scores[-1], abs=1e-6)
    assert total["score"]["mean"] == pytest.approx(sum(scores) / len(scores), abs=1e-6)
    assert total["score"]["min"] <= total["score"]["p25"] <= total["score"]["p50"] <= total["score"]["p90"]


def test_share_of_instances_hit_is_counted_against_the_reference_set(capsys, tmp_path):
    document = review_json(capsys)
    from decon.evals import listing

    sizes = {s: len(v.instances) for s, v in listing.collect(bundled_reference_dir()).suites.items()}
    for row in document["suites"]:
        assert row["eval_instances_total"] == sizes[row["suite"]]
        assert row["share_hit"] == pytest.approx(row["eval_instances"] / sizes[row["suite"]], abs=1e-6)
    # a reference set without these suites: no total, no share
    refs = tmp_path / "refs"
    refs.mkdir()
    (refs / "other.jsonl").write_bytes(orjson.dumps({"eval_key": "other", "question": "q", "eval_instance_index": 0}) + b"\n")
    other = review_json(capsys, "--evals-dir", str(refs))
    assert all(r["eval_instances_total"] is None and r["share_hit"] is None for r in other["suites"])


def test_filters_apply_and_are_named(capsys):
    document = review_json(capsys, "--eval", "mmlu", "--min-score", "0.9")
    assert [r["suite"] for r in document["suites"]] == ["mmlu"]
    assert document["filters"] == ["min score 0.900", "eval suite mmlu"]
    kept = analysis.filter_matches(load_reports(RUN_A), 0.9, None, "mmlu")
    assert document["total"]["matches"] == len(kept)


def test_csv_has_one_row_per_suite_with_the_json_numbers(capsys):
    document = review_json(capsys)
    rows = list(csv.DictReader(io.StringIO(run_cli(capsys, "review", str(RUN_A), "--format", "csv"))))
    assert [r["suite"] for r in rows] == [r["suite"] for r in document["suites"]]
    for row, expected in zip(rows, document["suites"], strict=True):
        for key in ("matches", "training_docs", "eval_instances", "eval_instances_total"):
            assert int(row[key]) == expected[key]
        assert float(row["share_hit"]) == pytest.approx(expected["share_hit"])
        assert float(row["score_p50"]) == pytest.approx(expected["score"]["p50"])


def test_output_file_is_written_whole_and_equals_stdout(capsys, tmp_path):
    out = tmp_path / "stats" / "review.json"
    assert main(["review", str(RUN_A), "--format", "json", "-o", str(out)]) == 0
    assert capsys.readouterr().out == ""
    assert out.read_text() == run_cli(capsys, "review", str(RUN_A), "--format", "json")
    assert sorted(p.name for p in out.parent.iterdir()) == ["review.json"]  # no temporary file left


def test_compare_json_equals_the_text_view(capsys, tmp_path):
    document = orjson.loads(run_cli(capsys, "compare", str(RUN_A), str(RUN_B), "--format", "json"))
    jsonschema.validate(document, SCHEMA)
    first = core.index_by_key(load_reports(RUN_A))
    second = core.index_by_key(load_reports(RUN_B))
    for side, run in (("a", first), ("b", second)):
        metrics = core.run_metrics(run.values())
        total = document[side]["total"]
        assert (total["matches"], total["training_docs"], total["eval_instances"]) == \
            (metrics.instances, metrics.training_docs, metrics.eval_instances)
        assert total["score"]["mean"] == pytest.approx(metrics.mean_score, abs=1e-6)
    assert document["only_a"] == len(set(first) - set(second))
    assert document["only_b"] == len(set(second) - set(first))
    assert document["common"] == len(set(first) & set(second))
    docs = {s: (a, b, d) for s, a, b, d in core.suite_deltas(first.values(), second.values(), "docs")}
    evals = {s: (a, b, d) for s, a, b, d in core.suite_deltas(first.values(), second.values(), "evals")}
    for row in document["suites"]:
        assert (row["training_docs_a"], row["training_docs_b"], row["training_docs_change"]) == docs[row["suite"]]
        assert (row["eval_instances_a"], row["eval_instances_b"], row["eval_instances_change"]) == evals[row["suite"]]

    text = run_cli(capsys, "compare", str(RUN_A), str(RUN_B), "--stats")
    assert re.search(rf"Only in A: {document['only_a']} matches", text)
    assert re.search(rf"In both:   {document['common']} matches", text)

    rows = list(csv.DictReader(io.StringIO(run_cli(capsys, "compare", str(RUN_A), str(RUN_B), "--format", "csv"))))
    assert [r["suite"] for r in rows] == [r["suite"] for r in document["suites"]]
    assert all(int(r["matches_change"]) == int(r["matches_b"]) - int(r["matches_a"]) for r in rows)


def test_bad_evals_dir_is_a_one_line_error(capsys, tmp_path):
    assert main(["review", str(RUN_A), "--format", "json", "--evals-dir", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "reference directory not found" in err[0]
