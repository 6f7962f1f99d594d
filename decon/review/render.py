"""Terminal output shared by ``review`` and ``compare``: console set-up, bar charts and the
rendering of one contamination match.

On a terminal, spans are coloured (question red, answer magenta, passage cyan).  When stdout is
not a terminal, or NO_COLOR is set, output is plain text; the span markers that ``detect``
writes into the training text are then kept so the spans stay visible.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.text import Text

from decon.review.records import Match

QUESTION_STYLE = "bold red"
ANSWER_STYLE = "bold magenta"
PASSAGE_STYLE = "cyan"

# marker characters written by detect around spans of the training text
_OPENERS = {"【": QUESTION_STYLE, "⟦": ANSWER_STYLE, "⟨": PASSAGE_STYLE}
_CLOSERS = {"】": QUESTION_STYLE, "⟧": ANSWER_STYLE, "⟩": PASSAGE_STYLE}

MAX_BAR = 50


def is_plain(console: Console) -> bool:
    return console.color_system is None or console.no_color


def highlight_spans(text: str, keep_markers: bool) -> Text:
    """Turn detect's span markers into styles; keep the markers themselves in plain mode."""
    out = Text()
    stack: list[str] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            out.append("".join(buf), style=stack[-1] if stack else "")
            buf.clear()

    for ch in text:
        if ch in _OPENERS:
            flush()
            stack.append(_OPENERS[ch])
            if keep_markers:
                buf.append(ch)
        elif ch in _CLOSERS:
            if keep_markers:
                buf.append(ch)
            flush()
            if stack:
                stack.pop()
        else:
            buf.append(ch)
    flush()
    return out


def bar_width(console: Console, label_width: int, count_width: int = 8) -> int:
    """Width for bars so a row (label, count, bar) fits the console."""
    room = console.width - label_width - count_width - 8
    return max(5, min(MAX_BAR, room))


def print_bar_chart(
    console: Console, title: str, note: str | None, rows: Sequence[tuple[str, int]], label: str = "Eval suite"
) -> None:
    """(label, count) rows with horizontal bars scaled to the largest count."""
    console.print(Text(title, style="bold"))
    if note:
        console.print(Text(note, style="dim"))
    if not rows:
        console.print("  (none)")
        console.print()
        return
    longest = max(len(label), *(len(name) for name, _ in rows))
    label_w = min(longest, max(12, console.width // 2 - 4))
    count_w = max(5, *(len(str(count)) for _, count in rows))
    width = bar_width(console, label_w, count_w)
    top = max(count for _, count in rows) or 1
    console.print(Text(f"  {_fit(label, label_w):<{label_w}} {'Count':>{count_w}}", style="bold"))
    for name, count in rows:
        filled = int(count / top * width)
        line = Text()
        line.append(f"  {_fit(name, label_w):<{label_w}} {count:>{count_w}} │")
        line.append("█" * filled, style="green")
        line.append(" " * (width - filled) + "│")
        console.print(line)
    console.print()


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def print_fields(console: Console, rows: Sequence[tuple[str, str | Text]]) -> None:
    """Aligned "label  value" lines."""
    if not rows:
        return
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        line = Text()
        line.append(f"{label:<{width}}  ", style="bold")
        line.append_text(value if isinstance(value, Text) else Text(value))
        console.print(line)


def assessment(score: float) -> tuple[str, str]:
    """A verbal grade of a contamination score, with a style."""
    if score >= 1.0:
        return "exact match: contamination is certain", "bold red"
    if score > 0.9:
        return "very high similarity: contamination is likely", "red"
    if score > 0.8:
        return "high similarity: contamination is likely", "yellow"
    if score > 0.7:
        return "moderate similarity: needs a manual look", "yellow"
    return "low similarity: borderline detection", "dim"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_metrics(console: Console, m: Match) -> None:
    """All scores and counts a record carries (verbose mode)."""
    rows: list[tuple[str, str]] = []

    def add(label: str, value: str | None) -> None:
        if value is not None:
            rows.append((label, value))

    add("Method", m.get_str("method"))
    add("IDF overlap", _fmt(m.get_float("idf_overlap")) if m.get_float("idf_overlap") is not None else None)
    jac = m.get_float("ngram_jaccard")
    add("N-gram Jaccard", _fmt(jac) if jac is not None else None)
    cnt = m.ngram_match_cnt
    add("Prompt n-gram matches", str(cnt) if cnt is not None else None)
    uniq = m.get_int("eval_unique_ngrams")
    add("Prompt unique n-grams", str(uniq) if uniq is not None else None)
    delta = m.get_int("token_length_delta")
    if delta is not None:
        add(
            "Token length delta",
            f"{delta:+d} (cluster {m.get_int('cluster_token_length') or 0}, "
            f"eval {m.get_int('eval_token_length') or 0})",
        )
    for label, name in (
        ("Answer overlap ratio", "answer_overlap_ratio"),
        ("Answer IDF overlap", "answer_idf_overlap"),
        ("Passage overlap ratio", "passage_overlap_ratio"),
        ("Passage IDF overlap", "passage_idf_overlap"),
        ("Length-adjusted threshold", "length_adjusted_question_threshold"),
    ):
        value = m.get_float(name)
        add(label, _fmt(value) if value is not None else None)
    add("Fingerprint", m.fingerprint)
    correct = m.raw.get("is_correct")
    if isinstance(correct, bool):
        add("Answer is the correct one", "yes" if correct else "no")
    spans = []
    for label, start, end in (
        ("question", "question_start_idx", "question_end_idx"),
        ("passage", "passage_start_idx", "passage_end_idx"),
        ("answer", "answer_start_idx", "answer_end_idx"),
    ):
        s, e = m.get_int(start), m.get_int(end)
        if s is not None and e is not None:
            spans.append(f"{label} {s}-{e}")
    if spans:
        add("Token spans", ", ".join(spans))
    if not rows:
        return
    print_fields(console, rows)
    console.print()


def print_match(console: Console, m: Match, verbose: bool = False) -> None:
    """Everything a reviewer needs to judge one match."""
    plain = is_plain(console)
    head: list[tuple[str, str | Text]] = [
        ("Eval suite", m.suite + (f" (split {m.split})" if m.split else "")),
        ("Training file", f"{m.training_file} (line {m.training_line})"),
        ("Reference", f"{m.reference_file or m.eval_dataset} (line {m.eval_line})"),
    ]
    if m.eval_instance_index is not None:
        head.append(("Eval instance", str(m.eval_instance_index)))
    head.append(("Report", m.location))
    score = m.contamination_score
    if score is not None:
        head.append(("Score", Text(f"{score:.3f}", style="bold")))
    print_fields(console, head)
    console.print()

    if verbose:
        print_metrics(console, m)

    console.print(Text("Training text", style="bold underline"))
    overlap = m.get_str("training_overlap_text")
    if overlap is not None:
        console.print(Text("  ") + highlight_spans(overlap, keep_markers=plain))
    else:
        console.print("  (no training text in this report)")
    console.print()

    console.print(Text("Eval record", style="bold underline"))
    passage = m.get_str("eval_passage_text")
    question = m.get_str("eval_question_text")
    answer = m.get_str("eval_answer_text")
    if passage is None and question is None and answer is None:
        question = m.get_str("eval_overlap_text")
    shown = False
    for label, value, style in (
        ("Passage", passage, PASSAGE_STYLE),
        ("Question", question, QUESTION_STYLE),
        ("Answer", answer, ANSWER_STYLE),
    ):
        if value is not None:
            line = Text("  ")
            line.append(f"[{label}]", style=style)
            line.append(f" {value}")
            console.print(line)
            shown = True
    if not shown:
        console.print("  (no eval text in this report)")
    console.print()

    if score is not None:
        verdict, style = assessment(score)
        console.print(Text(f"Assessment: {verdict}", style=style))


def print_rule(console: Console, title: str) -> None:
    if is_plain(console):
        console.print("=" * min(80, console.width))
        console.print(title)
        console.print("=" * min(80, console.width))
    else:
        console.rule(Text(title, style="bold"), align="left")
