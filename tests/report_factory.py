"""Helpers (no tests): synthetic report files for the HTML report tests, SIMPLE and MinHash formats."""

from __future__ import annotations

import random
from pathlib import Path

import orjson

SUITES = ("mmlu", "gsm8k", "agi_eval", "arc_challenge", "hellaswag", "truthfulqa")


def _vocabulary(rng: random.Random, size: int = 6000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(2, 10))) for _ in range(size)]


def _words(rng: random.Random, vocab: list[str], n: int) -> str:
    return " ".join(rng.choices(vocab, k=n))


def write_simple_reports(directory: Path, matches: int, files: int = 20, seed: int = 7) -> Path:
    """``matches`` SIMPLE-mode records spread over ``files`` report files, with realistic text sizes
    (training text ~750 characters with question, answer and passage spans)."""
    rng = random.Random(seed)
    vocab = _vocabulary(rng)
    directory.mkdir(parents=True, exist_ok=True)
    questions = [(_words(rng, vocab, rng.randint(8, 40)), _words(rng, vocab, rng.randint(1, 8)),
                  _words(rng, vocab, rng.randint(0, 30)) or None) for _ in range(max(1, matches // 6))]
    handles = [open(directory / f"shard-{i:03d}-simple-0.80.jsonl", "wb") for i in range(files)]
    try:
        for n in range(matches):
            q_idx = rng.randrange(len(questions))
            question, answer, passage = questions[q_idx]
            before, after = _words(rng, vocab, rng.randint(20, 50)), _words(rng, vocab, rng.randint(20, 50))
            if rng.random() < 0.15:  # a near match: the training copy has one word changed
                question = question.replace(question.split()[0], rng.choice(vocab), 1)
            text = f"{before} ⟨ {passage}⟩ 【 {question}】 answer ⟦ {answer}⟧ {after}" if passage else \
                f"{before}【 {question}】 answer ⟦ {answer}⟧ {after}"
            suite = SUITES[q_idx % len(SUITES)]
            record = {
                "training_file": f"shard-{n % files:03d}.jsonl", "training_line": n // files,
                "eval_key": suite, "eval_dataset": suite, "eval_line": q_idx, "eval_instance_index": q_idx,
                "reference_file": f"{suite}.jsonl", "contamination_score": round(0.8 + rng.random() * 0.2, 6),
                "method": "simple", "ngram_match_cnt": rng.randint(3, 300), "idf_overlap": rng.random(),
                "eval_question_text": question, "eval_answer_text": answer, "eval_passage_text": passage,
                "training_overlap_text": text, "split": "test",
            }
            handles[n % files].write(orjson.dumps(record) + b"\n")
    finally:
        for fh in handles:
            fh.close()
    return directory


def write_minhash_reports(directory: Path, rows: list[tuple[str, int, str, int, float]]) -> Path:
    """A report in the MinHash format: training_file, training_line, eval_dataset, eval_line,
    jaccard_similarity, method."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "minhash-report.jsonl", "wb") as fh:
        for training_file, training_line, eval_dataset, eval_line, jaccard in rows:
            fh.write(orjson.dumps({"training_file": training_file, "training_line": training_line,
                                   "eval_dataset": eval_dataset, "eval_line": eval_line,
                                   "jaccard_similarity": jaccard, "method": "minhash"}) + b"\n")
    return directory
