"""Issue 9, server side: hostile requests, floods, killed processes and a full journal disk, each
against a real `decon server` on a loopback port."""

from __future__ import annotations

import base64
import contextlib
import os
import random
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import orjson
import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_server_harness import TRAINING, ServerProcess, address, make_long_file  # noqa: E402

from decon.server.limits import MAX_BODY_BYTES, MAX_PATH_BYTES, MAX_PATH_DEPTH  # noqa: E402

pytestmark = pytest.mark.slow  # real clusters, servers or browsers: `make test` runs it, `make test-fast` does not

ENGINE = ["--reference-input", "tests/data/server/reference", "--sample-every-m-tokens", "1", "--no-index-cache"]


def dirs_args(base: Path, purify: bool = True) -> list[str]:
    args = ["--report-output-dir", str(base / "reports"), "--state-dir", str(base / "state")]
    return args + (["--purify", "--cleaned-output-dir", str(base / "cleaned")] if purify else [])


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """One server for the request-level checks (1 s request-head deadline; after an early answer it
    discards at most 16 MB of what the client still sends)."""
    base = tmp_path_factory.mktemp("hardening")
    server = ServerProcess(ENGINE + ["--worker-threads", "1", "--request-timeout", "1",
                                     "--linger-bytes", str(16 << 20)] + dirs_args(base))
    try:
        server.wait_ready()
        server.base = base  # type: ignore[attr-defined]
        yield server
    finally:
        server.kill()


def read_response(sock: socket.socket, timeout: float = 30.0) -> tuple[int, bytes]:
    """Status and body of one HTTP response on a raw socket (the server closes after it)."""
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 "), data[:200]
    return int(head.split()[1]), body


def raw_post(server: ServerProcess, body: bytes) -> requests.Response:
    return requests.post(f"{server.url}/submit", data=body, headers={"Content-Type": "application/json"},
                         timeout=30)


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


# ---- 4: path length and depth ------------------------------------------------------------------

def test_overlong_and_overdeep_paths_are_400(srv):
    long_path = "/" + "a" * MAX_PATH_BYTES + ".jsonl"
    resp = srv.submit(long_path)
    assert resp.status_code == 400 and "too long" in resp.json()["error"], resp.text
    deep_path = "/" + "d/" * (MAX_PATH_DEPTH + 1) + "x.jsonl"
    assert len(deep_path) < MAX_PATH_BYTES
    resp = srv.submit(deep_path)
    assert resp.status_code == 400 and "too deep" in resp.json()["error"], resp.text
    multibyte = "/" + "é" * (MAX_PATH_BYTES // 2 + 1)  # few characters, too many UTF-8 bytes
    resp = srv.submit(multibyte)
    assert resp.status_code == 400 and "too long" in resp.json()["error"], resp.text


# ---- 5: request body size --------------------------------------------------------------------

def test_declared_oversized_body_is_413_before_it_is_sent(srv):
    with socket.create_connection(address(srv), timeout=30) as sock:
        sock.sendall(b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 300000000\r\n\r\n")
        status, body = read_response(sock)
    assert status == 413 and b"too large" in body


def test_chunked_body_over_the_limit_is_413(srv):
    payload = b'{"file_path": "' + b"a" * MAX_BODY_BYTES + b'"}'
    with socket.create_connection(address(srv), timeout=30) as sock:
        sock.sendall(b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        sock.sendall(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")  # no final chunk: still streaming
        status, body = read_response(sock)
    assert status == 413 and b"too large" in body
    # a body just within the limit is read and judged on its content
    within = b'{"file_path": "' + b"a" * (MAX_BODY_BYTES - 20) + b'"}'
    assert len(within) <= MAX_BODY_BYTES
    resp = raw_post(srv, within)
    assert resp.status_code == 400 and "too long" in resp.json()["error"]


def test_streamed_huge_body_is_cut_off_without_being_read(srv):
    pid = srv.proc.pid
    before = peak_rss_kib(pid)
    total, sent = 200 << 20, 0
    chunk = b"a" * (1 << 20)
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    with socket.create_connection(address(srv), timeout=30) as sock:
        sock.sendall(b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, socket.timeout):
            while sent < total:
                sock.sendall(frame)
                sent += len(chunk)
    assert sent < total, "the server read the whole 200 MB body"
    assert peak_rss_kib(pid) - before < 64 * 1024
    assert srv.health().status_code == 200


def test_slow_body_is_408_and_endless_head_is_431(srv):
    with socket.create_connection(address(srv), timeout=30) as sock:
        sock.sendall(b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"file_path\"")  # the rest never comes (1 s limit)
        status, body = read_response(sock)
    assert status == 408 and b"not received" in body
    with socket.create_connection(address(srv), timeout=30) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * (32 << 10))  # head still open
        status, body = read_response(sock)
    assert status == 431 and b"headers too large" in body


# ---- 7: undecodable paths --------------------------------------------------------------------

def test_lone_surrogate_and_non_utf8_names_are_400(srv, tmp_path):
    # a file whose name is not UTF-8 really exists; JSON can only name it with a lone surrogate
    odd = os.fsencode(str(tmp_path)) + b"/bad-\xff.jsonl"
    shutil.copy(TRAINING / "clean.jsonl", odd)
    as_json = str(tmp_path).encode() + b"/bad-\\udcff.jsonl"
    for body in (b'{"file_path": "' + as_json + b'"}', b'{"file_path": "/tmp/\\ud800.jsonl"}',
                 b'{"file_path": "/tmp/\xff.jsonl"}'):
        resp = raw_post(srv, body)
        assert resp.status_code == 400, (body, resp.status_code, resp.text)
    # not a string path at all: 422, whose echo of the input must still be encodable
    for body in (b'{"file_path": ["\\ud800"]}', b'{"file_path": {"\\udcff": 1}}', b'"\\ud800"',
                 b'{"file_path": 1e999999}'):
        resp = raw_post(srv, body)
        assert resp.status_code == 422, (body, resp.status_code, resp.text)
    assert srv.health().json()["jobs"]["pending"] == 0


# ---- 6: connection flood ----------------------------------------------------------------------

def test_half_sent_request_head_is_closed_after_the_deadline(srv):
    with socket.create_connection(address(srv), timeout=30) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # the head never ends
        assert closed_by_server(sock)  # after the 1 s deadline; the 30 s wait here is only a bound


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(30)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True


def _raise_own_fd_limit(need: int) -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= need, "test needs more open files"
    return soft, hard


def _low_fd_limit() -> None:  # runs in the server's process before exec
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


@pytest.mark.slow
def test_health_answers_while_1100_half_sent_connections_are_held(tmp_path):
    flood = 1100
    old_limit = _raise_own_fd_limit(flood + 200)
    server = ServerProcess(ENGINE + ["--worker-threads", "1"] + dirs_args(tmp_path, purify=False),
                           preexec_fn=_low_fd_limit)
    held: list[socket.socket] = []
    try:
        server.wait_ready()
        assert "keeping at most" in server.output()
        for _ in range(flood):
            sock = socket.create_connection(address(server), timeout=30)
            sock.sendall(b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
            held.append(sock)
        for _ in range(3):
            assert server.health().status_code == 200
        job = server.submit_ok(TRAINING / "clean.jsonl")
        assert server.wait_status(job, {"completed", "failed"})["status"] == "completed"
    finally:
        for sock in held:
            sock.close()
        server.kill()
        resource.setrlimit(resource.RLIMIT_NOFILE, old_limit)
    assert server.output().count("Too many open files") <= 1, server.output()[-3000:]


def test_connection_cap_closes_idle_connections_then_answers_503(tmp_path):
    server = ServerProcess(ENGINE + ["--worker-threads", "1", "--max-connections", "3", "--request-timeout", "120"]
                           + dirs_args(tmp_path, purify=False))
    socks: list[socket.socket] = []
    try:
        server.wait_ready()

        def connect(data: bytes) -> socket.socket:
            sock = socket.create_connection(address(server), timeout=30)
            sock.sendall(data)
            socks.append(sock)
            return sock

        idle = [connect(b"GET /health HTTP/1.1\r\n") for _ in range(3)]
        assert server.health().status_code == 200  # the oldest idle connection made room
        assert closed_by_server(idle[0])
        head = (b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n"
                b"Expect: 100-continue\r\n\r\n")
        for _ in range(3):  # requests in flight (bodies never come): nothing left to close
            sock = connect(head)
            sock.settimeout(30)
            assert sock.recv(1024).startswith(b"HTTP/1.1 100 ")  # the server is waiting for the body
        assert server.health().status_code == 503
        for sock in socks:
            sock.close()
        assert wait_for(lambda: server.health().status_code == 200, interval=0.1)
    finally:
        for sock in socks:
            sock.close()
        server.kill()


# ---- 2: a job that dies leaves no output --------------------------------------------------------

def slow_to_purify(path: Path, lines: int = 1000) -> Path:
    """Contaminated lines first, then lines the scanner reads quickly (short text) but that are
    slow to compress (10 KB of random letters each): the report is written long before the
    cleaned copy is done."""
    rng = random.Random(9)
    with open(path, "wb") as out:
        out.write((TRAINING / "contaminated_at_beginning.jsonl").read_bytes().rstrip(b"\n") + b"\n")
        for i in range(lines):
            noise = base64.b64encode(rng.randbytes(7500)).decode()
            out.write(orjson.dumps({"id": i, "text": f"plain note {i}", "meta": noise}) + b"\n")
    return path


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.002) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def outputs_of(base: Path, job: str) -> list[Path]:
    return [p for d in (base / "reports", base / "cleaned") if d.exists() for p in d.iterdir() if job in p.name]


def test_worker_killed_after_writing_its_report_leaves_no_output(srv, tmp_path):
    big = slow_to_purify(tmp_path / "slow.jsonl")
    job = srv.submit_ok(big)
    report = srv.base / "reports" / f"{job}.report.jsonl"
    assert wait_for(report.exists), srv.output()
    pid = next(w["pid"] for w in srv.health().json()["workers"] if w["job_id"] == job)
    os.kill(pid, signal.SIGKILL)
    body = srv.wait_status(job, {"completed", "failed"})
    assert body["status"] == "failed" and "signal 9" in body["error"], body
    assert outputs_of(srv.base, job) == []


def test_restart_sweeps_what_a_killed_server_left(tmp_path):
    big = slow_to_purify(tmp_path / "slow.jsonl")
    args = ENGINE + ["--worker-threads", "1"] + dirs_args(tmp_path)
    server = ServerProcess(args)
    try:
        server.wait_ready()
        job = server.submit_ok(big)
        cleaned = tmp_path / "cleaned"
        assert wait_for(lambda: any(p.name.endswith(".tmp") for p in cleaned.iterdir())), server.output()
    finally:
        server.kill()  # the server and its workers, mid-job
    left = outputs_of(tmp_path, job)
    assert any(p.name.endswith(".tmp") for p in left) and (tmp_path / "reports" / f"{job}.report.jsonl") in left

    server = ServerProcess(args)
    try:
        server.wait_ready()
        assert "leftover output file(s)" in server.output()
        assert not [p for p in left if p.exists() and p.name.endswith(".tmp")]
        assert server.wait_status(job, {"completed", "failed"}, timeout=120)["status"] == "completed"
        assert not [p for p in outputs_of(tmp_path, job) if p.name.endswith(".tmp")]
    finally:
        server.kill()


# ---- 10: restart right after kill -9 of the server ------------------------------------------------

def test_restart_right_after_kill_9_while_a_worker_runs(tmp_path):
    big = make_long_file(tmp_path / "long.jsonl", 20000)
    args = ENGINE + ["--worker-threads", "1"] + dirs_args(tmp_path, purify=False)
    first = ServerProcess(args)
    try:
        first.wait_ready()
        job = first.submit_ok(big)
        first.wait_status(job, {"processing"}, interval=0.01)
        worker = next(w["pid"] for w in first.health().json()["workers"] if w["job_id"] == job)
        first.proc.send_signal(signal.SIGKILL)  # the server only, not its process group
        first.proc.wait(10)

        second = ServerProcess(args)
        try:
            second.wait_ready()
            assert "already using" not in second.output()
            assert wait_for(lambda: not _alive(worker), timeout=30, interval=0.05), "orphaned worker lives on"
            assert second.status(job)["status"] in {"pending", "processing", "completed"}
        finally:
            second.kill()
    finally:
        first.kill()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


# ---- 11: a full journal disk ------------------------------------------------------------------

# The server's journal is held to a few SQLite pages: inserts and updates beyond them fail with
# SQLITE_FULL ("database or disk is full"), the very error SQLite gives when the disk is full.
# This needs no root (a tmpfs or loop mount would) and fills at the same point on every machine.
FULL_JOURNAL = textwrap.dedent("""
    import os, sqlite3, sys
    _connect = sqlite3.connect
    def connect(database, *args, **kwargs):
        db = _connect(database, *args, **kwargs)
        if str(database).endswith("jobs.sqlite"):
            db.execute("PRAGMA max_page_count = " + os.environ["TEST_JOURNAL_MAX_PAGES"])
        return db
    sqlite3.connect = connect
    from decon.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def journal_statuses(state: Path) -> dict[str, str]:
    db = sqlite3.connect(f"file:{state / 'jobs.sqlite'}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT job_id, status FROM jobs").fetchall())
    finally:
        db.close()


def test_full_journal_answers_507_and_status_agrees_with_journal(tmp_path):
    server = ServerProcess(ENGINE + ["--worker-threads", "2"] + dirs_args(tmp_path),
                           command=[sys.executable, "-c", FULL_JOURNAL], env={"TEST_JOURNAL_MAX_PAGES": "5"})
    try:
        server.wait_ready()
        accepted, refused = [], None
        for _ in range(400):
            resp = server.submit(TRAINING / "mixed_server.jsonl")
            if resp.status_code != 200:
                refused = resp
                break
            accepted.append(resp.json()["job_id"])
        assert refused is not None and refused.status_code == 507, (refused and refused.text)
        assert "disk is full" in refused.json()["error"] and accepted
        assert server.health().json()["journal_error"]

        def consistent() -> bool:
            """/status and the journal agree, but for outcomes the journal has yet to take: those
            are counted in journal_behind, and the journal still says processing."""
            journal = journal_statuses(tmp_path / "state")
            statuses = {j: server.status(j)["status"] for j in accepted}
            behind = [j for j in accepted if statuses[j] != journal.get(j)]
            return (all(journal.get(j) == "processing" and statuses[j] in ("completed", "failed") for j in behind)
                    and server.health().json()["journal_behind"] == len(behind))
        assert wait_for(consistent, timeout=60, interval=0.2), server.output()[-3000:]
        assert server.submit(TRAINING / "clean.jsonl").status_code == 507
        assert "Traceback" not in server.output()
    finally:
        server.kill()


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for the full-disk test needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip() or proc.returncode}")


def _fill(folder: Path) -> Path:
    """Fill the filesystem holding ``folder`` to the last byte; returns the filler file."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as fh:
        for size in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    fh.write(b"\0" * size)
    return filler


def test_journal_disk_filling_while_a_job_runs_fails_it_at_once_and_the_journal_catches_up(tmp_path):
    """A real full disk: the journal and the outputs on two small tmpfs mounts, filled while the
    worker is stopped mid-job. The job fails on its own full disk; /status says so at once, with
    the journal problem named; once space returns the journal holds the same outcome, and so
    does a restarted server."""
    journal_fs, output_fs = tmp_path / "journal-fs", tmp_path / "output-fs"
    _mount_tmpfs(journal_fs, "2m")
    mounted = [journal_fs]
    servers: list[ServerProcess] = []
    try:
        _mount_tmpfs(output_fs, "64m")
        mounted.append(output_fs)
        training = make_long_file(tmp_path / "long.jsonl", 60_000)
        args = ENGINE + ["--worker-threads", "1", "--state-dir", str(journal_fs / "state"),
                         "--report-output-dir", str(output_fs / "reports"), "--purify",
                         "--cleaned-output-dir", str(output_fs / "cleaned")]
        servers.append(ServerProcess(args))
        server = servers[-1]
        server.wait_ready()
        job = server.submit_ok(training)
        assert wait_for(lambda: server.status(job)["status"] == "processing", timeout=60)
        (worker,) = [w["pid"] for w in server.health().json()["workers"] if w["job_id"] == job]
        os.kill(worker, signal.SIGSTOP)
        try:
            fillers = [_fill(journal_fs), _fill(output_fs)]
        finally:
            os.kill(worker, signal.SIGCONT)

        assert wait_for(lambda: server.status(job)["status"] == "failed", timeout=60), server.output()[-3000:]
        error = server.status(job)["error"]
        assert "not yet in the job journal" in error and "disk is full" in error, error
        health = server.health().json()
        assert health["journal_behind"] == 1 and "disk is full" in health["journal_error"]
        assert health["jobs"]["failed"] == 1 and health["jobs"]["processing"] == 0
        assert journal_statuses(journal_fs / "state")[job] == "processing"

        for filler in fillers:
            filler.unlink()
        assert wait_for(lambda: journal_statuses(journal_fs / "state")[job] == "failed", timeout=30, interval=0.1)
        assert wait_for(lambda: server.health().json()["journal_behind"] == 0, timeout=30, interval=0.1)
        health = server.health().json()
        assert health["journal_error"] is None
        caught_up = server.status(job)
        assert caught_up["status"] == "failed" and "not yet in the job journal" not in caught_up["error"]
        assert caught_up["error"] and caught_up["error"] in error  # the job's own cause, without the note
        assert "Traceback" not in server.output()

        server.kill()
        servers.append(ServerProcess(args))
        restarted = servers[-1]
        restarted.wait_ready()
        assert restarted.status(job) == caught_up
    finally:
        for server in servers:
            server.kill()
        for mount in mounted:
            subprocess.run(["umount", "-l", str(mount)], check=False)
