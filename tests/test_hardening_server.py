"""`decon server` on hostile input (issue 9): damaged streams, a symlink flipped across
--allowed-root, a FIFO swapped in after submit, overlong lines, unreadable paths. A real server
on loopback, real HTTP."""

from __future__ import annotations

import gzip
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_hardening_detect import drop_file_permission_override  # noqa: E402
from test_server_harness import TRAINING, ServerProcess, make_long_file  # noqa: E402

pytestmark = pytest.mark.slow  # real server processes: `make test` runs it, `make test-fast` does not

ENGINE = ["--reference-input", "tests/data/server/reference", "--sample-every-m-tokens", "1", "--no-index-cache"]
CONTAMINATED = (TRAINING / "contaminated_at_beginning.jsonl").read_bytes().splitlines()[0]


def _server(tmp: Path, *extra: str, preexec_fn=None) -> ServerProcess:
    server = ServerProcess(ENGINE + ["--report-output-dir", str(tmp / "reports"), "--cleaned-output-dir",
                                     str(tmp / "cleaned"), "--purify", *extra], preexec_fn=preexec_fn)
    server.wait_ready()
    return server


def _outputs(tmp: Path, job_id: str) -> list[str]:
    return [p.name for d in (tmp / "reports", tmp / "cleaned") if d.exists() for p in d.iterdir() if job_id in p.name]


def test_truncated_zst_job_fails_and_leaves_no_output(tmp_path):
    data = CONTAMINATED + b"\n" + b"".join(
        orjson.dumps({"text": f"filler document {i} about rivers"}) + b"\n" for i in range(100_004))
    zc = zstandard.ZstdCompressor(write_checksum=True)
    blob = zc.compress(data[: len(data) // 2]) + zc.compress(data[len(data) // 2:])
    src = tmp_path / "cut.jsonl.zst"
    src.write_bytes(blob[: len(blob) - len(blob) // 4])  # cut inside the second frame
    server = _server(tmp_path, "--worker-threads", "1")
    try:
        body = server.wait_status(server.submit_ok(src), {"completed", "failed"})
        assert body["status"] == "failed", body
        assert str(src) in body["error"] and "truncated zstd stream" in body["error"]
        assert _outputs(tmp_path, body["job_id"]) == []
    finally:
        server.kill()


def _flip(link: Path, targets: tuple[Path, Path], stop: threading.Event) -> None:
    tmp = link.with_name(link.name + ".flip")
    n = 0
    while not stop.is_set():
        os.symlink(targets[n % 2], tmp)
        os.replace(tmp, link)
        n += 1
        time.sleep(0.0005)


def test_symlink_flipped_across_allowed_root_never_leaks_outside_file(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    inside_text = b"".join(orjson.dumps({"text": f"inside document {i} " + "calm words " * 30}) + b"\n"
                           for i in range(400))
    (root / "inside.jsonl").write_bytes(inside_text)
    (outside / "secret.jsonl").write_bytes(b"".join(
        orjson.dumps({"text": f"SECRET record {i} " + "hidden words " * 30}) + b"\n" for i in range(400)))
    link = root / "link.jsonl"
    link.symlink_to(root / "inside.jsonl")
    server = _server(tmp_path, "--worker-threads", "2", "--allowed-root", str(root))
    stop = threading.Event()
    flipper = threading.Thread(target=_flip, args=(link, (root / "inside.jsonl", outside / "secret.jsonl"), stop))
    flipper.start()
    try:
        jobs: list[str] = []
        while len(jobs) < 40:
            resp = server.submit(link)
            if resp.status_code == 200:
                jobs.append(resp.json()["job_id"])
        outcomes = [server.wait_status(j, {"completed", "failed"}) for j in jobs]
    finally:
        stop.set()
        flipper.join()
        server.kill()
    for body in outcomes:
        if body["status"] == "failed":
            assert "outside the allowed roots" in body["error"], body
            assert _outputs(tmp_path, body["job_id"]) == []
        else:
            assert gzip.decompress(Path(body["purified_path"]).read_bytes()) == inside_text, body
            assert body.get("output_path") is None


def test_fifo_swapped_in_after_submit_fails_the_job_and_the_queue_moves_on(tmp_path):
    server = _server(tmp_path, "--worker-threads", "1")
    try:
        first = server.submit_ok(make_long_file(tmp_path / "long.jsonl", 20_000))
        server.wait_status(first, {"processing", "completed"})
        swapped = tmp_path / "swapped.jsonl"
        shutil.copy(TRAINING / "clean.jsonl", swapped)
        fifo_job = server.submit_ok(swapped)
        swapped.unlink()
        os.mkfifo(swapped)
        after = server.submit_ok(TRAINING / "clean.jsonl")
        body = server.wait_status(fifo_job, {"completed", "failed"}, timeout=120)
        assert body["status"] == "failed" and "not a regular file" in body["error"], body
        assert server.wait_status(after, {"completed", "failed"}, timeout=60)["status"] == "completed"
    finally:
        server.kill()


def test_fifo_in_reference_dir_stops_start_up_with_an_error(tmp_path):
    refs = tmp_path / "refs"
    shutil.copytree(Path("tests/data/server/reference").resolve(), refs)
    os.mkfifo(refs / "zz.jsonl")
    server = ServerProcess(["--reference-input", str(refs), "--no-index-cache", "--report-output-dir",
                            str(tmp_path / "reports")])
    try:
        assert server.wait_exit(120) != 0
        assert "not a regular file" in server.output() and str(refs / "zz.jsonl") in server.output()
    finally:
        server.kill()


def test_overlong_line_is_skipped_named_in_the_log_and_left_out_of_the_cleaned_copy(tmp_path):
    src = tmp_path / "t.jsonl"
    short = orjson.dumps({"text": "short and clean"}) + b"\n"
    src.write_bytes(short + orjson.dumps({"text": "long " * 3000}) + b"\n" + short)
    server = _server(tmp_path, "--worker-threads", "1", "--max-line-bytes", "4096")
    try:
        body = server.wait_status(server.submit_ok(src), {"completed", "failed"})
        assert body["status"] == "completed", body
        assert gzip.decompress(Path(body["purified_path"]).read_bytes()) == short + short
        deadline = time.monotonic() + 10
        while "over max_line_bytes (line 2)" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "skipped 1 line(s) over max_line_bytes (line 2)" in server.output()
    finally:
        server.kill()


@pytest.mark.parametrize("case", ["unsearchable_parent", "missing"])
def test_submit_tells_permission_denied_from_missing(case, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    shutil.copy(TRAINING / "clean.jsonl", locked / "clean.jsonl")
    target = locked / ("clean.jsonl" if case == "unsearchable_parent" else "nope.jsonl")
    server = _server(tmp_path, "--worker-threads", "1", preexec_fn=drop_file_permission_override)
    locked.chmod(0 if case == "unsearchable_parent" else 0o755)
    try:
        resp = server.submit(target)
    finally:
        locked.chmod(0o755)
        server.kill()
    assert resp.status_code == 400
    expected = "permission denied" if case == "unsearchable_parent" else "does not exist"
    assert expected in resp.json()["error"], resp.text
