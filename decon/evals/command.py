"""``decon evals``: list the eval suites of a reference directory, or build one from a config."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from decon.common.console import make_console
from decon.errors import DeconError
from decon.evals import download, listing


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evals`` sub-command."""
    parser = subparsers.add_parser(
        "evals",
        help="List the eval suites of a reference directory, or download and normalise new ones",
        description="Without --download: count the records of each eval suite in a reference\n"
        "directory (the bundled set unless --dir is given).\n"
        "With --download: read the datasets declared in an evals config (Hugging Face or\n"
        "local files) and write them in decon's reference format, as 5 MB gzip chunks\n"
        "named <eval>_<split>-<n>.jsonl.gz.",
        epilog="examples:\n"
        "  decon evals\n"
        "  decon evals --dir ~/my-references --stats\n"
        "  decon evals --download --output-dir ~/my-references\n"
        "  decon evals --download --eval gsm8k --config my-evals.yaml --output-dir refs",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    listing_group = parser.add_argument_group("listing")
    listing_group.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help=f"reference directory to describe (default: the bundled set, {download.BUNDLED_REFERENCE_DIR})",
    )
    listing_group.add_argument(
        "--stats",
        action="store_true",
        help="add the shortest, mean and longest question/answer/passage (in characters)",
    )
    dl = parser.add_argument_group("download")
    dl.add_argument(
        "--download",
        action="store_true",
        help="normalise every dataset of the config (or only --eval) into --output-dir",
    )
    dl.add_argument(
        "--eval",
        metavar="NAME",
        help="only this dataset of the config (implies --download)",
    )
    dl.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help=f"where to write reference files (default: {download.default_output_dir()})",
    )
    dl.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help=f"evals config (YAML) declaring the datasets (default: {download.DEFAULT_CONFIG})",
    )
    dl.add_argument(
        "--chunk-bytes",
        type=int,
        default=download.DEFAULT_CHUNK_BYTES,
        metavar="N",
        help=argparse.SUPPRESS,  # for tests: smaller chunks
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``decon evals``."""
    console = make_console()
    if args.download or args.eval:
        return run_download(console, args)
    if args.output_dir is not None or args.config is not None:
        raise DeconError("--output-dir and --config only apply with --download")
    directory = args.dir if args.dir is not None else download.BUNDLED_REFERENCE_DIR
    show_listing(console, directory, args.stats)
    return 0


def _length_cells(lengths: list[int]) -> list[str]:
    if not lengths:
        return ["-", "-", "-"]
    return [str(min(lengths)), f"{sum(lengths) / len(lengths):.0f}", str(max(lengths))]


def show_listing(console: Console, directory: Path, with_lengths: bool) -> None:
    stats = listing.collect(directory)
    console.print(Text(f"Reference set: {directory}", style="bold"))
    if not stats.files:
        console.print("No reference files (*.jsonl, *.jsonl.gz, ...) in this directory.")
        return
    console.print(
        Text(
            "Records = reference lines, Instances = distinct (config, split, eval_instance_index), "
            "Q/A/P = non-empty questions/answers/passages"
            + ("; lengths in characters" if with_lengths else "; --stats adds lengths"),
            style="dim",
        )
    )
    table = Table(box=box.SQUARE if not with_lengths else box.SIMPLE_HEAD, header_style="bold")
    table.add_column("Eval suite", overflow="fold")
    for name in ("Records", "Instances", "Q", "A", "P"):
        table.add_column(name, justify="right")
    if with_lengths:
        for part in ("Q", "A", "P"):
            for what in ("min", "avg", "max"):
                table.add_column(f"{what} {part}", justify="right")
    for suite, s in stats.suites.items():
        row = [suite, str(s.records), str(len(s.instances)), str(s.questions), str(s.answers), str(s.passages)]
        if with_lengths:
            for lengths in (s.question_lengths, s.answer_lengths, s.passage_lengths):
                row.extend(_length_cells(lengths))
        table.add_row(*row)
    if not console.is_terminal:
        # plain output goes to files and pipes: never squeeze columns
        wide = console.options.update_width(1000)
        console.width = max(console.width, Measurement.get(console, wide, table).maximum)
    console.print(table)
    suites = stats.suites.values()
    console.print(f"Eval suites: {len(stats.suites)}")
    console.print(f"Records:     {sum(s.records for s in suites)}")
    console.print(f"Instances:   {sum(len(s.instances) for s in suites)}")
    console.print(
        f"Questions: {sum(s.questions for s in suites)}   Answers: {sum(s.answers for s in suites)}   "
        f"Passages: {sum(s.passages for s in suites)}"
    )
    if stats.skipped:
        console.print(Text(f"Skipped {stats.skipped} records without an eval_key.", style="yellow"))


def run_download(console: Console, args: argparse.Namespace) -> int:
    if args.dir is not None or args.stats:
        raise DeconError("--dir and --stats only apply when listing, not with --download")
    if args.chunk_bytes <= 0:
        raise DeconError("--chunk-bytes must be positive")
    config_path: Path = (args.config or download.DEFAULT_CONFIG).expanduser()
    evals = download.load_config(config_path)
    if args.eval is not None:
        if args.eval not in evals:
            names = sorted(evals)
            preview = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            raise DeconError(f"no dataset '{args.eval}' in {config_path} (it has: {preview})")
        selected = {args.eval: evals[args.eval]}
    else:
        selected = evals
    needs_hf = [name for name, entry in selected.items() if "local_path" not in entry]
    if needs_hf and not download.hf_available():
        raise DeconError(
            f"{len(needs_hf)} dataset(s) come from Hugging Face (e.g. '{needs_hf[0]}'), which needs the "
            "'datasets' library: pip install 'decon[hf]'"
        )
    output_dir: Path = (args.output_dir or download.default_output_dir()).expanduser()
    console.print(f"Config: {config_path}")
    console.print(f"Output: {output_dir}")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DeconError(f"cannot create output directory {output_dir}: {exc.strerror or exc}") from None

    def log(message: str) -> None:
        console.print(message, markup=False)

    next_doc_id = [1]
    failures: list[tuple[str, str]] = []
    done = 0
    for name, entry in selected.items():
        try:
            download.process_eval(
                name,
                entry,
                output_dir,
                next_doc_id,
                config_dir=config_path.parent,
                chunk_bytes=args.chunk_bytes,
                log=log,
            )
            done += 1
        except DeconError as exc:
            if len(selected) == 1:
                raise
            failures.append((name, str(exc)))
            console.print(Text(f"  failed: {exc}", style="red"))
    console.print()
    console.print(f"Records written: {next_doc_id[0] - 1}; datasets done: {done}; failed: {len(failures)}")
    if failures:
        names = ", ".join(name for name, _ in failures[:5]) + (", ..." if len(failures) > 5 else "")
        raise DeconError(f"{len(failures)} of {len(selected)} datasets failed: {names}")
    return 0
