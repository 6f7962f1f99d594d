#!/usr/bin/env python3
"""Benchmark `decon detect` on a deterministic synthetic corpus against the bundled evals.

    python scripts/bench.py [--size-mb 200] [--files 4] [--workers 1,2] [--quick]

Generates (once; reused while the parameters match) English-like prose under bench-data/, built
from the word frequencies of the bundled eval texts, with ~1% of documents carrying a bundled
eval question (+ answer, sometimes the passage) with small edits. Then measures: cold index build
(--no-index-cache) and warm cache load, detection with 1 and 2 worker processes (lines/s,
tokens/s, us/doc, peak RSS), the tokenizer floor (cl100k encode_batch of the same cleaned texts in
the same process layout), a --purify run, and the PSS of `decon server` with 1 and 2 workers.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parent.parent
EVALS = ROOT / "fixtures" / "reference"
DATA = ROOT / "bench-data"
GENERATOR_VERSION = 1
BATCH = 2048  # lines per encode batch, as detection does
_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?|\d+")


# ---------------------------------------------------------------------------------------------
# Corpus
# ---------------------------------------------------------------------------------------------

def load_eval_records(evals: Path = EVALS) -> list[dict[str, str]]:
    """question/answer/passage of every bundled eval record (sorted files, file order)."""
    out = []
    for f in sorted(evals.glob("*.jsonl.gz")):
        with gzip.open(f, "rb") as fh:
            for line in fh:
                if not line.strip():
                    continue
                r = orjson.loads(line)
                q = r.get("question")
                if isinstance(q, str) and q.strip():
                    out.append({k: r[k] for k in ("question", "answer", "passage")
                                if isinstance(r.get(k), str) and r[k].strip()})
    return out


def build_vocabulary(records: list[dict[str, str]], size: int = 30000) -> tuple[list[str], np.ndarray]:
    """The most frequent words of the eval texts and their relative frequencies."""
    counts: Counter[str] = Counter()
    for r in records:
        for text in r.values():
            counts.update(w.lower() if not w.isupper() or len(w) == 1 else w for w in _WORD.findall(text))
    words, freq = zip(*counts.most_common(size), strict=True)
    p = np.asarray(freq, dtype=np.float64)
    return list(words), p / p.sum()


def _edit(text: str, rng: np.random.Generator, vocab: list[str]) -> str:
    """Small edits: a word changed or dropped, case and punctuation changes."""
    words = text.split()
    if len(words) > 4:
        if rng.random() < 0.3:
            words[int(rng.integers(len(words)))] = vocab[int(rng.integers(min(len(vocab), 2000)))]
        if rng.random() < 0.3:
            del words[int(rng.integers(len(words)))]
    out = " ".join(words)
    r = rng.random()
    if r < 0.15:
        out = out.upper()
    elif r < 0.35:
        out = out.lower()
    if rng.random() < 0.3:
        out = re.sub(r"[?.,;:!]", "", out)
    elif rng.random() < 0.2:
        out = out.replace(" ", ", ", 1) + "!"
    return out


def _contamination(rng: np.random.Generator, records: list[dict[str, str]], vocab: list[str]) -> str:
    r = records[int(rng.integers(len(records)))]
    parts = []
    if "passage" in r and rng.random() < 0.3:
        parts.append(_edit(r["passage"], rng, vocab))
    parts.append(_edit(r["question"], rng, vocab))
    if "answer" in r and rng.random() < 0.8:
        parts.append(("Answer: " if rng.random() < 0.5 else "") + _edit(r["answer"], rng, vocab))
    return " ".join(parts)


def generate_corpus(out_dir: Path, *, size_mb: float, files: int, seed: int) -> list[Path]:
    """Write ``files`` JSONL files of ~``size_mb`` MB in total (deterministic for a seed)."""
    params = {"size_mb": size_mb, "files": files, "seed": seed, "version": GENERATOR_VERSION}
    paths = [out_dir / f"train-{i:02d}.jsonl" for i in range(files)]
    stamp = out_dir / "params.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == params and all(p.is_file() for p in paths):
        print(f"Reusing corpus {out_dir}")
        return paths
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    records = load_eval_records()
    vocab, probs = build_vocabulary(records)
    v = len(vocab)
    cap = [w[:1].upper() + w[1:] for w in vocab]
    # variants: 0 plain, 1 capitalised (sentence start), 2 sentence end, 3 comma, 4 paragraph end
    table = np.array([vocab, cap, [w + "." for w in vocab], [w + "," for w in vocab],
                      [w + ".\n\n" for w in vocab]], dtype=object)
    per_file = size_mb * 1e6 / files
    doc_id = 0
    n_contaminated = 0
    for path in paths:
        written = 0
        with open(path, "wb") as fh:
            while written < per_file:
                n_docs = 500
                lengths = np.clip(rng.lognormal(5.6, 0.8, n_docs), 30, 4000).astype(np.int64)
                total = int(lengths.sum())
                idx = rng.choice(v, size=total, p=probs)
                variant = np.zeros(total, dtype=np.int64)
                # sentence ends every 6-28 words; next word capitalised
                gaps = rng.integers(6, 29, size=total // 6 + 2)
                ends = np.cumsum(gaps)
                ends = ends[ends < total]
                variant[ends] = np.where(rng.random(len(ends)) < 0.12, 4, 2)
                starts = ends + 1
                variant[starts[starts < total]] = 1
                commas = rng.random(total) < 0.04
                variant[commas & (variant == 0)] = 3
                words = table[variant, idx]
                bounds = np.concatenate([[0], np.cumsum(lengths)])
                lines = []
                for d in range(n_docs):
                    ws = words[bounds[d]:bounds[d + 1]].tolist()
                    ws[0] = ws[0][:1].upper() + ws[0][1:]
                    if not ws[-1].endswith((".", ".\n\n")):
                        ws[-1] = ws[-1].rstrip(",") + "."
                    if rng.random() < 0.01:
                        pos = int(rng.integers(len(ws) + 1))
                        ws.insert(pos, _contamination(rng, records, vocab))
                        n_contaminated += 1
                    text = " ".join(ws).replace("\n\n ", "\n\n").strip()
                    lines.append(orjson.dumps({"id": f"bench-{doc_id}", "text": text}))
                    doc_id += 1
                chunk = b"\n".join(lines) + b"\n"
                fh.write(chunk)
                written += len(chunk)
    stamp.write_text(json.dumps(params))
    print(f"Generated {out_dir}: {doc_id:,} documents, {n_contaminated:,} contaminated, "
          f"{sum(p.stat().st_size for p in paths) / 1e6:.0f} MB in {time.perf_counter() - started:.1f}s")
    return paths


# ---------------------------------------------------------------------------------------------
# Running decon
# ---------------------------------------------------------------------------------------------

@dataclass
class RunResult:
    wall: float
    peak_rss_mb: float
    stdout: str
    stderr: str
    fields: dict[str, float] = field(default_factory=dict)


_SUMMARY = {
    "index_seconds": r"Index building time\s+([\d.]+)s",
    "detection_seconds": r"Detection time\s+([\d.]+)s",
    "total_seconds": r"Total time\s+([\d.]+)s",
    "lines": r"Training lines\s+([\d,]+)",
    "contaminated_docs": r"Contaminated documents\s+([\d,]+)",
}


def _decon_cmd() -> list[str]:
    return [sys.executable, "-m", "decon"]


def _env(cache_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(DECON_QUIET="1", DECON_CACHE_DIR=str(cache_dir), PYTHONUNBUFFERED="1")
    return env


def run_measured(cmd: list[str], env: dict[str, str]) -> RunResult:
    """Run ``cmd``; wall time and peak RSS (largest process of its tree, via /usr/bin/time or wait4)."""
    time_bin = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file:
        full = [time_bin, "-f", "%M", "-o", rss_file.name, *cmd] if time_bin else cmd
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        proc = subprocess.run(full, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
            raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
        if time_bin:
            text = rss_file.read().strip().splitlines()
            rss_kb = float(text[-1]) if text else 0.0
        else:  # only an upper bound across runs
            rss_kb = float(max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
    res = RunResult(wall=wall, peak_rss_mb=rss_kb / 1024, stdout=proc.stdout, stderr=proc.stderr)
    for key, pattern in _SUMMARY.items():
        m = re.search(pattern, proc.stdout)
        if m:
            res.fields[key] = float(m.group(1).replace(",", ""))
    return res


def detect(training: Path, reports: Path, cache_dir: Path, *extra: str) -> RunResult:
    shutil.rmtree(reports, ignore_errors=True)
    cmd = [*_decon_cmd(), "detect", "--training-dir", str(training), "--evals-dir", str(EVALS),
           "--report-output-dir", str(reports), *extra]
    return run_measured(cmd, _env(cache_dir))


# ---------------------------------------------------------------------------------------------
# Tokenizer floor
# ---------------------------------------------------------------------------------------------

def floor_worker(paths: list[str]) -> dict[str, float]:
    """Encode the cleaned texts of ``paths`` as detection does; time only the encoding."""
    from decon.common.config import DEFAULT_PUNCTUATION
    from decon.common.text import clean_text
    from decon.common.tokenizer import get_tokenizer

    tok = get_tokenizer("cl100k")
    tok.encode_batch([" warm up"], num_threads=1)
    encode_s = 0.0
    tokens = 0
    docs = 0
    for p in paths:
        with open(p, "rb") as fh:
            while True:
                lines = [ln for _, ln in zip(range(BATCH), fh, strict=False)]
                if not lines:
                    break
                texts = [" " + clean_text(orjson.loads(ln)["text"], DEFAULT_PUNCTUATION) for ln in lines]
                t0 = time.perf_counter()
                enc = tok.encode_batch(texts, num_threads=1)
                encode_s += time.perf_counter() - t0
                tokens += sum(len(e) for e in enc)
                docs += len(texts)
    return {"encode_seconds": encode_s, "tokens": tokens, "docs": docs}


def tokenizer_floor(files: list[Path], workers: int) -> dict[str, float]:
    """Split ``files`` over ``workers`` processes (as detection's workers would); wall = slowest."""
    groups = [[str(f) for f in files[i::workers]] for i in range(workers)]
    procs = [subprocess.Popen([sys.executable, __file__, "--floor-worker", json.dumps(g)],
                              stdout=subprocess.PIPE, text=True) for g in groups if g]
    results = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit("tokenizer floor worker failed")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return {"seconds": max(r["encode_seconds"] for r in results), "tokens": sum(r["tokens"] for r in results),
            "docs": sum(r["docs"] for r in results)}


# ---------------------------------------------------------------------------------------------
# Server memory
# ---------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def server_pss(workers: int, cache_dir: Path, job_file: Path, work: Path) -> dict[str, float]:
    """Start `decon server` with ``workers``, run one job per worker, sum the PSS of its processes."""
    port = _free_port()
    out = work / f"server-{workers}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [*_decon_cmd(), "server", "--host", "127.0.0.1", "--port", str(port), "--worker-threads",
           str(workers), "--evals-dir", str(EVALS), "--report-output-dir", str(out)]
    log = open(work / f"server-{workers}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=_env(cache_dir), stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"server exited early; see {log.name}")
            try:
                code, _ = _http("GET", base + "/health")
            except OSError:
                code = 0
            if code == 200:
                break
            if time.perf_counter() - started > 600:
                raise SystemExit("server did not become ready in 600s")
            time.sleep(0.2)
        ready = time.perf_counter() - started
        time.sleep(1.0)
        idle_kb = sum(_pss_kb(p) for p in _descendants(proc.pid))
        jobs = [_http("POST", base + "/submit", {"file_path": str(job_file)})[1]["job_id"] for _ in range(workers)]
        deadline = time.perf_counter() + 600
        while jobs and time.perf_counter() < deadline:
            jobs = [j for j in jobs if _http("GET", f"{base}/status/{j}")[1].get("status") not in ("completed", "failed")]
            time.sleep(0.2)
        pids = _descendants(proc.pid)
        busy_kb = sum(_pss_kb(p) for p in pids)
        return {"ready_seconds": ready, "idle_pss_mb": idle_kb / 1024, "pss_mb": busy_kb / 1024,
                "processes": len(pids)}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

def _fmt_rate(x: float) -> str:
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.1f} k"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=float, default=200.0, help="corpus size [default: 200]")
    ap.add_argument("--files", type=int, default=4, help="corpus files [default: 4]")
    ap.add_argument("--quick", action="store_true", help="a ~20 MB corpus")
    ap.add_argument("--workers", default="1,2", help="worker counts to time [default: 1,2]")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--no-server", action="store_true", help="skip the server memory check")
    ap.add_argument("--floor-worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.floor_worker:
        print(json.dumps(floor_worker(json.loads(args.floor_worker))))
        return 0

    size = 20.0 if args.quick else args.size_mb
    worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    DATA.mkdir(exist_ok=True)
    corpus = DATA / f"corpus-{size:g}mb-{args.files}f-s{args.seed}"
    cache_dir = DATA / "index-cache"
    work = DATA / "runs"
    work.mkdir(exist_ok=True)

    print(f"decon benchmark: cpu_count={os.cpu_count()}  python={sys.version.split()[0]}  "
          f"corpus={size:g} MB in {args.files} files (seed {args.seed})  "
          f"loadavg(1m)={os.getloadavg()[0]:.2f}")
    if os.getloadavg()[0] > 0.5:
        print("note: the machine is busy; timings (above all the 2-worker ones) will be pessimistic")
    files = generate_corpus(corpus, size_mb=size, files=args.files, seed=args.seed)
    corpus_mb = sum(f.stat().st_size for f in files) / 1e6
    tiny = work / "tiny"
    tiny.mkdir(exist_ok=True)
    with open(files[0], "rb") as src:
        head = [next(src) for _ in range(1000)]
    (tiny / "tiny.jsonl").write_bytes(head[0])
    job_file = work / "job.jsonl"
    job_file.write_bytes(b"".join(head))

    rows: list[tuple[str, str]] = []

    print("Cold index build (--no-index-cache) ...", flush=True)
    cold = detect(tiny, work / "r-cold", cache_dir, "--no-index-cache")
    rows.append(("Cold index build", f"{cold.fields['index_seconds']:.2f} s  (process {cold.wall:.2f} s, "
                                     f"peak RSS {cold.peak_rss_mb:.0f} MB)"))
    detect(tiny, work / "r-fill", cache_dir)  # make sure the cache holds this index
    warm = detect(tiny, work / "r-warm", cache_dir)
    if "loaded from cache" not in warm.stderr:  # the index code changed in between: once more
        warm = detect(tiny, work / "r-warm", cache_dir)
        if "loaded from cache" not in warm.stderr:
            print("warning: warm run did not load from the cache", file=sys.stderr)
    warm_load = warm.fields["index_seconds"]
    rows.append(("Warm index load (cache)", f"{warm_load:.2f} s  (whole `decon detect` start-up+exit "
                                             f"{warm.wall:.2f} s)"))

    det: dict[int, RunResult] = {}
    floors: dict[int, dict[str, float]] = {}
    for w in worker_counts:
        print(f"Detection, {w} worker(s) ...", flush=True)
        det[w] = detect(corpus, work / f"r-{w}", cache_dir, "--worker-threads", str(w))
        print(f"Tokenizer floor, {w} process(es) ...", flush=True)
        floors[w] = tokenizer_floor(files, w)
    for w in worker_counts:
        r, fl = det[w], floors[w]
        secs = r.fields["detection_seconds"]
        lines = r.fields.get("lines", fl["docs"])
        tok_rate = fl["tokens"] / secs
        floor_rate = fl["tokens"] / fl["seconds"]
        rows.append((f"Detect, {w} worker(s)",
                     f"{secs:.2f} s  {lines / secs:,.0f} lines/s  {_fmt_rate(tok_rate)}tok/s  "
                     f"{secs * 1e6 / lines:.0f} us/doc  {corpus_mb / secs:.1f} MB/s  peak RSS {r.peak_rss_mb:.0f} MB"))
        rows.append(("  contaminated docs found", f"{r.fields.get('contaminated_docs', 0):,.0f} of {lines:,.0f}"))
        rows.append((f"Tokenizer floor, {w} proc(s)",
                     f"{fl['seconds']:.2f} s  {_fmt_rate(floor_rate)}tok/s  ({fl['tokens']:,} tokens)"))
        rows.append(("  detect / floor tokens/s", f"{tok_rate / floor_rate:.3f}"))
    if 1 in det and len(det) > 1:
        for w in worker_counts:
            if w != 1:
                sp = det[1].fields["detection_seconds"] / det[w].fields["detection_seconds"]
                fsp = floors[1]["seconds"] / floors[w]["seconds"]
                rows.append((f"Speedup 1 -> {w} workers", f"detect x{sp:.2f}   (floor x{fsp:.2f})"))

    wmax = max(worker_counts)
    print(f"Purify, {wmax} worker(s) ...", flush=True)
    pur = detect(corpus, work / "r-purify", cache_dir, "--worker-threads", str(wmax), "--purify",
                 "--cleaned-output-dir", str(work / "cleaned"))
    rows.append((f"Purify, {wmax} worker(s)", f"process {pur.wall:.2f} s (detect {pur.fields['detection_seconds']:.2f} s)"
                                             f"  peak RSS {pur.peak_rss_mb:.0f} MB"))
    shutil.rmtree(work / "cleaned", ignore_errors=True)

    if not args.no_server:
        pss = {}
        for w in (1, 2):
            print(f"Server PSS, {w} worker(s) ...", flush=True)
            pss[w] = server_pss(w, cache_dir, job_file, work)
            rows.append((f"Server, {w} worker(s)", f"PSS {pss[w]['pss_mb']:.0f} MB after 1 job/worker "
                                                    f"(idle {pss[w]['idle_pss_mb']:.0f} MB, "
                                                    f"{pss[w]['processes']} processes, "
                                                    f"ready in {pss[w]['ready_seconds']:.1f} s)"))
        ratio = pss[2]["pss_mb"] / pss[1]["pss_mb"]
        rows.append(("Server PSS 2w / 1w", f"{ratio:.2f}  (idle {pss[2]['idle_pss_mb'] / pss[1]['idle_pss_mb']:.2f};"
                                           f" target < 1.3)"))

    width = max(len(k) for k, _ in rows) + 2
    print()
    print(f"== decon bench: {corpus_mb:.0f} MB, {args.files} files, cpu_count={os.cpu_count()}, "
          f"loadavg(1m) at end {os.getloadavg()[0]:.2f} ==")
    for k, v in rows:
        print(f"{k:<{width}}{v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
