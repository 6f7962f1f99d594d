"""`decon ray` end to end: a real 2-node Ray cluster (ray.cluster_utils, one CPU per node) against
moto's S3 server on loopback; `decon ray` runs as a subprocess driver joining the cluster.

Compared with `decon detect` on the same files (bytes of reports and cleaned files) and with the
real orchestrator + `decon server` on the same prefix (every output key and its bytes).
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer
from ray import cluster_utils as ray_cluster_utils  # the ray extra: installed by `make setup`

from decon.cloud.naming import output_names
from decon.detect.report import purified_names, report_names
from tests.compression import compress_for

pytestmark = pytest.mark.slow  # real clusters, servers or browsers: `make test` runs it, `make test-fast` does not

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "decon-ray"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_REGION": "us-east-1"}
# four compressions plus plain, in nested folders
KINDS = [".jsonl", ".jsonl.gz", ".jsonl.zst", ".jsonl.bz2", ".jsonl.xz", ".json.gz"]
FOLDERS = ["", "a/", "a/b/", "c/d/e/"]
NODE_ARGS = {"num_cpus": 1, "object_store_memory": 80 << 20}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


encode = compress_for


class Corpus:
    """Synthetic eval questions and training files; file n is contaminated when n % 3 != 1."""

    def __init__(self, n_files: int, docs: int, seed: int) -> None:
        rng = random.Random(0)  # the same evals for every corpus; the files vary with ``seed``
        words = lambda letters, n: ["".join(rng.choice(letters) for _ in range(rng.randint(4, 9))) for _ in range(n)]  # noqa: E731
        eval_vocab, clean_vocab = words("bcdfghklmnprstvz", 400), words("aeiouwyjqx", 400)
        self.evals = [{"doc_id": i, "eval_key": "synthetic-qa",
                       "question": " ".join(rng.choice(eval_vocab) for _ in range(40)) + "?",
                       "answer": " ".join(rng.choice(eval_vocab) for _ in range(12))} for i in range(20)]
        rng = random.Random(seed)
        self.files: dict[str, bytes] = {}  # relative path -> stored bytes
        self.bad: dict[str, set[str]] = {}
        for n in range(n_files):
            rel = f"{FOLDERS[n % len(FOLDERS)]}shard-{n:03d}{KINDS[n % len(KINDS)]}"
            lines, bad = [], set()
            for d in range(docs):
                text = " ".join(rng.choice(clean_vocab) for _ in range(120))
                if n % 3 != 1 and d % 5 == 2:
                    ev = self.evals[(n + d) % 20]
                    text = text[:200] + " " + ev["question"] + " " + ev["answer"] + " " + text[200:]
                    bad.add(f"f{n}-d{d}")
                lines.append(json.dumps({"id": f"f{n}-d{d}", "text": text}) + "\n")
            self.files[rel] = encode(rel, "".join(lines).encode())
            self.bad[rel] = bad

    def write_evals(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "synthetic_qa-1.jsonl").write_text("".join(json.dumps(e) + "\n" for e in self.evals))
        return directory

    def write_local(self, directory: Path) -> Path:
        for rel, body in self.files.items():
            (directory / rel).parent.mkdir(parents=True, exist_ok=True)
            (directory / rel).write_bytes(body)
        return directory

    def upload(self, client, prefix: str) -> None:
        for rel, body in self.files.items():
            client.put_object(Bucket=BUCKET, Key=f"{prefix}/{rel}", Body=body)


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """AWS settings for everything started from here on (the Ray nodes' actors inherit them)."""
    saved = {k: os.environ.get(k) for k in AWS_ENV}
    os.environ.update(AWS_ENV)
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def s3(env):
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield url, client
    server.stop()


@pytest.fixture(scope="module")
def cluster(env):
    """Two Ray nodes of one CPU each (the head and one worker), small object stores, no dashboard."""
    c = ray_cluster_utils.Cluster(initialize_head=True, head_node_args={
        **NODE_ARGS, "include_dashboard": False,
        "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 4}})
    c.add_node(**NODE_ARGS)
    c.wait_for_nodes()
    yield c
    c.shutdown()


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus(n_files=12, docs=30, seed=11)


@pytest.fixture(scope="module")
def evals(corpus, tmp_path_factory) -> Path:
    return corpus.write_evals(tmp_path_factory.mktemp("evals"))


def child_env(endpoint: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(AWS_ENV, AWS_ENDPOINT_URL=endpoint, NO_PROXY="127.0.0.1,localhost", DECON_QUIET="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def decon_ray(cluster, endpoint: str, evals: Path, input_uri: str, out: str, *extra: str,
              timeout: float = 300) -> tuple[int, str]:
    argv = [sys.executable, "-m", "decon", "ray", "--address", cluster.address, "--input", input_uri,
            "--report-output-dir", f"s3://{BUCKET}/{out}/reports", "--cleaned-output-dir",
            f"s3://{BUCKET}/{out}/cleaned", "--purify", "--evals-dir", str(evals), "--progress-interval", "1",
            *extra]
    proc = subprocess.run(argv, env=child_env(endpoint), cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def objects(client, prefix: str) -> dict[str, bytes]:
    """relative key -> bytes, for every object below ``prefix/``."""
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            out[obj["Key"][len(prefix) + 1:]] = client.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
    return out


def summary(log: str) -> dict[str, int]:
    m = re.search(r"SUMMARY: Processed=(\d+) Clean=(\d+) Contaminated=(\d+) Failed=(\d+) Time=", log)
    assert m, log[-4000:]
    return dict(zip(("processed", "clean", "contaminated", "failed"), map(int, m.groups()), strict=True))


def done_files(log: str) -> list[str]:
    return re.findall(r"DONE (\S+) \(", log)


def expected_layout(corpus: Corpus) -> set[str]:
    keys = set()
    for rel, bad in corpus.bad.items():
        names = output_names(rel)
        keys.add("reports/" + (names.report if bad else names.clean_marker))
        keys.add("cleaned/" + names.cleaned)
    return keys


@pytest.fixture(scope="module")
def first_run(cluster, s3, corpus, evals, tmp_path_factory):
    url, client = s3
    corpus.upload(client, "data")
    scratch = tmp_path_factory.mktemp("scratch")
    rc, log = decon_ray(cluster, url, evals, f"s3://{BUCKET}/data", "ray", "--scratch-dir", str(scratch))
    return rc, log, objects(client, "ray"), sorted(scratch.rglob("*"))


# --------------------------------------------------------------------------- tests

def test_outputs_match_detect_byte_for_byte(first_run, corpus, evals, tmp_path):
    rc, log, got, scratch_left = first_run
    assert rc == 0, log[-4000:]
    assert scratch_left == []  # downloads and staged outputs removed, actors' folders too
    s = summary(log)
    assert s == {"processed": 12, "clean": 4, "contaminated": 8, "failed": 0}
    assert sorted(done_files(log)) == sorted(corpus.files)
    assert re.search(r"PROGRESS files \d+/12 done .* M tokens/s", log)
    assert "Ray: 2 node(s), 2 CPU(s); starting 2 actor(s)" in log
    assert set(got) == expected_layout(corpus)

    train = corpus.write_local(tmp_path / "train")
    rc = subprocess.run([sys.executable, "-m", "decon", "detect", "--training-dir", str(train), "--evals-dir",
                         str(evals), "--report-output-dir", str(tmp_path / "rep"), "--purify",
                         "--cleaned-output-dir", str(tmp_path / "cl"), "--worker-threads", "1"],
                        env=child_env("http://127.0.0.1:9"), capture_output=True, text=True).returncode
    assert rc == 0
    files = sorted(train / rel for rel in corpus.files)
    rnames, pnames = report_names(files, train, 0.8), purified_names(files, train)
    for rel, bad in corpus.bad.items():
        names = output_names(rel)
        report = tmp_path / "rep" / rnames[train / rel]
        if bad:
            assert got["reports/" + names.report] == report.read_bytes(), rel
            assert {json.loads(line)["training_file"] for line in report.read_text().splitlines()} == \
                {Path(rel).name.removesuffix(".gz").removesuffix(".zst")}
        else:
            assert not report.exists() and got["reports/" + names.clean_marker] == b""
        assert got["cleaned/" + names.cleaned] == (tmp_path / "cl" / pnames[train / rel]).read_bytes(), rel
        kept = [json.loads(line)["id"] for line in gzip.decompress(got["cleaned/" + names.cleaned]).splitlines()]
        assert len(kept) == 30 - len(bad) and not set(kept) & bad


def test_same_keys_and_bytes_as_the_orchestrator(first_run, s3, evals, tmp_path):
    url, client = s3
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "decon", "server", "--port", str(port), "--evals-dir",
                               str(evals), "--report-output-dir", str(tmp_path / "sr"), "--cleaned-output-dir",
                               str(tmp_path / "sc"), "--purify", "--worker-threads", "1"],
                              env=child_env(url), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        orch = subprocess.run(
            [sys.executable, "-m", "decon", "orchestrate", "--remote-file-input", f"s3://{BUCKET}/data",
             "--remote-report-output-dir", f"s3://{BUCKET}/orch/reports", "--remote-cleaned-output-dir",
             f"s3://{BUCKET}/orch/cleaned", "--server-url", f"http://127.0.0.1:{port}", "--local-work-dir",
             str(tmp_path / "work"), "--s3-endpoint-url", url, "--poll-interval", "0.2", "--cleanup-delay", "0",
             "--upload-batch-timeout", "0.3", "--server-wait-timeout", "120"],
            env=child_env(url), cwd=ROOT, capture_output=True, text=True, timeout=300)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert orch.returncode == 0, orch.stderr[-4000:]
    assert objects(client, "orch") == first_run[2]


def test_rerun_skips_everything_and_redoes_only_a_deleted_output(first_run, cluster, s3, corpus, evals):
    url, client = s3
    before = first_run[2]
    client.put_object(Bucket=BUCKET, Key="ray/reports/.decon-tmp/old-run/a/shard-001.clean", Body=b"")
    rc, log = decon_ray(cluster, url, evals, f"s3://{BUCKET}/data", "ray")
    assert rc == 0, log[-4000:]
    assert "Files to process: 0" in log and "skipped 12 already finished" in log
    assert "Removed 1 temporary output(s) under s3://decon-ray/ray/reports/" in log
    assert summary(log)["processed"] == 0 and done_files(log) == []

    victim = next(rel for rel, bad in corpus.bad.items() if bad)
    client.delete_object(Bucket=BUCKET, Key="ray/reports/" + output_names(victim).report)
    rc, log = decon_ray(cluster, url, evals, f"s3://{BUCKET}/data", "ray")
    assert rc == 0, log[-4000:]
    assert done_files(log) == [victim] and summary(log)["processed"] == 1
    assert objects(client, "ray") == before


def test_corrupt_gzip_fails_alone(cluster, s3, evals):
    url, client = s3
    small = Corpus(n_files=3, docs=10, seed=5)
    small.upload(client, "mixed")
    good = gzip.compress(b"".join(json.dumps({"text": f"line {i} " * 30}).encode() + b"\n" for i in range(400)))
    client.put_object(Bucket=BUCKET, Key="mixed/broken/bad.jsonl.gz", Body=good[: len(good) // 2] + b"\0" * 64)
    rc, log = decon_ray(cluster, url, evals, f"s3://{BUCKET}/mixed", "mixed-out")
    assert rc == 1, log[-4000:]
    s = summary(log)
    assert s["processed"] == 3 and s["failed"] == 1
    assert re.search(r"FAILED broken/bad\.jsonl\.gz: \w+", log)
    assert re.search(r"Failed files \(1\):\s*\n.*- broken/bad\.jsonl\.gz", log)
    keys = set(objects(client, "mixed-out"))
    assert not any("bad" in k for k in keys)
    assert keys == expected_layout(small)


def test_node_killed_mid_run_loses_and_duplicates_nothing(cluster, s3, evals, tmp_path):
    url, client = s3
    big = Corpus(n_files=16, docs=600, seed=3)
    big.upload(client, "big")
    doomed = cluster.add_node(**NODE_ARGS)
    cluster.wait_for_nodes()
    log_path = tmp_path / "driver.log"
    with open(log_path, "w") as log_file:
        argv = [sys.executable, "-m", "decon", "ray", "--address", cluster.address, "--input", f"s3://{BUCKET}/big",
                "--report-output-dir", f"s3://{BUCKET}/big-out/reports", "--cleaned-output-dir",
                f"s3://{BUCKET}/big-out/cleaned", "--purify", "--evals-dir", str(evals), "--progress-interval", "1"]
        proc = subprocess.Popen(argv, env=child_env(url), cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 180
            pattern = re.compile(rf"Actor \d+ ready on node {doomed.node_id[:12]}")
            while not (pattern.search(log_path.read_text()) and done_files(log_path.read_text())):
                assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()[-4000:]
                time.sleep(0.05)
            cluster.remove_node(doomed, allow_graceful=False)
            rc = proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    log = log_path.read_text()
    assert rc == 0, log[-4000:]
    assert re.search(r"Actor \d+ lost while processing \S+ .*goes back to the queue", log)
    assert sorted(done_files(log)) == sorted(big.files)  # each file exactly once
    assert summary(log) == {"processed": 16, "clean": 5, "contaminated": 11, "failed": 0}
    got = objects(client, "big-out")
    assert set(got) == expected_layout(big)  # complete, and no temporary key left
    for rel, bad in big.bad.items():
        kept = [json.loads(line)["id"] for line in gzip.decompress(got["cleaned/" + output_names(rel).cleaned]).splitlines()]
        assert len(kept) == 600 - len(bad) and not set(kept) & bad
    assert not any(".decon-tmp" in k for k in objects(client, "big-out"))


def test_a_node_that_joins_mid_run_gets_actors_and_work(cluster, evals, tmp_path):
    """The cluster grows during the run: the driver starts one actor per new CPU and hands it files.

    Twenty plain files of ~20 MB (one shard's lines repeated), so the run outlasts a node's start."""
    one = Corpus(n_files=1, docs=600, seed=5)
    body = one.files["shard-000.jsonl"] * 40
    data = tmp_path / "grow"
    data.mkdir()
    names = [f"part-{i:02d}.jsonl" for i in range(20)]
    for name in names:
        (data / name).write_bytes(body)
    log_path = tmp_path / "driver.log"
    joined = None
    with open(log_path, "w") as log_file:
        argv = [sys.executable, "-m", "decon", "ray", "--address", cluster.address, "--input", str(data),
                "--report-output-dir", str(tmp_path / "grow-out"), "--evals-dir", str(evals), "--progress-interval", "1"]
        proc = subprocess.Popen(argv, env=child_env("http://127.0.0.1:1"), cwd=ROOT, stdout=log_file,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 180
            while not re.search(r"Actor \d+ ready", log_path.read_text()):
                assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()[-4000:]
                time.sleep(0.05)
            joined = cluster.add_node(**NODE_ARGS)
            rc = proc.wait(timeout=600)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            if joined is not None:
                cluster.remove_node(joined)
    log = log_path.read_text()
    assert rc == 0, log[-4000:]
    assert re.search(r"Started 1 more actor\(s\)", log), log[-4000:]
    assert re.search(rf"Actor \d+ ready on node {joined.node_id[:12]}", log), log[-4000:]
    memory = re.search(r"MEMORY .*", log).group(0)
    assert f"node {joined.node_id[:12]}: 1 actor(s)" in memory, memory  # it processed files
    assert sorted(done_files(log)) == names
    assert summary(log)["processed"] == 20


def test_without_ray_one_line_error_and_core_still_works(tmp_path):
    code = ("import sys; sys.modules['ray'] = None\n"
            "from decon.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    proc = subprocess.run([sys.executable, "-c", code, "ray", "--input", str(tmp_path), "--report-output-dir",
                           str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == ["Error: decon ray needs Ray, an optional extra: "
                                                "pip install 'decon[ray]'"]
    proc = subprocess.run([sys.executable, "-c", code, "detect", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and "--training-dir" in proc.stdout


def test_local_folders_and_a_local_ray_instance(first_run, corpus, evals, tmp_path):
    """No --address: a local Ray instance starts; local folders give the same bytes as S3."""
    train = corpus.write_local(tmp_path / "train")
    (train / "README.txt").write_text("not training data")
    stale = tmp_path / "out" / "reports" / "a" / ".shard-001.clean.x1y2z3.tmp"  # left by a killed writer
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"partial")
    argv = [sys.executable, "-m", "decon", "ray", "--input", str(train), "--report-output-dir",
            str(tmp_path / "out" / "reports"), "--cleaned-output-dir", str(tmp_path / "out" / "cleaned"),
            "--purify", "--evals-dir", str(evals), "--num-cpus", "1", "--object-store-mb", "80"]
    proc = subprocess.run(argv, env=child_env("http://127.0.0.1:9"), cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Ray: 1 node(s), 1 CPU(s); starting 1 actor(s)" in proc.stderr
    out = tmp_path / "out"
    got = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert got == first_run[2]


@pytest.mark.parametrize("args, message, code", [
    (["--input", "{tmp}/missing", "--report-output-dir", "{tmp}/out"], "input does not exist: {tmp}/missing", 5),
    (["--input", "{tmp}", "--report-output-dir", "{tmp}/out"], "no training data files", 2),
    (["--input", "ftp://host/x", "--report-output-dir", "{tmp}/out"], "unsupported URI", 2),
    (["--input", "{tmp}"], "--report-output-dir is required", 2),
    (["--input", "{tmp}", "--report-output-dir", "s3://"], "not an s3:// URI", 2),
    (["--input", "{tmp}", "--report-output-dir", "{tmp}/o", "--num-actors", "0"], "--num-actors must be positive", 2),
])
def test_bad_arguments_give_one_line(args, message, code, tmp_path):
    argv = [a.format(tmp=tmp_path) for a in args]
    proc = subprocess.run([sys.executable, "-m", "decon", "ray", *argv], env=child_env("http://127.0.0.1:9"),
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == code, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message.format(tmp=tmp_path) in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_actors_that_cannot_start_fail_the_run_instead_of_hanging(first_run, cluster, s3, evals, tmp_path):
    url, _client = s3
    rc, log = decon_ray(cluster, url, evals, f"s3://{BUCKET}/data", "nostart", "--scratch-dir",
                        str(tmp_path / "missing" / "dir"))
    assert rc == 1, log[-4000:]
    assert summary(log) == {"processed": 0, "clean": 0, "contaminated": 0, "failed": 12}
    assert re.search(r"FAILED \S+: no actor could start \(.*No such file or directory", log), log[-4000:]
