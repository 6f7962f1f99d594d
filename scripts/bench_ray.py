#!/usr/bin/env python3
"""Measure `decon ray` on a local Ray instance against `decon detect` on the same files.

    python scripts/bench_ray.py --input DIR --evals-dir DIR [--cpus 1,2] [--repeat 1]

Runs (index cache warmed first) `decon detect --worker-threads 2`, then `decon ray --num-cpus N`
for each N, each into a fresh output folder. For each run: wall time of the whole command, the
`Time=` of its SUMMARY line (decon ray: dispatch start to end), and the peak PSS of the command's
whole process tree (for `decon ray` on one machine that is the driver plus the Ray node: GCS,
raylet, object store, actors), sampled every 0.2 s. Prints one line per run and the ratios.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

DECON = [sys.executable, "-m", "decon"]


def _children(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except OSError:
            continue
    return out


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run(argv: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak tree PSS MB, combined output)."""
    log = tempfile.TemporaryFile("w+")
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], sum(_pss_kb(p) for p in _children(proc.pid)))
            time.sleep(0.2)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    rc = proc.wait()
    wall = time.perf_counter() - started
    t.join()
    log.seek(0)
    text = log.read()
    if rc not in (0,):
        sys.exit(f"command failed ({rc}): {' '.join(argv)}\n{text[-3000:]}")
    return wall, peak[0] / 1024, text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", required=True, help="Folder of training files")
    ap.add_argument("--evals-dir", required=True, help="Reference set")
    ap.add_argument("--cpus", default="1,2", help="Comma list of local Ray CPU counts [default: 1,2]")
    ap.add_argument("--repeat", type=int, default=1, help="Runs of each command; the fastest is kept")
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="decon-bench-ray-"))
    common = ["--evals-dir", args.evals_dir]
    subprocess.run(DECON + ["detect", "--training-dir", args.input, "--report-output-dir", str(out / "warm"),
                            *common], check=True, capture_output=True)  # warms the index cache
    results = {}
    try:
        plans = [("detect-2w", lambda d: DECON + ["detect", "--training-dir", args.input, "--report-output-dir", d,
                                                  "--worker-threads", "2", *common])]
        for n in (int(c) for c in args.cpus.split(",")):
            plans.append((f"ray-{n}cpu", lambda d, n=n: DECON + [
                "ray", "--input", args.input, "--report-output-dir", d, "--num-cpus", str(n), *common]))
        for name, make in plans:
            best = None
            for i in range(args.repeat):
                dest = out / f"{name}-{i}"
                wall, pss, text = run(make(str(dest)))
                m = re.search(r"Time=([\d.]+)s", text) or re.search(r"Detection time\s+([\d.]+)s", text)
                inner = float(m.group(1)) if m else float("nan")
                mem = re.search(r"MEMORY (.*)", text)
                if best is None or wall < best[0]:
                    best = (wall, inner, pss, mem.group(1) if mem else "")
                shutil.rmtree(dest, ignore_errors=True)
            results[name] = best
            wall, inner, pss, mem = best
            print(f"{name:10s} wall {wall:7.2f}s  inner {inner:7.2f}s  peak tree PSS {pss:6.0f} MB  {mem}",
                  flush=True)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if "ray-1cpu" in results and "ray-2cpu" in results:
        a, b = results["ray-1cpu"], results["ray-2cpu"]
        print(f"speed-up 2 vs 1 CPU: wall x{a[0] / b[0]:.2f}, inner x{a[1] / b[1]:.2f}")
    if "ray-2cpu" in results:
        d, r = results["detect-2w"], results["ray-2cpu"]
        print(f"overhead ray-2cpu vs detect-2w: wall {100 * (r[0] / d[0] - 1):+.1f}%, "
              f"inner {100 * (r[1] / d[1] - 1):+.1f}%")


if __name__ == "__main__":
    main()
