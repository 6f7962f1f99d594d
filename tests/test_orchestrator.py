"""End-to-end tests of the orchestrator: moto S3 (loopback), real s5cmd, decon server (loopback).

The server is ``python -m decon server``; set DECON_TEST_FAKE_SERVER=/path/to/script.py to use a
stand-in with the same command line while the real server is unavailable.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from decon.cloud.naming import output_names  # noqa: E402
from orchestrator.partition import owner_of  # noqa: E402
from tests.compression import compress_for  # noqa: E402

pytestmark = pytest.mark.slow  # real clusters, servers or browsers: `make test` runs it, `make test-fast` does not

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

BUCKET = "decon-test"
INPUT = f"s3://{BUCKET}/data"
REPORTS = f"s3://{BUCKET}/reports/run1"
CLEANED = f"s3://{BUCKET}/cleaned/run1"
COMPRESSIONS = [".jsonl", ".jsonl.gz", ".jsonl.zst", ".jsonl.zstd", ".jsonl.bz2", ".jsonl.xz", ".json", ".json.gz",
                ".parquet"]
FOLDERS = ["", "a/", "a/b/", "c/d/e/"]
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- data

def _words(rng: random.Random, alphabet: str, n: int) -> list[str]:
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(4, 9))) for _ in range(n)]


class Dataset:
    """Eval questions + 40 training files; the n-th file is contaminated when n % 3 == 0."""

    def __init__(self, n_files: int = 40, docs_per_file: int = 12) -> None:
        rng = random.Random(1234)
        eval_vocab = _words(rng, "bcdfghklmnprstvz", 400)
        clean_vocab = _words(rng, "aeiouwyjqx", 400)
        self.evals = []
        for i in range(20):
            question = " ".join(rng.choice(eval_vocab) for _ in range(40)) + "?"
            answer = " ".join(rng.choice(eval_vocab) for _ in range(12))
            self.evals.append({"doc_id": i, "eval_key": "synthetic-qa", "question": question, "answer": answer})
        self.files: dict[str, dict] = {}  # relative path -> {"docs": [...], "contaminated_ids": set}
        for n in range(n_files):
            rel = f"{FOLDERS[n % len(FOLDERS)]}shard-{n:03d}{COMPRESSIONS[n % len(COMPRESSIONS)]}"
            docs, bad = [], set()
            for d in range(docs_per_file):
                doc_id = f"f{n}-d{d}"
                if n % 3 == 0 and d in (3, 7):
                    ev = self.evals[(n + d) % len(self.evals)]
                    text = (" ".join(rng.choice(clean_vocab) for _ in range(30)) + " " + ev["question"] + " "
                            + ev["answer"] + " " + " ".join(rng.choice(clean_vocab) for _ in range(30)))
                    bad.add(doc_id)
                else:
                    text = " ".join(rng.choice(clean_vocab) for _ in range(120))
                docs.append({"id": doc_id, "text": text})
            self.files[rel] = {"docs": docs, "bad": bad}

    @staticmethod
    def encode(rel: str, docs: list[dict]) -> bytes:
        if rel.endswith(".parquet"):  # a Parquet shard: the cleaned copy comes back as Parquet
            buf = io.BytesIO()
            pq.write_table(pa.Table.from_pylist(docs), buf, row_group_size=5)
            return buf.getvalue()
        return compress_for(rel, "".join(json.dumps(d) + "\n" for d in docs).encode())

    def write_evals(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / "synthetic_qa-1.jsonl", "w") as fh:
            for ev in self.evals:
                fh.write(json.dumps(ev) + "\n")

    def expected_objects(self, purify: bool) -> dict[str, str]:
        """full key -> kind (report | marker | cleaned)"""
        report_prefix = REPORTS.split(f"{BUCKET}/", 1)[1] + "/"
        cleaned_prefix = CLEANED.split(f"{BUCKET}/", 1)[1] + "/"
        out = {}
        for rel, info in self.files.items():
            names = output_names(rel)
            if info["bad"]:
                out[report_prefix + names.report] = "report"
            else:
                out[report_prefix + names.clean_marker] = "marker"
            if purify:
                out[cleaned_prefix + names.cleaned] = "cleaned"
        return out

    def rel_for_output(self, key: str) -> str:
        for rel in self.files:
            names = output_names(rel)
            if key.endswith(("/" + names.report, "/" + names.clean_marker, "/" + names.cleaned)):
                return rel
        raise KeyError(key)


# --------------------------------------------------------------------------- S3 gate proxy

class GateProxy:
    """TCP proxy in front of moto. ``block`` holds request kinds to refuse (connection closed):
    "object_get" (GET of an object, not a listing), "write" (PUT/POST), "all"."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.port = free_port()
        self.block: set[str] = set()
        self.refused = 0
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.listen(128)
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _kind(self, head: bytes) -> str:
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        method, target = (parts[0], parts[1]) if len(parts) > 1 else ("", "")
        if method in ("PUT", "POST", "DELETE"):
            return "write"
        if method == "GET" and "list-type" not in target and target.strip("/").count("/") >= 1:
            return "object_get"
        return "other"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        try:
            head = b""
            while b"\r\n" not in head:
                chunk = client.recv(65536)
                if not chunk:
                    client.close()
                    return
                head += chunk
            kind = self._kind(head)
            if "all" in self.block or kind in self.block:
                self.refused += 1
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                client.close()
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream))
            upstream.sendall(head)

            def pipe(src: socket.socket, dst: socket.socket) -> None:
                try:
                    while True:
                        data = src.recv(65536)
                        if not data:
                            break
                        dst.sendall(data)
                except OSError:
                    pass
                finally:
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass

            t = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
            t.start()
            pipe(client, upstream)
            t.join(timeout=60)
            upstream.close()
            client.close()
        except OSError:
            client.close()

    def close(self) -> None:
        self._closed = True
        self._sock.close()


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def moto() -> tuple[str, object]:
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}", port
    server.stop()


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return Dataset()


@pytest.fixture()
def s3(moto, dataset, monkeypatch):
    url, _port = moto
    for k, v in AWS_ENV.items():
        monkeypatch.setenv(k, v)
    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
    try:
        existing = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        for obj in existing:
            client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    except client.exceptions.NoSuchBucket:
        client.create_bucket(Bucket=BUCKET)
    for rel, info in dataset.files.items():
        client.put_object(Bucket=BUCKET, Key=f"data/{rel}", Body=Dataset.encode(rel, info["docs"]))
    # Distractors: not an input suffix, and a sibling prefix that only shares the string "data".
    client.put_object(Bucket=BUCKET, Key="data/README.txt", Body=b"not training data")
    client.put_object(Bucket=BUCKET, Key="data-other/shard-999.jsonl", Body=b'{"text": "x"}\n')
    return client


def _server_argv(port: int, report_dir: Path, cleaned_dir: Path, evals_dir: Path, purify: bool) -> list[str]:
    fake = os.environ.get("DECON_TEST_FAKE_SERVER")
    if fake:
        argv = [sys.executable, fake]
    else:
        if importlib.util.find_spec("decon.server.command") is None:
            pytest.skip("decon server is not available yet (decon/server/command.py missing)")
        argv = [sys.executable, "-m", "decon", "server"]
    argv += ["--port", str(port), "--report-output-dir", str(report_dir), "--evals-dir", str(evals_dir)]
    if purify:
        argv += ["--cleaned-output-dir", str(cleaned_dir), "--purify"]
    return argv


class Host:
    """One simulated cluster host: its own work dir, decon server and orchestrator runs."""

    def __init__(self, base: Path, index: int, count: int, dataset: Dataset, purify: bool = True) -> None:
        self.dir = base / f"host{index}"
        self.dir.mkdir(parents=True)
        self.index, self.count, self.purify = index, count, purify
        self.work = self.dir / "work"
        self.server_port = free_port()
        evals = self.dir / "evals"
        dataset.write_evals(evals)
        argv = _server_argv(self.server_port, self.dir / "server-reports", self.dir / "server-cleaned", evals, purify)
        self.server_log = open(self.dir / "server.log", "w")
        self.server = subprocess.Popen(argv, stdout=self.server_log, stderr=subprocess.STDOUT, cwd=self.dir,
                                       env=_clean_env())
        self.procs: list[subprocess.Popen] = []

    def config(self, endpoint: str, **extra) -> Path:
        cfg = {
            "remote_file_input": INPUT,
            "remote_report_output_dir": REPORTS,
            "remote_cleaned_output_dir": CLEANED if self.purify else None,
            "server_url": f"http://127.0.0.1:{self.server_port}",
            "local_work_dir": str(self.work),
            "s3_endpoint_url": endpoint,
            "poll_interval": 0.2,
            "s5cmd_workers": 8,
            "cleanup_delay": 0,
            "download_batch_size": 8,
            "upload_batch_size": 8,
            "upload_batch_timeout": 0.3,
            "download_retry_attempts": 3,
            "download_retry_base_delay": 0.3,
            "download_retry_jitter_max": 0.2,
            "s5cmd_retry_count": 0,
            "server_wait_timeout": 120,
            "shutdown_grace_seconds": 20,
            "metrics_interval": 1,
        }
        cfg.update(extra)
        path = self.dir / "orchestration.yaml"
        path.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in cfg.items() if v is not None))
        return path

    def start(self, config: Path, extra_env: dict | None = None, log_name: str = "orch.log",
              use_cli: bool = False) -> subprocess.Popen:
        env = _clean_env()
        env.update({"PMR_HOST_INDEX": str(self.index), "PMR_HOST_COUNT": str(self.count)})
        env.update(extra_env or {})
        if use_cli:
            argv = [sys.executable, "-m", "decon", "orchestrate", "--config", str(config)]
        else:
            argv = [sys.executable, str(ROOT / "orchestrator" / "orchestrator.py"), "--config", str(config)]
        log = open(self.dir / log_name, "w")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                start_new_session=True)
        proc.log_path = self.dir / log_name  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def workspace(self) -> Path:
        return self.work / f"input-{hashlib.sha256(INPUT.encode()).hexdigest()[:12]}"

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.server.terminate()
        try:
            self.server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()
        self.server_log.close()


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")
           and k not in ("PMR_HOST_INDEX", "PMR_HOST_COUNT", "MAX_FILES_DEBUG", "AWS_ENDPOINT_URL")}
    env.update(AWS_ENV)
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture()
def hosts(tmp_path):
    made: list[Host] = []

    def make(index: int = 0, count: int = 1, dataset: Dataset | None = None, purify: bool = True) -> Host:
        host = Host(tmp_path / f"run{len(made)}", index, count, dataset or Dataset(), purify)
        made.append(host)
        return host

    yield make
    for h in made:
        h.close()


def wait_exit(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"orchestrator did not finish in {timeout}s:\n{proc.log_path.read_text()[-4000:]}")
    return rc, proc.log_path.read_text()


def wait_for_log(proc: subprocess.Popen, pattern: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = proc.log_path.read_text()
        if re.search(pattern, text):
            return text
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    pytest.fail(f"log never matched {pattern!r}:\n{proc.log_path.read_text()[-4000:]}")


def all_keys(client, prefix: str = "") -> dict[str, bytes]:
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = client.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
    return out


def output_keys(client) -> dict[str, bytes]:
    out = all_keys(client, "reports/")
    out.update(all_keys(client, "cleaned/"))
    return out


def done_files(log: str) -> list[str]:
    return re.findall(r"DONE (\S+) \(", log)


def summary(log: str) -> dict[str, int]:
    m = re.search(r"SUMMARY: Processed=(\d+) Clean=(\d+) Contaminated=(\d+) Failed=(\d+) Time=([\d.]+)s", log)
    assert m, log[-3000:]
    return {"processed": int(m[1]), "clean": int(m[2]), "contaminated": int(m[3]), "failed": int(m[4]),
            "time": float(m[5])}


def check_outputs(client, dataset: Dataset, purify: bool = True) -> None:
    got = output_keys(client)
    expected = dataset.expected_objects(purify)
    assert sorted(got) == sorted(expected)
    for key, kind in expected.items():
        body = got[key]
        info = dataset.files[dataset.rel_for_output(key)]
        if kind == "marker":
            assert body == b""
        elif kind == "report":
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            assert lines, key
        elif key.endswith(".parquet"):
            kept = pq.read_table(pa.BufferReader(body)).to_pylist()
            assert [d["id"] for d in kept] == [d["id"] for d in info["docs"] if d["id"] not in info["bad"]], key
        else:
            kept = [json.loads(line) for line in gzip.decompress(body).decode().splitlines() if line.strip()]
            assert [d["id"] for d in kept] == [d["id"] for d in info["docs"] if d["id"] not in info["bad"]], key


# --------------------------------------------------------------------------- tests

def test_three_hosts_process_every_file_once(s3, moto, dataset, hosts):
    url, _ = moto
    cluster = [hosts(i, 3, dataset) for i in range(3)]
    procs = [h.start(h.config(url), use_cli=(h.index == 2)) for h in cluster]
    started = time.monotonic()
    results = [wait_exit(p) for p in procs]
    wall = time.monotonic() - started
    seen: list[str] = []
    for host, (rc, log) in zip(cluster, results, strict=True):
        assert rc == 0, log[-4000:]
        assert "WORK COMPLETE EXITING" in log
        mine = done_files(log)
        assert all(owner_of(f"data/{rel}", 3) == host.index for rel in mine)
        s = summary(log)
        assert s["processed"] == len(mine) and s["failed"] == 0
        assert not (host.workspace() / "orchestrator.lock").exists()
        leftover = [p for p in (host.workspace() / "download").rglob("*") if p.is_file()]
        assert leftover == []
        seen += mine
    assert sorted(seen) == sorted(dataset.files)  # each exactly once
    check_outputs(s3, dataset)
    total_mb = sum(len(Dataset.encode(r, i["docs"])) for r, i in dataset.files.items()) / 1e6
    print(f"\nTHROUGHPUT 3 hosts: {len(seen)} files, {total_mb:.2f} MB in {wall:.2f}s wall")

    # A rerun finds everything finished and does nothing.
    rc, log = wait_exit(cluster[0].start(cluster[0].config(url), log_name="rerun.log"))
    assert rc == 0 and "Files to process: 0" in log


def test_single_host_throughput(s3, moto, dataset, hosts):
    """One orchestrator over all 40 files; prints the figures quoted in DEPLOYMENT.md."""
    url, _ = moto
    host = hosts(0, 1, dataset)
    rc, log = wait_exit(host.start(host.config(url)))
    assert rc == 0, log[-3000:]
    s = summary(log)
    assert s["processed"] == 40 and s["failed"] == 0
    assert s["clean"] + s["contaminated"] == 40
    assert s["contaminated"] == sum(1 for i in dataset.files.values() if i["bad"])
    assert re.search(r"METRICS .*rates: download=", log)
    check_outputs(s3, dataset)
    mb = sum(len(Dataset.encode(r, i["docs"])) for r, i in dataset.files.items()) / 1e6
    print(f"\nTHROUGHPUT 1 host: {s['processed']} files, {mb:.2f} MB in {s['time']:.2f}s "
          f"= {s['processed'] / s['time']:.2f} files/s, {mb / s['time']:.3f} MB/s")


def test_sigkill_then_resume_skips_finished_files(s3, moto, dataset, hosts):
    url, _ = moto
    host = hosts(0, 1, dataset)
    cfg = host.config(url, download_batch_size=1, upload_batch_size=1, upload_batch_timeout=0,
                      max_concurrent_jobs=1, download_queue_max=1)
    first = host.start(cfg, log_name="first.log")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and len(done_files(first.log_path.read_text())) < 8:
        assert first.poll() is None, first.log_path.read_text()[-3000:]
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # the host dies: orchestrator and its s5cmd children
    first.wait()
    time.sleep(0.5)
    lock = host.workspace() / "orchestrator.lock"
    assert lock.exists()  # left behind by the dead process: stale
    finished_keys = output_keys(s3)
    finished = {dataset.rel_for_output(k) for k in finished_keys}
    complete = {rel for rel in finished
                if {k for k in dataset.expected_objects(True) if dataset.rel_for_output(k) == rel} <= set(finished_keys)}
    assert 0 < len(complete) < 40

    rc, log = wait_exit(host.start(cfg, log_name="second.log"))
    assert rc == 0, log[-3000:]
    assert "stale lock" in log.lower()
    redone = set(done_files(log))
    assert redone.isdisjoint(complete)
    assert redone | complete == set(dataset.files)
    assert f"skipped {len(complete)} already finished" in log
    check_outputs(s3, dataset)


def test_s3_outage_during_downloads_is_retried(s3, moto, dataset, hosts):
    _, moto_port = moto
    proxy = GateProxy(moto_port)
    try:
        host = hosts(0, 1, dataset)
        proxy.block = {"object_get"}  # listings work, object downloads are refused
        proc = host.start(host.config(proxy.url, download_retry_attempts=6, download_retry_base_delay=0.5))
        wait_for_log(proc, r"download: \d+ of \d+ file\(s\) failed \(attempt 2/6\)")
        proxy.block = set()  # the endpoint comes back
        rc, log = wait_exit(proc)
        assert rc == 0, log[-3000:]
        assert proxy.refused > 0
        assert summary(log)["processed"] == 40
        check_outputs(s3, dataset)
    finally:
        proxy.close()


def test_s3_gone_for_good_fails_files_and_keeps_local_data(s3, moto, dataset, hosts):
    _, moto_port = moto
    proxy = GateProxy(moto_port)
    try:
        host = hosts(0, 1, dataset)
        proxy.block = {"write"}  # downloads work, every upload is refused
        proc = host.start(host.config(proxy.url, download_retry_attempts=2))
        rc, log = wait_exit(proc)
        assert rc != 0
        s = summary(log)
        assert s["failed"] == 40 and s["processed"] == 0
        assert output_keys(s3) == {}
        downloads = [p for p in (host.workspace() / "download").rglob("*") if p.is_file()]
        assert len(downloads) == 40  # nothing deleted locally
        assert list((host.dir / "server-reports").iterdir())  # server outputs kept too

        # Downloads refused for good: the files are reported failed as well.
        proxy.block = {"object_get"}
        host2 = hosts(0, 1, dataset)
        rc, log = wait_exit(host2.start(host2.config(proxy.url, download_retry_attempts=2)))
        assert rc != 0 and summary(log)["failed"] == 40
        assert "WORK COMPLETE EXITING" in log
    finally:
        proxy.close()


def test_lock_refuses_second_orchestrator_and_replaces_stale(s3, moto, dataset, hosts, tmp_path):
    url, _ = moto
    host = hosts(0, 1, dataset)
    ws = host.workspace()
    ws.mkdir(parents=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (ws / "orchestrator.lock").write_text(f"{sleeper.pid}\n")
        rc, log = wait_exit(host.start(host.config(url), log_name="refused.log"))
        assert rc == 3 and "another orchestrator" in log
        assert (ws / "orchestrator.lock").read_text().strip() == str(sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait()
    # Now the PID is dead: the lock is stale and gets replaced; the run completes and removes it.
    rc, log = wait_exit(host.start(host.config(url), extra_env={"MAX_FILES_DEBUG": "1"}, log_name="stale.log"))
    assert rc == 0 and "stale lock" in log.lower()
    assert not (ws / "orchestrator.lock").exists()


def test_max_files_debug_uploads_and_deletes_nothing(s3, moto, dataset, hosts):
    url, _ = moto
    host = hosts(0, 1, dataset)
    rc, log = wait_exit(host.start(host.config(url), extra_env={"MAX_FILES_DEBUG": "5"}))
    assert rc == 0, log[-3000:]
    assert summary(log)["processed"] == 5
    assert output_keys(s3) == {}
    ws = host.workspace()
    assert len([p for p in (ws / "download").rglob("*") if p.is_file()]) == 5
    results = [p for p in (ws / "results").rglob("*") if p.is_file()]
    cleaned = [p for p in (ws / "cleaned").rglob("*") if p.is_file()]
    assert len(results) == 5 and len(cleaned) == 5
    assert len(list((host.dir / "server-cleaned").iterdir())) == 5  # server outputs left in place
    # The five largest of this host's files were taken.
    sizes = sorted(((len(Dataset.encode(r, i["docs"])), r) for r, i in dataset.files.items()), reverse=True)
    assert {r for _, r in sizes[:5]} == set(done_files(log))


def test_sigterm_stops_finishes_uploads_and_releases_lock(s3, moto, dataset, hosts):
    url, _ = moto
    host = hosts(0, 1, dataset)
    cfg = host.config(url, download_batch_size=1, max_concurrent_jobs=1, download_queue_max=1,
                      upload_batch_size=1, upload_batch_timeout=0)
    proc = host.start(cfg)
    wait_for_log(proc, r"DONE ")
    proc.send_signal(signal.SIGTERM)
    rc, log = wait_exit(proc, timeout=60)
    assert rc == 128 + signal.SIGTERM
    assert "SUMMARY:" in log and "WORK COMPLETE EXITING" not in log
    assert not (host.workspace() / "orchestrator.lock").exists()
    s = summary(log)
    assert 0 < s["processed"] < 40 and s["failed"] == 0
    # Everything reported processed is complete in S3.
    keys = set(output_keys(s3))
    for rel in done_files(log):
        names = output_names(rel)
        assert {f"cleaned/run1/{names.cleaned}"} <= keys


def test_boto3_fallback_without_s5cmd(s3, moto, dataset, hosts):
    url, _ = moto
    host = hosts(0, 1, dataset)
    rc, log = wait_exit(host.start(host.config(url), extra_env={"DECON_S5CMD": "none"}))
    assert rc == 0, log[-3000:]
    assert "falling back to slower boto3 transfers" in log
    assert summary(log)["processed"] == 40
    check_outputs(s3, dataset)
