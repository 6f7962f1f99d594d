"""Helpers (no tests) for the server tests and scripts/bench_server.py: run `decon server` on loopback."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data" / "server"
REFERENCE = DATA / "reference"
TRAINING = DATA / "training"
# Detection flags shared by the server under test and the in-process engine it is compared with.
ENGINE_FLAGS = ["--reference-input", str(REFERENCE), "--sample-every-m-tokens", "1", "--no-index-cache"]
_LISTEN = re.compile(r"Server listening on http://([^\s]+)")


def decon_command() -> list[str]:
    script = Path(sys.executable).parent / "decon"
    if script.exists():
        return [str(script)]
    found = shutil.which("decon")
    return [found] if found else [sys.executable, "-m", "decon"]


def engine_config(extra: list[str] | None = None) -> Any:
    """The DetectionConfig `decon server` builds from ENGINE_FLAGS (+ extra)."""
    from decon.detect.args import add_detection_args, config_from_args

    parser = argparse.ArgumentParser()
    add_detection_args(parser)
    return config_from_args(parser.parse_args(ENGINE_FLAGS + (extra or [])), log=lambda _m: None)


class ServerProcess:
    """A `decon server --port 0 ...` subprocess; ``url`` once it is listening.

    ``command`` replaces the `decon` command (e.g. a Python wrapper that adjusts the process first);
    ``preexec_fn`` runs in the child before it starts (e.g. to set resource limits)."""

    def __init__(self, args: list[str], cwd: Path | None = None, command: list[str] | None = None,
                 preexec_fn: Any = None, env: dict[str, str] | None = None) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        self.proc = subprocess.Popen(
            (command or decon_command()) + ["server", "--port", "0", "--host", "127.0.0.1"] + args,
            cwd=str(cwd or REPO), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
            start_new_session=True, preexec_fn=preexec_fn,
        )
        self.lines: list[str] = []
        self._listening = threading.Event()
        self.url = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            m = _LISTEN.search(line)
            if m and not self.url:
                self.url = f"http://{m.group(1)}"
                self._listening.set()
        self._listening.set()

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_ready(self, timeout: float = 60.0) -> str:
        """Wait for the listening line, then for /health to answer 200."""
        if not self._listening.wait(timeout) or not self.url:
            raise AssertionError(f"server did not start:\n{self.output()}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self.url
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server never became ready:\n{self.output()}")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait_exit(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the server and anything left in its session (its worker processes)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # started with start_new_session: the group is ours

    # ---- API helpers ---------------------------------------------------------------------------
    def submit(self, path: str | Path) -> requests.Response:
        return requests.post(f"{self.url}/submit", json={"file_path": str(path)}, timeout=10)

    def submit_ok(self, path: str | Path) -> str:
        resp = self.submit(path)
        assert resp.status_code == 200, resp.text
        return resp.json()["job_id"]

    def status(self, job_id: str) -> dict[str, Any]:
        return requests.get(f"{self.url}/status/{job_id}", timeout=10).json()

    def health(self) -> requests.Response:
        return requests.get(f"{self.url}/health", timeout=10)

    def wait_status(self, job_id: str, wanted: set[str], timeout: float = 60.0,
                    interval: float = 0.02) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            body = self.status(job_id)
            if body.get("status") in wanted:
                return body
            time.sleep(interval)
        raise AssertionError(f"job {job_id} never reached {wanted}; last {body}\n{self.output()}")


def read_jsonl(path: str | Path) -> list[Any]:
    with open(path, "rb") as fh:
        return [orjson.loads(line) for line in fh if line.strip()]


def make_long_file(path: Path, lines: int) -> Path:
    """A clean file of ``lines`` documents (varied text, so no engine shortcut makes it quick)."""
    words = ("river stone lantern orchard violet harbor meadow copper thistle canyon glacier ember "
             "falcon saffron quartz willow tundra marble cobalt juniper").split()
    block = []
    for i in range(1000):
        text = " ".join(words[(i * 7 + j * 3 + j * j) % len(words)] for j in range(60 + i % 40))
        block.append(orjson.dumps({"id": i, "text": f"note {i}: {text}"}) + b"\n")
    with open(path, "wb") as fh:
        full, rest = divmod(lines, len(block))
        for _ in range(full):
            fh.write(b"".join(block))
        fh.write(b"".join(block[:rest]))
    return path


def calibrate_lines_per_second(workdir: Path) -> float:
    """How many make_long_file() lines the engine scans per second on this machine."""
    from decon.detect import api

    cfg = engine_config()
    index = api.build_index(cfg, progress=False)
    sample = make_long_file(workdir / "calibrate.jsonl", 3000)
    api.scan_file(sample, index, cfg)  # warm-up (lazy imports, caches)
    t0 = time.perf_counter()
    api.scan_file(sample, index, cfg)
    elapsed = max(time.perf_counter() - t0, 1e-3)
    sample.unlink()
    return 3000 / elapsed


def address(server: ServerProcess) -> tuple[str, int]:
    """(host, port) a raw socket connects to."""
    parts = urlsplit(server.url)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port
