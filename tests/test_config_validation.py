"""Configuration validation (issue 9, item 13): one strict model per configuration, for `decon
detect`, `decon server` and the orchestrator; one line naming the key and the file."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from decon.cli import main
from decon.common.config import DetectionConfig, load_config_file
from orchestrator.config import build_config

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures"
QA_REF = FIX / "test-reference" / "question_answer_reference.jsonl"
BINARY_YAML = bytes(range(256)) * 4

BAD_VALUES = [
    ("ngram_size: true", "ngram_size"),
    ("ngram_size: 2.9", "ngram_size"),
    ("ngram_size: 0", "ngram_size"),
    ("ngram_size: -3", "ngram_size"),
    ("ngram_size: 1e9", "ngram_size"),
    ("ngram_size: 1000000000", "ngram_size"),
    ("answer_ngram_size: 0", "answer_ngram_size"),
    ("contamination_score_threshold: 5", "contamination_score_threshold"),
    ("contamination_score_threshold: .nan", "contamination_score_threshold"),
    ("content_key: [a, b]", "content_key"),
    ("purify: maybe", "purify"),
    ("max_line_bytes: 0", "max_line_bytes"),
    ("worker_threads: 0", "worker_threads"),
    ("no_such_option: 1", "no_such_option"),
    ("answer_threshold: 7", "answer_threshold"),
]


def _decon(*args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "decon"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "decon"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=120)


def _setup(tmp: Path) -> tuple[Path, Path]:
    train, refs = tmp / "train", tmp / "refs"
    train.mkdir()
    refs.mkdir()
    shutil.copy(FIX / "training" / "clean.jsonl", train)
    shutil.copy(QA_REF, refs)
    return train, refs


def _one_error_line(err: str) -> str:
    errors = [ln for ln in err.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


@pytest.mark.parametrize("text,key", BAD_VALUES)
def test_detect_rejects_bad_config_value(text, key, tmp_path, capsys):
    train, refs = _setup(tmp_path)
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"content_key: text\n{text}\n")
    rc = main(["detect", "--config", str(cfg), "--training-dir", str(train), "--evals-dir", str(refs),
               "--no-index-cache", "--report-output-dir", str(tmp_path / "out")])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 2
    assert str(cfg) in line and f"'{key}'" in line, line
    assert not (tmp_path / "out").exists()


def test_detect_rejects_binary_config_file(tmp_path, capsys):
    train, refs = _setup(tmp_path)
    cfg = tmp_path / "binary.yaml"
    cfg.write_bytes(BINARY_YAML)
    rc = main(["detect", "--config", str(cfg), "--training-dir", str(train), "--evals-dir", str(refs)])
    assert rc == 2
    assert str(cfg) in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("flag,value", [("--ngram-size", "0"), ("--contamination-score-threshold", "nan"),
                                        ("--max-line-bytes", "-1"), ("--answer-ngram-size", "100000")])
def test_detect_rejects_bad_flag_value(flag, value, tmp_path, capsys):
    train, refs = _setup(tmp_path)
    rc = main(["detect", flag, value, "--training-dir", str(train), "--evals-dir", str(refs), "--no-index-cache"])
    assert rc == 2
    assert flag[2:].replace("-", "_") in _one_error_line(capsys.readouterr().err)


def test_server_rejects_bad_config_at_start(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("ngram_size: true\n")
    proc = _decon("server", "--config", str(cfg), "--port", "0", "--reference-input", str(FIX / "test-reference"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = _one_error_line(proc.stderr)
    assert str(cfg) in line and "'ngram_size'" in line


@pytest.mark.parametrize("text,key", [
    ("poll_interval: .nan", "poll_interval"),
    ("s5cmd_workers: true", "s5cmd_workers"),
    ("download_batch_size: 2.5", "download_batch_size"),
    ("cleanup_delay: -1", "cleanup_delay"),
    ("server_url: [a, b]", "server_url"),
    ("bogus_key: 1", "bogus_key"),
])
def test_orchestrator_rejects_bad_config_value(text, key, tmp_path):
    cfg = tmp_path / "orch.yaml"
    cfg.write_text(f"remote_file_input: s3://in/data\nremote_report_output_dir: s3://out/reports\n{text}\n")
    proc = subprocess.run([sys.executable, "-m", "decon", "orchestrate", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    errors = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "Configuration error" in ln]
    assert len(errors) == 1 and key in errors[0] and str(cfg) in errors[0], proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_orchestrator_rejects_binary_config(tmp_path):
    cfg = tmp_path / "orch.yaml"
    cfg.write_bytes(BINARY_YAML)
    proc = subprocess.run([sys.executable, "-m", "decon", "orchestrate", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert str(cfg) in proc.stdout + proc.stderr


OPTION_FILES = [p for p in sorted((ROOT / "config").glob("*.yaml")) + sorted((FIX / "configs").glob("*.yaml"))
                if p.name != "evals.yaml"]  # evals.yaml is the `decon evals` download list, not options


@pytest.mark.parametrize("path", OPTION_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_and_upstream_config_files_still_load(path):
    if path.name == "orchestration.yaml":
        cfg = build_config(path, environ={})
        assert cfg.remote_file_input.startswith("s3://") and cfg.poll_interval == 5.0
        return
    cfg = load_config_file(path)
    assert isinstance(cfg, DetectionConfig) and cfg.ngram_size == 5 and cfg.mode == "simple"
