"""`decon detect`: find contamination in a training set and report it."""

from __future__ import annotations

import argparse
import sys
import time

from decon.common.config import DetectionConfig, generate_temp_dir
from decon.detect.args import add_detection_args, config_from_args, validate_paths
from decon.detect.detector import detector_for
from decon.detect.display import detection_summary_table
from decon.detect.index_cache import load_or_build_index
from decon.detect.runner import announce_dirs, run_detection
from decon.errors import DeconError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "detect",
        help="Detect contamination in training data",
        description="Find training documents that contain evaluation questions (with their answers or "
                    "passages), write JSONL reports and, with --purify, cleaned copies of the data.",
        epilog="Example:\n  decon detect --training-dir fixtures/training --report-output-dir /tmp/decon-report",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_detection_args(p)
    p.set_defaults(func=run)


def prepare_config(args: argparse.Namespace) -> DetectionConfig:
    cfg = config_from_args(args)
    if cfg.training_dataset or cfg.split or cfg.config_name:
        from decon.common.hf_datasets import resolve_training_input

        if not cfg.training_dataset and not cfg.training_dir:
            raise DeconError("--split and --config-name need --training-dir or --training-dataset")
        cfg.training_dir = resolve_training_input(cfg.training_dir, cfg.training_dataset, cfg.config_name, cfg.split)
    validate_paths(cfg, need_training=True)
    if not cfg.report_output_dir:
        cfg.report_output_dir = generate_temp_dir("decon")
    if cfg.purify and not cfg.cleaned_output_dir:
        cfg.cleaned_output_dir = generate_temp_dir("decon-cleaned")
    return cfg


def run(args: argparse.Namespace) -> int:
    cfg = prepare_config(args)
    started = time.perf_counter()
    announce_dirs(cfg)
    if cfg.verbose:
        for key, value in cfg.to_dict().items():
            print(f"  {key}: {value!r}")
    index = load_or_build_index(cfg, use_cache=not getattr(args, "no_index_cache", False))
    print(detector_for(cfg).summary(index.stats))
    summary = run_detection(cfg, index)
    total = time.perf_counter() - started
    print(detection_summary_table(
        index_seconds=index.stats.build_seconds, detection_seconds=summary.detection_seconds,
        total_seconds=total, lines_processed=summary.lines_processed,
        contaminated_matches=summary.contaminated_matches,
        contaminated_documents=summary.contaminated_documents, skipped=summary.skipped))
    if summary.skipped and any(summary.skipped.values()):
        parts = ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in sorted(summary.skipped.items()) if v)
        print(f"Skipped training lines: {parts}", file=sys.stderr)
    if summary.bad_files:
        print(f"Skipped unreadable training files: {len(summary.bad_files):,} of {summary.files:,}", file=sys.stderr)
    print()
    if summary.contaminated_matches == 0:
        print("No contamination detected!")
    else:
        print("To review results:")
        print(f"  decon review {summary.report_dir}")
    if cfg.purify and summary.cleaned_dir:
        print(f"Cleaned files written to {summary.cleaned_dir} ({summary.purify_seconds:.2f}s)")
    print()
    return 0
