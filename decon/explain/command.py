"""`decon explain`: why a training line was or was not flagged, gate by gate, with the numbers."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

import orjson

from decon.errors import DeconError


def register(subparsers: argparse._SubParsersAction) -> None:
    from decon.detect.args import add_reference_args, add_scoring_args

    p = subparsers.add_parser(
        "explain",
        help="Say why a training line was or was not flagged, gate by gate",
        description="Run detection on one document (a line of a training file, --text, or stdin) and show, "
                    "for the eval instances it comes closest to, each check in the order the detector applies "
                    "it with the measured value against its bound. The verdict is decon detect's own.",
        epilog="Examples:\n"
               "  decon explain --training-file data/shard.jsonl.gz --line 41\n"
               "  decon explain --text 'Natalia sold clips to 48 of her friends ...' --recall --json\n"
               "  decon explain --training-file data/shard.jsonl --line 41 --eval-key gsm8k --eval-instance 7",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_argument_group("The document")
    src.add_argument("--training-file", metavar="FILE",
                     help="A training file (.jsonl, plain or compressed, or Parquet / Arrow IPC); with --line "
                          "(for a columnar file, the row index)")
    src.add_argument("--line", type=int, metavar="N",
                     help="Line of --training-file, counted from 0 as a report's training_line")
    src.add_argument("--max-line-bytes", type=int, metavar="N",
                     help="Longest line of --training-file, or stdin, read, in bytes [default: 67108864 = 64 MiB]")
    src.add_argument("--text", metavar="TEXT", help="The document text itself [default: read stdin when neither "
                                                    "--training-file nor --text is given]")
    ask = p.add_argument_group("What to explain")
    ask.add_argument("--eval-key", metavar="K", help="Explain this eval key's instance (with --eval-instance)")
    ask.add_argument("--eval-instance", type=int, metavar="I", help="The eval_instance_index to explain")
    ask.add_argument("--top", type=int, default=5, metavar="N",
                     help="Without --eval-key: explain the N instances whose question the document covers most, "
                          "plus every instance reported [default: 5]")
    ask.add_argument("--json", action="store_true", help="One JSON object on stdout instead of tables")
    add_reference_args(src)
    p.add_argument("--config", "-c", metavar="FILE", help="YAML config file; flags override its values")
    add_scoring_args(p)
    p.set_defaults(func=run)


def _read_line(path: str, line: int, content_key: str, max_line_bytes: int) -> str:
    from decon.common.data_reader import DataFile
    from decon.detect.documents import _get_content

    if line < 0:
        raise DeconError(f"--line must be 0 or more, got {line}")
    if not Path(path).is_file():
        raise DeconError(f"training file does not exist or is not a file: {path}")
    count = 0
    with DataFile(path) as data:
        for num, raw in enumerate(data.lines(max_line_bytes, content_key)):
            count = num + 1
            if num < line:
                continue
            if raw is None:
                raise DeconError(f"line {line} of {path} is longer than max_line_bytes ({max_line_bytes})")
            if isinstance(raw, str):  # a Parquet or Arrow row: its content already
                return raw
            try:
                doc = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise DeconError(f"line {line} of {path} is not valid JSON") from None
            text = _get_content(doc, content_key.split("."))
            if text is None:
                raise DeconError(f"line {line} of {path} has no string at content key {content_key!r}")
            return text
    raise DeconError(f"{path} has no line {line} (it has {count} lines, counted from 0)")


def document_text(args: argparse.Namespace, content_key: str, max_line_bytes: int) -> str:
    if args.training_file is not None and args.text is not None:
        raise DeconError("give --training-file (with --line) or --text, not both")
    if args.training_file is not None:
        if args.line is None:
            raise DeconError("--training-file needs --line N")
        return _read_line(args.training_file, args.line, content_key, max_line_bytes)
    if args.line is not None:
        raise DeconError("--line needs --training-file")
    if args.text is not None:
        return args.text
    if sys.stdin.isatty():
        raise DeconError("give --training-file FILE --line N, --text TEXT, or the text on stdin")
    data = sys.stdin.buffer.read(max_line_bytes + 1)
    if len(data) > max_line_bytes:
        raise DeconError(f"stdin is longer than max_line_bytes ({max_line_bytes}); pass a training file line "
                         "or raise --max-line-bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DeconError("stdin is not UTF-8 text") from None


def run(args: argparse.Namespace) -> int:
    from decon.detect.args import config_from_args, validate_paths

    if (args.eval_key is None) != (args.eval_instance is None):
        raise DeconError("--eval-key and --eval-instance go together")
    if args.top < 1:
        raise DeconError("--top must be at least 1")
    cfg = config_from_args(args, log=lambda _m: None)
    if cfg.mode != "simple":
        raise DeconError("decon explain covers mode simple (with --recall); MinHash has no gates to show")
    validate_paths(cfg, need_training=False)
    text = document_text(args, cfg.content_key, cfg.max_line_bytes)
    result = explain(cfg, text, eval_key=args.eval_key, instance=args.eval_instance, top=args.top,
                     use_cache=not args.no_index_cache)
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        from decon.explain.display import print_explanation

        print_explanation(result)
    return 0


def explain(cfg: Any, text: str, *, eval_key: str | None = None, instance: int | None = None, top: int = 5,
            use_cache: bool = True) -> dict[str, Any]:
    """Build (or load) the index for ``cfg`` and explain ``text`` against it."""
    from decon.detect.detection import Scanner
    from decon.detect.index_cache import load_or_build_index
    from decon.explain.core import Explainer

    with contextlib.redirect_stdout(sys.stderr):  # index messages never mix with the JSON
        index = load_or_build_index(cfg, use_cache=use_cache, progress=False)
    if eval_key is not None and eval_key not in index.eval_keys and (
            index.recall is None or eval_key not in index.recall.eval_keys):
        raise DeconError(f"unknown eval key {eval_key!r} (the index has: {', '.join(index.eval_keys)})")
    return Explainer(Scanner(index, cfg)).explain(text, eval_key=eval_key, instance=instance, top=top)
