"""SIMPLE's checks as functions (decon/detect/checks.py): their measurements are the report's numbers,
and the verdict is the score against the threshold. Golden parity (test_parity.py) proves the split
changed no report byte; this checks what the split exposes."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from decon.common.config import DetectionConfig
from decon.detect.api import build_index
from decon.detect.checks import Measurements
from decon.detect.detection import Scanner
from decon.detect.entry import question_end

GOLDEN_INPUT = Path(__file__).resolve().parent / "golden" / "synthetic-input"


class RecordingScanner(Scanner):
    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.seen: list[Measurements] = []

    def measure(self, cand, tokens) -> Measurements:
        m = super().measure(cand, tokens)
        self.seen.append(m)
        return m


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    work = tmp_path_factory.mktemp("checks")
    refs = work / "refs"
    shutil.copytree(GOLDEN_INPUT / "refs", refs)
    train = work / "train.jsonl"
    with gzip.open(GOLDEN_INPUT / "synthetic.jsonl.gz", "rb") as src:
        train.write_bytes(b"".join(src.readlines()[:600]))
    cfg = DetectionConfig(evals_dir=str(refs))
    scanner = RecordingScanner(build_index(cfg, progress=False, use_cache=False), cfg)
    return scanner, scanner.scan_file(train)


def test_passing_measurements_are_the_report_entries(scanned):
    scanner, res = scanned
    passed = [m for m in scanner.seen if m.score.passed]
    assert res.entries and len(passed) >= len(res.entries)
    by_key = {}
    for m in passed:
        by_key.setdefault((m.question.start, int(scanner.index.doc_id[m.question.slot])), m)
    for e in res.entries:
        slot_ids = [k for k in by_key if k[0] == e["question_start_idx"]]
        assert slot_ids, e
        ms = [by_key[k] for k in slot_ids]
        m = next(x for x in ms if np.float32(x.score.score) == np.float32(e["contamination_score"]))
        assert float(m.question.idf_overlap) == e["idf_overlap"]
        assert m.question.n_matched == e["ngram_match_cnt"]
        assert m.question.cluster_len == e["cluster_token_length"]
        assert question_end(m, scanner.n) == e["question_end_idx"]
        if m.answer.present:
            assert float(m.answer.idf) == e["answer_idf_overlap"]
            assert float(m.answer.ratio) == e["answer_overlap_ratio"]
            assert m.answer.window > 0
        else:
            assert "answer_idf_overlap" not in e
        if m.passage.present:
            assert float(m.passage.idf) == e["passage_idf_overlap"]
        else:
            assert "passage_idf_overlap" not in e


def test_failing_candidates_are_measured_and_scored_below_the_threshold(scanned):
    scanner, _res = scanned
    failed = [m for m in scanner.seen if not m.score.passed]
    assert failed, "the corpus has near misses"
    assert all(m.score.score < m.score.threshold for m in failed)
    assert any(m.answer.present and m.answer.bounds is None and m.answer.idf == 0 for m in failed)
