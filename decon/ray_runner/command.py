"""`decon ray`: flags, validation at the edge, and the hand-over to the driver."""

from __future__ import annotations

import argparse
import os

from decon.detect.args import add_reference_args, add_scoring_args, config_from_args, validate_paths
from decon.errors import DeconError

RAY_MISSING = "decon ray needs Ray, an optional extra: pip install 'decon[ray]'"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ray",
        help="Run detection over a folder or S3 prefix on a Ray cluster",
        description="Scan every training file under --input on a Ray cluster (or a local Ray instance) and "
                    "write the orchestrator's output layout: <dir>/<name>.report.jsonl or <dir>/<name>.clean, "
                    "and with --purify <dir>/<name>.clean.jsonl.gz (<name>.clean.parquet for Parquet input). Files finished by an earlier run are "
                    "skipped. Needs the ray extra: pip install 'decon[ray]'.",
        epilog="Example:\n  decon ray --input s3://bucket/data/ --report-output-dir s3://bucket/reports/ "
               "--address auto",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    io = p.add_argument_group("Input and Output")
    io.add_argument("--input", metavar="URI",
                    help="Training data: a local folder (or file) or an s3://bucket/prefix, searched recursively "
                         "for .json/.jsonl files, plain or .gz/.zst/.zstd/.bz2/.xz, and Parquet/Arrow files "
                         "(pip install 'decon[parquet]') [default: training_dir of "
                         "--config]")
    add_reference_args(io)
    io.add_argument("--report-output-dir", metavar="URI",
                    help="Local folder or s3:// prefix for reports and clean markers (required)")
    io.add_argument("--cleaned-output-dir", metavar="URI",
                    help="Local folder or s3:// prefix for cleaned files with --purify [default: the report "
                         "folder]")
    io.add_argument("--purify", action="store_true", default=None,
                    help="Also write a cleaned copy of every training file with contaminated lines removed")
    p.add_argument("--config", "-c", metavar="FILE",
                   help="YAML config file; flags given on the command line override its values")
    _add_ray_args(p)
    add_scoring_args(p, worker_threads=False)
    p.set_defaults(func=run)


def _add_ray_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Ray")
    g.add_argument("--address", metavar="ADDR",
                   help="Ray cluster to join: 'auto' (the cluster this machine belongs to), host:port or "
                        "ray://host:10001 [default: start a local Ray instance]")
    g.add_argument("--num-actors", type=int, metavar="N",
                   help="Scanning actors, one CPU each [default: one per CPU of the cluster]")
    g.add_argument("--num-cpus", type=int, metavar="N",
                   help="CPUs of the local Ray instance (ignored with --address) [default: all cores]")
    g.add_argument("--object-store-mb", type=int, metavar="MB",
                   help="Object store size of the local Ray instance (ignored with --address) "
                        "[default: Ray's, 30%% of memory]")
    g.add_argument("--max-attempts", type=int, default=3, metavar="N",
                   help="Times a file is handed out again after its actor was lost (node died) before it "
                        "counts as failed [default: 3]")
    g.add_argument("--progress-interval", type=float, default=10.0, metavar="SECONDS",
                   help="Seconds between PROGRESS lines [default: 10]")
    g.add_argument("--s3-endpoint-url", metavar="URL",
                   help="S3-compatible endpoint [default: $AWS_ENDPOINT_URL, else AWS]")
    g.add_argument("--scratch-dir", metavar="DIR",
                   help="Where actors download S3 inputs on their node [default: the system temp folder]")


def _check_positive(name: str, value: int | float | None) -> None:
    if value is not None and value <= 0:
        raise DeconError(f"{name} must be positive, got {value}")


def run(args: argparse.Namespace) -> int:
    try:
        import ray  # noqa: F401
    except ImportError:
        raise DeconError(RAY_MISSING) from None
    from decon.ray_runner.driver import RayOptions, new_run_id
    from decon.ray_runner.driver import run as run_driver
    from decon.ray_runner.storage import StoreSpec, normalize_uri
    from decon.ray_runner.worker import JobSpec

    cfg = config_from_args(args)
    for name in ("num_actors", "num_cpus", "object_store_mb", "max_attempts", "progress_interval"):
        _check_positive("--" + name.replace("_", "-"), getattr(args, name))
    source = args.input or cfg.training_dir
    if not source:
        raise DeconError("--input is required (a local folder or s3://bucket/prefix)")
    if not cfg.report_output_dir:
        raise DeconError("--report-output-dir is required (a local folder or s3://bucket/prefix)")
    validate_paths(cfg, need_training=False)
    endpoint = args.s3_endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    try:
        uris = [normalize_uri(u) for u in (source, cfg.report_output_dir, cfg.cleaned_output_dir or
                                          cfg.report_output_dir)]
    except ValueError as exc:
        raise DeconError(str(exc)) from None
    job = JobSpec(input=StoreSpec(uris[0], endpoint), reports=StoreSpec(uris[1], endpoint),
                  cleaned=StoreSpec(uris[2], endpoint) if cfg.purify else None, run_id=new_run_id(),
                  scratch_dir=args.scratch_dir)
    opts = RayOptions(address=args.address, num_actors=args.num_actors, num_cpus=args.num_cpus,
                      object_store_mb=args.object_store_mb, max_attempts=args.max_attempts,
                      progress_interval=args.progress_interval, use_index_cache=not args.no_index_cache)
    return run_driver(cfg, job, opts)
