"""Client for the decon server's HTTP API (/health, /submit, /status/{id})."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import requests

log = logging.getLogger("decon.orchestrator")


class ServerError(RuntimeError):
    pass


class JobRejected(ServerError):
    """The server refused the file (HTTP 400): retrying will not help."""


@dataclass
class ServerInfo:
    worker_threads: int
    report_output_dir: str | None
    cleaned_output_dir: str | None
    purify: bool
    mode: str
    threshold: float | None
    raw: dict[str, Any]
    recall: bool = False  # the server runs the recall pass after SIMPLE (decon server --recall)
    semantic: bool = False  # the server runs the semantic pass too (decon server --semantic)


@dataclass
class JobState:
    status: str  # pending | processing | completed | failed | lost
    output_path: str | None = None
    purified_path: str | None = None
    error: str | None = None


class ServerClient:
    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def health(self) -> ServerInfo | None:
        """Server info when ready; None while it is loading (503) or unreachable."""
        try:
            resp = self.session.get(f"{self.base_url}/health", timeout=min(self.timeout, 10))
        except requests.RequestException as exc:
            log.debug("health check failed: %s", exc)
            return None
        if resp.status_code != 200:
            return None
        try:
            data = resp.json()
        except ValueError:
            return None
        if data.get("status") not in (None, "ok"):
            return None
        return ServerInfo(
            worker_threads=int(data.get("worker_threads") or 4),
            report_output_dir=data.get("report_output_dir"),
            cleaned_output_dir=data.get("cleaned_output_dir"),
            purify=bool(data.get("purify", False)),
            mode=str(data.get("mode", "simple")),
            threshold=data.get("contamination_score_threshold"),
            raw=data,
            recall=bool(data.get("recall", False)),
            semantic=bool(data.get("semantic", False)),
        )

    def wait_ready(self, timeout: float, interval: float = 2.0, stop: Any = None) -> ServerInfo | None:
        deadline = time.monotonic() + timeout
        started = time.monotonic()
        last_note = 0.0
        while True:
            info = self.health()
            if info is not None:
                return info
            now = time.monotonic()
            if now >= deadline:
                return None
            if now - last_note >= 10:
                log.info("Waiting for the server at %s (%.0fs / %.0fs)", self.base_url, now - started, timeout)
                last_note = now
            wait = min(interval, max(0.0, deadline - now))
            if stop is not None:
                if stop.wait(wait):
                    return None
            else:
                time.sleep(wait)

    def submit(self, file_path: str) -> str:
        try:
            resp = self.session.post(f"{self.base_url}/submit", json={"file_path": file_path}, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ServerError(f"submit failed: {exc}") from exc
        if resp.status_code == 400:
            raise JobRejected(f"server rejected {file_path}: {resp.text[:500]}")
        if resp.status_code != 200:
            raise ServerError(f"submit returned HTTP {resp.status_code}: {resp.text[:500]}")
        return str(resp.json()["job_id"])

    def status(self, job_id: str) -> JobState:
        try:
            resp = self.session.get(f"{self.base_url}/status/{job_id}", timeout=self.timeout)
        except requests.RequestException as exc:
            raise ServerError(f"status request failed: {exc}") from exc
        if resp.status_code == 404:
            return JobState(status="lost", error="the server does not know this job (restarted?)")
        if resp.status_code != 200:
            raise ServerError(f"status returned HTTP {resp.status_code}: {resp.text[:500]}")
        data = resp.json()
        return JobState(status=str(data.get("status")), output_path=data.get("output_path"),
                        purified_path=data.get("purified_path"), error=data.get("error"))
