"""The summary tables `decon detect` prints (same layout as upstream's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # display needs no algorithm code at run time
    from decon.detect.minhash_index import MinHashStats
    from decon.detect.reference_index import IndexStats


def _row(width: int, label: str, value: str, indent: str = "   ") -> str:
    inner = width - 2
    text = f"{indent}{label}"
    pad = inner - len(text) - len(value) - 1
    return f"│{text}{' ' * max(pad, 1)}{value} │"


def _frame(width: int) -> tuple[str, str, str]:
    """Top, middle and bottom rules of a box ``width`` characters wide."""
    return "┌" + "─" * (width - 2) + "┐", "├" + "─" * (width - 2) + "┤", "└" + "─" * (width - 2) + "┘"


def _open_box(width: int, indent: int, title: str) -> list[str]:
    top, mid, _ = _frame(width)
    return ["", "", top, "│" + (" " * indent + title).ljust(width - 2) + "│", mid]


def _close_index_box(width: int, stats: IndexStats | MinHashStats) -> list[str]:
    """The suites row and the build-time section every index table ends with."""
    _, mid, bot = _frame(width)
    suites = "1 suite" if stats.eval_suites == 1 else f"{stats.eval_suites} suites"
    build = f"{stats.build_seconds:.2f}s" + (" (cached)" if stats.from_cache else "")
    return [_row(width, "Eval datasets", suites), mid, _row(width, "Build time", build), bot]


def index_summary_table(stats: IndexStats) -> str:
    w = 68
    _, mid, _ = _frame(w)
    lines = _open_box(w, 18, "Reference Index Building Summary")
    skipped = stats.skipped_duplicates + stats.skipped_min_tokens + stats.skipped_min_unique_words
    if stats.total_lines_examined > 0:
        lines.append(_row(w, "Total lines examined", f"{stats.total_lines_examined:,}"))
        lines.append(_row(w, "Lines indexed", f"{stats.lines_indexed:,}"))
        if skipped:
            lines.append(_row(w, "Lines skipped", f"{skipped:,}"))
            if stats.skipped_duplicates:
                lines.append(_row(w, "  - Duplicates", f"{stats.skipped_duplicates:,}"))
            if stats.skipped_min_tokens:
                lines.append(_row(w, "  - Below minimum tokens", f"{stats.skipped_min_tokens:,}"))
            if stats.skipped_min_unique_words:
                lines.append(_row(w, "  - Below min unique words", f"{stats.skipped_min_unique_words:,}"))
        lines.append(mid)
    lines.append(_row(w, "Unique n-grams", f"{stats.unique_ngrams:,}"))
    lines.append(_row(w, "Hot n-grams", f"{stats.hot_buckets_replaced:,}"))
    return "\n".join(lines + _close_index_box(w, stats)) + "\n"


def detection_summary_table(*, index_seconds: float, detection_seconds: float, total_seconds: float,
                            lines_processed: int, contaminated_matches: int, contaminated_documents: int,
                            skipped: dict[str, int] | None = None) -> str:
    w = 45
    _, mid, bot = _frame(w)
    lines = _open_box(w, 5, "Contamination Detection Results")
    lines.append(_row(w, "Training lines", f"{lines_processed:,}", indent=" "))
    micros = detection_seconds * 1e6 / lines_processed if lines_processed else 0.0
    if micros >= 1000:
        lines.append(_row(w, "Processing rate", f"{micros / 1000:.1f} ms/doc", indent=" "))
    elif micros > 0:
        lines.append(_row(w, "Processing rate", f"{micros:.0f} μs/doc", indent=" "))
    lines.append(mid)
    lines.append(_row(w, "Index building time", f"{index_seconds:.2f}s", indent=" "))
    lines.append(_row(w, "Detection time", f"{detection_seconds:.2f}s", indent=" "))
    lines.append(_row(w, "Total time", f"{total_seconds:.2f}s", indent=" "))
    lines.append(mid)
    lines.append(_row(w, "Contaminated matches", f"{contaminated_matches:,}", indent=" "))
    lines.append(_row(w, "Contaminated documents", f"{contaminated_documents:,}", indent=" "))
    if skipped and any(skipped.values()):
        lines.append(mid)
        labels = {"invalid_json": "Skipped: invalid JSON", "missing_content_key": "Skipped: no content key",
                  "non_utf8": "Skipped: not UTF-8", "line_too_long": "Skipped: line too long"}
        for key, label in labels.items():
            if skipped.get(key):
                lines.append(_row(w, label, f"{skipped[key]:,}", indent=" "))
    lines.append(bot)
    return "\n".join(lines) + "\n"


def minhash_summary_table(stats: MinHashStats) -> str:
    w = 68
    _, mid, _ = _frame(w)
    lines = _open_box(w, 16, "MinHash Reference Index Summary")
    lines.append(_row(w, "Total lines examined", f"{stats.total_lines_examined:,}"))
    lines.append(_row(w, "Records indexed", f"{stats.lines_indexed:,}"))
    if stats.skipped_empty:
        lines.append(_row(w, "  - Skipped (no tokens)", f"{stats.skipped_empty:,}"))
    lines.append(mid)
    lines.append(_row(w, "Permutations", f"{stats.num_perm:,}"))
    lines.append(_row(w, "Band entries", f"{stats.band_entries:,}"))
    return "\n".join(lines + _close_index_box(w, stats)) + "\n"
