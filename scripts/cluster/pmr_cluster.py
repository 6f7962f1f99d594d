#!/usr/bin/env python3
"""Drive a poormanray cluster for decon.

    pmr_cluster.py setup NAME [--region R] [--ssh-key-path K]       install this project on every host
    pmr_cluster.py status NAME [...]                                 print Running or Finished
    pmr_cluster.py wait-terminate NAME [--interval S] [...]         poll until Finished, then terminate

``setup`` numbers the hosts in poormanray's listing order (0..N-1), copies a tarball of this
checkout and scripts/cluster/host_setup.sh to each host and runs it with that host's index.
``status`` runs scripts/cluster/host_status.sh on every host: the cluster is Running while any host
has an orchestrator lock with a live PID under /mnt/decon-work. A host that cannot be reached
counts as Running, so a cluster is never terminated on a failed check.

The poormanray executable is taken from $POORMANRAY (default: ``poormanray``).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[1]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
REMOTE_DIR = "/tmp/decon-setup"


def pmr() -> list[str]:
    return shlex.split(os.environ.get("POORMANRAY", "poormanray"))


def common(args: argparse.Namespace) -> list[str]:
    out = ["--name", args.name]
    if args.region:
        out += ["--region", args.region]
    if getattr(args, "ssh_key_path", None):
        out += ["--ssh-key-path", args.ssh_key_path]
    return out


def run_pmr(argv: list[str], capture: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(pmr() + argv, capture_output=capture, text=True)


def instance_ids(args: argparse.Namespace) -> list[str]:
    argv = ["list", "--name", args.name] + (["--region", args.region] if args.region else [])
    result = run_pmr(argv)
    if result.returncode != 0:
        raise SystemExit(f"poormanray list failed: {result.stderr.strip()}")
    ids = []
    for line in ANSI.sub("", result.stdout).splitlines():
        m = re.match(r"\s*Id(?:/Name)?:\s*(\S+)", line)
        if m:
            ids.append(m.group(1))
    return ids


def parse_status(output: str) -> str:
    """Aggregate ``poormanray run`` output of host_status.sh over all hosts."""
    lines = [ANSI.sub("", line).strip() for line in output.splitlines()]
    if any(line == "Running" or line.endswith("'Running'") for line in lines):
        return "Running"
    if any(line.startswith("ERROR") for line in lines):
        return "Running"
    return "Finished"


def cluster_status(args: argparse.Namespace) -> str:
    result = run_pmr(["run", *common(args), "--script", str(HERE / "host_status.sh")])
    text = result.stdout + "\n" + result.stderr
    if result.returncode != 0:
        print(f"warning: status check failed on some host(s); treating the cluster as Running\n"
              f"{result.stderr.strip()[-1000:]}", file=sys.stderr)
        return "Running"
    return parse_status(text)


def cmd_status(args: argparse.Namespace) -> int:
    print(cluster_status(args))
    return 0


def cmd_wait_terminate(args: argparse.Namespace) -> int:
    while True:
        state = cluster_status(args)
        print(f"{time.strftime('%H:%M:%S')} {args.name}: {state}", flush=True)
        if state == "Finished":
            break
        time.sleep(args.interval)
    print(f"Terminating cluster {args.name}", flush=True)
    argv = ["terminate", "--name", args.name] + (["--region", args.region] if args.region else [])
    return run_pmr(argv, capture=False).returncode


def _source_tarball(dest: Path) -> None:
    skip = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", "dist", "build"}

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        return None if set(Path(info.name).parts) & skip else info

    with tarfile.open(dest, "w:gz") as tar:
        for entry in sorted(PROJECT.iterdir()):
            if entry.name not in skip:
                tar.add(entry, arcname=entry.name, filter=keep)


def cmd_setup(args: argparse.Namespace) -> int:
    ids = instance_ids(args)
    if not ids:
        print(f"no instances found for cluster {args.name}", file=sys.stderr)
        return 1
    print(f"Setting up {len(ids)} host(s): {', '.join(ids)}")
    with tempfile.TemporaryDirectory() as tmp:
        tarball = Path(tmp) / "decon-src.tgz"
        _source_tarball(tarball)
        failures = 0
        for index, instance in enumerate(ids):
            target = ["-i", instance]
            copy = run_pmr(["transfer", *common(args), *target,
                            "-s", f"{tarball}:{REMOTE_DIR}/decon-src.tgz",
                            "-s", f"{HERE / 'host_setup.sh'}:{REMOTE_DIR}/host_setup.sh"], capture=False)
            if copy.returncode != 0:
                failures += 1
                continue
            command = (f"bash {REMOTE_DIR}/host_setup.sh --index {index} --count {len(ids)} "
                       f"--source {REMOTE_DIR}/decon-src.tgz --work-root {shlex.quote(args.work_root)}")
            print(f"[{index}] {instance}: {command}")
            if run_pmr(["run", *common(args), *target, "--command", command], capture=False).returncode != 0:
                failures += 1
    if failures:
        print(f"{failures} host(s) failed", file=sys.stderr)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name, func, helptext in (("setup", cmd_setup, "install decon on every host, one index per host"),
                                 ("status", cmd_status, "print Running or Finished"),
                                 ("wait-terminate", cmd_wait_terminate, "poll status, terminate when Finished")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("name", help="poormanray cluster name")
        p.add_argument("--region", default=os.environ.get("PMR_REGION"), help="AWS region (default: poormanray's)")
        p.add_argument("--ssh-key-path", default=os.environ.get("PMR_SSH_KEY"), help="SSH private key")
        p.set_defaults(func=func)
        if name == "setup":
            p.add_argument("--work-root", default="/mnt/decon-work", help="where instance storage is mounted")
        if name == "wait-terminate":
            p.add_argument("--interval", type=float, default=300, help="seconds between status checks")
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
