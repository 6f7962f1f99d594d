"""`decon explain`: its verdict agrees with `decon detect` line by line, and one case per gate."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import test_recall as rc  # noqa: E402

from decon.cli import main  # noqa: E402
from decon.common.config import DetectionConfig  # noqa: E402
from decon.detect.api import build_index  # noqa: E402
from decon.detect.detection import Scanner  # noqa: E402
from decon.explain.core import Explainer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GOLDEN_INPUT = Path(__file__).resolve().parent / "golden" / "synthetic-input"

refs = rc.refs  # the invented reference set of test_recall (module-scoped fixture)


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("DECON_QUIET", "1")


def _gates(candidate: dict) -> dict[str, dict]:
    return {g["name"]: g for g in candidate["gates"]}


def _explainer(evals: Path, **options) -> Explainer:
    cfg = DetectionConfig(evals_dir=str(evals), **options)
    return Explainer(Scanner(build_index(cfg, progress=False, use_cache=False), cfg))


def _report_lines(out: Path) -> dict[int, set[tuple[str, int]]]:
    got: dict[int, set[tuple[str, int]]] = {}
    for p in out.glob("*.jsonl"):
        for line in p.read_bytes().splitlines():
            e = orjson.loads(line)
            got.setdefault(e["training_line"], set()).add((e["eval_key"], e["eval_instance_index"]))
    return got


@pytest.mark.slow
@pytest.mark.parametrize("recall", [False, True])
def test_verdict_agrees_with_detect_on_every_line(tmp_path, refs, recall):
    """Every line of a labelled corpus: explain's verdict and reported instances equal detect's."""
    train = tmp_path / "train.jsonl"
    if recall:
        texts = [t for pair in zip(_recall_texts(), [rc.PROSE] * 100, strict=False) for t in pair]
        train.write_bytes(b"\n".join(orjson.dumps({"text": t}) for t in texts) + b"\n")
        evals = refs
    else:
        with gzip.open(GOLDEN_INPUT / "synthetic.jsonl.gz", "rb") as src:
            train.write_bytes(b"".join(src.readlines()[:1200]))
        evals = GOLDEN_INPUT / "refs"
    flags = ["--recall"] if recall else []
    assert main(["detect", "--worker-threads", "1", "--no-index-cache", "--training-dir", str(train),
                 "--evals-dir", str(evals), "--report-output-dir", str(tmp_path / "out"), *flags]) == 0
    reported = _report_lines(tmp_path / "out")
    assert reported, "the corpus has contaminated lines"
    ex = _explainer(evals, recall=recall)
    lines = [orjson.loads(x)["text"] for x in train.read_bytes().splitlines()]
    for n, text in enumerate(lines):
        got = ex.explain(text)
        assert got["contaminated"] == (n in reported), n
        flagged = {(c["eval_key"], c["eval_instance_index"]) for c in got["candidates"] if c["contaminated"]}
        assert flagged == reported.get(n, set()), n


def _recall_texts() -> list[str]:
    return [f"Question: {rc.GSM_Q}\nAnswer: #### 66", rc.GSM_Q, f"{rc.SHORT_Q} {rc.SHORT_CHOICES[2]}",
            f"{rc.SHORT_Q} the Danube", f"{rc.STEM} whales are mammals", f"{rc.STEM} {rc.PROSE}",
            f"{rc.LONG_MC_Q} {rc.LONG_MC_CHOICES[0]}", f"{rc.PROSE}. {rc.ALONE_Q} {rc.PROSE}."]


def test_eval_too_short_to_index(refs):
    got = _explainer(refs).explain(f"{rc.SHORT_Q} {rc.SHORT_CHOICES[2]}", eval_key="mmlux", instance=1)
    (c,) = got["candidates"]
    gates = c["gates"]
    assert [g["name"] for g in gates] == ["indexed"] * 4  # one per record (choice) of the instance
    assert all(not g["passed"] and g["value"] < g["bound"] == 20 and "eval_min_token_length" in g["detail"]
               for g in gates)


def test_eval_too_short_to_index_is_found_by_recall(refs):
    got = _explainer(refs, recall=True).explain(f"{rc.SHORT_Q} {rc.SHORT_CHOICES[2]}", eval_key="mmlux",
                                                instance=1)
    (c,) = got["candidates"]
    assert got["contaminated"] and c["contaminated"] and c["methods"] == ["short_exact"]
    recall = _gates(c)["recall"]
    assert recall["passed"] and recall["detail"].startswith("short_exact: whole question equal token by token")


def test_short_document_is_skipped(refs):
    got = _explainer(refs).explain(" ".join(rc.GSM_Q.split()[:6]))
    (c,) = [c for c in got["candidates"] if c["eval_key"] == "gsmx"]
    g = _gates(c)["document_length"]
    assert not g["passed"] and g["value"] < g["bound"] == 10 and "probed" not in _gates(c)
    assert not got["contaminated"]


def test_missed_probe_and_a_probe_that_lands(refs):
    """Two n-grams of the question: whether a probe lands on them depends on where they start."""
    ex = _explainer(refs)
    fragment = " ".join(rc.GSM_Q.split()[10:16])
    seen = {}
    for k in range(10):
        got = ex.explain(" ".join(rc.PROSE.split()[:k + 12]) + " " + fragment + " " + rc.PROSE)
        c = next(c for c in got["candidates"] if c["eval_key"] == "gsmx")
        seen[_gates(c)["probed"]["passed"]] = _gates(c)
    missed, landed = seen[False], seen[True]
    assert missed["probed"]["bound"] == 10 and "probes land every 10 tokens" in missed["probed"]["detail"]
    assert "cluster" not in missed  # the walk never reached this eval record
    assert not landed["cluster"]["passed"]  # reached, but two n-grams are far from the whole question


def test_cluster_cut_by_misses(refs):
    words = rc.GSM_Q.split()
    cut = " ".join(words[:12]) + " " + rc.PROSE + " " + " ".join(words[12:])
    got = _explainer(refs).explain(cut)
    c = next(c for c in got["candidates"] if c["eval_key"] == "gsmx")
    g = _gates(c)["cluster"]
    assert not g["passed"] and g["value"] < g["bound"] and "11 consecutive misses" in g["detail"]
    assert not got["contaminated"]
    one_word = " ".join(words[:20] + ["zebra"] + words[21:])  # one changed word: misses, cluster holds
    c = next(c for c in _explainer(refs).explain(one_word)["candidates"] if c["eval_key"] == "gsmx")
    g = _gates(c)["cluster"]
    assert g["passed"] and g["value"] < 1.0
    misses = int(g["detail"].split(", ")[1].split(" ")[0])
    assert 1 <= misses <= 7  # the n-grams over the changed word's tokens


def test_answer_missing_scores_just_under_the_threshold(refs):
    got = _explainer(refs).explain(f"{rc.GSM_Q} {rc.PROSE}")
    c = next(c for c in got["candidates"] if c["eval_key"] == "gsmx")
    gates = _gates(c)
    assert gates["cluster"]["passed"] and gates["cluster"]["value"] == 1.0
    assert not gates["answer"]["passed"] and gates["answer"]["value"] == 0.0
    assert "not found" in gates["answer"]["detail"]
    score = gates["score"]
    assert not score["passed"] and 0.7 <= score["value"] < score["bound"] == pytest.approx(0.8)
    assert not got["contaminated"] and not c["contaminated"]
    assert c["matched_text"] and "【" in c["matched_text"]


def test_answer_found_and_flagged(refs):
    got = _explainer(refs).explain(f"Question: {rc.GSM_Q}\nAnswer: {rc.GSM_A}")
    c = got["candidates"][0]
    assert got["contaminated"] and c["contaminated"] and c["eval_key"] == "gsmx"
    gates = _gates(c)
    assert gates["answer"]["passed"] and gates["score"]["passed"] and gates["reported"]["passed"]
    assert "⟦" in c["matched_text"]


def test_clean_line(refs):
    got = _explainer(refs).explain(rc.PROSE)
    assert got == {"contaminated": False, "document_tokens": got["document_tokens"], "matches": [],
                   "candidates": []}


def _cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "decon", "explain", "--no-index-cache", *args], input=stdin,
                          capture_output=True, cwd=ROOT, env={"DECON_QUIET": "1", "PATH": "/usr/bin:/bin"})


def test_cli_json_from_a_training_file_line(tmp_path, refs):
    train = tmp_path / "t.jsonl.gz"
    with gzip.open(train, "wb") as fh:
        fh.write(orjson.dumps({"text": rc.PROSE}) + b"\n" + orjson.dumps({"text": f"{rc.GSM_Q} #### 66"}) + b"\n")
    proc = _cli("--training-file", str(train), "--line", "1", "--evals-dir", str(refs), "--json")
    assert proc.returncode == 0, proc.stderr
    got = orjson.loads(proc.stdout)
    assert got["contaminated"] is False
    c = next(c for c in got["candidates"] if c["eval_key"] == "gsmx")
    assert {"eval_key", "eval_instance_index", "gates"} <= set(c)
    assert all({"name", "value", "bound", "passed"} <= set(g) for g in c["gates"])
    proc = _cli("--training-file", str(train), "--line", "1", "--evals-dir", str(refs), "--json", "--recall")
    got = orjson.loads(proc.stdout)
    assert got["contaminated"] is True and got["matches"][0]["method"] == "question_answer"


def test_stdin_that_is_too_long_or_not_utf8_is_one_line(refs):
    proc = _cli("--evals-dir", str(refs), "--max-line-bytes", "100", stdin=b"word " * 100)
    assert proc.returncode != 0
    assert proc.stderr.decode().strip().splitlines() == [
        "Error: stdin is longer than max_line_bytes (100); pass a training file line or raise --max-line-bytes"]
    proc = _cli("--evals-dir", str(refs), stdin=b"caf\xe9 au lait")
    assert proc.returncode != 0 and proc.stderr.decode().strip() == "Error: stdin is not UTF-8 text"


def test_cli_table_from_stdin(refs):
    proc = _cli("--evals-dir", str(refs), stdin=f"Question: {rc.GSM_Q}\nAnswer: {rc.GSM_A}".encode())
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    assert out.startswith("Verdict: CONTAMINATED") and "gsmx instance 0" in out and "score" in out


@pytest.mark.parametrize("args, message", [
    (["--training-file", "{tmp}/t.jsonl", "--line", "5"], "has no line 5 (it has 2 lines"),
    (["--training-file", "{tmp}/bin.jsonl", "--line", "0"], "line 0 of {tmp}/bin.jsonl is not valid JSON"),
    (["--training-file", "{tmp}/missing.jsonl", "--line", "0"], "does not exist"),
    (["--text", "x", "--eval-key", "nope", "--eval-instance", "1"], "unknown eval key 'nope'"),
    (["--text", "x", "--eval-key", "gsmx"], "--eval-key and --eval-instance go together"),
    (["--training-file", "{tmp}/t.jsonl"], "--training-file needs --line N"),
])
def test_errors_are_one_line(tmp_path, refs, args, message):
    (tmp_path / "t.jsonl").write_text('{"text": "a"}\n{"text": "b"}\n')
    (tmp_path / "bin.jsonl").write_bytes(bytes(range(256)) * 4)
    proc = _cli(*[a.format(tmp=tmp_path) for a in args], "--evals-dir", str(refs))
    err = proc.stderr.decode().strip().splitlines()
    assert proc.returncode != 0
    assert len(err) == 1 and err[0].startswith("Error: ") and message.format(tmp=tmp_path) in err[0], err


def test_recall_gates_name_the_rule_or_the_bound_that_failed(refs):
    ex = _explainer(refs, recall=True)
    words = rc.GSM_Q.split()
    got = ex.explain(" ".join(words[:-4]) + " #### 66")  # the question without its last words
    c = next(c for c in got["candidates"] if c["eval_key"] == "gsmx")
    g = _gates(c)
    assert g["recall_proposed"]["passed"] and g["recall_coverage"]["passed"]
    assert not g["recall_question_end"]["passed"] and g["recall_question_end"]["bound"] == 2
    assert not g["recall_rule"]["passed"] and not got["contaminated"]

    got = ex.explain(f"{rc.STEM} {rc.PROSE}", eval_key="mmlux", instance=10)  # too short for SIMPLE's index
    (c,) = got["candidates"]
    g = _gates(c)
    assert not g["indexed"]["passed"]
    assert g["recall_proposed"]["passed"] and not g["recall_answer"]["passed"]
    assert not g["recall_rule"]["passed"] and "one instance (has 6)" in g["recall_rule"]["detail"]

    got = ex.explain(f"{rc.STEM} spiders are insects")  # instance 11's correct choice
    (c,) = [c for c in got["candidates"] if c["contaminated"]]
    g = _gates(c)
    assert (c["eval_key"], c["eval_instance_index"]) == ("mmlux", 11)
    assert g["recall_answer"]["value"] == "correct_choice" and g["recall_rule"]["value"] == "short_exact"
    assert g["recall"]["passed"]
