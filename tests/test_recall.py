"""`decon detect --recall`: each recall rule with a case that must fire and a near miss that must not.

The reference set is invented here (no eval text): a GSM8K-like worked problem with "#### N", MMLU-like
multiple-choice instances (one record per choice, ``is_correct``), a short distinctive question, and a
generic stem that many instances share.
"""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from decon.cli import main

ROOT = Path(__file__).resolve().parent.parent
PROSE = ("the harbour office opens at nine and closes at five on weekdays while the ferry keeps its own "
         "timetable through the winter months")

GSM_Q = ("Marisol bakes trays of lemon biscuits for the village fair and each tray holds fourteen biscuits "
         "while her cousin Teodor eats three biscuits from every tray before the fair opens so how many "
         "biscuits are left from six trays")
GSM_A = "Each tray keeps 14 - 3 = 11 biscuits.\nSix trays keep 6 * 11 = 66 biscuits.\n#### 66"
LONG_MC_Q = ("In the annual survey of the Pellworth estuary the ecologists counted wading birds at dawn and "
             "noticed that one species had moved its nesting grounds upriver which explanation did they favour")
LONG_MC_CHOICES = ["rising salt levels near the mouth", "a new ferry route", "colder spring nights",
                   "fewer fishing boats"]
SHORT_Q = "Which river feeds the Lake of Ossendrecht?"
SHORT_CHOICES = ["the Vantler", "the Morrow", "the Siskel", "the Anduin Brook"]
ALONE_Q = "Which guild of glassblowers in old Varnholt first sealed its lanterns with copper wire?"
ALONE_CHOICES = ["the Amber Guild", "the Heron Guild", "the Lantern Guild", "the Salt Guild"]
PASSAGE = ("This question refers to the following information. The harbour charter of Quenmouth, sealed in the "
           "spring of its founding year, granted the fishers of the lower town the right to dry their nets on the "
           "common strand and to sell their catch without toll on three market days in every week. The same charter "
           "bound every household of the upper town to keep one lantern burning at the quay through the winter "
           "storms, and it named the reeve who would settle quarrels between the salt carters and the coopers over "
           "the use of the new stone bridge across the river mouth. In the years after the sealing the lower town "
           "doubled its boats, the upper town built a rope walk along the cliff road, and the abbey that had owned "
           "the strand before the charter asked the crown three times to take the rights back, each time in vain, "
           "until a flood in the ninth year washed the drying frames away and the strand was shared anew by lot")
PASSAGE_QS = ["Which change in the economy does it reflect?", "Whom was the charter meant to attract?"]
TEMPLATE = ("In {}, controlling for inflation and purchasing power and leaving out the income of seasonal workers "
            "and of households that moved away, by roughly how many times did the average household income of the "
            "region grow between the census of 1950 and the census of 2010, as the statistics office reports it in "
            "its yearly digest of wages, rents, prices and the counts of people in work in every district?")
STEM = "Which of the following is true?"
STEM_CHOICES = [
    ["copper conducts heat well", "glass conducts heat well", "wood is a metal", "ice is heavier than water"],
    ["bats are birds", "whales are mammals", "spiders are insects", "frogs are reptiles"],
    ["the moon is a planet", "mars is a star", "the sun is a star", "venus has two moons"],
    ["paper is made from stone", "wool comes from sheep", "silk comes from cows", "cotton grows on rocks"],
    ["rain is dry", "snow is warm", "fog is made of droplets", "hail is soft"],
    ["salt is sweet", "sugar is salty", "lemons are sour", "pepper is cold"],
]


def _fillers(count: int = 1500) -> list[dict]:
    """Unrelated questions, so that n-gram IDF is as flat as in a real reference set (there, an
    n-gram two questions share weighs almost as much as one only this question has)."""
    rng = random.Random(5)
    vocab = [f"{a}{b}" for a in ("ka", "lo", "mi", "nu", "pe", "ri", "so", "tu", "va", "ze")
             for b in ("bar", "den", "fil", "gom", "hut", "jex", "lon", "mar", "pox", "wen")]
    return [{"eval_key": "fill", "eval_instance_index": i, "split": "test", "doc_id": 100_000 + i,
             "question": " ".join(rng.choice(vocab) for _ in range(14)) + "?", "answer": rng.choice(vocab)}
            for i in range(count)]


def _mc(eval_key: str, inst: int, question: str, choices: list[str], correct: int) -> list[dict]:
    return [{"eval_key": eval_key, "eval_instance_index": inst, "split": "test", "question": question,
             "answer": c, "doc_id": inst * 10 + j, "is_correct": j == correct} for j, c in enumerate(choices)]


@pytest.fixture(scope="module")
def refs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("refs")
    gsm = [{"eval_key": "gsmx", "eval_instance_index": 0, "split": "test", "question": GSM_Q, "answer": GSM_A,
            "doc_id": 1000}]
    mc = _mc("mmlux", 0, LONG_MC_Q, LONG_MC_CHOICES, 0) + _mc("mmlux", 1, SHORT_Q, SHORT_CHOICES, 2)
    mc += _mc("mmlux", 2, ALONE_Q, ALONE_CHOICES, 1)
    for i, q in enumerate(PASSAGE_QS):
        mc += _mc("mmlux", 20 + i, f"{PASSAGE} {q}", ["trade", "farming", "mining", "war"], i)
    for i, place in enumerate(("Varnholt", "Quenmouth")):
        mc += _mc("mmlux", 30 + i, TEMPLATE.format(place), ["two", "four", "six", "eight"], i)
    for i, choices in enumerate(STEM_CHOICES):
        mc += _mc("mmlux", 10 + i, STEM, choices, (i + 1) % 4 if i != 0 else 0)
    (d / "gsmx.jsonl").write_bytes(b"\n".join(orjson.dumps(r) for r in gsm) + b"\n")
    (d / "mmlux.jsonl").write_bytes(b"\n".join(orjson.dumps(r) for r in mc) + b"\n")
    (d / "fill.jsonl").write_bytes(b"\n".join(orjson.dumps(r) for r in _fillers()) + b"\n")
    return d


def _detect(tmp: Path, refs: Path, texts: list[str], *extra: str) -> dict[int, list[dict]]:
    """Report entries per training line of a one-file corpus of ``texts``."""
    train = tmp / "train"
    train.mkdir(parents=True, exist_ok=True)
    (train / "docs.jsonl").write_bytes(b"\n".join(orjson.dumps({"text": t}) for t in texts) + b"\n")
    out = tmp / "out"
    rc = main(["detect", "--worker-threads", "1", "--no-index-cache", "--training-dir", str(train),
               "--evals-dir", str(refs), "--report-output-dir", str(out), *extra])
    assert rc == 0
    by_line: dict[int, list[dict]] = {i: [] for i in range(len(texts))}
    for p in out.glob("*.jsonl"):
        for line in p.read_bytes().splitlines():
            e = orjson.loads(line)
            by_line[e["training_line"]].append(e)
    return by_line


def _methods(entries: list[dict]) -> set[tuple[str, int, str]]:
    return {(e["eval_key"], e["eval_instance_index"], e.get("method", "simple")) for e in entries}


def _words(text: str, share: float) -> str:
    """The first ``share`` of the words of ``text``."""
    w = text.split()
    return " ".join(w[: int(len(w) * share)])


def _last_words(text: str, share: float) -> str:
    """The last ``share`` of the words of ``text`` (a copy that starts inside the question)."""
    w = text.split()
    return " ".join(w[len(w) - int(len(w) * share):])


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("DECON_QUIET", "1")


def test_simple_misses_what_recall_finds(tmp_path, refs):
    texts = [f"Question: {GSM_Q}\nAnswer: #### 66", GSM_Q, f"{PROSE}. {LONG_MC_Q} {PROSE}."]
    simple = _detect(tmp_path / "s", refs, texts)
    assert all(not v for v in simple.values())  # the documented gaps of SIMPLE
    found = _detect(tmp_path / "r", refs, texts, "--recall")
    assert ("gsmx", 0, "question_answer") in _methods(found[0]) or ("gsmx", 0, "question_exact") in _methods(found[0])
    assert _methods(found[1]) == {("gsmx", 0, "question_exact")}
    assert _methods(found[2]) == {("mmlux", 0, "question_exact")}


def test_question_answer_needs_the_right_final_answer(tmp_path, refs):
    partial = _last_words(GSM_Q, 0.9)  # coverage under the question-only bound, over the with-answer bound
    texts = [f"{partial} #### 66", f"{partial} #### 67", f"{partial} The answer is 66.", partial]
    found = _detect(tmp_path, refs, texts, "--recall")
    assert _methods(found[0]) == {("gsmx", 0, "question_answer")}
    ev = found[0][0]["recall_evidence"]
    assert ev["answer"]["kind"] == "final_answer" and ev["answer"]["text"] == "66"
    assert ev["coverage"] >= ev["coverage_threshold"] == 0.8
    assert found[1] == []  # a different number is no evidence
    assert _methods(found[2]) == {("gsmx", 0, "question_answer")}
    assert found[3] == []  # the same part of the question, no answer


def test_question_exact_needs_almost_all_of_the_question(tmp_path, refs):
    texts = [f"{PROSE} {GSM_Q} {PROSE}", _words(GSM_Q, 0.6), f"{LONG_MC_Q}"]
    found = _detect(tmp_path, refs, texts, "--recall")
    entry = found[0][0]
    assert entry["method"] == "question_exact" and entry["eval_key"] == "gsmx"
    assert entry["recall_evidence"]["coverage"] >= 0.9
    assert entry["recall_evidence"]["answer"] is None
    assert "training_overlap_text" in entry and entry["eval_question_text"] == GSM_Q
    assert found[1] == []
    assert _methods(found[2]) == {("mmlux", 0, "question_exact")}


def test_listed_choices_need_the_right_letter(tmp_path, refs):
    listed = "\n".join(f"{L}. {c}" for L, c in zip("ABCD", SHORT_CHOICES, strict=True))
    found = _detect(tmp_path, refs, [f"{SHORT_Q}\n{listed}\nAnswer: C", f"{SHORT_Q}\n{listed}\nAnswer: A"],
                    "--recall")
    assert _methods(found[0]) == {("mmlux", 1, "short_exact")}
    assert found[0][0]["recall_evidence"]["answer"]["kind"] == "choice_letter"
    assert found[1] == []  # the wrong letter


def test_short_question_with_its_answer_in_a_short_document(tmp_path, refs):
    texts = [f"{SHORT_Q} {SHORT_CHOICES[2]}", f"{SHORT_Q} the Danube", SHORT_Q,
             f"{PROSE}. Q: {SHORT_Q}\nA: {SHORT_CHOICES[2]}. {PROSE}."]
    found = _detect(tmp_path, refs, texts, "--recall")
    assert _methods(found[0]) == {("mmlux", 1, "short_exact")}
    assert found[0][0]["recall_evidence"]["answer"]["kind"] == "correct_choice"
    assert found[1] == []  # not an answer of this question
    assert found[2] == []  # too short to stand alone
    assert _methods(found[3]) == {("mmlux", 1, "short_exact")}  # off the probe grid, inside prose


def test_short_question_alone_when_long_enough_and_distinctive(tmp_path, refs):
    found = _detect(tmp_path, refs, [f"{PROSE}. {ALONE_Q} {PROSE}.", _words(ALONE_Q, 0.7)], "--recall")
    assert _methods(found[0]) == {("mmlux", 2, "short_exact")}
    assert found[0][0]["recall_evidence"]["rare_ngram_share"] >= 0.5
    assert found[1] == []  # not the whole question: short questions match token by token


def test_generic_stem_alone_is_not_a_leak_but_with_its_answer_it_is(tmp_path, refs):
    texts = [f"{PROSE}. {STEM} {PROSE}.", f"{STEM} whales are mammals", f"{STEM} copper conducts heat well",
             f"{STEM} pigs can fly"]
    found = _detect(tmp_path, refs, texts, "--recall")
    assert found[0] == []
    assert _methods(found[1]) == {("mmlux", 11, "short_exact")}
    assert _methods(found[2]) == {("mmlux", 10, "short_exact")}
    assert found[3] == []


def test_a_shared_passage_with_another_question_is_not_a_copy(tmp_path, refs):
    texts = [f"{PASSAGE} {PASSAGE_QS[0]}", f"{PASSAGE} What did the abbey want?", f"{PROSE}. {PASSAGE} {PASSAGE_QS[1]} {PROSE}."]
    found = _detect(tmp_path, refs, texts, "--recall")
    assert _methods(found[0]) == {("mmlux", 20, "question_exact")}
    assert found[1] == []  # the passage, then a question no eval has
    assert _methods(found[2]) == {("mmlux", 21, "question_exact")}
    ev = found[2][0]["recall_evidence"]
    assert ev["question_end_ngrams_matched"] == [3, 3] and ev["own_ngram_coverage"] == 1.0


def test_a_templated_question_with_another_name_is_not_a_copy(tmp_path, refs):
    texts = [TEMPLATE.format("Varnholt"), TEMPLATE.format("Ossendrecht"), f"{PROSE}. {TEMPLATE.format('Quenmouth')} {PROSE}."]
    found = _detect(tmp_path, refs, texts, "--recall")
    assert _methods(found[0]) == {("mmlux", 30, "question_exact")}
    assert found[1] == []  # the same template, a place no eval names
    assert _methods(found[2]) == {("mmlux", 31, "question_exact")}


def test_recall_leaves_simple_entries_as_they_are(tmp_path):
    """On a corpus SIMPLE flags, --recall adds entries and changes none of SIMPLE's."""
    train = ROOT / "fixtures" / "training"
    refs = ROOT / "fixtures" / "test-reference"
    outs = {}
    for name, extra in (("simple", []), ("recall", ["--recall"])):
        out = tmp_path / name
        assert main(["detect", "--worker-threads", "1", "--no-index-cache", "--training-dir", str(train),
                     "--evals-dir", str(refs), "--report-output-dir", str(out), *extra]) == 0
        outs[name] = {p.name: p.read_bytes().splitlines() for p in sorted(out.glob("*.jsonl"))}
    assert outs["simple"]
    for name, lines in outs["simple"].items():
        recall_lines = outs["recall"][name]
        simple_in_recall = [x for x in recall_lines if b'"recall_evidence"' not in x]
        assert simple_in_recall == lines


def test_recall_is_simple_mode_only(tmp_path, refs, capsys):
    train = tmp_path / "t"
    train.mkdir()
    (train / "a.jsonl").write_text('{"text": "hello"}\n')
    rc = main(["detect", "--mode", "minhash", "--recall", "--training-dir", str(train), "--evals-dir", str(refs),
               "--report-output-dir", str(tmp_path / "o")])
    assert rc != 0
    err = capsys.readouterr().err
    assert "--recall" in err and "Traceback" not in err


def test_question_gram_tables_equal_a_per_question_walk():
    """recall_index._question_grams (all questions at once, numpy) against a plain walk per question."""
    import numpy as np

    from decon.common.ngram_hash import ngram_hashes
    from decon.detect.recall_index import ANCHORS, TAIL_NGRAMS, _question_grams

    rng = random.Random(3)
    questions = [[rng.randrange(40) for _ in range(rng.randrange(0, 30))] for _ in range(300)]
    n = 3
    flat = np.array([t for q in questions for t in q], dtype=np.int64)
    ptr = np.cumsum([0] + [len(q) for q in questions]).astype(np.int64)
    g = _question_grams(flat, ptr, n)
    keys = g["keys"].tolist()
    per_q = [ngram_hashes(np.array(q, dtype=np.int64), n).tolist() for q in questions]
    df = {}
    for ks in per_q:
        for k in set(ks):
            df[k] = df.get(k, 0) + 1
    assert keys == sorted(df) and g["df"].tolist() == [df[k] for k in keys]
    anchors = []
    for qi, ks in enumerate(per_q):
        row = g["q_grams"][g["q_grams_ptr"][qi]:g["q_grams_ptr"][qi + 1]].tolist()
        assert row == [keys.index(k) for k in sorted(set(ks))]
        tail = g["q_tail"][g["q_tail_ptr"][qi]:g["q_tail_ptr"][qi + 1]].tolist()
        assert tail == sorted({keys.index(k) for k in ks[-TAIL_NGRAMS:]}) if ks else tail == []
        if ks:
            first = {k: ks.index(k) for k in set(ks)}
            assert g["rare_share"][qi] == np.float32(sum(df[k] == 1 for k in first) / len(first))
            span = max(first.values()) + 1
            best = {}
            for k, p in first.items():
                part = p * ANCHORS // span
                cand = (df[k], p, k)
                best[part] = min(best.get(part, cand), cand)
            anchors += [(keys.index(k), qi, p) for _, p, k in best.values()]
    got = list(zip(g["anchor_gram"].tolist(), g["anchor_question"].tolist(), g["anchor_offset"].tolist(), strict=True))
    assert got == sorted(anchors)
