"""Cluster tooling: per-host status script, poormanray drivers (with a stand-in poormanray), command generators."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator import host_status  # noqa: E402

STATUS_SH = ROOT / "scripts" / "cluster" / "host_status.sh"
PMR_CLUSTER = ROOT / "scripts" / "cluster" / "pmr_cluster.py"


@pytest.fixture()
def sleeper():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def _status_sh(root: Path) -> str:
    return subprocess.run(["bash", str(STATUS_SH), str(root)], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_host_status_running_while_live_lock_then_finished(tmp_path, sleeper):
    ws = tmp_path / "input-0123456789ab"
    ws.mkdir()
    lock = ws / "orchestrator.lock"
    lock.write_text(f"{sleeper.pid}\n")
    assert _status_sh(tmp_path) == "Running"
    assert host_status.host_state(tmp_path) == "Running"
    sleeper.kill()
    sleeper.wait()
    # dead PID: a stale lock does not count
    assert _status_sh(tmp_path) == "Finished"
    assert host_status.host_state(tmp_path) == "Finished"
    lock.unlink()
    assert _status_sh(tmp_path) == "Finished"
    assert _status_sh(tmp_path / "missing") == "Finished"
    out = subprocess.run([sys.executable, "-m", "orchestrator.host_status", "--root", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT, check=True).stdout.strip()
    assert out == "Finished"


def test_host_status_with_a_real_orchestrator_lock(tmp_path):
    """The lock written by WorkspaceLock is what the status script reads."""
    code = (f"import sys, time; sys.path.insert(0, {str(ROOT)!r}); from orchestrator.workspace import WorkspaceLock, "
            f"workspace_dir; l = WorkspaceLock(workspace_dir({str(tmp_path)!r}, 's3://b/x')); l.acquire(); print('locked', "
            "flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        assert _status_sh(tmp_path) == "Running"
    finally:
        proc.kill()
        proc.wait()
    assert _status_sh(tmp_path) == "Finished"


def _fake_pmr(tmp_path: Path, state_file: Path) -> dict:
    """A poormanray stand-in: `run --script` runs the script locally against a fake work root."""
    script = tmp_path / "fake_pmr.py"
    script.write_text(
        "import subprocess, sys\n"
        f"log = open({str(tmp_path / 'calls.log')!r}, 'a'); log.write(' '.join(sys.argv[1:]) + '\\n'); log.close()\n"
        "args = sys.argv[1:]\n"
        "if args[0] == 'list':\n"
        "    print('Id:      \\x1b[1mi-aaa\\x1b[0m'); print('Name:    decon-0'); print()\n"
        "    print('Id:      \\x1b[1mi-bbb\\x1b[0m'); print('Name:    decon-1')\n"
        "elif args[0] == 'run' and '--script' in args:\n"
        "    path = args[args.index('--script') + 1]\n"
        f"    root = open({str(state_file)!r}).read().strip()\n"
        "    for inst in ('i-aaa', 'i-bbb'):\n"
        "        out = subprocess.run(['bash', path, root], capture_output=True, text=True).stdout\n"
        "        print(f'Instance {inst}:'); print(out); print()\n"
        "elif args[0] == 'terminate':\n"
        "    print('terminated')\n"
    )
    env = dict(os.environ)
    env["POORMANRAY"] = f"{sys.executable} {script}"
    return env


def test_cluster_status_and_auto_terminate(tmp_path, sleeper):
    root = tmp_path / "work"
    (root / "input-aaaaaaaaaaaa").mkdir(parents=True)
    (root / "input-aaaaaaaaaaaa" / "orchestrator.lock").write_text(str(sleeper.pid))
    state = tmp_path / "root.txt"
    state.write_text(str(root))
    env = _fake_pmr(tmp_path, state)

    out = subprocess.run([sys.executable, str(PMR_CLUSTER), "status", "decon"], env=env, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "Running"
    out = subprocess.run(["make", "-s", "polling-auto-status", "NAME=decon"], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out.splitlines()[-1] == "Running"

    # The auto-terminate loop keeps polling while Running and terminates once Finished.
    proc = subprocess.Popen([sys.executable, str(PMR_CLUSTER), "wait-terminate", "decon", "--interval", "0.2"],
                            env=env, stdout=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    assert "Running" in first
    sleeper.kill()
    sleeper.wait()
    rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "Finished" in rest and "terminated" in rest
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert calls[-1].startswith("terminate --name decon")


def test_status_parsing_is_conservative():
    sys.path.insert(0, str(PMR_CLUSTER.parent))
    import pmr_cluster

    assert pmr_cluster.parse_status("Instance i-1:\nFinished\n\nInstance i-2:\nFinished\n") == "Finished"
    assert pmr_cluster.parse_status("Instance i-1:\nFinished\n\nInstance i-2:\nRunning\n") == "Running"
    assert pmr_cluster.parse_status("Instance i-1:\nERROR: timed out\n") == "Running"


def test_command_generator_non_interactive():
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "cluster" / "command_generator.py"), "--yes", "--name", "c1",
         "--number", "3", "--instance-type", "i4i.2xlarge", "--region", "us-west-2",
         "--input", "s3://bkt/data/set/", "--report-output", "s3://rep/set", "--cleaned-output", "s3://bkt/set-clean",
         "--question-threshold", "0.815", "--answer-threshold", "0.8"],
        capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL).stdout
    assert "poormanray create" in out and "--number 3" in out and "--instance-type i4i.2xlarge" in out
    assert "pmr_cluster.py setup c1 --region us-west-2" in out
    assert "decon server" in out and "--question-threshold 0.815" in out and "--purify" in out
    assert "orchestrator/orchestrator.py --config config/orchestration.yaml" in out
    assert "--remote-file-input s3://bkt/data/set/" in out and "--remote-cleaned-output-dir s3://bkt/set-clean" in out
    assert "make polling-auto-terminate NAME=c1" in out


def test_command_generator_interactive_answers():
    answers = "\n".join(["clu", "", "2", "", "", "", "s3://b/in", "", "", "0.9", ""]) + "\n"
    proc = subprocess.run([sys.executable, "-c",
                           "import sys; sys.path.insert(0, sys.argv[1]); import command_generator as c; "
                           "import argparse; ns = argparse.Namespace(**{f[0]: None for f in c.FIELDS}); "
                           "print(c.render(c.collect(ns, True)))", str(ROOT / "scripts" / "cluster")],
                          input=answers, capture_output=True, text=True, check=True)
    out = proc.stdout
    assert "--name clu" in out and "--number 2" in out
    assert "--remote-report-output-dir s3://decon-reports/b-in" in out
    assert "--remote-cleaned-output-dir s3://b/in-decon" in out and "--question-threshold 0.9" in out


def test_make_generate_orchestrator_command():
    out = subprocess.run(["make", "-s", "generate-orchestrator-command", "s3://bucket/new/prefix/"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert "poormanray run" in out and "--remote-file-input s3://bucket/new/prefix/" in out
    assert "--remote-report-output-dir s3://decon-reports/bucket-new-prefix" in out


def test_decon_cli_has_orchestrate():
    out = subprocess.run([sys.executable, "-m", "decon", "orchestrate", "--help"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    for flag in ("--remote-file-input", "--remote-report-output-dir", "--remote-cleaned-output-dir", "--server-url",
                 "--local-work-dir", "--max-concurrent-jobs", "--poll-interval", "--s5cmd-workers", "--cleanup-delay",
                 "--download-batch-size", "--download-queue-max", "--upload-queue-max", "--upload-batch-size",
                 "--upload-batch-timeout", "--download-retry-attempts", "--download-retry-base-delay",
                 "--download-retry-jitter-max", "--s3-endpoint-url"):
        assert flag in out
