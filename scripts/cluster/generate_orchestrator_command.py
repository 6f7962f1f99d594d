#!/usr/bin/env python3
"""Print the orchestrator launch command for one more input prefix on an existing cluster.

    make generate-orchestrator-command s3://bucket/new/input/prefix
    python scripts/cluster/generate_orchestrator_command.py s3://bucket/prefix [--cluster NAME ...]

Edit the defaults below once for your cluster and output locations (or pass flags each time).
Reports go to REPORT_BASE/<bucket-and-path-as-one-name>; cleaned files (when CLEANED_SUFFIX is not
empty) go next to the input, at <input prefix><CLEANED_SUFFIX>.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from command_generator import default_cleaned_prefix, default_report_prefix, orchestrator_command  # noqa: E402

CLUSTER_NAME = "decon"
REGION = "us-east-1"
SSH_KEY_PATH = "~/.ssh/id_rsa"
REPORT_BASE = "s3://decon-reports"
CLEANED_SUFFIX = "-decon"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="s3:// prefix of the training data")
    parser.add_argument("--cluster", default=CLUSTER_NAME, help=f"cluster name (default {CLUSTER_NAME})")
    parser.add_argument("--region", default=REGION, help=f"AWS region (default {REGION})")
    parser.add_argument("--ssh-key-path", default=SSH_KEY_PATH, help=f"SSH key (default {SSH_KEY_PATH})")
    parser.add_argument("--report-base", default=REPORT_BASE, help=f"report base prefix (default {REPORT_BASE})")
    parser.add_argument("--cleaned-suffix", default=CLEANED_SUFFIX,
                        help=f"suffix for the cleaned prefix; empty disables cleaned output (default {CLEANED_SUFFIX})")
    args = parser.parse_args(argv)
    if not args.input.startswith("s3://"):
        parser.error("the input must be an s3:// prefix")
    values = {
        "name": args.cluster,
        "region": args.region,
        "ssh_key_path": args.ssh_key_path,
        "input": args.input,
        "report_output": default_report_prefix(args.input, args.report_base),
        "cleaned_output": default_cleaned_prefix(args.input, args.cleaned_suffix) if args.cleaned_suffix else "",
    }
    print(orchestrator_command(values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
