"""Memory of `decon server`: PSS of its process tree, idle and after one job per worker."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from bench_tools import decon_cmd, decon_env


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


def server_pss(workers: int, cache_dir: Path, evals: Path, job_file: Path, work: Path) -> dict[str, float]:
    """Start `decon server` with ``workers``, run one job per worker, sum the PSS of its processes."""
    port = _free_port()
    out = work / f"server-{workers}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [*decon_cmd(), "server", "--host", "127.0.0.1", "--port", str(port), "--worker-threads",
           str(workers), "--evals-dir", str(evals), "--report-output-dir", str(out)]
    log = open(work / f"server-{workers}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=decon_env(cache_dir), stdout=log, stderr=subprocess.STDOUT)
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
