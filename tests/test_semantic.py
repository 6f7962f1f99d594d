"""`decon detect --semantic`: reworded questions are found when numbers or answer agree, and only then.

The reference set is invented here (no eval text): a GSM8K-like worked problem with "#### N", a
multiple-choice instance (one record per choice, ``is_correct``), a templated family that differs
only in a number, and unrelated filler questions. The model is the real default (the decon[semantic]
extra), loaded offline.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from decon.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_recall import _detect, _fillers  # noqa: E402  (the same corpus runner and filler questions)

ROOT = Path(__file__).resolve().parent.parent
PROSE = ("The harbour office opens at nine and closes at five on weekdays, while the ferry keeps its own timetable "
         "through the winter months and the fishing boats come in with the evening tide.")

GSM_Q = ("Marisol bakes 14 trays of lemon biscuits for the Pellworth village fair. Each tray holds 26 biscuits, "
         "and her cousin Teodor eats 3 biscuits from every tray before the fair opens. How many biscuits are left "
         "for the fair?")
GSM_A = "Each tray keeps 26 - 3 = 23 biscuits.\n14 trays keep 14 * 23 = 322 biscuits.\n#### 322"
GSM_REWORDED = ("For the Pellworth village fair, Marisol bakes 14 trays of lemon biscuits with 26 biscuits on each tray. "
                "Her cousin Teodor eats 3 biscuits from every tray before the fair starts. How many biscuits are left "
                "over for the fair?")
GSM_OTHER_NUMBERS = GSM_REWORDED.replace("14 trays", "12 trays").replace("26", "30").replace("eats 3", "eats 4")
MC_Q = ("Which instrument did the Varnholt glassblowers guild use to measure the heat of its kilns before "
        "the copper pyrometer arrived in the eastern provinces?")
MC_CHOICES = ["a clay cone that slumped", "a brass thermometer", "a water clock", "a mercury barometer"]
MC_REWORDED = ("Before the copper pyrometer arrived in the eastern provinces, which instrument did the glassblowers "
               "guild of Varnholt use to measure how hot its kilns were?")


@pytest.fixture(scope="module")
def refs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("refs")
    recs = [{"eval_key": "gsmx", "eval_instance_index": 0, "split": "test", "question": GSM_Q, "answer": GSM_A,
             "doc_id": 1000}]
    recs += [{"eval_key": "mmlux", "eval_instance_index": 0, "split": "test", "question": MC_Q, "answer": c,
              "doc_id": 2000 + j, "is_correct": j == 0} for j, c in enumerate(MC_CHOICES)]
    (d / "r.jsonl").write_bytes(b"\n".join(orjson.dumps(r) for r in recs + _fillers(300)) + b"\n")
    return d


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("DECON_QUIET", "1")


def _found(entries: list[dict]) -> set[tuple[str, str]]:
    return {(e["eval_key"], e.get("method", "simple")) for e in entries}


def test_reworded_questions_are_found_only_with_semantic(tmp_path, refs):
    texts = [f"{PROSE} {GSM_REWORDED} Answer: 322. {PROSE}",
             f"{PROSE} {GSM_REWORDED}",  # numbers agree: no answer needed
             f"{MC_REWORDED} Answer: {MC_CHOICES[0]}.",
             PROSE]
    plain = _detect(tmp_path / "recall", refs, texts, "--recall")
    assert all(not v for v in plain.values())
    got = _detect(tmp_path / "semantic", refs, texts, "--semantic")
    assert _found(got[0]) == {("gsmx", "semantic")}
    assert _found(got[1]) == {("gsmx", "semantic")}
    assert _found(got[2]) == {("mmlux", "semantic")}
    assert got[3] == []
    e = got[0][0]
    ev = e["semantic_evidence"]
    assert e["eval_instance_index"] == 0 and e["contamination_score"] >= e["length_adjusted_question_threshold"]
    assert ev["cosine"] >= ev["cosine_threshold"] == 0.9
    assert ev["agreement"]["question_numbers"] == ["14", "26", "3"] == ev["agreement"]["numbers_found"]
    assert ev["model"].startswith("wordllama-0.4.0.post1/")
    assert "marisol" in ev["window_text"] and "marisol" in ev["eval_question_cleaned"]
    assert e["eval_question_text"] == GSM_Q and "training_overlap_text" in e
    mc = got[2][0]
    assert mc["semantic_evidence"]["agreement"]["answer"]["kind"] == "correct_choice"
    assert mc["is_correct"] is True


def test_other_numbers_or_a_wrong_answer_are_not_a_leak(tmp_path, refs):
    texts = [f"{PROSE} {GSM_OTHER_NUMBERS} Answer: 322.",  # a template with other numbers: cosine alone
             f"{MC_REWORDED} Answer: {MC_CHOICES[2]}.",  # the wrong choice
             f"{MC_REWORDED}",  # no numbers and no answer
             ]
    got = _detect(tmp_path, refs, texts, "--semantic")
    assert all(not v for v in got.values()), got


def test_semantic_leaves_simple_and_recall_entries_as_they_are(tmp_path, refs):
    texts = [f"{PROSE} {GSM_Q} #### 322", f"{PROSE} {GSM_REWORDED}"]
    recall = _detect(tmp_path / "r", refs, texts, "--recall")
    sem = _detect(tmp_path / "s", refs, texts, "--semantic")
    assert recall[0] == sem[0] and recall[0]  # the verbatim copy: the same entries, none added
    assert _found(sem[1]) == {("gsmx", "semantic")}


def test_a_high_threshold_finds_nothing(tmp_path, refs):
    got = _detect(tmp_path, refs, [f"{PROSE} {GSM_REWORDED}"], "--semantic", "--semantic-threshold", "0.999")
    assert got[0] == []


def test_semantic_from_a_config_file_implies_recall(tmp_path, refs):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("semantic: true\n")
    texts = [f"{PROSE} {GSM_REWORDED}", f"{PROSE} {GSM_Q} #### 322"]
    got = _detect(tmp_path, refs, texts, "--config", str(cfg))
    assert _found(got[0]) == {("gsmx", "semantic")}
    assert got[1]


def test_without_the_extra_semantic_is_a_one_line_error(tmp_path, refs, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wordllama" else real(name, *a))
    train = tmp_path / "t"
    train.mkdir()
    (train / "a.jsonl").write_text('{"text": "x"}\n')
    rc = main(["detect", "--training-dir", str(train), "--evals-dir", str(refs), "--report-output-dir",
               str(tmp_path / "o"), "--semantic"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and err[-1] == "Error: --semantic needs wordllama, an optional extra: pip install 'decon[semantic]'"


def test_semantic_is_simple_mode_only(tmp_path, refs, capsys):
    rc = main(["detect", "--training-dir", str(tmp_path), "--evals-dir", str(refs), "--mode", "minhash",
               "--semantic"])
    assert rc != 0 and "works with mode simple only" in capsys.readouterr().err


BLOCKED = """
import socket
def refuse(*a, **k):
    raise OSError("network blocked by the test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
from decon.detect.semantic_model import load_model
m = load_model()
e = m.embed(["the cat sat on the mat", "a cat was sitting on the mat", "interest rates rose in march"])
print(m.name, round(float(e[0] @ e[1]), 3), round(float(e[0] @ e[2]), 3))
"""


def test_the_default_model_loads_with_sockets_blocked(tmp_path):
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "0"}
    out = subprocess.run([sys.executable, "-c", BLOCKED], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    name, near, far = out.stdout.split()
    assert name == "wordllama-0.4.0.post1/l2_supercat-256"
    assert float(near) > 0.8 > float(far)
    assert not (tmp_path / ".cache").exists()  # nothing was downloaded or cached


def test_a_local_model_folder_and_bad_specs(tmp_path, refs, capsys):
    import numpy as np
    import wordllama
    from safetensors.numpy import save_file

    from decon.detect.semantic_model import load_model
    from decon.errors import DeconError

    pkg = Path(wordllama.__file__).parent
    folder = tmp_path / "model"
    folder.mkdir()
    from safetensors import safe_open

    with safe_open(str(pkg / "weights" / "l2_supercat_256.safetensors"), framework="np") as f:
        matrix = f.get_tensor("embedding.weight")[:, :64]  # a smaller model of the same vocabulary
    save_file({"embeddings": np.ascontiguousarray(matrix)}, str(folder / "model.safetensors"))
    (folder / "tokenizer.json").write_bytes((pkg / "tokenizers" / "l2_supercat_tokenizer_config.json").read_bytes())
    m = load_model(str(folder))
    assert m.name == str(folder) and m.embed(["a", "b c"]).shape == (2, 64)
    got = _detect(tmp_path / "run", refs, [f"{PROSE} {GSM_REWORDED}"], "--semantic", "--semantic-model", str(folder),
                  "--semantic-threshold", "0.8")
    assert [e["semantic_evidence"]["model"] for e in got[0]] == [str(folder)]
    for spec, msg in ((str(tmp_path / "nothing-here"), "no such folder"),
                      (str(tmp_path / "run"), "expected a folder with model.safetensors")):
        with pytest.raises(DeconError, match=msg):
            load_model(spec)
    (folder / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(DeconError, match="cannot read the model"):
        load_model(str(folder))


def _gates(candidate: dict) -> dict[str, dict]:
    return {g["name"]: g for g in candidate["gates"] if g["name"].startswith("semantic")}


def test_explain_shows_the_semantic_gates(refs):
    from decon.common.config import DetectionConfig
    from decon.detect.detection import Scanner
    from decon.detect.reference_index import build_index
    from decon.explain.core import Explainer

    cfg = DetectionConfig(evals_dir=str(refs), semantic=True, recall=True)
    ex = Explainer(Scanner(build_index(cfg, progress=False), cfg))
    got = ex.explain(f"{PROSE} {GSM_REWORDED} Answer: 322.")
    assert got["contaminated"] and got["matches"][0]["method"] == "semantic"
    c = next(c for c in got["candidates"] if c["eval_key"] == "gsmx")
    g = _gates(c)
    assert [n for n, v in g.items() if v["passed"]] == ["semantic_indexed", "semantic_anchors", "semantic_keys",
                                                        "semantic_agreement", "semantic_cosine", "semantic"]
    assert g["semantic_cosine"]["value"] >= g["semantic_cosine"]["bound"] == pytest.approx(0.9)
    assert "marisol" in c["matched_text"]
    other = ex.explain(f"{PROSE} {GSM_OTHER_NUMBERS}", eval_key="gsmx", instance=0)
    g = _gates(other["candidates"][0])
    assert not other["contaminated"] and g["semantic_keys"]["passed"]
    assert not g["semantic_agreement"]["passed"] and "numbers differ" in g["semantic_agreement"]["detail"]
    far = ex.explain(PROSE, eval_key="gsmx", instance=0)
    g = _gates(far["candidates"][0])
    assert not g["semantic_anchors"]["passed"] and "semantic_cosine" not in g


def test_explain_cli_takes_semantic(tmp_path, refs, capsys):
    rc = main(["explain", "--no-index-cache", "--evals-dir", str(refs), "--semantic", "--json", "--text",
               f"{MC_REWORDED} Answer: {MC_CHOICES[0]}."])
    assert rc == 0
    out = orjson.loads(capsys.readouterr().out)
    assert out["matches"] == [{"eval_key": "mmlux", "eval_instance_index": 0, "method": "semantic",
                               "contamination_score": out["matches"][0]["contamination_score"]}]


def test_semantic_needs_a_bpe_tokenizer(tmp_path, refs, capsys):
    rc = main(["detect", "--training-dir", str(tmp_path), "--evals-dir", str(refs), "--tokenizer", "uniseg",
               "--semantic"])
    assert rc != 0 and "needs a BPE tokenizer" in capsys.readouterr().err


def _tiny_model(folder: Path) -> None:
    """A static model in Model2Vec's layout: the default model's first 32 dimensions."""
    import numpy as np
    import wordllama
    from safetensors import safe_open
    from safetensors.numpy import save_file

    pkg = Path(wordllama.__file__).parent
    with safe_open(str(pkg / "weights" / "l2_supercat_256.safetensors"), framework="np") as f:
        matrix = np.ascontiguousarray(f.get_tensor("embedding.weight")[:, :32])
    folder.mkdir(parents=True)
    save_file({"embeddings": matrix}, str(folder / "model.safetensors"))
    (folder / "tokenizer.json").write_bytes((pkg / "tokenizers" / "l2_supercat_tokenizer_config.json").read_bytes())


HUB = """
import socket, sys
def refuse(*a, **k):
    raise OSError("network blocked by the test")
socket.socket.connect = refuse
from decon.detect.semantic_model import load_model
from decon.errors import DeconError
m = load_model("acme/tiny-static")
print(m.name, m.embed(["a reworded question"]).shape[1])
try:
    load_model("acme/not-in-the-cache")
except DeconError as exc:
    print("ERR", exc)
"""


def test_a_hub_model_resolves_from_the_hub_cache_offline(tmp_path):
    commit = "0123456789abcdef0123456789abcdef01234567"
    base = tmp_path / "hub" / "models--acme--tiny-static"
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(commit)
    _tiny_model(base / "snapshots" / commit)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf-home")}
    out = subprocess.run([sys.executable, "-c", HUB], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    first, err = out.stdout.strip().splitlines()
    assert first == "acme/tiny-static 32"
    assert err.startswith("ERR --semantic-model acme/not-in-the-cache: cannot fetch it from the hub")


def test_the_semantic_index_comes_back_from_the_index_cache(tmp_path, refs, monkeypatch):
    monkeypatch.setenv("DECON_CACHE_DIR", str(tmp_path / "cache"))
    train = tmp_path / "train"
    train.mkdir()
    (train / "d.jsonl").write_bytes(orjson.dumps({"text": f"{PROSE} {GSM_REWORDED}"}) + b"\n")
    reports = []
    for run in ("cold", "warm"):
        out = tmp_path / run
        assert main(["detect", "--worker-threads", "1", "--training-dir", str(train), "--evals-dir", str(refs),
                     "--report-output-dir", str(out), "--semantic"]) == 0
        reports.append(b"".join(p.read_bytes() for p in sorted(out.glob("*.jsonl"))))
    assert reports[0] == reports[1] and b'"method":"semantic"' in reports[0]
    from decon.common.config import DetectionConfig
    from decon.detect.index_cache import load_or_build_index

    index = load_or_build_index(DetectionConfig(evals_dir=str(refs), semantic=True), progress=False)
    assert index.stats.from_cache and index.semantic is not None


def test_multibyte_text_around_a_reworded_question(tmp_path, refs):
    texts = [f"Café ☕ 東京の港 — naïve résumé. {GSM_REWORDED} 終わり ☕☕",
             f"東京 {GSM_REWORDED.replace('Marisol', 'Marisöl ☕')} 終わり"]
    got = _detect(tmp_path, refs, texts, "--semantic")
    assert _found(got[0]) == {("gsmx", "semantic")}
    assert "東京" in got[0][0]["training_overlap_text"] or "marisol" in got[0][0]["training_overlap_text"]
    for e in got[1]:
        assert isinstance(e["semantic_evidence"]["window_text"], str)
