"""Benchmark corpora: the prose-like generator and a wrapper around ../shared/bench/make_corpus.py.

Every corpus lives under bench-data/ with a params.json stamp and is reused while the parameters
match. Each comes with a one-line corpus of the same kind (its first document) so that
detection time = wall(corpus) - wall(one-line corpus) cancels start-up and index build.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

GENERATOR_VERSION = 1
_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?|\d+")


@dataclass
class Corpus:
    """One benchmark corpus: training files, the reference set to detect against, its one-line twin."""

    name: str
    train_dir: Path
    files: list[Path]
    evals_dir: Path
    tiny_dir: Path
    truth: Path | None = None

    @property
    def size_mb(self) -> float:
        return sum(f.stat().st_size for f in self.files) / 1e6

    @property
    def docs(self) -> int:
        n = 0
        for f in self.files:
            with open(f, "rb") as fh:
                n += sum(1 for line in fh if line.strip())
        return n


def _stamp_matches(out_dir: Path, params: dict, paths: list[Path]) -> bool:
    stamp = out_dir / "params.json"
    return stamp.is_file() and json.loads(stamp.read_text()) == params and all(p.is_file() for p in paths)


def write_one_line(src: Path, tiny_dir: Path) -> Path:
    """``tiny_dir``/tiny.jsonl holding the first line of ``src``."""
    tiny_dir.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fh:
        first = fh.readline()
    out = tiny_dir / "tiny.jsonl"
    out.write_bytes(first if first.endswith(b"\n") else first + b"\n")
    return out


# ---------------------------------------------------------------------------------------------
# Prose-like corpus: word frequencies of the eval texts, ~1% edited eval items
# ---------------------------------------------------------------------------------------------

def _open_jsonl(path: Path):  # noqa: ANN202 - file object
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115


def load_eval_records(evals: Path) -> list[dict[str, str]]:
    """question/answer/passage of every eval record of ``evals`` (sorted files, file order)."""
    out = []
    for f in sorted([*evals.glob("*.jsonl.gz"), *evals.glob("*.jsonl")]):
        with _open_jsonl(f) as fh:
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


def generate_corpus(out_dir: Path, *, size_mb: float, files: int, seed: int, evals: Path) -> list[Path]:
    """Write ``files`` JSONL files of ~``size_mb`` MB in total (deterministic for a seed)."""
    params = {"size_mb": size_mb, "files": files, "seed": seed, "version": GENERATOR_VERSION,
              "evals": str(evals)}
    paths = [out_dir / f"train-{i:02d}.jsonl" for i in range(files)]
    if _stamp_matches(out_dir, params, paths):
        print(f"Reusing corpus {out_dir}")
        return paths
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    records = load_eval_records(evals)
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
    (out_dir / "params.json").write_text(json.dumps(params))
    print(f"Generated {out_dir}: {doc_id:,} documents, {n_contaminated:,} contaminated, "
          f"{sum(p.stat().st_size for p in paths) / 1e6:.0f} MB in {time.perf_counter() - started:.1f}s")
    return paths




def prose_corpus(data: Path, *, size_mb: float, files: int, seed: int, evals: Path) -> Corpus:
    """The prose-like corpus (this module's generator), checked against ``evals``."""
    out = data / f"prose-{size_mb:g}mb-{files}f-s{seed}"
    paths = generate_corpus(out / "train", size_mb=size_mb, files=files, seed=seed, evals=evals)
    write_one_line(paths[0], out / "tiny")
    return Corpus("prose-like", out / "train", paths, evals, out / "tiny")


# ---------------------------------------------------------------------------------------------
# make_corpus.py corpora: eval-like (Q&A background, 6 reference files) and documentation prose
# ---------------------------------------------------------------------------------------------

def make_corpus(data: Path, *, name: str, generator: Path, evals: Path, docs: int, seed: int,
                doc_prose: bool) -> Corpus:
    """Run ``generator`` (make_corpus.py) once per parameter set; reuse its output afterwards.

    eval-like: detect against the 6-file reference subset it writes (--refs).
    documentation prose (``doc_prose``): no eval text in the background; detect against all of ``evals``.
    """
    if not generator.is_file():
        raise SystemExit(f"corpus generator not found: {generator} (see --make-corpus)")
    out = data / f"{name}-d{docs}-s{seed}"
    train = out / "train" / "train.jsonl"
    params = {"docs": docs, "seed": seed, "doc_prose": doc_prose, "evals": str(evals),
              "generator_sha": _file_digest(generator)}
    if _stamp_matches(out, params, [train]):
        print(f"Reusing corpus {out}")
    else:
        shutil.rmtree(out, ignore_errors=True)
        train.parent.mkdir(parents=True)
        cmd = [sys.executable, str(generator), "--evals", str(evals), "--refs", str(out / "refs"),
               "--out", str(train), "--truth", str(out / "truth.jsonl"), "--docs", str(docs),
               "--seed", str(seed)]
        if doc_prose:
            cmd += ["--bg-eval-files", ""]
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"corpus generator failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
        (out / "params.json").write_text(json.dumps(params))
        print(f"Generated {out}: {docs:,} documents, {train.stat().st_size / 1e6:.0f} MB "
              f"in {time.perf_counter() - started:.1f}s")
    write_one_line(train, out / "tiny")
    refs = evals if doc_prose else out / "refs"
    return Corpus(name, train.parent, [train], refs, out / "tiny", truth=out / "truth.jsonl")


def _file_digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def read_truth(path: Path) -> set[tuple[int, str, int]]:
    """(training_line, eval_key, eval_instance_index) of every injected item."""
    out = set()
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                r = orjson.loads(line)
                out.add((int(r["training_line"]), str(r["eval_key"]), int(r["eval_instance_index"])))
    return out
