"""``decon compare``: put the reports of two detect runs side by side."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from rich.console import Console
from rich.text import Text

from decon.common.console import make_console
from decon.common.resources import bundled_reference_dir
from decon.compare import core
from decon.review import stats_export
from decon.review.analysis import filter_matches
from decon.review.loader import load_reports
from decon.review.render import highlight_spans, is_plain, print_match, print_rule


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value:
        raise argparse.ArgumentTypeError("expected a number, got NaN")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``compare`` sub-command."""
    parser = subparsers.add_parser(
        "compare",
        help="Compare the contamination reports of two detect runs",
        description="Load the reports under DIR_A and DIR_B and show how the two runs differ.\n"
        "A match is the pair (training file and line, eval dataset and line). Without a\n"
        "view flag, the statistics are shown.",
        epilog="examples:\n"
        "  decon compare run-a/reports run-b/reports\n"
        "  decon compare run-a/reports run-b/reports --only-in-second --eval mmlu\n"
        "  decon compare run-a/reports run-b/reports --common --min-score 0.9",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dir_a", type=Path, metavar="DIR_A", help="report directory of the first run")
    parser.add_argument("dir_b", type=Path, metavar="DIR_B", help="report directory of the second run")
    parser.add_argument(
        "--stats",
        action="store_true",
        help="show the statistics (the default view; with another view flag, show both)",
    )
    parser.add_argument(
        "--common", action="store_true", help="show the matches found by both runs, with their scores"
    )
    parser.add_argument(
        "--only-in-first",
        action="store_true",
        help="show eval records (by fingerprint) matched by the first run but not by the second",
    )
    parser.add_argument(
        "--only-in-second",
        action="store_true",
        help="show eval records (by fingerprint) matched by the second run but not by the first",
    )
    parser.add_argument(
        "--min-score",
        type=_number,
        metavar="SCORE",
        help="ignore matches whose contamination_score is below SCORE (in both runs)",
    )
    parser.add_argument("--eval", metavar="NAME", help="only consider this eval suite (exact eval_key)")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show every score and count of the listed matches"
    )
    parser.add_argument("--format", choices=stats_export.FORMATS, default="text",
                        help="how the statistics are written: text, one JSON object (schema decon.stats/1, "
                             "docs/stats-schema.json) or CSV (one row per eval suite) [default: text]")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="write the JSON/CSV statistics here (a temporary name, then renamed) "
                             "[default: standard output]")
    parser.add_argument("--evals-dir", type=Path, metavar="DIR",
                        help="the reference set of the runs: with --format json|csv, each suite's share of "
                             "eval instances hit is counted against it [default: the bundled set]")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``decon compare``."""
    console = make_console()
    raw_a = load_reports(args.dir_a)
    raw_b = load_reports(args.dir_b)
    first = filter_matches(raw_a, args.min_score, None, args.eval)
    second = filter_matches(raw_b, args.min_score, None, args.eval)
    comparison = core.compare(first, second)
    filters = []
    if args.min_score is not None:
        filters.append(f"min score {args.min_score:.3f}")
    if args.eval is not None:
        filters.append(f"eval suite {args.eval}")

    if args.format != "text":
        evals_dir = args.evals_dir or bundled_reference_dir()
        changes = core.score_changes(comparison.first, comparison.second, comparison.common)
        document = stats_export.compare_document(
            (args.dir_a, args.dir_b), (comparison.first, comparison.second), (len(raw_a), len(raw_b)), filters,
            stats_export.suite_sizes(evals_dir), evals_dir, dataclasses.asdict(changes))
        stats_export.write_text(stats_export.render(document, args.format), args.output)
        return 0
    views = args.common or args.only_in_first or args.only_in_second
    if args.stats or not views:
        show_stats(console, args.dir_a, args.dir_b, comparison, len(raw_a), len(raw_b), filters)
    if args.common:
        show_common(console, comparison, args.verbose)
    if args.only_in_first:
        show_only_in(console, comparison.first, comparison.second, "first", args.verbose)
    if args.only_in_second:
        show_only_in(console, comparison.second, comparison.first, "second", args.verbose)
    return 0


def _signed(value: int) -> str:
    return f"{value:+d}" if value else "0"


def _run_block(console: Console, label: str, directory: Path, loaded: int, kept: dict, filters: list[str]) -> None:
    metrics = core.run_metrics(kept.values())
    console.print(Text(f"{label}: {directory}", style="bold"))
    console.print(f"  Contaminated training documents: {metrics.training_docs}")
    console.print(f"  Matches:                         {metrics.instances}")
    console.print(f"  Contaminated eval instances:     {metrics.eval_instances}")
    if loaded != len(kept):
        why = f" by {', '.join(filters)}" if filters else " (duplicate lines)"
        console.print(f"  ({loaded - len(kept)} of {loaded} report lines left out{why})")
    console.print(f"  Mean contamination score:        {metrics.mean_score:.3f}")
    console.print()


def _delta_table(console: Console, title: str, note: str, rows: list[tuple[str, int, int, int]]) -> None:
    console.print(Text(title, style="bold"))
    console.print(Text(note, style="dim"))
    if not rows:
        console.print("  (none)")
        console.print()
        return
    w = max(10, *(len(r[0]) for r in rows))
    w = min(w, max(12, console.width - 36))
    console.print(Text(f"  {'Eval suite':<{w}} {'Run A':>8} {'Run B':>8} {'Change':>8}", style="bold"))
    for suite, a, b, delta in rows:
        name = suite if len(suite) <= w else suite[: w - 1] + "…"
        style = "green" if delta < 0 else "red" if delta > 0 else ""
        line = Text(f"  {name:<{w}} {a:>8} {b:>8} ")
        line.append(f"{_signed(delta):>8}", style=style)
        console.print(line)
    console.print()


def show_stats(
    console: Console,
    dir_a: Path,
    dir_b: Path,
    comparison: core.Comparison,
    loaded_a: int,
    loaded_b: int,
    filters: list[str],
) -> None:
    first, second = comparison.first, comparison.second
    _run_block(console, "Run A", dir_a, loaded_a, first, filters)
    _run_block(console, "Run B", dir_b, loaded_b, second, filters)
    ma = core.run_metrics(first.values())
    mb = core.run_metrics(second.values())
    console.print(Text("A → B", style="bold"))
    for label, a, b in (
        ("Contaminated training documents", ma.training_docs, mb.training_docs),
        ("Matches", ma.instances, mb.instances),
        ("Contaminated eval instances", ma.eval_instances, mb.eval_instances),
    ):
        console.print(f"  {label + ':':<33}{a} → {b} ({_signed(b - a)})")
    console.print()
    common = comparison.common
    console.print(f"  Only in A: {len(comparison.only_first)} matches")
    console.print(f"  Only in B: {len(comparison.only_second)} matches")
    console.print(f"  In both:   {len(common)} matches")
    if common:
        changes = core.score_changes(first, second, common)
        console.print(f"    score lower in B:  {changes.lower}" + (f" (mean -{changes.mean_drop:.3f})" if changes.lower else ""))
        console.print(f"    score higher in B: {changes.higher}" + (f" (mean +{changes.mean_rise:.3f})" if changes.higher else ""))
        console.print(f"    score unchanged:   {changes.same}")
    console.print()
    _delta_table(
        console,
        "Contaminated training documents per eval suite",
        "unique training documents that would have to be removed",
        core.suite_deltas(first.values(), second.values(), "docs"),
    )
    _delta_table(
        console,
        "Contaminated eval instances per eval suite",
        "unique eval instances (split, index) found in the training data",
        core.suite_deltas(first.values(), second.values(), "evals"),
    )
    if filters:
        console.print(f"Filters: {', '.join(filters)}")
        console.print()


def show_common(console: Console, comparison: core.Comparison, verbose: bool) -> None:
    keys = comparison.common_sorted()
    if not keys:
        console.print(Text("No match is common to both runs.", style="bold"))
        return
    console.print(Text(f"{len(keys)} matches found by both runs (largest score change first)", style="bold"))
    console.print()
    for idx, key in enumerate(keys, start=1):
        a, b = comparison.first[key], comparison.second[key]
        print_rule(console, f"Common {idx} of {len(keys)}")
        console.print(f"Training file: {a.training_file} (line {a.training_line})")
        console.print(f"Eval record:   {a.eval_dataset} (line {a.eval_line})")
        sa, sb = a.contamination_score or 0.0, b.contamination_score or 0.0
        diff = sb - sa
        change = "unchanged" if abs(diff) <= core.SCORE_EPSILON else ("higher in B" if diff > 0 else "lower in B")
        console.print(f"Score:         A {sa:.3f}   B {sb:.3f}   ({diff:+.3f}, {change})")
        ia, ib = a.get_float("idf_overlap"), b.get_float("idf_overlap")
        if ia is not None and ib is not None and abs(ia - ib) > core.SCORE_EPSILON:
            console.print(f"IDF overlap:   A {ia:.3f}   B {ib:.3f}")
        ca, cb = a.ngram_match_cnt, b.ngram_match_cnt
        if ca is not None and cb is not None and ca != cb:
            console.print(f"N-gram matches: A {ca}   B {cb}")
        if verbose:
            console.print()
            print_match(console, a, verbose=True)
        else:
            text = a.get_str("training_overlap_text")
            if text is not None:
                console.print(Text("Training text: ") + highlight_spans(text, keep_markers=is_plain(console)))
            question = a.get_str("eval_question_text") or a.get_str("eval_overlap_text")
            if question is not None:
                console.print(Text("Eval question: ") + Text(question))
        console.print()


def show_only_in(console: Console, mine: dict, other: dict, which: str, verbose: bool) -> None:
    groups = core.eval_records_only_in(mine, other)
    label = "A" if which == "first" else "B"
    other_label = "B" if which == "first" else "A"
    if not groups:
        console.print(Text(f"Every eval record matched in run {label} is also matched in run {other_label}.", style="bold"))
        console.print()
        return
    total = sum(len(items) for _, items in groups)
    console.print(
        Text(
            f"{len(groups)} eval records matched only in run {label} ({total} matches)",
            style="bold",
        )
    )
    console.print()
    n = 0
    for gidx, (record_id, items) in enumerate(groups, start=1):
        print_rule(console, f"Eval record {gidx} of {len(groups)}: {record_id} ({len(items)} matches)")
        for item_idx, match in enumerate(items, start=1):
            n += 1
            console.print(Text(f"Only in {label}: match {n} of {total} (item {item_idx} of {len(items)})", style="bold"))
            print_match(console, match, verbose=verbose)
            console.print()

