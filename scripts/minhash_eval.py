#!/usr/bin/env python3
"""Recall, false positives and throughput of SIMPLE and MinHash on a corpus with ground truth.

    python scripts/minhash_eval.py [--docs 4000 --seed 1] [--workers 1,2]

Builds (once, under bench-data/minhash-eval/) the eval-like corpus of ../shared/bench/make_corpus.py
with its ground truth (with the defaults: the corpus of ../shared/golden/synthetic-input), runs
`decon detect` with each setting, and prints per injection kind how many injected documents each
setting reported, how many reported documents carry no injection, and detection time per worker
count. A document counts as found when its report has any record for it (line level).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench-data" / "minhash-eval"

WINDOWS = ["--window-size-increment", "25", "--num-windows", "4", "--window-step-size", "10"]
SETTINGS: dict[str, list[str]] = {
    "SIMPLE": [],
    "MinHash": ["--config", str(ROOT / "config" / "minhash.yaml")],
    "MinHash windowed": ["--config", str(ROOT / "config" / "minhash.yaml"), *WINDOWS],
}
_DETECTION = re.compile(r"Detection time\s+([\d.]+)s")


def make_corpus(shared: Path, docs: int, seed: int) -> Path:
    out = DATA / f"d{docs}-s{seed}"
    if (out / "truth.jsonl").is_file():
        return out
    (out / "train").mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(shared / "bench" / "make_corpus.py"), "--evals",
                    str(shared / "upstream" / "bundled-evals"), "--refs", str(out / "refs"), "--out",
                    str(out / "train" / "corpus.jsonl"), "--truth", str(out / "truth.tmp"), "--docs", str(docs),
                    "--seed", str(seed)], check=True)
    (out / "truth.tmp").rename(out / "truth.jsonl")
    return out


def detect(corpus: Path, flags: list[str], workers: int) -> tuple[set[int], float]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "decon", "detect", "--training-dir", str(corpus / "train"), "--evals-dir",
               str(corpus / "refs"), "--report-output-dir", tmp, "--worker-threads", str(workers), *flags]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"decon detect failed ({' '.join(flags)}): {p.stderr.strip().splitlines()[-1:]}")
        m = _DETECTION.search(p.stdout)
        lines = {json.loads(x)["training_line"] for f in Path(tmp).iterdir() for x in f.read_text().splitlines()}
    return lines, float(m.group(1)) if m else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=4000, help="corpus size in documents [default: 4000]")
    ap.add_argument("--seed", type=int, default=1, help="corpus seed [default: 1]")
    ap.add_argument("--workers", default="1,2", help="worker counts to time, comma separated [default: 1,2]")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared",
                    help="the shared/ folder with bench/make_corpus.py [default: ../shared]")
    a = ap.parse_args()
    corpus = make_corpus(a.shared, a.docs, a.seed)
    truth = [json.loads(x) for x in (corpus / "truth.jsonl").read_text().splitlines()]
    kinds = Counter(t["kind"] for t in truth)
    found: dict[str, set[int]] = {}
    times: dict[str, dict[int, float]] = {}
    started = time.time()
    for name, flags in SETTINGS.items():
        times[name] = {}
        for w in (int(x) for x in a.workers.split(",")):
            found[name], times[name][w] = detect(corpus, flags, w)
    found["SIMPLE + MinHash windowed"] = found["SIMPLE"] | found["MinHash windowed"]
    names = list(found)
    print(f"corpus: {corpus} ({a.docs:,} documents, {len(truth)} injected); {time.time() - started:.0f}s")
    print("\n| injection kind | n | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1]):
        lines = {t["training_line"] for t in truth if t["kind"] == kind}
        print(f"| {kind} | {n} | " + " | ".join(f"{len(lines & found[s])}/{n}" for s in names) + " |")
    injected = {t["training_line"] for t in truth}
    print(f"| **all** | {len(truth)} | " + " | ".join(f"**{len(injected & found[s])}/{len(truth)}**" for s in names)
          + " |")
    print("| reported, not injected | | " + " | ".join(str(len(found[s] - injected)) for s in names) + " |")
    print("\n| setting | " + " | ".join(f"detection s, {w} worker(s)" for w in times["SIMPLE"]) + " |")
    print("|---|" + "---|" * len(times["SIMPLE"]))
    for name, per in times.items():
        print(f"| {name} | " + " | ".join(f"{t:.2f}" for t in per.values()) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
