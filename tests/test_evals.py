"""Tests of ``decon evals``: listing reference sets and normalising datasets from local files.

No dataset hub is reachable in tests, so every extraction method is exercised through
``local_path`` sources; Hugging Face sources share the same code after loading.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

import decon
from decon.cli import main
from decon.evals import download

BUNDLED = Path(decon.__file__).parent.parent / "fixtures" / "reference"


def fp(passage: str | None, question: str, answer: str | None) -> str:
    return hashlib.sha256(f"{passage or ''}{question}{answer or ''}".encode()).hexdigest()[:16]


def rec(index: int, question: str, doc_id: int, *, key: str = "ds", split: str = "train", passage=None,
        answer=None, config=None, **extra: Any) -> dict:
    """An expected reference record, fields in the order decon writes them."""
    out: dict[str, Any] = {"eval_key": key, "eval_instance_index": index, "split": split, "question": question}
    if passage is not None:
        out["passage"] = passage
    if answer is not None:
        out["answer"] = answer
    out["config"] = config
    out["doc_id"] = doc_id
    out.update(extra)
    out["fingerprint"] = fp(passage, question, answer)
    return out


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_chunks(directory: Path, base: str) -> list[dict]:
    files = sorted(directory.glob(f"{base}-*.jsonl.gz"), key=lambda p: int(p.name[len(base) + 1 :].split(".")[0]))
    out = []
    for path in files:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            out.extend(json.loads(line) for line in handle)
    return out


def normalise(tmp_path: Path, entry: dict, rows: list[dict] | None = None, name: str = "ds",
              extra_args: tuple[str, ...] = ()) -> Path:
    """Write ``rows`` as a local JSONL dataset, run ``decon evals --download`` on it, return the output dir."""
    if rows is not None:
        entry = {"local_path": str(write_jsonl(tmp_path / f"{name}.jsonl", rows)), "splits": ["train"], **entry}
    config = tmp_path / "evals.yaml"
    config.write_text(yaml.safe_dump({"evals": {name: entry}}))
    out = tmp_path / "out"
    code = main(["evals", "--download", "--config", str(config), "--output-dir", str(out), *extra_args])
    assert code == 0
    return out


# -- answer extraction methods --------------------------------------------------------------


def test_simple_fields_nested_and_indexed(tmp_path: Path) -> None:
    rows = [
        {"q": "What is 2+2?", "a": {"value": "4", "alts": ["four", "IV"]}, "ctx": "arith"},
        {"q": "Blank answer?", "a": {"value": "  ", "alts": []}, "ctx": None},
        {"q": "   ", "a": {"value": "x", "alts": []}, "ctx": "skipped: blank prompt"},
        {"q": 7, "a": {"value": 3.5, "alts": ["y"]}, "ctx": "numbers"},
    ]
    out = normalise(tmp_path, {"prompt": "q", "passage": "ctx", "answers": ["a.value", "a.alts.1"]}, rows)
    assert read_chunks(out, "ds_train") == [
        rec(0, "What is 2+2?", 1, passage="arith", answer="4"),
        rec(0, "What is 2+2?", 2, passage="arith", answer="IV"),
        # no declared answer is meaningful: one record, whose answer falls back to the first
        # declared field as it is (upstream behaviour)
        rec(1, "Blank answer?", 3, answer="  "),
        rec(3, "7", 4, passage="numbers", answer="3.5"),
    ]


def test_date_answers_and_binary_transform(tmp_path: Path) -> None:
    rows = [
        {"question": "When?", "answer": {"date": {"day": "4", "month": "July", "year": "1776"}}, "label": 1},
        {"question": "Never?", "answer": {"date": {"day": "", "month": "", "year": ""}}, "label": 0},
    ]
    entry = {"prompt": "question", "answers": ["answer.date", {"field": "label", "transform": "binary_to_bool"}]}
    out = normalise(tmp_path, entry, rows)
    assert read_chunks(out, "ds_train") == [
        rec(0, "When?", 1, answer="July 4 1776"),
        rec(0, "When?", 2, answer="true"),
        rec(1, "Never?", 3, answer="false"),
    ]


def test_expand_choices_list_and_dict(tmp_path: Path) -> None:
    rows = [
        {"question": "Pick", "choices": {"text": ["red", "blue"], "label": ["A", "B"]}, "answerKey": "B",
         "opts": ["x", "y", "z"], "gold": 2},
    ]
    entry = {
        "prompt": "question",
        "answers": [
            {"expand_choices": {"field": "choices", "correct_index": "answerKey"}},  # dict with labels
            {"expand_choices": {"field": "choices.text", "correct_index": "answerKey"}},  # list, letter
            {"expand_choices": {"field": "opts", "correct_index": "gold"}},  # list, integer
            {"expand_choices": {"field": "opts", "correct_index": None}},  # unknown correct option
        ],
    }
    out = normalise(tmp_path, entry, rows)
    expected = []
    doc = 1
    for answer, correct in [("red", False), ("blue", True), ("red", False), ("blue", True),
                            ("x", False), ("y", False), ("z", True), ("x", None), ("y", None), ("z", None)]:
        expected.append(rec(0, "Pick", doc, answer=answer, is_correct=correct))
        doc += 1
    assert read_chunks(out, "ds_train") == expected


@pytest.mark.parametrize(
    ("transform", "label", "fields", "correct_suffix"),
    [
        ("numbers_to_letters", "2", {"answerA": "a", "answerB": "b", "answerC": "c"}, "B"),
        ("add_one", 0, {"answer1": "a", "answer2": "b"}, "1"),
        ("index_to_letter", 2, {"answera": "a", "answerb": "b", "answerc": "c"}, "c"),
        ("binary_to_bool", 1, {"answerfalse": "no", "answertrue": "yes"}, "true"),
        (None, "C", {"answerC": "c", "answerA": "a"}, "C"),
    ],
)
def test_expand_prefix_transforms(tmp_path: Path, transform, label, fields, correct_suffix) -> None:
    spec: dict[str, Any] = {"prefix": "answer", "suffix_match_field": "label"}
    if transform:
        spec["label_transform"] = transform
    rows = [{"question": "Which?", "label": label, **fields}]
    out = normalise(tmp_path, {"prompt": "question", "answers": [{"expand_prefix": spec}]}, rows)
    expected = [
        rec(0, "Which?", doc, answer=fields[f"answer{suffix}"], is_correct=suffix == correct_suffix)
        for doc, suffix in enumerate(sorted(name[len("answer"):] for name in fields), start=1)
    ]
    assert read_chunks(out, "ds_train") == expected


def test_indexed_prefix_and_array(tmp_path: Path) -> None:
    rows = [
        {"goal": "Open a jar", "sol1": "twist", "sol2": "smash", "label": 1, "options": ["p", "q", "r"], "key": "C"},
        {"goal": "Boil water", "sol1": "heat", "sol2": "freeze", "label": 0, "options": ["p", "q"], "key": 1},
    ]
    entry = {
        "prompt": "goal",
        "answers": [
            {"indexed": {"prefix": "sol", "key_field": "label", "label_transform": "numbers_to_letters"}},
            {"indexed": {"prefix": "sol", "key_field": "label"}},
            {"indexed": {"field": "options", "key_field": "key"}},
        ],
    }
    out = normalise(tmp_path, entry, rows)
    # numbers_to_letters turns 1 into "A" (no field solA) and 0 into "A" as well
    assert read_chunks(out, "ds_train") == [
        rec(0, "Open a jar", 1, answer="twist"),  # sol + 1
        rec(0, "Open a jar", 2, answer="r"),  # options[C]
        rec(1, "Boil water", 3, answer="q"),  # options[1]; there is no sol0
    ]


def test_legacy_field_with_key_field(tmp_path: Path) -> None:
    rows = [
        {"q": "Which one?", "options": ["zero", "one", "two"], "idx": "2"},
        {"q": "By letter?", "options": ["alpha", "beta"], "idx": "b"},
        {"q": "Out of range", "options": ["only"], "idx": 5},
    ]
    entry = {"prompt": "q", "answers": [{"field": "options", "key_field": "idx"}, {"field": "q"}]}
    out = normalise(tmp_path, entry, rows)
    assert read_chunks(out, "ds_train") == [
        rec(0, "Which one?", 1, answer="two"),
        rec(0, "Which one?", 2, answer="Which one?"),
        rec(1, "By letter?", 3, answer="beta"),
        rec(1, "By letter?", 4, answer="By letter?"),
        rec(2, "Out of range", 5, answer="Out of range"),
    ]


def test_parallel_arrays(tmp_path: Path) -> None:
    rows = [
        {"story": "Once upon a time", "questions": {"text": ["Who?", "", "Where?"]},
         "answers": {"text": ["a fox", "skip", "a wood"]}},
        {"story": "Short", "questions": {"text": ["Why?"]}, "answers": {"text": []}},
    ]
    entry = {"passage": "story", "prompts": {"array": "questions.text"}, "answers": [{"array": "answers.text"}]}
    out = normalise(tmp_path, entry, rows)
    assert read_chunks(out, "ds_train") == [
        rec(0, "Who?", 1, passage="Once upon a time", answer="a fox", sub_index=0),
        rec(0, "Where?", 2, passage="Once upon a time", answer="a wood", sub_index=2),
        rec(1, "Why?", 3, passage="Short", sub_index=0),
    ]


def test_concat_messages_and_append_field(tmp_path: Path) -> None:
    rows = [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": ""},
                      {"role": "user", "content": "Plan a trip"}], "instruction": "Be brief", "output": "OK"},
        {"messages": [], "instruction": "Only this", "output": "Sure"},
    ]
    entry = {
        "prompt": {"concat_messages": {"field": "messages", "content_field": "content"}, "append_field": "instruction"},
        "answers": ["output"],
    }
    out = normalise(tmp_path, entry, rows)
    # an empty message list gives no prompt at all, so the second example is dropped
    assert read_chunks(out, "ds_train") == [rec(0, "Hi Plan a trip Be brief", 1, answer="OK")]


def test_no_answer_splits_and_hf_config(tmp_path: Path) -> None:
    data = {"train": [{"q": "A?", "a": "1"}], "test": [{"q": "B?", "a": "hidden"}]}
    (tmp_path / "multi.json").write_text(json.dumps(data))
    entry = {"local_path": str(tmp_path / "multi.json"), "hf_config": "main", "splits": ["train", "test", "dev"],
             "no_answer_splits": ["test"], "prompt": "q", "answers": ["a"]}
    out = normalise(tmp_path, entry)
    assert read_chunks(out, "ds_train") == [rec(0, "A?", 1, answer="1", config="main")]
    assert read_chunks(out, "ds_test") == [rec(0, "B?", 2, split="test", config="main")]
    assert not list(out.glob("ds_dev-*"))


def test_json_list_parquet_and_split_mapping(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.Table.from_pylist([{"q": "P1", "a": "x"}, {"q": "P2", "a": "y"}]), tmp_path / "t.parquet")
    (tmp_path / "v.json").write_text(json.dumps([{"q": "J1", "a": "z"}]))
    entry = {"local_path": {"test": "t.parquet", "validation": "v.json"}, "splits": ["validation", "test"],
             "prompt": "q", "answers": ["a"]}
    out = normalise(tmp_path, entry)  # relative paths resolve against the config's folder
    assert read_chunks(out, "ds_validation") == [rec(0, "J1", 1, split="validation", answer="z")]
    assert read_chunks(out, "ds_test") == [
        rec(0, "P1", 2, split="test", answer="x"),
        rec(1, "P2", 3, split="test", answer="y"),
    ]


def test_missing_columns_read_as_null(tmp_path: Path) -> None:
    rows = [{"q": "first", "optA": "1", "optB": "2", "lab": "A"}, {"q": "second", "optA": "3", "lab": "A"}]
    entry = {"prompt": "q", "answers": [{"expand_prefix": {"prefix": "opt", "suffix_match_field": "lab"}}]}
    out = normalise(tmp_path, entry, rows)
    assert [r["answer"] for r in read_chunks(out, "ds_train")] == ["1", "2", "3"]


# -- doc ids, chunks, files ----------------------------------------------------------------


def test_doc_ids_run_across_datasets(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "one.jsonl", [{"q": f"one {i}", "a": str(i)} for i in range(3)])
    write_jsonl(tmp_path / "two.jsonl", [{"q": f"two {i}"} for i in range(2)])
    config = tmp_path / "evals.yaml"
    config.write_text(yaml.safe_dump({"evals": {
        "one": {"local_path": "one.jsonl", "splits": ["train"], "prompt": "q", "answers": ["a"]},
        "two": {"local_path": "two.jsonl", "splits": ["train"], "prompt": "q"},
    }}))
    out = tmp_path / "out"
    assert main(["evals", "--download", "--config", str(config), "--output-dir", str(out)]) == 0
    assert [r["doc_id"] for r in read_chunks(out, "one_train")] == [1, 2, 3]
    assert read_chunks(out, "two_train") == [rec(i, f"two {i}", 4 + i, key="two") for i in range(2)]
    # a single eval starts counting at 1 again
    assert main(["evals", "--eval", "two", "--config", str(config), "--output-dir", str(out)]) == 0
    assert [r["doc_id"] for r in read_chunks(out, "two_train")] == [1, 2]


def test_chunking(tmp_path: Path) -> None:
    rows = [{"q": f"question number {i} " + "x" * 40, "a": str(i)} for i in range(50)]
    limit = 1000
    out = normalise(tmp_path, {"prompt": "q", "answers": ["a"]}, rows, extra_args=("--chunk-bytes", str(limit)))
    files = sorted(out.glob("ds_train-*.jsonl.gz"))
    assert len(files) > 3
    names = {p.name for p in files}
    assert names == {f"ds_train-{n}.jsonl.gz" for n in range(1, len(files) + 1)}
    everything = []
    for n in range(1, len(files) + 1):
        raw = gzip.decompress((out / f"ds_train-{n}.jsonl.gz").read_bytes())
        assert len(raw) <= limit
        lines = raw.decode().splitlines(keepends=True)
        if n < len(files):
            # a chunk is closed only when the next line would not fit
            nxt = gzip.decompress((out / f"ds_train-{n + 1}.jsonl.gz").read_bytes()).decode().splitlines(True)[0]
            assert len(raw) + len(nxt.encode()) > limit
        everything.extend(json.loads(line) for line in lines)
    assert everything == [rec(i, rows[i]["q"], i + 1, answer=str(i)) for i in range(50)]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left

    # a smaller rerun removes the now stale higher-numbered chunks
    normalise(tmp_path, {"prompt": "q", "answers": ["a"]}, rows[:2], extra_args=("--chunk-bytes", str(limit)))
    assert sorted(p.name for p in out.glob("ds_train-*")) == ["ds_train-1.jsonl.gz"]


def test_output_is_valid_reference_format(tmp_path: Path, capsys) -> None:
    rows = [{"question": f"Q{i}?", "choices": ["a", "b"], "answer": i % 2, "context": "ctx"} for i in range(4)]
    entry = {"prompt": "question", "passage": "context",
             "answers": [{"expand_choices": {"field": "choices", "correct_index": "answer"}}]}
    out = normalise(tmp_path, entry, rows)
    records = read_chunks(out, "ds_train")
    assert len(records) == 8
    for r in records:
        assert isinstance(r["eval_key"], str) and r["eval_key"]
        assert isinstance(r["eval_instance_index"], int)
        assert isinstance(r["split"], str)
        assert isinstance(r["question"], str) and r["question"].strip()
        assert isinstance(r["doc_id"], int)
        assert r["fingerprint"] == fp(r.get("passage"), r["question"], r.get("answer"))
        assert set(r) <= {"eval_key", "eval_instance_index", "split", "question", "passage", "answer", "doc_id",
                          "fingerprint", "is_correct", "sub_index", "config"}
    assert len({r["doc_id"] for r in records}) == len(records)
    capsys.readouterr()
    assert main(["evals", "--dir", str(out)]) == 0
    listing = capsys.readouterr().out
    assert any(line.split()[:7] == ["│", "ds", "│", "8", "│", "4", "│"] for line in listing.splitlines())


def test_serialisation_matches_bundled_files() -> None:
    """Bundled reference lines re-serialise byte for byte, with the same fingerprint."""
    from decon.evals.extract import fingerprint

    with gzip.open(BUNDLED / "gsm8k_test-1.jsonl.gz", "rt", encoding="utf-8") as handle:
        for _, line in zip(range(200), handle, strict=False):
            record = json.loads(line)
            stored = record.pop("fingerprint")
            assert fingerprint(record) == stored
            record["fingerprint"] = stored
            assert json.dumps(record) + "\n" == line


def test_failed_split_leaves_nothing_behind(tmp_path: Path, monkeypatch) -> None:
    import decon.evals.download as dl

    def exploding(*args, **kwargs):
        yield {"eval_key": "ds", "question": "q", "doc_id": 1}
        raise RuntimeError("boom")

    monkeypatch.setattr(dl, "build_records", exploding)
    write_jsonl(tmp_path / "ds.jsonl", [{"q": "x"}])
    with pytest.raises(RuntimeError):
        dl.process_eval("ds", {"local_path": str(tmp_path / "ds.jsonl"), "splits": ["train"], "prompt": "q"},
                        tmp_path / "out", [1], log=lambda _m: None)
    assert list((tmp_path / "out").iterdir()) == []


def test_bundled_prefix_copy(tmp_path: Path) -> None:
    entry = {"local_path": "bundled_evals/gsm8k_", "splits": ["train"]}
    out = normalise(tmp_path, entry, name="my_gsm8k")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["my_gsm8k_test-1.jsonl.gz", "my_gsm8k_train-1.jsonl.gz"]
    assert (out / "my_gsm8k_test-1.jsonl.gz").read_bytes() == (BUNDLED / "gsm8k_test-1.jsonl.gz").read_bytes()


# -- listing -------------------------------------------------------------------------------


def test_listing_bundled_counts(capsys) -> None:
    per_suite: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for path in BUNDLED.glob("*.jsonl.gz"):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                r = json.loads(line)
                c = per_suite[r["eval_key"]]
                c[0] += 1
                for i, name in enumerate(("question", "answer", "passage"), start=1):
                    if isinstance(r.get(name), str) and r[name].strip():
                        c[i] += 1
    assert main(["evals"]) == 0
    out = capsys.readouterr().out
    for suite, (records, q, a, p) in per_suite.items():
        row = next(line for line in out.splitlines() if line.startswith(f"│ {suite} "))
        cells = [c.strip() for c in row.strip("│").split("│")]
        assert cells[0] == suite
        assert [int(x) for x in (cells[1], cells[3], cells[4], cells[5])] == [records, q, a, p]
    assert main(["evals", "--stats"]) == 0
    assert "max Q" in capsys.readouterr().out


# -- user errors ---------------------------------------------------------------------------


def _clean_error(capsys, argv: list[str], needle: str) -> None:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("Error: ")
    assert needle in err


def test_missing_reference_dir(tmp_path: Path, capsys) -> None:
    _clean_error(capsys, ["evals", "--dir", str(tmp_path / "nope")], "reference directory not found")


def test_unknown_eval_name(tmp_path: Path, capsys) -> None:
    _clean_error(capsys, ["evals", "--eval", "no_such_eval", "--output-dir", str(tmp_path)], "no dataset 'no_such_eval'")


def test_missing_config(tmp_path: Path, capsys) -> None:
    _clean_error(capsys, ["evals", "--download", "--config", str(tmp_path / "x.yaml")], "evals config not found")


def test_missing_local_file(tmp_path: Path, capsys) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"evals": {"ds": {"local_path": "gone.jsonl", "splits": ["train"], "prompt": "q"}}}))
    _clean_error(capsys, ["evals", "--download", "--config", str(config), "--output-dir", str(tmp_path / "o")],
                 "local dataset file not found")


def test_corrupt_local_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "d.jsonl").write_text('{"q": "ok"}\n{broken\n')
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"evals": {"ds": {"local_path": "d.jsonl", "splits": ["train"], "prompt": "q"}}}))
    _clean_error(capsys, ["evals", "--download", "--config", str(config), "--output-dir", str(tmp_path / "o")],
                 "d.jsonl:2: not valid JSON")


def test_hf_source_without_datasets_library(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes "import datasets" fail
    assert not download.hf_available()
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"evals": {"gsm": {"hf_path": "openai/gsm8k", "splits": ["test"], "prompt": "q"}}}))
    _clean_error(capsys, ["evals", "--download", "--config", str(config), "--output-dir", str(tmp_path / "o")],
                 "pip install 'decon[hf]'")


def test_hf_path_uses_datasets_library(tmp_path: Path, monkeypatch) -> None:
    """A stand-in ``datasets`` module: the loaded splits go through the same extraction."""
    import types

    calls = []

    def load_dataset(path, name=None):
        calls.append((path, name))
        return {"test": [{"question": "2+3?", "answer": "5"}]}

    fake = types.ModuleType("datasets")
    fake.load_dataset = load_dataset
    monkeypatch.setitem(sys.modules, "datasets", fake)
    entry = {"hf_path": "org/set", "hf_config": "main", "splits": ["test"], "prompt": "question", "answers": ["answer"]}
    out = normalise(tmp_path, entry, name="hfset")
    assert calls == [("org/set", "main")]
    assert read_chunks(out, "hfset_test") == [rec(0, "2+3?", 1, key="hfset", split="test", answer="5", config="main")]


def test_bundled_config_parses() -> None:
    evals = download.load_config(download.DEFAULT_CONFIG)
    assert {"gsm8k", "mmlu", "agi_eval"} <= set(evals)
