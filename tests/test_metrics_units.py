"""ServerMetrics without a server: the loading state, adding up job replies, index gauges."""

from __future__ import annotations

import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_server_harness import engine_config  # noqa: E402

from decon.detect import api  # noqa: E402
from decon.server.jobs import JobTable  # noqa: E402
from decon.server.runtime import ServerRuntime  # noqa: E402
from decon.server.settings import ServerSettings  # noqa: E402


def runtime(tmp_path) -> ServerRuntime:
    settings = ServerSettings(host="127.0.0.1", port=0, report_dir=str(tmp_path), cleaned_dir=None, purify=False,
                              workers=2, state_dir=str(tmp_path), shutdown_grace=1.0)
    return ServerRuntime(settings, engine_config(), JobTable(), build_index=lambda cfg: None, log=lambda m: None)


def samples(rt: ServerRuntime) -> dict:
    out = {}
    for family in text_string_to_metric_families(rt.metrics.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_loading_state_has_no_index_or_workers(tmp_path):
    rt = runtime(tmp_path)
    rt.table.submit("/a.jsonl")
    got = samples(rt)
    assert got[("decon_server_state", (("state", "loading"),))] == 1
    assert got[("decon_queue_depth", ())] == 1
    assert got[("decon_jobs", (("state", "pending"),))] == 1
    assert not any(name.startswith("decon_index_") for name, _ in got)
    assert not any(name == "decon_worker_busy" for name, _ in got)


def test_job_replies_add_up(tmp_path):
    rt = runtime(tmp_path)
    reply = {"lines_total": 10, "tokens": 500, "bytes_read": 2000, "file_bytes": 900, "contaminated_lines": 2,
             "skipped": {"invalid_json": 1}, "matches_by_suite": {"mmlu": 3, "gsm8k": 1},
             "contaminated_lines_by_suite": {"mmlu": 2, "gsm8k": 1}}
    rt.metrics.job_completed(reply, 1.5)
    rt.metrics.job_completed({**reply, "matches_by_suite": {"mmlu": 1}, "skipped": {}}, 700.0)
    rt.metrics.job_failed(0.2)
    rt.metrics.job_requeued()
    got = samples(rt)
    assert got[("decon_lines_scanned_total", ())] == 20
    assert got[("decon_tokens_scanned_total", ())] == 1000
    assert got[("decon_matches_total", (("eval_suite", "mmlu"),))] == 4
    assert got[("decon_matches_total", (("eval_suite", "gsm8k"),))] == 1
    assert got[("decon_skipped_lines_total", (("reason", "invalid_json"),))] == 1
    assert got[("decon_jobs_finished_total", (("outcome", "requeued"),))] == 1
    assert got[("decon_job_duration_seconds_bucket", (("le", "2.0"), ("outcome", "completed")))] == 1
    assert got[("decon_job_duration_seconds_bucket", (("le", "1200.0"), ("outcome", "completed")))] == 2
    assert got[("decon_job_duration_seconds_count", (("outcome", "failed"),))] == 1


def test_index_gauges_from_a_real_index(tmp_path):
    cfg = engine_config()
    index = api.build_index(cfg, progress=False)
    rt = runtime(tmp_path)
    rt.metrics.index_ready(index, 2.5)
    got = samples(rt)
    assert got[("decon_index_build_seconds", ())] == 2.5
    assert got[("decon_index_ngrams", ())] == len(index.arrays["ngram.keys"])
    assert got[("decon_index_bytes", ())] == sum(a.nbytes for a in index.arrays.values())


def test_cached_counter_text_follows_every_event(tmp_path):
    rt = runtime(tmp_path)
    assert samples(rt)[("decon_jobs_submitted_total", ())] == 0
    rt.metrics.job_submitted()
    assert samples(rt)[("decon_jobs_submitted_total", ())] == 1
    rt.metrics.worker_restarted()
    got = samples(rt)
    assert got[("decon_worker_restarts_total", ())] == 1 and got[("decon_jobs_submitted_total", ())] == 1
    rt.table.submit("/b.jsonl")  # gauges are read at scrape time, not cached
    assert samples(rt)[("decon_jobs", (("state", "pending"),))] == 1
