"""`decon server` end to end: a real `decon server` process on a loopback port, real HTTP."""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_server_harness import (  # noqa: E402
    TRAINING,
    ServerProcess,
    calibrate_lines_per_second,
    engine_config,
    make_long_file,
    read_jsonl,
)

from decon.common.data_reader import iter_lines, open_binary  # noqa: E402
from decon.detect import api  # noqa: E402

pytestmark = pytest.mark.slow  # real clusters, servers or browsers: `make test` runs it, `make test-fast` does not

ENGINE = ["--reference-input", "tests/data/server/reference", "--sample-every-m-tokens", "1", "--no-index-cache"]
ORDER = {"pending": 0, "processing": 1, "completed": 2, "failed": 2}


@pytest.fixture(scope="module")
def engine():
    cfg = engine_config()
    return cfg, api.build_index(cfg, progress=False)


@pytest.fixture(scope="module")
def lines_per_second(tmp_path_factory) -> float:
    return calibrate_lines_per_second(tmp_path_factory.mktemp("calibrate"))


def long_file(path: Path, lines_per_second: float, seconds: float) -> Path:
    return make_long_file(path, max(2000, int(lines_per_second * seconds)))


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One server (2 workers, --purify, --allowed-root) for the tests that can share it."""
    base = tmp_path_factory.mktemp("shared")
    root, outside = base / "root", base / "outside"
    root.mkdir()
    outside.mkdir()
    for name in ("mixed_server.jsonl", "contaminated_at_beginning.jsonl", "clean.jsonl"):
        shutil.copy(TRAINING / name, root / name)
        shutil.copy(TRAINING / name, outside / name)
    server = ServerProcess(ENGINE + [
        "--worker-threads", "2", "--purify", "--report-output-dir", str(base / "reports"),
        "--cleaned-output-dir", str(base / "cleaned"), "--allowed-root", str(root), "--shutdown-grace", "5",
    ])
    try:
        server.wait_ready()
        server.base = base  # type: ignore[attr-defined]
        server.root = root  # type: ignore[attr-defined]
        server.outside = outside  # type: ignore[attr-defined]
        yield server
        server.signal(signal.SIGTERM)
        assert server.wait_exit(15) == 0, server.output()
    finally:
        server.kill()


def expected_purified(path: Path, contaminated: list[int]) -> bytes:
    drop = set(contaminated)
    with open_binary(path) as fh:
        return b"".join(line for n, line in enumerate(fh) if n not in drop)


def no_temp_files(*dirs: Path) -> bool:
    return not [p for d in dirs if d.exists() for p in d.iterdir() if p.name.endswith(".tmp")]


# ---- basic API ---------------------------------------------------------------------------------

def test_health_reports_upstream_fields_and_workers(shared):
    resp = shared.health()
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ok"
    assert body["worker_threads"] == 2 and body["purify"] is True and body["mode"] == "simple"
    assert body["report_output_dir"] == str(shared.base / "reports")
    assert body["cleaned_output_dir"] == str(shared.base / "cleaned")
    assert isinstance(body["contamination_score_threshold"], float)
    assert set(body["jobs"]) == {"pending", "processing", "completed", "failed"}
    assert isinstance(body["queue_depth"], int)
    assert len(body["workers"]) == 2 and all(w["pid"] for w in body["workers"])


def test_openapi_docs(shared):
    assert requests.get(f"{shared.url}/docs", timeout=10).status_code == 200
    spec = requests.get(f"{shared.url}/openapi.json", timeout=10).json()
    assert {"/health", "/submit", "/status/{job_id}"} <= set(spec["paths"])


def test_contaminated_file_report_and_purified_match_engine(shared, engine):
    cfg, index = engine
    path = shared.root / "mixed_server.jsonl"
    expected = api.scan_file(str(path), index, cfg)
    assert expected.entries, "the engine finds no contamination in the fixture"

    job = shared.submit_ok(path)
    body = shared.wait_status(job, {"completed", "failed"})
    assert body["status"] == "completed", body
    assert body["output_path"] == str(shared.base / "reports" / f"{job}.report.jsonl")
    assert body["purified_path"] == str(shared.base / "cleaned" / f"{job}.jsonl.gz")

    engine_report = shared.base / "engine.report.jsonl"
    api.write_report(expected.entries, engine_report)
    assert read_jsonl(body["output_path"]) == read_jsonl(engine_report)
    with gzip.open(body["purified_path"], "rb") as fh:
        purified = fh.read()
    assert purified == expected_purified(path, expected.contaminated_lines)
    assert len(purified.splitlines()) == expected.lines_total - len(expected.contaminated_lines)


def test_clean_file_has_no_report_but_a_purified_copy(shared, engine):
    cfg, index = engine
    path = shared.root / "clean.jsonl"
    assert not api.scan_file(str(path), index, cfg).entries
    job = shared.submit_ok(path)
    body = shared.wait_status(job, {"completed", "failed"})
    assert body["status"] == "completed" and "output_path" not in body and "error" not in body
    assert not (shared.base / "reports" / f"{job}.report.jsonl").exists()
    with gzip.open(body["purified_path"], "rb") as fh:
        assert fh.read() == path.read_bytes()


def test_refusals_400_403_404_422(shared):
    root, outside = shared.root, shared.outside
    (root / "notes.txt").write_text("not data\n")
    (root / "subdir.jsonl").mkdir(exist_ok=True)
    link = root / "escape.jsonl"
    if not link.exists():
        link.symlink_to(outside / "clean.jsonl")

    def submit(payload, **kw):
        return requests.post(f"{shared.url}/submit", json=payload, timeout=10, **kw)

    cases = [
        ({"file_path": str(root / "missing.jsonl")}, 400, "does not exist"),
        ({"file_path": str(root / "subdir.jsonl")}, 400, "not a regular file"),
        ({"file_path": str(root / "notes.txt")}, 400, "unsupported file type"),
        ({"file_path": str(outside / "clean.jsonl")}, 403, "outside the allowed roots"),
        ({"file_path": str(link)}, 403, "outside the allowed roots"),
        ({"file_path": str(root / ".." / "outside" / "clean.jsonl")}, 403, "outside the allowed roots"),
    ]
    before = shared.health().json()["jobs"]
    for payload, code, reason in cases:
        resp = submit(payload)
        assert resp.status_code == code, (payload, resp.text)
        error = resp.json()["error"]
        assert reason in error and "\n" not in error
    assert shared.health().json()["jobs"] == before  # refused paths create no job

    for bad in ({}, {"file_path": 5}, {"path": "x.jsonl"}, [1, 2]):
        assert submit(bad).status_code == 422, bad
    resp = requests.post(f"{shared.url}/submit", data=b"{not json", timeout=10,
                         headers={"Content-Type": "application/json"})
    assert resp.status_code == 422

    resp = requests.get(f"{shared.url}/status/00000000-0000-0000-0000-000000000000", timeout=10)
    assert resp.status_code == 404 and resp.json() == {"error": "Job not found"}


def test_hundred_jobs_two_workers_none_lost_or_duplicated(shared, engine):
    cfg, index = engine
    batch = shared.root / "batch"
    batch.mkdir()
    sources = [TRAINING / "mixed_server.jsonl", TRAINING / "clean.jsonl",
               TRAINING / "contaminated_at_beginning.jsonl"]
    files = []
    for i in range(100):
        dest = batch / f"doc-{i:03d}.jsonl"
        shutil.copy(sources[i % 3], dest)
        files.append(dest)
    before = shared.health().json()["jobs"]

    with ThreadPoolExecutor(16) as pool:
        job_ids = list(pool.map(shared.submit_ok, files))
    assert len(set(job_ids)) == 100

    seen: dict[str, list[str]] = defaultdict(list)
    deadline = time.monotonic() + 90
    remaining = set(job_ids)
    while remaining and time.monotonic() < deadline:
        for job in list(remaining):
            status = shared.status(job)["status"]
            if not seen[job] or seen[job][-1] != status:
                seen[job].append(status)
            if status in ("completed", "failed"):
                remaining.discard(job)
        time.sleep(0.05)
    assert not remaining, f"{len(remaining)} jobs never finished"

    for job, path in zip(job_ids, files, strict=True):
        states = seen[job]
        assert [ORDER[s] for s in states] == sorted(ORDER[s] for s in states), states  # never backwards
        body = shared.status(job)
        assert body["status"] == "completed", body
        result = api.scan_file(str(path), index, cfg)
        if result.entries:
            assert read_jsonl(body["output_path"]) == read_jsonl(_written(shared.base, result.entries))
        else:
            assert "output_path" not in body
        assert Path(body["purified_path"]).name == f"{job}.jsonl.gz"

    after = shared.health().json()
    assert after["jobs"]["completed"] - before["completed"] == 100
    assert sum(after["jobs"].values()) - sum(before.values()) == 100  # each job counted in one state
    assert after["jobs"]["pending"] == after["jobs"]["processing"] == 0
    assert after["queue_depth"] == 0
    purified = [p for p in (shared.base / "cleaned").iterdir() if p.name.split(".")[0] in set(job_ids)]
    assert len(purified) == 100


def _written(base: Path, entries: list) -> Path:
    dest = base / "expected.report.jsonl"
    api.write_report(entries, dest)
    return dest


def test_killed_worker_fails_its_job_and_is_replaced(shared, lines_per_second):
    big = long_file(shared.root / "big-kill.jsonl", lines_per_second, 6.0)
    job = shared.submit_ok(big)
    shared.wait_status(job, {"processing"}, timeout=30, interval=0.01)
    deadline = time.monotonic() + 10
    pid = None
    while pid is None and time.monotonic() < deadline:
        pid = next((w["pid"] for w in shared.health().json()["workers"] if w["job_id"] == job), None)
    assert pid, "no worker reports the job"
    os.kill(pid, signal.SIGKILL)

    body = shared.wait_status(job, {"completed", "failed"}, timeout=30)
    assert body["status"] == "failed"
    assert "worker process died" in body["error"] and "signal 9" in body["error"]
    assert no_temp_files(shared.base / "reports", shared.base / "cleaned")

    later = shared.submit_ok(shared.root / "mixed_server.jsonl")
    assert shared.wait_status(later, {"completed", "failed"})["status"] == "completed"
    workers = shared.health().json()["workers"]
    assert len(workers) == 2 and pid not in [w["pid"] for w in workers]
    assert all(w["pid"] for w in workers)


# ---- shutdown and restart ----------------------------------------------------------------------

def _submit_503_while_draining(server: ServerProcess, path: Path, results: list[int]) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            code = server.submit(path).status_code
        except requests.ConnectionError:
            return
        results.append(code)
        if code == 503:
            return
        time.sleep(0.02)


def test_sigterm_lets_running_job_finish_and_restart_runs_the_rest(tmp_path, lines_per_second):
    reports, cleaned = tmp_path / "reports", tmp_path / "cleaned"
    args = ENGINE + ["--worker-threads", "1", "--purify", "--report-output-dir", str(reports),
                     "--cleaned-output-dir", str(cleaned), "--shutdown-grace", "30"]
    small = tmp_path / "small.jsonl"
    shutil.copy(TRAINING / "mixed_server.jsonl", small)
    big = long_file(tmp_path / "big.jsonl", lines_per_second, 2.5)
    big_lines = sum(1 for _ in iter_lines(big))

    server = ServerProcess(args)
    try:
        server.wait_ready()
        done = server.submit_ok(small)
        assert server.wait_status(done, {"completed"})["status"] == "completed"
        long_job = server.submit_ok(big)
        queued = [server.submit_ok(small) for _ in range(3)]
        server.wait_status(long_job, {"processing"}, interval=0.01)
        t0 = time.monotonic()
        server.signal(signal.SIGTERM)
        codes: list[int] = []
        _submit_503_while_draining(server, small, codes)
        assert server.wait_exit(30) == 0, server.output()
        assert time.monotonic() - t0 < 30
        assert codes and codes[-1] == 503, codes
        assert "for 1 running job(s)" in server.output()
    finally:
        server.kill()

    # the running job finished during the grace period; its outputs are complete
    assert no_temp_files(reports, cleaned)
    with gzip.open(cleaned / f"{long_job}.jsonl.gz", "rb") as fh:
        assert sum(1 for _ in fh) == big_lines
    for job in queued:
        assert not (cleaned / f"{job}.jsonl.gz").exists()

    server = ServerProcess(args)
    try:
        server.wait_ready()
        assert server.status(done)["status"] == "completed"
        body = server.status(long_job)
        assert body["status"] == "completed" and body["purified_path"] == str(cleaned / f"{long_job}.jsonl.gz")
        for job in queued:
            assert server.wait_status(job, {"completed", "failed"})["status"] == "completed"
        health = server.health().json()
        assert health["jobs"] == {"pending": 0, "processing": 0, "completed": 5, "failed": 0}
        server.signal(signal.SIGINT)
        assert server.wait_exit(30) == 0
    finally:
        server.kill()


def test_sigterm_grace_expiry_interrupts_job_without_partial_output(tmp_path, lines_per_second):
    reports, cleaned, state = tmp_path / "reports", tmp_path / "cleaned", tmp_path / "state"
    args = ENGINE + ["--worker-threads", "1", "--purify", "--report-output-dir", str(reports),
                     "--cleaned-output-dir", str(cleaned), "--shutdown-grace", "0.5", "--state-dir", str(state)]
    big = long_file(tmp_path / "big.jsonl", lines_per_second, 4.0)
    big_lines = sum(1 for _ in iter_lines(big))

    server = ServerProcess(args)
    try:
        server.wait_ready()
        job = server.submit_ok(big)
        server.wait_status(job, {"processing"}, interval=0.01)
        time.sleep(0.2)  # let it start writing
        t0 = time.monotonic()
        server.signal(signal.SIGTERM)
        assert server.wait_exit(15) == 0, server.output()
        assert time.monotonic() - t0 < 0.5 + 5
        assert "interrupting 1 running job(s)" in server.output()
    finally:
        server.kill()

    assert (state / "jobs.sqlite").exists()
    assert not (cleaned / f"{job}.jsonl.gz").exists()
    assert not (reports / f"{job}.report.jsonl").exists()
    assert no_temp_files(reports, cleaned)

    server = ServerProcess(args)
    try:
        server.wait_ready()
        body = server.wait_status(job, {"completed", "failed"}, timeout=60)
        assert body["status"] == "completed", body
        with gzip.open(body["purified_path"], "rb") as fh:
            assert sum(1 for _ in fh) == big_lines
        server.signal(signal.SIGTERM)
        assert server.wait_exit(30) == 0
    finally:
        server.kill()


def test_health_is_503_loading_while_index_builds_and_sigterm_then_exits(tmp_path):
    """The port answers at once: /health is 503 loading while the (bundled, larger) reference set is
    indexed; jobs submitted meanwhile wait as pending; SIGTERM during loading exits 0 promptly."""
    reports = tmp_path / "reports"
    server = ServerProcess(["--reference-input", "fixtures/reference", "--no-index-cache", "--worker-threads", "1",
                            "--report-output-dir", str(reports)])
    try:
        assert server._listening.wait(60) and server.url, server.output()
        first = server.health()
        if first.status_code == 200:
            pytest.skip("the index was built before the first health check")
        assert first.status_code == 503 and first.json() == {"status": "loading"}
        job = server.submit_ok(TRAINING / "clean.jsonl")
        assert server.status(job)["status"] == "pending"
        t0 = time.monotonic()
        server.signal(signal.SIGTERM)
        assert server.wait_exit(30) == 0, server.output()
        assert time.monotonic() - t0 < 10
    finally:
        server.kill()
    assert (reports / ".decon-server" / "jobs.sqlite").exists()


def test_bad_start_up_options_fail_with_one_line(tmp_path):
    import subprocess

    from test_server_harness import decon_command

    cases = [
        (["--reference-input", str(tmp_path / "nope")], "does not exist"),
        (ENGINE + ["--allowed-root", str(tmp_path / "nope")], "--allowed-root"),
        (ENGINE + ["--port", "70000"], "--port"),
    ]
    for args, needle in cases:
        proc = subprocess.run(decon_command() + ["server", "--report-output-dir", str(tmp_path / "r")] + args,
                              capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parent.parent)
        assert proc.returncode == 2, proc
        assert needle in proc.stderr and "Traceback" not in proc.stderr
