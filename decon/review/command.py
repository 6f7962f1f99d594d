"""``decon review``: look at the matches of a detect run, one by one or as statistics."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.text import Text

from decon.common.console import make_console
from decon.common.resources import bundled_reference_dir
from decon.review import analysis, stats_export
from decon.review.loader import load_reports
from decon.review.records import Match
from decon.review.render import print_bar_chart, print_match, print_rule


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value:  # NaN
        raise argparse.ArgumentTypeError("expected a number, got NaN")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``review`` sub-command."""
    parser = subparsers.add_parser(
        "review",
        help="Inspect the matches in a directory of contamination reports",
        description="Read every report file (JSONL, optionally gz/zst/bz2/xz compressed) under DIR\n"
        "and show the matches for manual inspection, or summarise them. Without a display\n"
        "mode, matches are shown one at a time (press Enter for the next) when run in a\n"
        "terminal, and all at once otherwise.",
        epilog="examples:\n"
        "  decon review out/reports                     step through every match\n"
        "  decon review out/reports --stats             per-suite counts with bar charts\n"
        "  decon review out/reports --eval mmlu --min-score 0.9 --dump\n"
        "  decon review out/reports --html -o report.html   one self-contained HTML page",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dir", type=Path, metavar="DIR", help="directory holding the report files")
    modes = parser.add_argument_group("display modes (default: step through matches)")
    modes.add_argument(
        "--stats",
        action="store_true",
        help="summarise: contaminated training documents and eval instances per eval suite "
        "(bar charts) and the distribution of prompt n-gram matches",
    )
    modes.add_argument("--dump", action="store_true", help="print every match at once, without pausing")
    modes.add_argument(
        "--top-eval-examples",
        type=_non_negative_int,
        metavar="N",
        help="list the N eval records that were matched most often",
    )
    modes.add_argument(
        "--dataset-counts",
        action="store_true",
        help="count unique contaminated training documents per training dataset (first folder of "
        "each report's path below DIR)",
    )
    modes.add_argument(
        "--html",
        action="store_true",
        help="write one self-contained HTML report (summary tables, SVG charts, filterable matches; "
        "no network needed to view it) to the --output file",
    )
    modes.add_argument("--format", choices=stats_export.FORMATS, default="text",
                       help="how --stats writes: text tables, one JSON object (schema decon.stats/1, "
                            "docs/stats-schema.json) or CSV (one row per eval suite); json and csv imply "
                            "--stats [default: text]")
    html = parser.add_argument_group("output files")
    html.add_argument("-o", "--output", type=Path, default=None, metavar="FILE",
                      help="where to write the HTML report [default: report.html], or the JSON/CSV "
                           "statistics [default: standard output]; written under a temporary name, then renamed")
    html.add_argument("--evals-dir", type=Path, metavar="DIR",
                      help="the reference set of the run: with --format json|csv, each suite's share of "
                           "eval instances hit is counted against it [default: the bundled set]")
    html.add_argument("--config", type=Path, metavar="FILE",
                      help="the detect config (YAML) of the run, shown in the report's configuration table")
    filters = parser.add_argument_group("filters")
    filters.add_argument(
        "--min-score",
        type=_number,
        metavar="SCORE",
        help="keep matches whose contamination_score is at least SCORE",
    )
    filters.add_argument(
        "--min-length",
        type=_non_negative_int,
        metavar="N",
        help="keep matches with at least N matched prompt n-grams (ngram_match_cnt)",
    )
    filters.add_argument(
        "--eval", metavar="NAME", help="keep matches of this eval suite only (exact eval_key)"
    )
    order = parser.add_argument_group("order (default: contamination score, lowest first)")
    exclusive = order.add_mutually_exclusive_group()
    exclusive.add_argument(
        "--sort-match-length-descending",
        action="store_true",
        help="order by number of matched prompt n-grams, most first",
    )
    exclusive.add_argument(
        "--sort-match-length-ascending",
        action="store_true",
        help="order by number of matched prompt n-grams, fewest first",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also show every score, count and token span"
    )
    parser.set_defaults(func=run)


def describe_filters(args: argparse.Namespace) -> list[str]:
    reasons = []
    if args.min_score is not None:
        reasons.append(f"min score {args.min_score:.3f}")
    if getattr(args, "min_length", None) is not None:
        reasons.append(f"min {args.min_length} n-gram matches")
    if args.eval is not None:
        reasons.append(f"eval suite {args.eval}")
    return reasons


def run(args: argparse.Namespace) -> int:
    """Entry point of ``decon review``."""
    console = make_console()
    directory: Path = args.dir
    matches = load_reports(directory)
    if args.format != "text":
        shown = analysis.filter_matches(matches, args.min_score, args.min_length, args.eval)
        evals_dir = args.evals_dir or bundled_reference_dir()
        document = stats_export.review_document(directory, shown, len(matches), describe_filters(args),
                                                stats_export.suite_sizes(evals_dir), evals_dir)
        stats_export.write_text(stats_export.render(document, args.format), args.output)
        return 0
    if not matches:
        console.print(f"No contamination found: the report files under {directory} are empty.")
        if args.html:
            _write_html(console, args, [], [])
        return 0

    order = analysis.SORT_SCORE
    if args.sort_match_length_descending:
        order = analysis.SORT_LENGTH_DESC
    elif args.sort_match_length_ascending:
        order = analysis.SORT_LENGTH_ASC
    total = len(matches)
    shown = analysis.sort_matches(
        analysis.filter_matches(matches, args.min_score, args.min_length, args.eval), order
    )
    reasons = describe_filters(args)
    if not shown:
        console.print(f"None of the {total} matches pass the filters ({', '.join(reasons)}).")
        if args.html:
            _write_html(console, args, [], reasons)
        return 0

    line = f"{len(shown)} matches from {directory}"
    if len(shown) != total:
        line += f" ({total - len(shown)} of {total} filtered out by {', '.join(reasons)})"
    console.print(line)
    console.print()

    if args.html:
        _write_html(console, args, shown, reasons)
    elif args.stats:
        show_stats(console, shown)
    elif args.dataset_counts:
        show_dataset_counts(console, shown, directory)
    elif args.top_eval_examples is not None:
        show_top_examples(console, shown, args.top_eval_examples)
    else:
        interactive = not args.dump and sys.stdin.isatty() and sys.stdout.isatty()
        show_matches(console, shown, args.verbose, interactive)
    return 0


def _write_html(console: Console, args: argparse.Namespace, matches: list[Match], reasons: list[str]) -> None:
    from decon.review.html_command import write_html_report

    output = args.output or Path("report.html")
    write_html_report(args.dir, matches, output, args.config, reasons)
    console.print(f"HTML report written to {output}")


def show_stats(console: Console, matches: list[Match]) -> None:
    summary = analysis.summarize(matches)
    console.print(Text("Summary", style="bold"))
    console.print(f"  Contaminated training documents: {summary.training_docs}")
    console.print(f"  Matches (report lines):          {summary.instances}")
    console.print(f"  Contaminated eval instances:     {summary.eval_instances}")
    console.print()
    print_bar_chart(
        console,
        "Contaminated training documents per eval suite",
        "unique training documents (file, line) that would have to be removed",
        analysis.training_docs_per_suite(matches),
    )
    print_bar_chart(
        console,
        "Contaminated eval instances per eval suite",
        "unique eval instances found in the training data",
        analysis.eval_instances_per_suite(matches),
    )
    dist = analysis.ngram_distribution(matches)
    console.print(Text("Prompt n-gram matches per match", style="bold"))
    if dist is None:
        console.print("  No record carries ngram_match_cnt.")
        return
    console.print(Text("counted on the eval question only; answers and passages are scored apart", style="dim"))
    console.print(f"  Matches with n-gram data: {dist.with_data}")
    if dist.without_data:
        console.print(f"  Matches without n-gram data: {dist.without_data}")
    console.print(
        f"  min {dist.minimum}   max {dist.maximum}   median {dist.median}   mean {dist.mean:.1f}"
    )
    console.print()
    print_bar_chart(console, "Distribution", None, dist.buckets, label="Matched n-grams")


def show_dataset_counts(console: Console, matches: list[Match], directory: Path) -> None:
    rows = analysis.dataset_counts(matches, directory)
    console.print(Text("Contaminated training documents per training dataset", style="bold"))
    console.print(f"  Total (summed over datasets): {sum(c for _, c in rows)}")
    console.print(f"  Datasets: {len(rows)}")
    console.print()
    width = max((len(str(c)) for _, c in rows), default=1)
    for name, count in rows:
        console.print(f"  {count:>{width}}  {name}", markup=False)


def show_top_examples(console: Console, matches: list[Match], n: int) -> None:
    top = analysis.top_eval_examples(matches, n)
    print_bar_chart(
        console,
        f"The {len(top)} eval records matched most often (of {len(matches)} matches)",
        None,
        [(f"{t.eval_dataset} line {t.eval_line}", t.count) for t in top],
        label="Eval record",
    )
    for rank, t in enumerate(top, start=1):
        console.print(Text(f"#{rank}  {t.eval_dataset} line {t.eval_line}: {t.count} matches", style="bold"))
        console.print(Text("  text: ") + Text(t.text or "(no eval text in the report)"))
        files = t.training_files
        for name in files[:3]:
            console.print(f"    - {name}")
        if len(files) > 3:
            console.print(f"    ... and {len(files) - 3} more")
        console.print()


def show_matches(console: Console, matches: list[Match], verbose: bool, interactive: bool) -> None:
    total = len(matches)
    for idx, match in enumerate(matches, start=1):
        if interactive and idx > 1:
            try:
                answer = input("Enter: next match, q: quit > ")
            except EOFError:
                answer = "q"
            if answer.strip().lower() in {"q", "quit"}:
                return
            console.clear()
        print_rule(console, f"Match {idx} of {total}")
        print_match(console, match, verbose)
        console.print()
    if not interactive:
        return
    console.print(Text("End of matches.", style="bold"))

