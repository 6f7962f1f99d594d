"""Running decon and the upstream binary under measurement; reading what they found; the tokenizer floor."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

BATCH = 2048  # lines per encode batch, as detection does


@dataclass
class RunResult:
    wall: float
    peak_rss_mb: float
    stdout: str
    stderr: str
    cpu: float = 0.0  # user + system seconds of the whole process tree (waited-for children included)
    fields: dict[str, float] = field(default_factory=dict)


_SUMMARY = {
    "index_seconds": r"Index building time\s+([\d.]+)s",
    "detection_seconds": r"Detection time\s+([\d.]+)s",
    "total_seconds": r"Total time\s+([\d.]+)s",
    "lines": r"Training lines\s+([\d,]+)",
    "contaminated_docs": r"Contaminated documents\s+([\d,]+)",
}


def decon_cmd() -> list[str]:
    return [sys.executable, "-m", "decon"]


def decon_env(cache_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(DECON_QUIET="1", DECON_CACHE_DIR=str(cache_dir), PYTHONUNBUFFERED="1")
    return env


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> RunResult:
    """Run ``cmd``; wall time, CPU time and peak RSS (largest process of its tree, via /usr/bin/time or
    wait4)."""
    time_bin = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file:
        full = [time_bin, "-f", "%M", "-o", rss_file.name, *cmd] if time_bin else cmd
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.run(full, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
            raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
        if time_bin:
            text = rss_file.read().strip().splitlines()
            rss_kb = float(text[-1]) if text else 0.0
        else:  # only an upper bound across runs
            rss_kb = float(after.ru_maxrss)
    res = RunResult(wall=wall, peak_rss_mb=rss_kb / 1024, stdout=proc.stdout, stderr=proc.stderr, cpu=cpu)
    for key, pattern in _SUMMARY.items():
        m = re.search(pattern, proc.stdout)
        if m:
            res.fields[key] = float(m.group(1).replace(",", ""))
    return res


def detect_args(training: Path, evals: Path, reports: Path, workers: int) -> list[str]:
    """`detect` arguments both tools accept (upstream's CLI; decon keeps its flag names)."""
    return ["detect", "--training-dir", str(training), "--evals-dir", str(evals),
            "--report-output-dir", str(reports), "--worker-threads", str(workers)]


def run_decon(training: Path, evals: Path, reports: Path, workers: int, cache_dir: Path,
              *extra: str) -> RunResult:
    shutil.rmtree(reports, ignore_errors=True)
    return run_measured([*decon_cmd(), *detect_args(training, evals, reports, workers), *extra],
                        decon_env(cache_dir))


def run_upstream(binary: Path, training: Path, evals: Path, reports: Path, workers: int) -> RunResult:
    shutil.rmtree(reports, ignore_errors=True)
    return run_measured([str(binary), *detect_args(training, evals, reports, workers)])


def upstream_version(binary: Path) -> str:
    try:
        proc = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
    except OSError as exc:
        raise SystemExit(f"upstream binary not runnable: {binary}: {exc}") from None
    return (proc.stdout or proc.stderr).strip().splitlines()[0] if (proc.stdout or proc.stderr).strip() else "?"


# ---------------------------------------------------------------------------------------------
# What was found
# ---------------------------------------------------------------------------------------------

Match = tuple[str, int, str, int]


def read_matches(reports: Path) -> set[Match]:
    """(training file stem, training_line, eval_key, eval_instance_index) of every report record."""
    out: set[Match] = set()
    for f in sorted(reports.glob("*.jsonl")):
        with open(f, "rb") as fh:
            for line in fh:
                if line.strip():
                    r = orjson.loads(line)
                    stem = str(r.get("training_file", "")).split(".")[0]
                    out.add((stem, int(r["training_line"]), str(r["eval_key"]), int(r["eval_instance_index"])))
    return out


@dataclass
class MatchCheck:
    decon: int
    upstream: int
    common: int
    decon_lines: int
    upstream_lines: int
    truth_found_decon: int | None = None
    truth_found_upstream: int | None = None
    truth_total: int | None = None

    @property
    def same(self) -> bool:
        return self.decon == self.upstream == self.common

    def cell(self) -> str:
        if self.same:
            return f"same: {self.decon_lines} lines, {self.common} matches"
        return (f"DIFFER: lines {self.decon_lines} vs {self.upstream_lines}; "
                f"{self.common} common, {self.decon - self.common} only decon, "
                f"{self.upstream - self.common} only upstream")


def compare_matches(decon: set[Match], upstream: set[Match],
                    truth: set[tuple[int, str, int]] | None = None) -> MatchCheck:
    check = MatchCheck(len(decon), len(upstream), len(decon & upstream),
                       len({m[:2] for m in decon}), len({m[:2] for m in upstream}))
    if truth is not None:
        check.truth_total = len(truth)
        check.truth_found_decon = len(truth & {m[1:] for m in decon})
        check.truth_found_upstream = len(truth & {m[1:] for m in upstream})
    return check


# ---------------------------------------------------------------------------------------------
# Tokenizer floor
# ---------------------------------------------------------------------------------------------

def floor_worker(paths: list[str], part: int, parts: int) -> dict[str, float]:
    """Clean and encode batches ``part``::``parts`` of ``paths`` as detection does (its tokenizer, its
    cleaning); time the cleaning and the encoding separately."""
    from decon.common.config import DEFAULT_PUNCTUATION
    from decon.common.text import clean_text
    from decon.common.tokenizer import get_tokenizer

    tok = get_tokenizer("cl100k")
    tok.encode_batch([" warm up"], num_threads=1)
    clean_s = encode_s = clean_cpu = encode_cpu = 0.0
    tokens = docs = 0
    batch_no = 0
    for p in paths:
        with open(p, "rb") as fh:
            while True:
                lines = [ln for _, ln in zip(range(BATCH), fh, strict=False)]
                if not lines:
                    break
                batch_no += 1
                if (batch_no - 1) % parts != part:
                    continue
                raw = [orjson.loads(ln)["text"] for ln in lines if ln.strip()]
                t0, c0 = time.perf_counter(), time.process_time()
                texts = [" " + clean_text(t, DEFAULT_PUNCTUATION) for t in raw]
                t1, c1 = time.perf_counter(), time.process_time()
                enc = tok.encode_batch(texts, num_threads=1)
                encode_s += time.perf_counter() - t1
                encode_cpu += time.process_time() - c1
                clean_s += t1 - t0
                clean_cpu += c1 - c0
                tokens += sum(len(e) for e in enc)
                docs += len(texts)
    return {"encode_seconds": encode_s, "clean_seconds": clean_s, "encode_cpu": encode_cpu,
            "clean_cpu": clean_cpu, "tokens": tokens, "docs": docs}


def tokenizer_floor(files: list[Path], workers: int, script: Path) -> dict[str, float]:
    """Split the batches of ``files`` over ``workers`` processes (as detection's workers would).

    seconds / clean_encode_seconds: CPU seconds of the slowest process (encode alone; clean + encode),
    which is its wall time on an idle machine and stays meaningful on a busy one; *_cpu_total: summed
    over the processes, to set against decon's detection CPU seconds."""
    procs = [subprocess.Popen([sys.executable, str(script), "--floor-worker",
                               json.dumps({"paths": [str(f) for f in files], "part": i, "parts": workers})],
                              stdout=subprocess.PIPE, text=True) for i in range(workers)]
    results = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit("tokenizer floor worker failed")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return {"seconds": max(r["encode_cpu"] for r in results),
            "clean_encode_seconds": max(r["encode_cpu"] + r["clean_cpu"] for r in results),
            "encode_cpu_total": sum(r["encode_cpu"] for r in results),
            "clean_encode_cpu_total": sum(r["encode_cpu"] + r["clean_cpu"] for r in results),
            "wall_seconds": max(r["encode_seconds"] for r in results),
            "tokens": sum(r["tokens"] for r in results), "docs": sum(r["docs"] for r in results)}
