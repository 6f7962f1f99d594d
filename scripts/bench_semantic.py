#!/usr/bin/env python3
"""Reworded leaks: SIMPLE, ``--recall`` and ``--semantic`` side by side, with false positives and a curve.

    make bench-semantic [BENCH_SEMANTIC_ARGS="--quick"]
    python scripts/bench_semantic.py [--out bench-data/semantic] [--per-kind 400] [--prose-docs 20000]
                                     [--seed 7] [--workers 2] [--quick] [--no-speed] [--curve PNG] [--json FILE]

The labelled set is the recall benchmark's (``../shared/bench/make_recall_corpus.py``: verbatim leak
kinds, 20,000 clean prose documents, held-out eval-like negatives), plus kinds made here from the same
reference set by ``scripts/rephrase.py``'s rules (wording changed, numbers and names kept), each alone and
inside prose:

- ``gsm8k_rephrased_q_final``: a reworded GSM8K question with its final answer;
- ``gsm8k_rephrased_q_only``: the reworded question alone;
- ``mmlu_rephrased_q_answer``: a reworded MMLU question with the correct choice's text;
- ``mmlu_rephrased_q_choices``: a reworded MMLU question with the choices listed and the letter.

False positives: clean prose, held-out negatives (as ``score_recall.py`` counts them) and *templated
variants*: a reworded GSM8K question (or MMLU question with numbers) whose numbers all changed, with
another answer; none is a leak. A leak is found when a report line on its training line names its
eval_key (``score_recall.py``'s rule). The word n-gram baselines (13 and 8) are ``score_recall.py --ngram``.

``--semantic`` runs once with a low threshold (``--curve-from``); every other threshold is that run's
semantic entries filtered by their cosine, which is exactly what a run at that threshold reports. Output:
stdout, OUT/results.md, OUT/results.json and the recall / false-positive curve (``--curve``). The speed
check times SIMPLE against ``--semantic`` on ``make bench``'s prose-like corpus, 1 worker, warm index
cache, alternating runs, median of ``--speed-repeats``.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import random
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT / "scripts"))

import bench_recall  # noqa: E402
from bench_tools import run_decon  # noqa: E402
from rephrase import renumber, rephrase  # noqa: E402

DEFAULT_THRESHOLD = 0.9  # DetectionConfig.semantic_threshold
REPHRASED = ("gsm8k_rephrased_q_final", "gsm8k_rephrased_q_only", "mmlu_rephrased_q_answer",
             "mmlu_rephrased_q_choices")
MAX_MMLU_WORDS = 120  # passage questions ("This question refers to the following information ...") are left out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "bench-data" / "semantic", help="working folder (reused)")
    bench_recall.add_set_args(p)
    p.add_argument("--curve", type=Path, default=ROOT / "docs" / "img" / "semantic-curve.png",
                   help="where the recall / false-positive curve goes [default: docs/img/semantic-curve.png]")
    p.add_argument("--curve-from", type=float, default=0.6, help="lowest threshold of the curve [default: 0.6]")
    p.add_argument("--no-speed", action="store_true", help="skip the speed check on the prose-like corpus")
    p.add_argument("--speed-repeats", type=int, default=3, help="runs per speed measurement, median [default: 3]")
    return bench_recall.check_set_args(p, p.parse_args(argv))


# ---- the corpus --------------------------------------------------------------------------------
def _read(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(x) for x in f if x.strip()]


def _embed(rng: random.Random, bg: list[str], text: str) -> str:
    a, b = rng.sample(bg, 2)
    return a[: rng.randint(150, 1200)] + " " + text + " " + b[: rng.randint(150, 1200)]


def _gsm_final(answer: str) -> str:
    return answer.split("####")[-1].strip()


def _mmlu(refs: Path) -> list[tuple[str, list[str], int]]:
    out = []
    for path in sorted(refs.glob("mmlu_test-*.jsonl.gz")):
        by: dict[int, list[dict[str, Any]]] = collections.OrderedDict()
        for r in _read(path):
            by.setdefault(r["eval_instance_index"], []).append(r)
        for rs in by.values():
            correct = [i for i, r in enumerate(rs) if r.get("is_correct")]
            if len(rs) == 4 and len(correct) == 1 and 8 <= len(rs[0]["question"].split()) <= MAX_MMLU_WORDS:
                out.append((rs[0]["question"], [r["answer"] for r in rs], correct[0]))
    return out


def build_corpus(args: argparse.Namespace, recall_corpus: Path) -> Path:
    corpus = args.out / "corpus"
    params = {"per_kind": args.per_kind, "prose_docs": args.prose_docs, "seed": args.seed,
              "recall_corpus": str(recall_corpus.resolve()), "version": 2}
    stamp = corpus / "params.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == params:
        return corpus
    shutil.rmtree(corpus, ignore_errors=True)
    (corpus / "train").mkdir(parents=True)
    (corpus / "refs").symlink_to((recall_corpus / "refs").resolve())
    rng = random.Random(args.seed)
    truth = [json.loads(x) for x in (recall_corpus / "truth.jsonl").read_text().splitlines() if x.strip()]
    texts = [orjson.loads(x)["text"] for x in (recall_corpus / "train" / "recall.jsonl").read_bytes().splitlines()]
    bg = [texts[t["training_line"]] for t in truth if t["kind"] == "clean"]
    refs = recall_corpus / "refs"
    gsm = [r for r in _read(refs / "gsm8k_test-1.jsonl.gz") if r.get("question")]
    mmlu = _mmlu(refs)
    new: list[tuple[str, dict[str, Any]]] = []  # (text, truth without training_line)
    templated: list[tuple[str, dict[str, Any]]] = []

    def add(text: str, kind: str, key: str, inst: int, into: list[tuple[str, dict[str, Any]]]) -> None:
        for place in ("alone", "embedded"):
            t = text if place == "alone" else _embed(rng, bg, text)
            into.append((t, {"kind": f"{kind}/{place}", "eval_key": key, "eval_instance_index": inst}))

    picks = rng.sample(gsm, min(len(gsm), 2 * args.per_kind))
    for i, r in enumerate(picks):
        q, final = rephrase(r["question"], rng), _gsm_final(r["answer"])
        if i < args.per_kind:
            add(rng.choice([f"Question: {q}\nAnswer: #### {final}", f"{q} The answer is {final}.",
                            f"Problem: {q}\nFinal answer: {final}"]), REPHRASED[0], "gsm8k",
                r["eval_instance_index"], new)
        else:
            add(q, REPHRASED[1], "gsm8k", r["eval_instance_index"], new)
        other = renumber(q, rng)
        if other is not None:
            add(f"{other} The answer is {int(''.join(c for c in final if c.isdigit()) or 0) + rng.randint(1, 50)}.",
                "gsm8k_templated", "gsm8k", r["eval_instance_index"], templated)
    picks = rng.sample(range(len(mmlu)), min(len(mmlu), 2 * args.per_kind))
    for i, j in enumerate(picks):
        question, choices, k = mmlu[j]
        q = rephrase(question, rng)
        if i < args.per_kind:
            add(rng.choice([f"{q} Answer: {choices[k]}", f"Q: {q}\nA: {choices[k]}"]), REPHRASED[2], "mmlu", j, new)
        else:
            listed = "\n".join(f"{'ABCD'[c]}. {t}" for c, t in enumerate(choices))
            add(f"{q}\n{listed}\nAnswer: {'ABCD'[k]}", REPHRASED[3], "mmlu", j, new)
        other = renumber(q, rng)
        if other is not None:
            add(f"{other} Answer: {choices[(k + 1) % 4]}", "mmlu_templated", "mmlu", j, templated)
    lines = list(texts)
    for text, t in new + templated:
        t["training_line"] = len(lines)
        lines.append(text)
    with open(corpus / "train" / "recall.jsonl", "wb") as f:
        f.write(b"".join(orjson.dumps({"text": x}) + b"\n" for x in lines))
    (corpus / "truth.jsonl").write_text("".join(json.dumps(t) + "\n" for t in truth + [t for _, t in new]))
    (corpus / "templated.jsonl").write_text("".join(json.dumps(t) + "\n" for _, t in templated))
    stamp.write_text(json.dumps(params))
    return corpus


# ---- scoring -----------------------------------------------------------------------------------
def _hits(reports: Path) -> dict[int, list[tuple[str, str, float]]]:
    """training_line -> (eval_key, method, score) of every report line."""
    out: dict[int, list[tuple[str, str, float]]] = collections.defaultdict(list)
    for p in reports.glob("*.jsonl"):
        for line in p.read_bytes().splitlines():
            if line.strip():
                e = orjson.loads(line)
                out[e["training_line"]].append((e["eval_key"], e.get("method", "simple"),
                                                float(e.get("contamination_score", 1.0))))
    return out


def score(corpus: Path, hits: dict[int, list[tuple[str, str, float]]], threshold: float) -> dict[str, Any]:
    """Recall per kind and false positives, counting semantic entries at ``threshold`` or above."""
    def flagged(line: int) -> set[str]:
        return {k for k, m, s in hits.get(line, []) if m != "semantic" or s >= threshold}

    truth = [json.loads(x) for x in (corpus / "truth.jsonl").read_text().splitlines() if x.strip()]
    templ = [json.loads(x) for x in (corpus / "templated.jsonl").read_text().splitlines() if x.strip()]
    tot: collections.Counter[str] = collections.Counter()
    found: collections.Counter[str] = collections.Counter()
    clean = neg = dup = clean_n = neg_n = 0
    for t in truth:
        f = flagged(t["training_line"])
        if t["kind"] == "clean":
            clean_n += 1
            clean += bool(f)
        elif t["kind"] == "negative":
            neg_n += 1
            if f and t.get("genuine_duplicate"):
                dup += 1
            elif f:
                neg += 1
        else:
            tot[t["kind"]] += 1
            found[t["kind"]] += t["eval_key"] in f
    templ_flagged = collections.Counter(t["kind"].split("/")[0] for t in templ if flagged(t["training_line"]))
    templ_n = collections.Counter(t["kind"].split("/")[0] for t in templ)
    return {"recall": {k: round(found[k] / tot[k], 4) for k in sorted(tot)},
            "clean_flagged": clean, "clean_docs": clean_n, "negatives_flagged": neg, "negatives": neg_n,
            "negatives_genuine_duplicates_flagged": dup,
            "templated_flagged": dict(templ_flagged), "templated": dict(templ_n)}


def _rephrased_recall(s: dict[str, Any], prefix: str) -> float:
    vals = [v for k, v in s["recall"].items() if k.startswith(prefix) and "rephrased" in k]
    return sum(vals) / len(vals) if vals else float("nan")


def ngram_baseline(args: argparse.Namespace, corpus: Path, n: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, str(args.shared / "score_recall.py"), str(corpus), "--ngram", str(n),
                          "--json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


# ---- tables, curve, speed ----------------------------------------------------------------------
def table(results: dict[str, dict[str, Any]], seconds: dict[str, float]) -> str:
    names = list(results)
    kinds = list(results[names[0]]["recall"])
    lines = ["| kind | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for k in kinds:
        lines.append(f"| {k} | " + " | ".join(f"{results[n]['recall'].get(k, float('nan')):.1%}" for n in names) + " |")
    first = results[names[0]]
    lines.append(f"| clean prose flagged (of {first['clean_docs']:,}) | "
                 + " | ".join(str(results[n]["clean_flagged"]) for n in names) + " |")
    lines.append(f"| held-out negatives flagged (of {first['negatives']:,}) | "
                 + " | ".join(str(results[n]["negatives_flagged"]) for n in names) + " |")
    templ = first.get("templated") or {}
    for k, total in templ.items():
        lines.append(f"| {k} variants flagged (of {total:,}) | "
                     + " | ".join(str(results[n]["templated_flagged"].get(k, 0)) if "templated_flagged" in results[n] else "-" for n in names) + " |")
    lines.append("| wall seconds (decon detect, cold index) | "
                 + " | ".join(f"{seconds[n]:.1f}" if n in seconds else "-" for n in names) + " |")
    return "\n".join(lines)


def curve(corpus: Path, hits: dict[int, list[tuple[str, str, float]]], lo: float) -> list[dict[str, Any]]:
    points = []
    t = lo
    while t <= 0.99 + 1e-9:
        s = score(corpus, hits, t)
        points.append({"threshold": round(t, 3), "gsm8k": _rephrased_recall(s, "gsm8k"),
                       "mmlu": _rephrased_recall(s, "mmlu"), "clean": s["clean_flagged"],
                       "negatives": s["negatives_flagged"], "templated": sum(s["templated_flagged"].values())})
        t += 0.01
    return points


def plot(points: list[dict[str, Any]], png: Path, default: float, recall_negatives: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [p["threshold"] for p in points]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(x, [p["gsm8k"] for p in points], label="reworded GSM8K (recall)")
    a1.plot(x, [p["mmlu"] for p in points], label="reworded MMLU (recall)")
    a1.set_xlabel("--semantic-threshold (cosine)")
    a1.set_ylabel("share of reworded leaks found")
    a1.set_ylim(0, 1)
    a2.plot(x, [p["negatives"] for p in points], label="held-out negatives flagged")
    a2.plot(x, [p["templated"] for p in points], label="templated variants flagged")
    a2.plot(x, [p["clean"] for p in points], label="clean prose flagged")
    a2.axhline(recall_negatives, color="grey", linestyle=":", label="held-out negatives, --recall alone")
    a2.set_xlabel("--semantic-threshold (cosine)")
    a2.set_ylabel("documents flagged")
    for a in (a1, a2):
        a.axvline(default, color="black", linestyle="--", linewidth=0.8)
        a.legend(fontsize=8)
        a.grid(alpha=0.3)
    fig.suptitle("decon --semantic: recall and false positives over the threshold (dashed: default)")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    tmp = png.with_name(png.name + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    tmp.replace(png)


def speed(args: argparse.Namespace) -> dict[str, float]:
    import bench  # the corpora of make bench

    corpus = bench.build_corpus("prose-like", bench.parse_args([]))
    cache, work = args.out / "speed-cache", args.out / "speed-runs"
    runs = {"SIMPLE": [], "--semantic": []}
    flags = {"SIMPLE": [], "--semantic": ["--semantic"]}
    for label in runs:  # fill each index cache first
        run_decon(corpus.tiny_dir, corpus.evals_dir, work / "warm", 1, cache, *flags[label])
    for r in range(args.speed_repeats):
        print(f"  speed: prose-like, round {r + 1}/{args.speed_repeats}", file=sys.stderr, flush=True)
        for label in runs:
            res = run_decon(corpus.train_dir, corpus.evals_dir, work / label.strip("-"), 1, cache, *flags[label])
            runs[label].append(res.wall)
    row = {f"{k} wall": statistics.median(v) for k, v in runs.items()}
    row["ratio"] = row["--semantic wall"] / row["SIMPLE wall"]
    return row


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    # the recall benchmark's own set, where make bench-recall keeps it
    recall_corpus = bench_recall.build_corpus(argparse.Namespace(**{**vars(args), "out": ROOT / "bench-data" / "recall"}))
    corpus = build_corpus(args, recall_corpus)
    results: dict[str, dict[str, Any]] = {}
    seconds: dict[str, float] = {}
    hits_of: dict[str, dict[int, list[tuple[str, str, float]]]] = {}
    for name, flags in (("SIMPLE", []), ("--recall", ["--recall"]),
                        ("--semantic", ["--semantic", "--semantic-threshold", str(args.curve_from)])):
        print(f"  decon detect {' '.join(flags)}", file=sys.stderr, flush=True)
        reports = args.out / "reports" / name.strip("-")
        res = run_decon(corpus / "train", corpus / "refs", reports, args.workers, args.out / "cache",
                        "--no-index-cache", *flags)
        seconds[name] = res.wall
        hits_of[name] = _hits(reports)
        results[name] = score(corpus, hits_of[name], DEFAULT_THRESHOLD)
    for n in (13, 8):
        results[f"word {n}-gram"] = ngram_baseline(args, corpus, n)
    text = table(results, seconds)
    text += (f"\n\n--semantic at its default threshold {DEFAULT_THRESHOLD}; its run (at {args.curve_from}, filtered) "
             f"/ --recall wall time: {seconds['--semantic'] / seconds['--recall']:.2f}x")
    points = curve(corpus, hits_of["--semantic"], args.curve_from)
    text += "\n\n| threshold | reworded GSM8K | reworded MMLU | clean | held-out negatives | templated |\n|---|---|---|---|---|---|"
    for p in points[::5]:
        text += (f"\n| {p['threshold']:.2f} | {p['gsm8k']:.1%} | {p['mmlu']:.1%} | {p['clean']} | {p['negatives']} "
                 f"| {p['templated']} |")
    plot(points, args.curve, DEFAULT_THRESHOLD, results["--recall"]["negatives_flagged"])
    text += f"\n\ncurve: {args.curve}"
    speed_row = None
    if not args.no_speed:
        speed_row = speed(args)
        text += (f"\n\nprose-like (make bench), 1 worker, warm index cache, median of {args.speed_repeats}: SIMPLE "
                 f"{speed_row['SIMPLE wall']:.2f} s, --semantic {speed_row['--semantic wall']:.2f} s "
                 f"({speed_row['ratio']:.2f}x)")
    print(text)
    (args.out / "results.md").write_text(text + "\n")
    blob = json.dumps({"results": results, "seconds": seconds, "curve": points, "speed": speed_row,
                       "corpus": str(corpus)}, indent=1)
    (args.out / "results.json").write_text(blob)
    if args.json:
        args.json.write_text(blob)
    return 0


if __name__ == "__main__":
    sys.exit(main())
