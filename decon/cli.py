"""The `decon` command line: one sub-command per module.

Each sub-command module exposes ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed namespace, returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from decon import __version__
from decon.errors import DeconError

# (module, sub-command); each module has register(subparsers)
_COMMANDS = [
    "decon.detect.command",
    "decon.explain.command",
    "decon.server.command",
    "decon.review.command",
    "decon.compare.command",
    "decon.evals.command",
    "orchestrator.command",
    "decon.ray_runner.command",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="decon",
        description="Decon finds training documents that contain evaluation benchmark questions "
        "(with their answers and passages), writes JSONL contamination reports and, optionally, "
        "cleaned copies of the training data.",
    )
    parser.add_argument("--version", action="version", version=f"decon {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a sub-command still being built
            if exc.name and module_name.startswith(exc.name):
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except DeconError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except OSError as exc:  # permissions, a full disk, a vanished file: say what and where
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"Error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
