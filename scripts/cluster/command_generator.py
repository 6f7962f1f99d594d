#!/usr/bin/env python3
"""Print the poormanray commands for a decon run: create, set up, server, orchestrator, watch.

Interactive by default (asks for each value, Enter keeps the default); every value is also a flag,
and ``--yes`` skips the questions. Nothing is executed: copy the commands you want.
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import sys
from urllib.parse import urlparse

REMOTE_HOME = "~/decon"
WORK_ROOT = "/mnt/decon-work"
HOST_ENV = "set -a && . ~/decon-host.env && set +a"

FIELDS = [
    # name, prompt, default
    ("name", "Cluster name", "decon"),
    ("owner", "Owner (cost tracking)", ""),
    ("number", "Number of hosts", "4"),
    ("instance_type", "Instance type", "i4i.4xlarge"),
    ("region", "AWS region", "us-east-1"),
    ("ssh_key_path", "SSH private key", "~/.ssh/id_rsa"),
    ("input", "S3 input prefix (training data)", ""),
    ("report_output", "S3 prefix for reports", ""),
    ("cleaned_output", "S3 prefix for cleaned files (empty: no purify)", ""),
    ("question_threshold", "Question threshold", "0.8"),
    ("answer_threshold", "Answer threshold", "0.8"),
]


def default_report_prefix(input_uri: str, base: str = "s3://decon-reports") -> str:
    parsed = urlparse(input_uri)
    slug = "-".join(p for p in [parsed.netloc, *parsed.path.strip("/").split("/")] if p)
    return f"{base.rstrip('/')}/{slug}"


def default_cleaned_prefix(input_uri: str, suffix: str = "-decon") -> str:
    return input_uri.rstrip("/") + suffix


def create_command(v: dict[str, str]) -> str:
    parts = ["poormanray create", f"--name {v['name']}"]
    if v.get("owner"):
        parts.append(f"--owner {v['owner']}")
    parts += [f"--number {v['number']}", f"--instance-type {v['instance_type']}", f"--region {v['region']}"]
    return " \\\n  ".join(parts)


def setup_command(v: dict[str, str]) -> str:
    return (f"python scripts/cluster/pmr_cluster.py setup {v['name']} --region {v['region']} "
            f"--ssh-key-path {v['ssh_key_path']}")


def _pmr_run(v: dict[str, str], remote: str) -> str:
    return (f"poormanray run \\\n  --name {v['name']} \\\n  --region {v['region']} \\\n  --command "
            f"{shlex.quote(remote)} \\\n  --ssh-key-path {v['ssh_key_path']} \\\n  --detach")


def server_command(v: dict[str, str]) -> str:
    flags = [
        "--config config/default.yaml",
        "--content-key text",
        f"--question-threshold {v['question_threshold']}",
        f"--answer-threshold {v['answer_threshold']}",
        "--reference-input fixtures/reference",
        f"--report-output-dir {WORK_ROOT}/results",
    ]
    if v.get("cleaned_output"):
        flags += [f"--cleaned-output-dir {WORK_ROOT}/cleaned", "--purify"]
    remote = f"cd {REMOTE_HOME} && {HOST_ENV} && nohup decon server {' '.join(flags)} > server.log 2>&1 & disown"
    return _pmr_run(v, remote)


def orchestrator_command(v: dict[str, str]) -> str:
    tag = hashlib.sha256(v["input"].encode()).hexdigest()[:8]
    flags = [
        "--config config/orchestration.yaml",
        f"--remote-file-input {shlex.quote(v['input'])}",
        f"--remote-report-output-dir {shlex.quote(v['report_output'])}",
    ]
    if v.get("cleaned_output"):
        flags.append(f"--remote-cleaned-output-dir {shlex.quote(v['cleaned_output'])}")
    flags.append(f"--local-work-dir {WORK_ROOT}")
    remote = (f"cd {REMOTE_HOME} && {HOST_ENV} && nohup python orchestrator/orchestrator.py {' '.join(flags)} "
              f"> orchestrator-{tag}.log 2>&1 & disown")
    return _pmr_run(v, remote)


def render(v: dict[str, str]) -> str:
    blocks = [
        ("1. Create the cluster", create_command(v)),
        ("2. Install decon on every host (numbers hosts 0..N-1, mounts instance storage)", setup_command(v)),
        ("3. Launch the server on every host", server_command(v)),
        ("4. Launch an orchestrator on every host", orchestrator_command(v)),
        ("5. Watch; terminate when every host is Finished",
         f"make polling-auto-status NAME={v['name']}\nmake polling-auto-terminate NAME={v['name']}"),
    ]
    return "\n\n".join(f"# {title}\n{body}" for title, body in blocks) + "\n"


def _ask(prompt: str, default: str) -> str:
    suffix = f" [{default}]" if default else ""
    answer = input(f"{prompt}{suffix}: ").strip()
    return answer or default


def collect(args: argparse.Namespace, interactive: bool) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, prompt, default in FIELDS:
        given = getattr(args, name)
        if name == "report_output" and not default and values.get("input"):
            default = default_report_prefix(values["input"])
        if name == "cleaned_output" and not default and values.get("input") and given is None and interactive:
            default = default_cleaned_prefix(values["input"])
        if given is not None:
            values[name] = str(given)
        elif interactive:
            values[name] = _ask(prompt, default)
        else:
            values[name] = default
    if not values["input"].startswith("s3://"):
        raise SystemExit("an s3:// input prefix is required (--input)")
    if not values["report_output"]:
        values["report_output"] = default_report_prefix(values["input"])
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, prompt, _default in FIELDS:
        parser.add_argument("--" + name.replace("_", "-"), dest=name, default=None, help=prompt)
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask; use flags and defaults")
    args = parser.parse_args(argv)
    interactive = not args.yes and sys.stdin.isatty()
    print(render(collect(args, interactive)), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
