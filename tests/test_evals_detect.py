"""The reference set `decon evals --download` writes is what `decon detect` indexes."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import yaml

from decon.cli import main

QUESTIONS = [
    "which planet in the solar system has the longest day measured against its own orbital year",
    "a farmer plants rows of apple trees with eleven trees in each row and sells half of the apples",
    "what process do green plants use to convert sunlight water and carbon dioxide into glucose",
]


def test_normalised_evals_find_injected_question(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DECON_QUIET", "1")
    rows = [{"question": q, "choices": ["one answer", "another answer"], "label": i % 2}
            for i, q in enumerate(QUESTIONS)]
    src = tmp_path / "mini.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = tmp_path / "evals.yaml"
    config.write_text(yaml.safe_dump({"evals": {"mini": {
        "local_path": str(src), "splits": ["train"], "prompt": "question",
        "answers": [{"expand_choices": {"field": "choices", "correct_index": "label"}}]}}}))
    refs = tmp_path / "refs"
    assert main(["evals", "--download", "--config", str(config), "--output-dir", str(refs)]) == 0

    train = tmp_path / "train"
    train.mkdir()
    filler = "the weather report said it would rain in the afternoon and people carried umbrellas to work. "
    docs = [filler * 3, filler + QUESTIONS[1] + " the answer is another answer. " + filler * 2, filler * 4]
    (train / "corpus.jsonl").write_bytes(b"".join(orjson.dumps({"text": d}) + b"\n" for d in docs))
    out = tmp_path / "reports"
    rc = main(["detect", "--training-dir", str(train), "--evals-dir", str(refs), "--report-output-dir", str(out),
               "--worker-threads", "1", "--no-index-cache", "--eval-min-token-length", "5"])
    assert rc == 0
    report = out / "corpus-simple-0.80.jsonl"
    records = [orjson.loads(x) for x in report.read_bytes().splitlines()]
    assert {r["training_line"] for r in records} == {1}
    assert {r["eval_key"] for r in records} == {"mini"}
    assert {r["eval_instance_index"] for r in records} == {1}
    assert all(r["eval_question_text"] == QUESTIONS[1] for r in records)
    # the reported record is the correct choice, which the document contains
    assert all(r["eval_answer_text"] == "another answer" for r in records)
