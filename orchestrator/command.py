"""`decon orchestrate`: the orchestrator as a sub-command of the decon CLI."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``orchestrate`` sub-parser; its ``func`` runs the orchestrator and returns an exit code."""
    from orchestrator.orchestrator import add_arguments, run_from_args

    parser = subparsers.add_parser(
        "orchestrate",
        help="Process an S3 prefix through a local decon server (download, submit, upload)",
        description="Download this host's share of the training files under an S3 prefix, run them through "
        "a local `decon server`, and upload reports, clean markers and cleaned files. Hosts split the work "
        "with PMR_HOST_INDEX / PMR_HOST_COUNT; MAX_FILES_DEBUG=N processes at most N files without uploading "
        "or deleting anything.",
    )
    add_arguments(parser)
    parser.set_defaults(func=run_from_args)
    return parser
