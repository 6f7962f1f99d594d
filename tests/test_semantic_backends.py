"""`--semantic` gives the same reports for any worker count and through `decon detect`, `decon server`
and `decon ray`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import test_semantic as sm  # noqa: E402
from test_recall_backends import ray_reports, server_reports_equal_detect, write_corpus  # noqa: E402
from test_server_harness import ServerProcess  # noqa: E402

from decon.cli import main  # noqa: E402

pytestmark = pytest.mark.slow  # servers and a Ray cluster: `make test` runs it, `make test-fast` does not

refs = sm.refs  # the invented reference set of test_semantic (module-scoped fixture)


def _texts() -> list[str]:
    """Documents only the semantic pass flags, one the recall pass flags, near misses and clean prose."""
    return [
        f"{sm.PROSE} {sm.GSM_REWORDED} Answer: 322. {sm.PROSE}",
        sm.PROSE,
        f"{sm.MC_REWORDED} Answer: {sm.MC_CHOICES[0]}.",
        f"{sm.PROSE} {sm.GSM_OTHER_NUMBERS}",
        f"Question: {sm.GSM_Q}\nAnswer: #### 322",
        f"{sm.MC_REWORDED} Answer: {sm.MC_CHOICES[1]}.",
    ] * 3


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("train"), _texts())


def _detect(corpus: Path, refs: Path, out: Path, workers: int) -> dict[str, bytes]:
    os.environ["DECON_QUIET"] = "1"
    assert main(["detect", "--worker-threads", str(workers), "--no-index-cache", "--semantic", "--training-dir",
                 str(corpus), "--evals-dir", str(refs), "--report-output-dir", str(out)]) == 0
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.jsonl"))}


@pytest.fixture(scope="module")
def detected(corpus, refs, tmp_path_factory) -> dict[str, bytes]:
    got = _detect(corpus, refs, tmp_path_factory.mktemp("detect"), 2)
    assert len(got) == 2
    methods = {orjson.loads(x).get("method") for b in got.values() for x in b.splitlines()}
    assert {"semantic", "question_answer"} <= methods
    per_file = [sum(orjson.loads(x)["method"] == "semantic" for x in b.splitlines()) for b in got.values()]
    assert per_file == [6, 6]  # three copies each of the reworded GSM8K and MMLU documents
    return got


def test_one_worker_gives_the_same_bytes(detected, corpus, refs, tmp_path):
    assert _detect(corpus, refs, tmp_path, 1) == detected


def test_server_semantic_reports_equal_detect(detected, corpus, refs, tmp_path):
    health = server_reports_equal_detect("--semantic", detected, corpus, refs, tmp_path)
    assert health["semantic"] is True and health["recall"] is True


def test_server_with_a_bad_model_fails_at_start(refs, tmp_path):
    server = ServerProcess(["--semantic", "--semantic-model", str(tmp_path / "no-model"), "--evals-dir", str(refs),
                            "--no-index-cache", "--report-output-dir", str(tmp_path / "reports")])
    try:
        assert server.wait_exit(60) != 0
        assert "--semantic-model" in server.output() and "Traceback" not in server.output()
    finally:
        server.kill()


def test_ray_semantic_reports_equal_detect(detected, corpus, refs, tmp_path):
    got = ray_reports("--semantic", corpus, refs, tmp_path)
    assert sorted(got.values()) == sorted(detected.values())
