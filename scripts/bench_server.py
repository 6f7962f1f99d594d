#!/usr/bin/env python3
"""Benchmark `decon server` on loopback.

1. /status throughput: N concurrent pollers (default 8; separate processes, each with one keep-alive
   connection and a minimal HTTP client) repeat GET /status/{job_id} for a bounded time; prints
   requests/s and latency percentiles.
2. Per-file overhead: the same file scanned (a) in-process with decon.detect.api (scan_file +
   write_report) and (b) as a server job (submit -> completed, seen by a keep-alive client polling every 1 ms);
   prints medians and the difference, plus the server-side split from the job journal.

By default it starts its own server (tests' small reference set, 2 workers) on a free loopback port:

    .venv/bin/python scripts/bench_server.py [--pollers 8] [--seconds 5] [--files 30]
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_server_harness import ENGINE_FLAGS, TRAINING, ServerProcess, engine_config  # noqa: E402


class _RawClient:
    """Minimal keep-alive HTTP/1.1 GET client: the pollers' own cost stays small next to the server's
    (a full client library spends more CPU per request than the server does)."""

    def __init__(self, url: str) -> None:
        host, port = url.split("//", 1)[1].rsplit(":", 1)
        self.sock = socket.create_connection((host.strip("[]"), int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.host = host
        self.buf = b""

    def get(self, path: str) -> tuple[int, bytes]:
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = next(int(v) for k, _, v in (ln.partition(b":") for ln in lines[1:])
                      if k.strip().lower() == b"content-length")
        while len(self.buf) < length:
            self._fill()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, body

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk


def _poller(url: str, job_id: str, go: Any, deadline_at: Any, out: Any) -> None:
    client = _RawClient(url)
    target = f"/status/{job_id}"
    assert client.get(target)[0] == 200  # connection open before timing
    go.wait()
    deadline = deadline_at.value
    ok = errors = 0
    latencies = []
    while True:
        t0 = time.perf_counter()
        if t0 >= deadline:
            break
        code, _body = client.get(target)
        latencies.append(time.perf_counter() - t0)
        if code == 200:
            ok += 1
        else:
            errors += 1
    out.put((ok, errors, latencies))


def bench_status(url: str, job_id: str, pollers: int, seconds: float) -> None:
    """Each poller is its own process with one keep-alive connection."""
    ctx = multiprocessing.get_context("fork")
    go, out = ctx.Event(), ctx.Queue()
    deadline_at = ctx.Value("d", 0.0)
    procs = [ctx.Process(target=_poller, args=(url, job_id, go, deadline_at, out)) for _ in range(pollers)]
    for p in procs:
        p.start()
    time.sleep(1.0)  # let every poller connect
    t0 = time.perf_counter()
    deadline_at.value = t0 + seconds
    go.set()
    results = [out.get(timeout=seconds + 60) for _ in procs]
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    total = sum(r[0] for r in results)
    lat = sorted(x for r in results for x in r[2])
    print(f"/status with {pollers} concurrent pollers (processes, keep-alive) for {elapsed:.1f}s: "
          f"{total} OK, {sum(r[1] for r in results)} errors, {total / elapsed:,.0f} requests/s")
    if lat:
        def pick(q: float) -> float:
            return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000

        print(f"  latency ms: p50 {pick(0.50):.2f}  p90 {pick(0.90):.2f}  p99 {pick(0.99):.2f}  max {lat[-1] * 1000:.2f}")


def bench_overhead(server: ServerProcess, path: Path, reps: int, journal: Path | None) -> None:
    from decon.detect import api

    cfg = engine_config()
    index = api.build_index(cfg, progress=False)
    direct, served, submits, job_ids = [], [], [], []
    session = requests.Session()  # keep-alive, as a real client would
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(reps + 2):  # alternate the two, so load changes on the machine hit both alike
            t0 = time.perf_counter()
            result = api.scan_file(str(path), index, cfg)
            if result.entries:
                api.write_report(result.entries, Path(tmp) / f"{i}.report.jsonl")
            t_direct = time.perf_counter() - t0

            t0 = time.perf_counter()
            job = session.post(f"{server.url}/submit", json={"file_path": str(path)}, timeout=10).json()["job_id"]
            t_submit = time.perf_counter() - t0
            while session.get(f"{server.url}/status/{job}", timeout=10).json()["status"] not in ("completed", "failed"):
                time.sleep(0.001)
            if i >= 2:  # two warm-up rounds
                direct.append(t_direct)
                served.append(time.perf_counter() - t0)
                submits.append(t_submit)
                job_ids.append(job)

    d, s = statistics.median(direct) * 1000, statistics.median(served) * 1000
    print(f"Per-file cost, {path.name} ({result.lines_total} lines), median of {reps}:")
    print(f"  scan_file + write_report in-process: {d:.2f} ms")
    print(f"  server job, submit -> completed seen by client (keep-alive, 1 ms polling): {s:.2f} ms")
    print(f"  server overhead per file: {s - d:.2f} ms (POST /submit alone: {statistics.median(submits) * 1000:.2f} ms)")
    if journal and journal.exists():
        db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
        marks = ",".join("?" for _ in job_ids)
        rows = db.execute(f"SELECT submitted_at, started_at, finished_at FROM jobs WHERE job_id IN ({marks})",
                          job_ids).fetchall()
        db.close()
        wait = statistics.median(r[1] - r[0] for r in rows) * 1000
        run = statistics.median(r[2] - r[1] for r in rows) * 1000
        total = statistics.median(r[2] - r[0] for r in rows) * 1000
        print(f"  inside the server (journal): submit -> start {wait:.2f} ms, start -> finished {run:.2f} ms, "
              f"submit -> finished {total:.2f} ms (medians); overhead vs in-process {total - d:.2f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pollers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="Duration of the /status test")
    parser.add_argument("--files", type=int, default=30, help="Jobs timed for the overhead test")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--file", type=Path, default=TRAINING / "mixed_server.jsonl")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="decon-bench-") as tmp:
        reports = Path(tmp) / "reports"
        server = ServerProcess(ENGINE_FLAGS + ["--worker-threads", str(args.workers),
                                               "--report-output-dir", str(reports)])
        try:
            url = server.wait_ready()
            print(f"Server at {url} ({args.workers} workers)")
            job = server.submit_ok(args.file.resolve())
            server.wait_status(job, {"completed", "failed"})
            bench_status(url, job, args.pollers, args.seconds)
            bench_overhead(server, args.file.resolve(), args.files, reports / ".decon-server" / "jobs.sqlite")
        finally:
            server.signal(2)
            try:
                server.wait_exit(30)
            finally:
                server.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
