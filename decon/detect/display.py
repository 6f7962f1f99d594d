"""The summary tables `decon detect` prints (same layout as upstream's)."""

from __future__ import annotations

from decon.detect.reference_index import IndexStats


def _row(width: int, label: str, value: str, indent: str = "   ") -> str:
    inner = width - 2
    text = f"{indent}{label}"
    pad = inner - len(text) - len(value) - 1
    return f"│{text}{' ' * max(pad, 1)}{value} │"


def index_summary_table(stats: IndexStats) -> str:
    w = 68
    top = "┌" + "─" * (w - 2) + "┐"
    mid = "├" + "─" * (w - 2) + "┤"
    bot = "└" + "─" * (w - 2) + "┘"
    lines = ["", "", top, "│" + (" " * 18 + "Reference Index Building Summary").ljust(w - 2) + "│", mid]
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
    suites = "1 suite" if stats.eval_suites == 1 else f"{stats.eval_suites} suites"
    lines.append(_row(w, "Eval datasets", suites))
    lines.append(mid)
    build = f"{stats.build_seconds:.2f}s" + (" (cached)" if stats.from_cache else "")
    lines.append(_row(w, "Build time", build))
    lines.append(bot)
    return "\n".join(lines) + "\n"


def detection_summary_table(*, index_seconds: float, detection_seconds: float, total_seconds: float,
                            lines_processed: int, contaminated_matches: int, contaminated_documents: int,
                            skipped: dict[str, int] | None = None) -> str:
    w = 45
    top = "┌" + "─" * (w - 2) + "┐"
    mid = "├" + "─" * (w - 2) + "┤"
    bot = "└" + "─" * (w - 2) + "┘"
    lines = ["", "", top, "│" + (" " * 5 + "Contamination Detection Results").ljust(w - 2) + "│", mid]
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
