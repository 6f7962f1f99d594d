"""GET /metrics of a real `decon server` after real jobs: parsed with prometheus_client's parser, and
every counter checked against the jobs' own reports and an in-process scan of the same files."""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_server_harness import TRAINING, ServerProcess, engine_config, read_jsonl  # noqa: E402

from decon.detect import api  # noqa: E402

pytestmark = pytest.mark.slow  # real server processes: `make test` runs it, `make test-fast` does not

ENGINE = ["--reference-input", "tests/data/server/reference", "--sample-every-m-tokens", "1", "--no-index-cache"]
GOOD = ("mixed_server.jsonl", "contaminated_at_beginning.jsonl", "clean.jsonl")


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of one /metrics answer."""
    resp = requests.get(f"{url}/metrics", timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain"), resp.headers
    out = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def labelled(samples: dict, name: str, label: str) -> dict[str, float]:
    return {dict(lbl)[label]: v for (n, lbl), v in samples.items() if n == name and v}


def messy_file(path: Path) -> Path:
    """Lines every skip reason applies to, next to contaminated and clean ones."""
    good = (TRAINING / "contaminated_at_beginning.jsonl").read_bytes().splitlines()
    lines = good + [b"{not json", b'{"other": "no text key"}', b"\xff\xfe\xfa broken utf-8", b"",
                    b'{"text": 5}', b"[1, 2"]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 2-worker server that ran the training files (one gzip-compressed), a messy file and a broken
    .gz (a failing job); then one idle worker is SIGKILLed and replaced."""
    base = tmp_path_factory.mktemp("metrics")
    data = base / "data"
    data.mkdir()
    files = [shutil.copy(TRAINING / name, data / name) for name in GOOD]
    gz = data / "mixed_copy.jsonl.gz"
    gz.write_bytes(gzip.compress((TRAINING / "mixed_server.jsonl").read_bytes()))
    files = [Path(f) for f in files] + [gz, messy_file(data / "messy.jsonl")]
    broken = data / "broken.jsonl.gz"
    broken.write_bytes(b"this is not gzip data\n" * 10)
    server = ServerProcess(ENGINE + ["--worker-threads", "2", "--report-output-dir", str(base / "reports")])
    try:
        server.wait_ready()
        before = scrape(server.url)
        jobs = {server.submit_ok(f): f for f in files}
        failing = server.submit_ok(broken)
        bodies = {job: server.wait_status(job, {"completed", "failed"}) for job in [*jobs, failing]}
        after_jobs = scrape(server.url)
        pid = server.health().json()["workers"][0]["pid"]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            worker = server.health().json()["workers"][0]
            if worker["pid"] not in (None, pid):
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"worker 0 was not replaced\n{server.output()}")
        after_restart = scrape(server.url)
        yield {"server": server, "jobs": jobs, "failing": failing, "bodies": bodies, "before": before,
               "after": after_jobs, "restart": after_restart}
        server.signal(signal.SIGTERM)
        assert server.wait_exit(15) == 0, server.output()
    finally:
        server.kill()


@pytest.fixture(scope="module")
def expected(run):
    """The same files scanned in-process, and the server's own reports read back."""
    cfg = engine_config()
    index = api.build_index(cfg, progress=False)
    results = [api.scan_file(path, index, cfg) for path in run["jobs"].values()]
    records = []
    for job in run["jobs"]:
        body = run["bodies"][job]
        assert body["status"] == "completed", body
        if "output_path" in body:
            records += [(job, r) for r in read_jsonl(body["output_path"])]
    return {"index": index, "results": results, "records": records}


def test_counts_before_any_job(run):
    before = run["before"]
    assert value(before, "decon_jobs_submitted_total") == 0
    assert value(before, "decon_lines_scanned_total") == 0
    assert value(before, "decon_queue_depth") == 0
    assert value(before, "decon_server_state", state="ready") == 1
    assert value(before, "decon_workers", state="idle") == 2


def test_job_counters_equal_the_jobs(run):
    after = run["after"]
    n_ok = len(run["jobs"])
    assert run["bodies"][run["failing"]]["status"] == "failed"
    assert value(after, "decon_jobs_submitted_total") == n_ok + 1
    assert value(after, "decon_jobs", state="completed") == n_ok
    assert value(after, "decon_jobs", state="failed") == 1
    assert value(after, "decon_jobs", state="pending") == 0
    assert value(after, "decon_jobs_finished_total", outcome="completed") == n_ok
    assert value(after, "decon_jobs_finished_total", outcome="failed") == 1
    assert value(after, "decon_job_duration_seconds_count", outcome="completed") == n_ok
    assert value(after, "decon_job_duration_seconds_count", outcome="failed") == 1
    assert value(after, "decon_job_duration_seconds_bucket", outcome="completed", le="+Inf") == n_ok
    assert value(after, "decon_queue_depth") == 0
    assert value(after, "decon_last_job_finished_timestamp_seconds") > 0


def test_scan_counters_equal_an_in_process_scan(run, expected):
    after, results = run["after"], expected["results"]
    assert value(after, "decon_lines_scanned_total") == sum(r.lines_total for r in results)
    assert value(after, "decon_tokens_scanned_total") == sum(r.tokens for r in results)
    assert value(after, "decon_bytes_scanned_total") == sum(r.bytes_read for r in results) > 0
    on_disk = sum(p.stat().st_size for p in run["jobs"].values())
    assert value(after, "decon_input_file_bytes_total") == on_disk
    skipped: Counter[str] = Counter()
    for r in results:
        skipped.update(r.skipped)
    assert set(skipped) == {"invalid_json", "missing_content_key", "non_utf8"}
    assert labelled(after, "decon_skipped_lines_total", "reason") == dict(skipped)


def test_match_counters_equal_the_reports(run, expected):
    after, records = run["after"], expected["records"]
    assert records, "the training files hold contamination"
    by_suite = Counter(r["eval_key"] for _, r in records)
    assert labelled(after, "decon_matches_total", "eval_suite") == dict(by_suite)
    lines = {(job, r["training_line"]) for job, r in records}
    assert value(after, "decon_contaminated_lines_total") == len(lines)
    suite_lines = Counter(suite for suite, _ in {(r["eval_key"], (job, r["training_line"])) for job, r in records})
    assert labelled(after, "decon_suite_contaminated_lines_total", "eval_suite") == dict(suite_lines)


def test_index_gauges(run, expected):
    after, index = run["after"], expected["index"]
    assert value(after, "decon_index_ngrams") == len(index.arrays["ngram.keys"]) > 0
    assert value(after, "decon_index_bytes") == sum(a.nbytes for a in index.arrays.values())
    assert value(after, "decon_index_eval_suites") == len(index.eval_keys)
    assert value(after, "decon_index_from_cache") == 0
    assert value(after, "decon_index_build_seconds") > 0


def test_worker_restart_is_counted_and_counters_survive_it(run):
    after, restart = run["after"], run["restart"]
    assert value(after, "decon_worker_restarts_total") == 0
    assert value(restart, "decon_worker_restarts_total") == 1
    for name in ("decon_lines_scanned_total", "decon_tokens_scanned_total", "decon_contaminated_lines_total"):
        assert value(restart, name) == value(after, name)
    assert labelled(restart, "decon_matches_total", "eval_suite") == labelled(after, "decon_matches_total",
                                                                                 "eval_suite")
    assert {dict(lbl)["worker"] for (n, lbl) in restart if n == "decon_worker_busy"} == {"0", "1"}


def test_metrics_in_the_openapi_schema(run):
    paths = requests.get(f"{run['server'].url}/openapi.json", timeout=10).json()["paths"]
    assert "/metrics" in paths and "/submit" in paths
