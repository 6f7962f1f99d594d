"""`--recall` gives the same reports through `decon detect`, `decon server` and `decon ray`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import test_recall as rc  # noqa: E402
from test_server_harness import ServerProcess, read_jsonl  # noqa: E402

from decon.cli import main  # noqa: E402

pytestmark = pytest.mark.slow  # real clusters, servers or browsers: `make test` runs it, `make test-fast` does not

ROOT = Path(__file__).resolve().parent.parent

refs = rc.refs  # the invented reference set of test_recall (module-scoped fixture)


def _texts() -> list[str]:
    """Documents that only the recall rules flag, documents SIMPLE flags, and clean ones."""
    return [
        f"Question: {rc.GSM_Q}\nAnswer: #### 66",
        rc.PROSE,
        f"{rc.PROSE}. {rc.LONG_MC_Q} {rc.PROSE}.",
        f"{rc.SHORT_Q} {rc.SHORT_CHOICES[2]}",
        f"{rc.LONG_MC_Q} {rc.LONG_MC_CHOICES[0]}",
        f"{rc.STEM} whales are mammals. {rc.PROSE}",
        f"{rc.STEM} {rc.PROSE}",
    ] * 3


def write_corpus(train: Path, texts: list[str]) -> Path:
    """Two training files of ``texts``, the second rotated by one."""
    for i in range(2):
        lines = texts[i:] + texts[:i]
        (train / f"part-{i}.jsonl").write_bytes(b"\n".join(orjson.dumps({"text": t}) for t in lines) + b"\n")
    return train


def server_reports_equal_detect(flag: str, detected: dict[str, bytes], corpus: Path, refs: Path,
                                tmp_path: Path) -> dict:
    """Each training file through `decon server FLAG` gives detect's report; returns /health."""
    server = ServerProcess([flag, "--evals-dir", str(refs), "--no-index-cache", "--worker-threads", "1",
                            "--report-output-dir", str(tmp_path / "reports")])
    try:
        server.wait_ready()
        health = server.health().json()
        for name, expected in detected.items():
            stem = name.removesuffix("-simple-0.80.jsonl")
            job = server.submit_ok(corpus / f"{stem}.jsonl")
            body = server.wait_status(job, {"completed", "failed"})
            assert body["status"] == "completed", body
            assert read_jsonl(body["output_path"]) == [orjson.loads(x) for x in expected.splitlines()]
        server.signal(signal.SIGTERM)
        assert server.wait_exit(15) == 0, server.output()
        return health
    finally:
        server.kill()


def ray_reports(flag: str, corpus: Path, refs: Path, tmp_path: Path) -> dict[str, bytes]:
    """The reports of `decon ray FLAG` on ``corpus`` (one CPU)."""
    pytest.importorskip("ray", reason="decon ray needs the ray extra")
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(DECON_QUIET="1", PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "decon", "ray", flag, "--input", str(corpus),
                           "--report-output-dir", str(out), "--evals-dir", str(refs), "--num-cpus", "1",
                           "--object-store-mb", "80"], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {p.name: p.read_bytes() for p in out.rglob("*.jsonl")}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("train"), _texts())


@pytest.fixture(scope="module")
def detected(corpus, refs, tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("detect")
    os.environ["DECON_QUIET"] = "1"
    assert main(["detect", "--worker-threads", "2", "--no-index-cache", "--recall", "--training-dir", str(corpus),
                 "--evals-dir", str(refs), "--report-output-dir", str(out)]) == 0
    got = {p.name: p.read_bytes() for p in sorted(out.glob("*.jsonl"))}
    assert len(got) == 2
    methods = {orjson.loads(x).get("method") for b in got.values() for x in b.splitlines()}
    assert {"question_exact", "question_answer", "short_exact", "simple"} <= methods
    return got


def test_server_recall_reports_equal_detect(detected, corpus, refs, tmp_path):
    assert server_reports_equal_detect("--recall", detected, corpus, refs, tmp_path)["recall"] is True


def test_ray_recall_reports_equal_detect(detected, corpus, refs, tmp_path):
    got = ray_reports("--recall", corpus, refs, tmp_path)
    assert len(got) == len(detected)
    assert sorted(got.values()) == sorted(detected.values())
