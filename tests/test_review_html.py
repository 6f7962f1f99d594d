"""`decon review --html`: the page's numbers against `review --stats` on every golden run, the
embedded match data, MinHash-format reports, determinism and user errors."""

from __future__ import annotations

import base64
import gzip
import html
import re
import sys
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report_factory import write_minhash_reports, write_simple_reports  # noqa: E402

from decon.cli import main  # noqa: E402
from decon.review.html_data import REF, reference_spans, trim_context  # noqa: E402
from decon.review.loader import load_reports  # noqa: E402

GOLDEN = Path(__file__).resolve().parent / "golden"  # upstream's reports (tests/golden/README.md)
CASES = sorted(p.parent.name for p in GOLDEN.glob("*/reports") if any(p.iterdir()))


def stats_output(reports: Path, capsys) -> str:
    capsys.readouterr()
    assert main(["review", str(reports), "--stats"]) == 0
    return capsys.readouterr().out


def stats_section(text: str, title: str) -> list[tuple[str, int]]:
    """(suite, count) rows of one bar chart of `review --stats`."""
    block = text.split(title, 1)[1].split("\n\n", 1)[0]
    return [(m.group(1), int(m.group(2))) for m in re.finditer(r"^  (\S.*?)\s+(\d+) │", block, re.M)]


def stats_summary(text: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^  ([A-Z][^:]+):\s+(\d+)$", text, re.M)}


def page_table(page: str, table_id: str) -> list[list[str]]:
    body = re.search(rf'<table id="{table_id}">.*?<tbody>(.*?)</tbody>', page, re.S)
    assert body, table_id
    return [[html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", row)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1))]


def page_payload(page: str) -> dict:
    blob = re.search(r'<script type="application/octet-stream" id="decon-data">([^<]*)</script>', page)
    assert blob
    return orjson.loads(gzip.decompress(base64.b64decode(blob.group(1))))


def render(reports: Path, out: Path, *extra: str) -> str:
    assert main(["review", str(reports), "--html", "-o", str(out), *extra]) == 0
    return out.read_text(encoding="utf-8")


def test_golden_cases_found():
    assert len(CASES) >= 10, CASES


@pytest.mark.parametrize("case", CASES)
def test_page_counts_equal_review_stats(case, tmp_path, capsys):
    reports = GOLDEN / case / "reports"
    text = stats_output(reports, capsys)
    page = render(reports, tmp_path / "report.html")
    suites = page_table(page, "suite-table")
    docs = stats_section(text, "Contaminated training documents per eval suite")
    instances = stats_section(text, "Contaminated eval instances per eval suite")
    assert docs, text
    assert [(row[0], int(row[1])) for row in suites] == docs
    assert sorted((row[0], int(row[2])) for row in suites) == sorted(instances)
    summary = stats_summary(text)
    shown = {row[0]: int(row[1]) for row in page_table(page, "summary-table")}
    assert shown["Contaminated training documents"] == summary["Contaminated training documents"]
    assert shown["Matches (report lines)"] == summary["Matches (report lines)"]
    assert shown["Contaminated eval instances"] == summary["Contaminated eval instances"]
    bars = re.findall(r'<g class="bar" data-label="([^"]*)" data-count="(\d+)">',
                      page.split('id="chart-suite-docs"', 1)[1].split("</figure>", 1)[0])
    assert [(html.unescape(label), int(n)) for label, n in bars] == docs


def test_embedded_matches_are_the_reports(tmp_path):
    reports = GOLDEN / "synthetic-cl100k" / "reports"
    payload = page_payload(render(reports, tmp_path / "r.html"))
    matches = load_reports(reports)
    assert len(payload["rows"]) == len(matches)
    scores = [row[1] for row in payload["rows"]]
    assert scores == sorted(scores, reverse=True)
    assert sorted(scores) == sorted(round(m.contamination_score, 6) for m in matches)
    got = sorted((payload["files"][r[2]], r[3], payload["suites"][r[0]]) for r in payload["rows"])
    assert got == sorted((m.training_file, m.training_line, m.suite) for m in matches)


def test_output_is_deterministic(tmp_path):
    reports = GOLDEN / "fixture-ref3" / "reports"
    assert render(reports, tmp_path / "a.html") == render(reports, tmp_path / "b.html")


def test_page_has_no_network_references(tmp_path):
    page = render(GOLDEN / "synthetic-cl100k" / "reports", tmp_path / "r.html")
    assert not re.search(r"https?://|<link|src=", page)


def expand(text: str, evals: list) -> str:
    """What the page's script does with a referenced span."""
    slot = {"⟨": 0, "【": 1, "⟦": 2}
    return re.sub(r"([【⟦⟨])(\s*)" + REF + r"(\d+)\.(\d+)",
                  lambda m: m.group(1) + m.group(2) + evals[slot[m.group(1)]][int(m.group(3)):][:int(m.group(4))],
                  text)


def test_span_references_round_trip():
    evals = ("the eiffel tower 🗼 in paris", "what year was it built", "1889")
    text = "intro ⟨ eiffel tower 🗼 in⟩ then【 what year was it built】 ans⟦ 1889⟧ and【 not in the eval】 end"
    coded = reference_spans(text, evals)
    assert coded.count(REF) == 3 and "not in the eval" in coded and "what year" not in coded
    assert expand(coded, list(evals)) == text


def test_trim_context_keeps_spans_whole():
    text = "word " * 100 + "【 the question】 and ⟦ answer⟧ " + "tail " * 100
    trimmed = trim_context(text, context=30)
    assert "【 the question】 and ⟦ answer⟧" in trimmed
    assert trimmed.startswith("… word") and trimmed.endswith("tail …")
    assert len(trimmed) < 120


def test_minhash_reports_grouped_by_eval_dataset(tmp_path, capsys):
    rows = [("shard-a.jsonl", 1, "mmlu", 4, 0.91), ("shard-a.jsonl", 2, "mmlu", 5, 0.82),
            ("shard-b.jsonl", 1, "gsm8k", 9, 0.77), ("shard-b.jsonl", 1, "mmlu", 4, 0.95)]
    reports = write_minhash_reports(tmp_path / "reports", rows)
    page = render(reports, tmp_path / "m.html")
    text = stats_output(reports, capsys)
    suites = page_table(page, "suite-table")
    assert [(r[0], int(r[1]), int(r[2]), int(r[3])) for r in suites] == [("mmlu", 3, 2, 3), ("gsm8k", 1, 1, 1)]
    assert [(r[0], int(r[1])) for r in suites] == stats_section(text, "Contaminated training documents per eval suite")
    payload = page_payload(page)
    assert [r[1] for r in payload["rows"]] == [0.95, 0.91, 0.82, 0.77]
    assert payload["methods"] == ["minhash"]
    assert all(r[7] is None for r in payload["rows"])  # no training text in this format
    bins = dict(re.findall(r'<g class="bar" data-label="([^"]*)" data-count="(\d+)">',
                           page.split('id="chart-scores"', 1)[1].split("</figure>", 1)[0]))
    assert bins == {"0.75-0.80": "1", "0.80-0.85": "1", "0.85-0.90": "0", "0.90-0.95": "1", "0.95-1.00": "1"}
    assert "Methods in the records" in page and "minhash" in page


def test_filters_and_config_are_shown(tmp_path):
    reports = write_simple_reports(tmp_path / "reports", 300, files=3)
    config = tmp_path / "detect.yaml"
    config.write_text("contamination_score_threshold: 0.85\nngram_size: 4\n")
    page = render(reports, tmp_path / "r.html", "--eval", "gsm8k", "--min-score", "0.9", "--config", str(config))
    payload = page_payload(page)
    expected = [m for m in load_reports(reports) if m.suite == "gsm8k" and m.contamination_score >= 0.9]
    assert len(payload["rows"]) == len(expected) > 0
    assert "Filtered: min score 0.900, eval suite gsm8k" in page
    settings = dict((row[0], row[1]) for row in page_table(page, "config-table"))
    assert settings["config: contamination_score_threshold"] == "0.85"
    assert settings["config: ngram_size"] == "4"
    assert settings["Mode and threshold (from report names)"] == "simple (threshold 0.80)"


def test_user_errors_are_one_line(tmp_path, capsys):
    reports = write_simple_reports(tmp_path / "reports", 10, files=1)
    assert main(["review", str(reports), "--html", "-o", str(tmp_path), "--config", str(tmp_path / "nope.yaml")]) != 0
    assert main(["review", str(reports), "--html", "-o", str(tmp_path)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"Error: --config: file not found: {tmp_path / 'nope.yaml'}",
                   f"Error: --output is a directory: {tmp_path}"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_empty_reports_still_give_a_page(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "clean-simple-0.80.jsonl").write_bytes(b"")
    page = render(reports, tmp_path / "empty.html")
    assert page_table(page, "suite-table") == []
    assert page_payload(page)["rows"] == []
    assert "(none)" in page
