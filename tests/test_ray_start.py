"""DEPLOYMENT.md's `ray start` steps, run for real on one machine: a head started with
`ray start --head`, a second node joined with `ray start --address`, both with token
authentication, then `decon ray --address auto` as on host 0. Only the SSH fan-out of
`poormanray run` is left out. Outputs must equal `decon detect`'s on the same files.

Its own module: `ray stop` at the end stops every Ray process of this machine.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")  # the ray extra: installed by `make setup`

from tests.test_ray_runner import Corpus  # noqa: E402 - after the extra check

pytestmark = pytest.mark.slow  # real clusters, servers or browsers: `make test` runs it, `make test-fast` does not

ROOT = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).with_name("ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_env(tmp_path_factory):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32), DECON_QUIET="1",
               PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
               DECON_CACHE_DIR=str(tmp_path_factory.mktemp("cache")))
    port = _free_port()
    head = [str(RAY), "start", "--head", "--port", str(port), "--disable-usage-stats", "--num-cpus", "1",
            "--object-store-memory", str(100 << 20), "--include-dashboard", "false", "--node-ip-address", "127.0.0.1"]
    join = [str(RAY), "start", "--address", f"127.0.0.1:{port}", "--num-cpus", "1",
            "--object-store-memory", str(100 << 20), "--node-ip-address", "127.0.0.1"]
    try:
        for argv in (head, join):
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        yield env
    finally:
        subprocess.run([str(RAY), "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_decon_ray_on_nodes_joined_with_ray_start(ray_env, tmp_path):
    corpus = Corpus(n_files=6, docs=40, seed=21)
    data = corpus.write_local(tmp_path / "data")
    evals = corpus.write_evals(tmp_path / "evals")
    deadline = time.monotonic() + 90  # `ray status` shows both nodes once the autoscaler's view catches up
    while True:
        status = subprocess.run([str(RAY), "status"], env=ray_env, capture_output=True, text=True, timeout=120)
        if status.returncode == 0 and status.stdout.count("node_") >= 2:
            break
        assert time.monotonic() < deadline, status.stdout + status.stderr
        time.sleep(2)

    out = tmp_path / "ray-out"
    proc = subprocess.run([sys.executable, "-m", "decon", "ray", "--address", "auto", "--input", str(data),
                           "--report-output-dir", str(out), "--evals-dir", str(evals), "--progress-interval", "1"],
                          env=ray_env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "Ray: 2 node(s), 2 CPU(s)" in log, log[-4000:]
    assert "SUMMARY: Processed=6" in log and "WORK COMPLETE EXITING" in log

    # The same files through `decon detect`: every contaminated file's report, byte for byte.
    ref = tmp_path / "detect-out"
    subprocess.run([sys.executable, "-m", "decon", "detect", "--training-dir", str(data), "--evals-dir", str(evals),
                    "--report-output-dir", str(ref), "--worker-threads", "1"], env=ray_env, cwd=tmp_path,
                   check=True, capture_output=True, timeout=300)
    detect_reports = sorted(p for p in ref.rglob("*.jsonl") if p.stat().st_size)
    ray_reports = sorted(p for p in out.rglob("*.report.jsonl"))
    assert len(ray_reports) == len(detect_reports) == sum(1 for bad in corpus.bad.values() if bad)
    assert sorted(p.read_bytes() for p in ray_reports) == sorted(p.read_bytes() for p in detect_reports)
