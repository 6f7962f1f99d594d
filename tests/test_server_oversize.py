"""Issue 30: oversize requests get an answer every client can read (413, 414, 431), not a reset.

Each case is sent by Python's urllib, requests, http.client and a raw socket to a real `decon
server` on loopback. urllib and http.client send the whole body before they read the answer: they
see the 413 only because the server reads and discards the rest (a lingering close)."""

from __future__ import annotations

import http.client
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_server_harness import ServerProcess, address  # noqa: E402

from decon.server.limits import MAX_BODY_BYTES, MAX_HEAD_BYTES, MAX_REQUEST_LINE_BYTES  # noqa: E402

pytestmark = pytest.mark.slow  # real server processes: `make test` runs it, `make test-fast` does not

ENGINE = ["--reference-input", "tests/data/server/reference", "--sample-every-m-tokens", "1", "--no-index-cache",
          "--worker-threads", "1"]
MB = 1 << 20
BODY_SIZES = [1 * MB, 8 * MB, 10 * MB, 300 * MB]
_BODIES: dict[int, bytes] = {}


def body_of(size: int) -> bytes:
    if size not in _BODIES:
        _BODIES[size] = b'{"file_path": "' + b"a" * (size - 17) + b'"}'
    return _BODIES[size]


def start(base: Path, extra: list[str] | None = None) -> ServerProcess:
    server = ServerProcess(ENGINE + ["--report-output-dir", str(base / "reports"),
                                     "--state-dir", str(base / "state")] + (extra or []))
    server.wait_ready()
    return server


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = start(tmp_path_factory.mktemp("oversize"))
    try:
        yield server
    finally:
        server.kill()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


# ---- the four clients: each returns (status, parsed JSON body) ----------------------------------

def by_urllib(server: ServerProcess, method: str, path: str, body: bytes | None = None,
              headers: dict[str, str] | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(server.url + path, data=body, method=method, headers=headers or {})
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read())


def by_requests(server: ServerProcess, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict]:
    headers = dict(headers or {})
    if body is not None:
        headers["Content-Type"] = "application/json"
    resp = requests.request(method, server.url + path, data=body, headers=headers, timeout=60)
    return resp.status_code, resp.json()


def by_http_client(server: ServerProcess, method: str, path: str, body: bytes | None = None,
                   headers: dict[str, str] | None = None) -> tuple[int, dict]:
    host, port = address(server)
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        headers = dict(headers or {})
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, orjson.loads(resp.read())
    finally:
        conn.close()


def by_socket(server: ServerProcess, method: str, path: str, body: bytes | None = None,
              headers: dict[str, str] | None = None) -> tuple[int, dict]:
    lines = [f"{method} {path} HTTP/1.1", "Host: x", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    with socket.create_connection(address(server), timeout=60) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), orjson.loads(payload)


CLIENTS = {"urllib": by_urllib, "requests": by_requests, "http.client": by_http_client, "socket": by_socket}


# ---- 413: bodies over the limit, sent whole ----------------------------------------------------

@pytest.mark.parametrize("size", BODY_SIZES, ids=[f"{s // MB}MB" for s in BODY_SIZES])
@pytest.mark.parametrize("client", list(CLIENTS))
def test_oversize_body_gets_413_whatever_the_client(srv, client, size):
    before = rss_kib(srv.proc.pid)
    status, payload = CLIENTS[client](srv, "POST", "/submit", body_of(size))
    assert status == 413, (status, payload)
    assert payload == {"error": f"request body too large (limit {MAX_BODY_BYTES} bytes)"}
    assert rss_kib(srv.proc.pid) - before < 64 * 1024, "the discarded body was kept in memory"
    assert srv.health().status_code == 200


@pytest.mark.parametrize("client", list(CLIENTS))
def test_keep_alive_client_reads_413_and_its_next_request_works(srv, client):
    """After the 413 the server closes; a client's next request on a new connection works."""
    status, _ = CLIENTS[client](srv, "POST", "/submit", body_of(1 * MB))
    assert status == 413
    assert CLIENTS[client](srv, "GET", "/health")[0] == 200


# ---- 414 and 431: over-long request lines and heads --------------------------------------------

@pytest.mark.parametrize("client", list(CLIENTS))
def test_long_url_gets_414(srv, client):
    status, payload = CLIENTS[client](srv, "GET", "/status/" + "a" * 200_000)
    assert status == 414, (status, payload)
    assert payload == {"error": f"request line too long (limit {MAX_REQUEST_LINE_BYTES} bytes)"}


@pytest.mark.parametrize("client", list(CLIENTS))
def test_long_headers_get_431(srv, client):
    status, payload = CLIENTS[client](srv, "GET", "/health", headers={"X-Big": "b" * 40_000})
    assert status == 431, (status, payload)
    assert payload == {"error": f"request headers too large (limit {MAX_HEAD_BYTES} bytes)"}
    many = {f"X-H{i}": "v" * 100 for i in range(300)}  # many small headers, 30 kB in all
    assert CLIENTS[client](srv, "GET", "/health", headers=many)[0] == 431


def test_heads_within_the_limits_are_served(srv):
    assert by_socket(srv, "GET", "/status/" + "a" * 4000)[0] == 404
    status, _ = by_socket(srv, "GET", "/health", headers={"X-Big": "b" * (MAX_HEAD_BYTES - 200)})
    assert status == 200


# ---- the bounds on draining -------------------------------------------------------------------

def read_answer(sock: socket.socket) -> tuple[int, bytes]:
    """Read one complete JSON answer (the server answers a declared oversize body at once)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1]), body


def open_upload(server: ServerProcess, declared: int) -> socket.socket:
    sock = socket.create_connection(address(server), timeout=60)
    sock.sendall(b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {declared}\r\n\r\n".encode())
    status, body = read_answer(sock)
    assert status == 413 and b"too large" in body
    return sock


def send_until_cut_off(sock: socket.socket, chunk: bytes, limit: int, pause: float = 0.0) -> int:
    """Bytes sent before the server cut the connection off (at most ``limit``)."""
    sent = 0
    try:
        while sent < limit:
            sock.sendall(chunk)
            sent += len(chunk)
            if pause:
                time.sleep(pause)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


@pytest.fixture(scope="module")
def bounded(tmp_path_factory):
    """A server that lingers at most 8 MB and 3 seconds."""
    server = start(tmp_path_factory.mktemp("bounded"), ["--linger-bytes", str(8 * MB), "--linger-seconds", "3"])
    try:
        yield server
    finally:
        server.kill()


def test_client_sending_past_the_byte_bound_is_cut_off(bounded):
    with open_upload(bounded, 300 * MB) as sock:
        sent = send_until_cut_off(sock, b"x" * MB, 300 * MB)
    assert 8 * MB <= sent < 100 * MB, sent  # the bound plus what socket buffers held


def test_slow_upload_is_cut_off_after_the_time_bound_while_health_answers(bounded):
    sock = open_upload(bounded, 300 * MB)
    result: dict[str, float] = {}

    def slow_sender() -> None:
        began = time.monotonic()
        result["sent"] = send_until_cut_off(sock, b"x" * 16384, 300 * MB, pause=0.02)
        result["seconds"] = time.monotonic() - began

    sender = threading.Thread(target=slow_sender)
    sender.start()
    try:
        slowest = 0.0
        for _ in range(20):
            began = time.monotonic()
            assert requests.get(f"{bounded.url}/health", timeout=5).status_code == 200
            slowest = max(slowest, time.monotonic() - began)
            time.sleep(0.05)
        assert slowest < 1.0, f"/health took {slowest:.2f}s while an upload was drained"
        sender.join(30)
        assert not sender.is_alive(), "the slow upload was never cut off"
    finally:
        sock.close()
    assert result["sent"] < 300 * MB and 2.5 <= result["seconds"] < 15, result


def test_silent_client_is_closed_after_the_time_bound(bounded):
    """A client that stops sending after the 413 (without closing) is closed by the server."""
    with open_upload(bounded, 300 * MB) as sock:
        sock.settimeout(30)
        began = time.monotonic()
        try:
            assert sock.recv(1024) == b""  # EOF: the server half-closed after its answer
        except ConnectionResetError:
            pass
        # the server's end is closed too: sending now fails (after the bound, not at once)
        deadline = time.monotonic() + 20
        closed = False
        while time.monotonic() < deadline and not closed:
            try:
                sock.sendall(b"x")
                time.sleep(0.2)
            except (BrokenPipeError, ConnectionResetError):
                closed = True
        assert closed and time.monotonic() - began < 15
