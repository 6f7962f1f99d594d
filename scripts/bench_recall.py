#!/usr/bin/env python3
"""Detection quality side by side: SIMPLE, ``--recall`` and a word 13-gram baseline on one labelled set.

    make bench-recall [BENCH_RECALL_ARGS="--quick"]
    python scripts/bench_recall.py [--out bench-data/recall] [--per-kind 400] [--prose-docs 20000]
                                   [--seed 7] [--workers 2] [--json FILE] [--quick]
                                   [--speed [--speed-repeats 3] [--speed-workers 1]]

The labelled set and its scoring are the shared benchmark's own scripts (``--shared``, default
``../shared/bench``): ``make_recall_corpus.py`` builds leaks of each kind (alone and inside prose), clean
documentation prose and held-out eval-like negatives from the bundled evals; ``score_recall.py --json``
scores each run's reports, and ``score_recall.py --ngram 13`` gives the baseline. This script runs
``decon detect`` without and with ``--recall`` on the same corpus, times both (wall seconds of the whole
command, index build included, no index cache) and prints one table: recall per kind, clean prose
flagged, held-out negatives flagged. Output: stdout, OUT/results.md and OUT/results.json. The corpus is
rebuilt only when its parameters change (OUT/corpus/params.json).

``--speed`` also times ``decon detect`` without and with ``--recall`` on the ``make bench`` corpora
(scripts/bench.py's prose-like, eval-like and doc-prose, built or reused under bench-data/), each with
its index cache warm, alternating runs, median of ``--speed-repeats``; the ratio is the recall pass's
cost on corpora of realistic hit density.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT / "scripts"))

from bench_tools import run_decon  # noqa: E402

RUNS = (("SIMPLE", []), ("--recall", ["--recall"]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "bench-data" / "recall", help="working folder (reused)")
    add_set_args(p)
    p.add_argument("--ngram", type=int, default=13, help="word n-gram size of the baseline [default: 13]")
    p.add_argument("--speed", action="store_true",
                   help="also time SIMPLE against --recall on the make bench corpora (warm index cache)")
    p.add_argument("--speed-repeats", type=int, default=3, help="runs per measurement, median [default: 3]")
    p.add_argument("--speed-workers", type=int, default=1, help="--worker-threads of the speed runs [default: 1]")
    return check_set_args(p, p.parse_args(argv))


def add_set_args(p: argparse.ArgumentParser) -> None:
    """The labelled set's options (this script's and ``bench_semantic.py``'s)."""
    p.add_argument("--shared", type=Path, default=SHARED / "bench",
                   help="folder of make_recall_corpus.py and score_recall.py [default: ../shared/bench]")
    p.add_argument("--evals", type=Path, default=SHARED / "upstream" / "bundled-evals",
                   help="the bundled evals the set is built from [default: ../shared/upstream/bundled-evals]")
    p.add_argument("--per-kind", type=int, default=400, help="leaks per kind [default: 400]")
    p.add_argument("--prose-docs", type=int, default=20000, help="clean prose documents [default: 20000]")
    p.add_argument("--seed", type=int, default=7, help="corpus seed [default: 7]")
    p.add_argument("--workers", type=int, default=2, help="decon detect --worker-threads [default: 2]")
    p.add_argument("--quick", action="store_true", help="a small set: 50 leaks per kind, 2,000 prose documents")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the results object here")


def check_set_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    if args.quick:
        args.per_kind, args.prose_docs = 50, 2000
    for name in ("make_recall_corpus.py", "score_recall.py"):
        if not (args.shared / name).is_file():
            p.error(f"{args.shared / name} not found (set --shared)")
    if not args.evals.is_dir():
        p.error(f"evals folder {args.evals} not found (set --evals)")
    return args


def build_corpus(args: argparse.Namespace) -> Path:
    corpus = args.out / "corpus"
    params = {"per_kind": args.per_kind, "prose_docs": args.prose_docs, "seed": args.seed,
              "evals": str(args.evals.resolve())}
    stamp = corpus / "params.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == params:
        return corpus
    shutil.rmtree(corpus, ignore_errors=True)
    subprocess.run([sys.executable, str(args.shared / "make_recall_corpus.py"), "--evals", str(args.evals),
                    "--out", str(corpus), "--per-kind", str(args.per_kind), "--prose-docs", str(args.prose_docs),
                    "--seed", str(args.seed)], check=True, stdout=subprocess.DEVNULL)
    stamp.write_text(json.dumps(params))
    return corpus


def score(args: argparse.Namespace, corpus: Path, *extra: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, str(args.shared / "score_recall.py"), str(corpus), *extra, "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def detect_and_score(args: argparse.Namespace, corpus: Path, name: str,
                     flags: list[str]) -> tuple[dict[str, Any], float]:
    """`decon detect` (cold index) on the labelled set: its scores and wall seconds."""
    reports = args.out / "reports" / name.strip("-")
    res = run_decon(corpus / "train", corpus / "refs", reports, args.workers, args.out / "cache", "--no-index-cache",
                    *flags)
    return score(args, corpus, str(reports), f"--label={name}"), res.wall


def speed(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Median wall and detection seconds of SIMPLE and --recall on each make bench corpus."""
    import bench  # the corpora of make bench

    bargs = bench.parse_args([])
    cache, work = args.out / "speed-cache", args.out / "speed-runs"
    out: dict[str, dict[str, float]] = {}
    for name in bench.CORPORA:
        corpus = bench.build_corpus(name, bargs)
        runs: dict[str, list[tuple[float, float]]] = {"SIMPLE": [], "--recall": []}
        for _label, flags in RUNS:  # fill each index cache first
            run_decon(corpus.tiny_dir, corpus.evals_dir, work / "warm", 1, cache, *flags)
        for r in range(args.speed_repeats):
            print(f"  speed: {name}, round {r + 1}/{args.speed_repeats}", file=sys.stderr, flush=True)
            for label, flags in RUNS:
                res = run_decon(corpus.train_dir, corpus.evals_dir, work / label.strip("-"), args.speed_workers,
                                cache, *flags)
                runs[label].append((res.wall, res.fields.get("detection_seconds", float("nan"))))
        row = {}
        for label, vals in runs.items():
            row[f"{label} wall"] = statistics.median(v[0] for v in vals)
            row[f"{label} detection"] = statistics.median(v[1] for v in vals)
        row["ratio wall"] = row["--recall wall"] / row["SIMPLE wall"]
        row["ratio detection"] = row["--recall detection"] / row["SIMPLE detection"]
        out[name] = row
    return out


def speed_table(rows: dict[str, dict[str, float]], workers: int) -> str:
    lines = [f"| corpus ({workers} worker(s), warm cache) | SIMPLE s | --recall s | ratio | detection ratio |",
             "|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['SIMPLE wall']:.2f} | {r['--recall wall']:.2f} | {r['ratio wall']:.2f}x "
                     f"| {r['ratio detection']:.2f}x |")
    return "\n".join(lines)


def table(results: dict[str, dict[str, Any]], seconds: dict[str, float]) -> str:
    names = list(results)
    kinds = list(next(iter(results.values()))["recall"])
    lines = ["| kind | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for k in kinds:
        lines.append(f"| {k} | " + " | ".join(f"{results[n]['recall'][k]:.1%}" for n in names) + " |")
    first = results[names[0]]
    lines.append(f"| clean prose flagged (of {first['clean_docs']:,}) | "
                 + " | ".join(str(results[n]["clean_flagged"]) for n in names) + " |")
    lines.append(f"| held-out negatives flagged (of {first['negatives']:,}) | "
                 + " | ".join(f"{results[n]['negatives_flagged']} (+{results[n]['negatives_genuine_duplicates_flagged']}"
                              " dup)" for n in names) + " |")
    lines.append("| wall seconds (decon detect, cold index) | "
                 + " | ".join(f"{seconds[n]:.1f}" if n in seconds else "-" for n in names) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    corpus = build_corpus(args)
    results: dict[str, dict[str, Any]] = {}
    seconds: dict[str, float] = {}
    for name, flags in RUNS:
        results[name], seconds[name] = detect_and_score(args, corpus, name, flags)
    results[f"word {args.ngram}-gram"] = score(args, corpus, "--ngram", str(args.ngram))
    text = table(results, seconds)
    if "SIMPLE" in seconds and "--recall" in seconds:
        text += f"\n\n--recall / SIMPLE wall time: {seconds['--recall'] / seconds['SIMPLE']:.2f}x"
    speed_rows = None
    if args.speed:
        speed_rows = speed(args)
        text += "\n\n" + speed_table(speed_rows, args.speed_workers)
    print(text)
    (args.out / "results.md").write_text(text + "\n")
    blob = json.dumps({"results": results, "seconds": seconds, "speed": speed_rows, "corpus": str(corpus)}, indent=1)
    (args.out / "results.json").write_text(blob)
    if args.json:
        args.json.write_text(blob)
    return 0


if __name__ == "__main__":
    sys.exit(main())
