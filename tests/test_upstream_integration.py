"""Upstream's integration tests (tests/detect_integration_test.rs and tests/sampling_test.rs), ported.

Each upstream test copies one reference fixture, one training fixture and one config fixture into a
temporary environment, writes the environment's folders into the config, and runs ``detect`` with
upstream's test defaults (``eval_min_token_length = 0``, ``eval_min_unique_word_count = 0``). Here the
same happens through ``decon.cli.main`` with the same config keys and flags.
"""

from __future__ import annotations

import gzip
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from decon.cli import main
from decon.common.data_reader import iter_lines

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PQA_REFERENCE = "passage_question_answer_reference.jsonl"


@dataclass
class Env:
    root: Path
    reference_dir: Path
    training_dir: Path
    report_dir: Path
    cleaned_dir: Path
    config_path: Path


def _new_env(tmp_path: Path) -> Env:
    env = Env(tmp_path, tmp_path / "reference", tmp_path / "training", tmp_path / "reports",
              tmp_path / "cleaned", tmp_path / "config.yaml")
    for d in (env.reference_dir, env.training_dir, env.report_dir, env.cleaned_dir):
        d.mkdir(parents=True)
    return env


def _write_config(env: Env, config: dict) -> None:
    """As upstream's copy_and_update_config: the environment's folders go into the config."""
    config = dict(config)
    config["evals_dir"] = str(env.reference_dir)
    config["training_dir"] = str(env.training_dir)
    config["report_output_dir"] = str(env.report_dir)
    if config.get("purify") is True:
        config["cleaned_output_dir"] = str(env.cleaned_dir)
    env.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")


def setup_test_with_fixtures(tmp_path: Path, reference: str, training: str, config: str) -> Env:
    env = _new_env(tmp_path)
    shutil.copy(FIXTURES / "test-reference" / reference, env.reference_dir)
    shutil.copy(FIXTURES / "training" / training, env.training_dir)
    _write_config(env, yaml.safe_load((FIXTURES / "configs" / config).read_text(encoding="utf-8")))
    return env


def execute_detect(env: Env, *extra: str) -> None:
    """upstream's create_default_args + execute_detect: config file, test filter overrides, flags."""
    argv = ["detect", "--config", str(env.config_path), "--eval-min-token-length", "0",
            "--eval-min-unique-word-count", "0", "--worker-threads", "1", "--no-index-cache", *extra]
    assert main(argv) == 0


def read_report_files(report_dir: Path) -> list[dict]:
    reports: list[dict] = []
    for path in sorted(report_dir.rglob("*")):
        if path.suffix == ".json":
            reports.append(json.loads(path.read_text(encoding="utf-8")))
        elif path.suffix == ".jsonl":
            reports.extend(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                           if line.strip())
    return reports


def contamination_found(reports: list[dict], training_line: int, eval_line: int) -> bool:
    return any(r.get("training_line") == training_line and r.get("eval_line") == eval_line for r in reports)


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("DECON_QUIET", "1")


# ---- tests/detect_integration_test.rs ------------------------------------------------------------

def test_basic_contamination_detection(tmp_path):
    env = setup_test_with_fixtures(tmp_path, PQA_REFERENCE, "contaminated_mixed.jsonl", "default.yaml")
    execute_detect(env)
    reports = read_report_files(env.report_dir)
    assert reports, "should have contamination reports"
    assert len(reports) >= 2
    assert contamination_found(reports, 0, 0), "Entry 1 (eval line 0) at training line 0"
    assert contamination_found(reports, 3, 1), "Entry 2 (eval line 1) at training line 3"


def test_no_contamination(tmp_path):
    env = setup_test_with_fixtures(tmp_path, PQA_REFERENCE, "clean.jsonl", "default.yaml")
    execute_detect(env)
    assert read_report_files(env.report_dir) == []


def test_purification(tmp_path):
    env = setup_test_with_fixtures(tmp_path, PQA_REFERENCE, "contaminated_mixed.jsonl", "default.yaml")
    training_path = env.training_dir / "contaminated_mixed.jsonl"
    execute_detect(env, "--purify", "--cleaned-output-dir", str(env.cleaned_dir))

    cleaned_file = env.cleaned_dir / "contaminated_mixed.jsonl.gz"
    assert cleaned_file.exists(), "cleaned file should be created"
    original_lines = training_path.read_text(encoding="utf-8").splitlines()
    assert len(original_lines) == 5
    with gzip.open(cleaned_file, "rt", encoding="utf-8") as fh:
        cleaned_lines = fh.read().splitlines()
    assert len(cleaned_lines) <= 3, "at least the 2 contaminated lines are removed"
    # the kept lines are the original lines, unchanged
    assert all(line in original_lines for line in cleaned_lines)


def test_threshold_variations(tmp_path):
    strict = setup_test_with_fixtures(tmp_path / "strict", PQA_REFERENCE, "contaminated_edge_cases.jsonl",
                                      "strict.yaml")
    execute_detect(strict)
    strict_count = len(read_report_files(strict.report_dir))

    lenient = setup_test_with_fixtures(tmp_path / "lenient", PQA_REFERENCE, "contaminated_edge_cases.jsonl",
                                       "lenient.yaml")
    execute_detect(lenient)
    lenient_count = len(read_report_files(lenient.report_dir))
    assert lenient_count >= strict_count


def test_3gram_size_variation(tmp_path):
    env = setup_test_with_fixtures(tmp_path, PQA_REFERENCE, "contaminated_mixed.jsonl", "default.yaml")
    execute_detect(env, "--ngram-size", "3")
    assert read_report_files(env.report_dir), "should detect contamination with 3-grams"


def test_match_in_middle_of_document(tmp_path):
    env = setup_test_with_fixtures(tmp_path, PQA_REFERENCE, "contaminated_middle_position.jsonl", "default.yaml")
    execute_detect(env)
    reports = read_report_files(env.report_dir)
    assert reports, "contamination embedded in the middle of a document is found"
    assert any(r.get("training_line") == 0 for r in reports)
    assert any(r.get("eval_line") == 0 for r in reports), "matches the Eiffel Tower reference"


def test_match_at_beginning_of_document(tmp_path):
    env = setup_test_with_fixtures(tmp_path, PQA_REFERENCE, "contaminated_at_beginning.jsonl", "default.yaml")
    execute_detect(env)
    reports = read_report_files(env.report_dir)
    assert reports
    assert contamination_found(reports, 0, 0)


def test_match_at_end_of_document(tmp_path):
    env = setup_test_with_fixtures(tmp_path, PQA_REFERENCE, "contaminated_at_end.jsonl", "default.yaml")
    execute_detect(env)
    reports = read_report_files(env.report_dir)
    assert reports
    assert contamination_found(reports, 0, 0)


def test_multiple_matches_in_document(tmp_path):
    env = setup_test_with_fixtures(tmp_path, PQA_REFERENCE, "contaminated_multiple_in_one.jsonl", "default.yaml")
    execute_detect(env)
    reports = read_report_files(env.report_dir)
    assert len(reports) >= 2
    line_0 = [r for r in reports if r.get("training_line") == 0]
    assert len(line_0) >= 2, "several matches from the same training document"
    assert len({r["eval_line"] for r in line_0}) >= 2, "matching different eval lines"


def test_punctuation_cleaning(tmp_path):
    env = setup_test_with_fixtures(tmp_path, "question_reference.jsonl", "contaminated_punctuation_variation.jsonl",
                                   "default.yaml")
    execute_detect(env)
    assert read_report_files(env.report_dir), "punctuation differences do not prevent detection"


@pytest.mark.parametrize("training", [
    "contaminated_single_edit.jsonl",       # test_single_edit_tolerance
    "contaminated_single_insertion.jsonl",  # test_single_insertion_tolerance
    "contaminated_single_deletion.jsonl",   # test_single_deletion_tolerance
])
def test_single_character_tolerance(tmp_path, training):
    """Upstream only checks that these runs complete (detection may or may not fire)."""
    env = setup_test_with_fixtures(tmp_path, PQA_REFERENCE, training, "default.yaml")
    execute_detect(env)
    reports = read_report_files(env.report_dir)
    assert all(r.get("training_line") == 0 for r in reports)


@pytest.mark.parametrize("suffix", ["gz", "zst", "bz2", "xz"])
def test_compressed_files(tmp_path, suffix):
    """test_gzip_/test_zstd_/test_bz2_/test_xz_compressed_files."""
    env = setup_test_with_fixtures(tmp_path, PQA_REFERENCE, f"contaminated_mixed.jsonl.{suffix}", "default.yaml")
    execute_detect(env)
    reports = read_report_files(env.report_dir)
    assert reports, f"should detect contamination in {suffix} file"
    assert len(reports) >= 2
    assert contamination_found(reports, 0, 0)
    # same contaminations as the uncompressed file
    assert contamination_found(reports, 3, 1)


# ---- tests/sampling_test.rs ----------------------------------------------------------------------

def test_sampling_hits_contamination(tmp_path):
    env = setup_test_with_fixtures(tmp_path, PQA_REFERENCE, "long_document.jsonl", "default.yaml")
    # the contaminated questions start at token positions 219 and 387: sampling 0, 219, 438, ...
    execute_detect(env, "--sample-every-m-tokens", "219", "--question-max-consecutive-misses", "5")
    reports = read_report_files(env.report_dir)
    assert reports, "sampling that hits the contaminated region finds it"
    assert any(r.get("training_line") == 0 for r in reports)


def test_sampling_misses_contamination(tmp_path):
    env = setup_test_with_fixtures(tmp_path, PQA_REFERENCE, "long_document.jsonl", "default.yaml")
    execute_detect(env, "--sample-every-m-tokens", "600", "--question-max-consecutive-misses", "1")
    assert read_report_files(env.report_dir) == [], "sampling beyond the document's length finds nothing"


_SAMPLING_CONFIG = """
mode: simple
content_key: text
tokenizer_str: word
ngram_size: 5
question_threshold: 0.8
answer_threshold: 0.8
passage_threshold: 0.8
sample_every_m_tokens: {every}
question_max_consecutive_misses: {misses}
"""


def _sampling_run(root: Path, every: int, misses: int) -> list[dict]:
    env = _new_env(root)
    shutil.copy(FIXTURES / "test-reference" / PQA_REFERENCE, env.reference_dir)
    shutil.copy(FIXTURES / "training" / "long_document.jsonl", env.training_dir)
    config = yaml.safe_load(_SAMPLING_CONFIG.format(every=every, misses=misses))
    config["reference_dir"] = str(env.reference_dir)  # upstream writes this legacy key too
    _write_config(env, config)
    execute_detect(env)
    return read_report_files(env.report_dir)


def test_sampling_with_different_intervals(tmp_path):
    moderate = _sampling_run(tmp_path / "moderate", 100, 3)
    dense = _sampling_run(tmp_path / "dense", 25, 10)
    assert len(dense) >= len(moderate), "denser sampling finds at least as much"


def test_long_document_line_count_sanity():
    """The sampling tests rely on long_document.jsonl being a single line of several hundred tokens."""
    lines = list(iter_lines(FIXTURES / "training" / "long_document.jsonl"))
    assert len(lines) == 1
    assert len(json.loads(lines[0])["text"].split()) > 200
