"""Pure computations over report records: filtering, sorting and the numbers behind ``--stats``.

Kept free of any output so tests (and other tools) can use them directly.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from decon.review.records import Match

SORT_SCORE = "score"
SORT_LENGTH_DESC = "length-desc"
SORT_LENGTH_ASC = "length-asc"

# (label, lowest, highest) buckets for the prompt n-gram match histogram
NGRAM_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("1-5", 1, 5),
    ("6-10", 6, 10),
    ("11-20", 11, 20),
    ("21-50", 21, 50),
    ("51-100", 51, 100),
    ("101-200", 101, 200),
    ("201-500", 201, 500),
    ("500+", 501, None),
)


def filter_matches(
    matches: Iterable[Match],
    min_score: float | None = None,
    min_length: int | None = None,
    eval_name: str | None = None,
) -> list[Match]:
    """Keep matches that pass every given filter.

    ``eval_name`` must equal the suite name exactly.  With ``min_score`` (``min_length``), a
    record without ``contamination_score`` (``ngram_match_cnt``) is dropped.
    """
    kept: list[Match] = []
    for match in matches:
        if eval_name is not None and match.suite != eval_name:
            continue
        if min_score is not None:
            score = match.contamination_score
            if score is None or score < min_score:
                continue
        if min_length is not None:
            count = match.ngram_match_cnt
            if count is None or count < min_length:
                continue
        kept.append(match)
    return kept


def sort_matches(matches: Sequence[Match], order: str = SORT_SCORE) -> list[Match]:
    """Stable sort: by score ascending (default) or by prompt n-gram matches."""
    if order == SORT_LENGTH_DESC:
        return sorted(matches, key=lambda m: m.ngram_match_cnt or 0, reverse=True)
    if order == SORT_LENGTH_ASC:
        return sorted(matches, key=lambda m: m.ngram_match_cnt or 0)
    return sorted(matches, key=lambda m: m.contamination_score or 0.0)


@dataclass(frozen=True)
class Summary:
    training_docs: int  # unique (training_file, training_line)
    instances: int  # report lines
    eval_instances: int  # unique (eval_dataset, eval instance)


def summarize(matches: Sequence[Match]) -> Summary:
    docs = {m.training_doc for m in matches}
    evals = {(m.eval_dataset, m.eval_instance) for m in matches}
    return Summary(training_docs=len(docs), instances=len(matches), eval_instances=len(evals))


def _sorted_counts(groups: dict[str, set]) -> list[tuple[str, int]]:
    return sorted(((name, len(items)) for name, items in groups.items()), key=lambda kv: (-kv[1], kv[0]))


def training_docs_per_suite(matches: Iterable[Match]) -> list[tuple[str, int]]:
    """Unique contaminated training documents per eval suite, largest first."""
    groups: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for m in matches:
        groups[m.suite].add(m.training_doc)
    return _sorted_counts(groups)


def eval_instances_per_suite(matches: Iterable[Match]) -> list[tuple[str, int]]:
    """Unique contaminated eval instances per eval suite, largest first."""
    groups: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for m in matches:
        groups[m.suite].add((m.eval_dataset, m.eval_instance))
    return _sorted_counts(groups)


@dataclass(frozen=True)
class NgramDistribution:
    with_data: int
    without_data: int
    minimum: int
    maximum: int
    median: int
    mean: float
    buckets: list[tuple[str, int]]  # only non-empty buckets


def ngram_distribution(matches: Iterable[Match]) -> NgramDistribution | None:
    """Statistics of ``ngram_match_cnt``; None when no record carries it."""
    counts: list[int] = []
    missing = 0
    for m in matches:
        value = m.ngram_match_cnt
        if value is None:
            missing += 1
        else:
            counts.append(value)
    if not counts:
        return None
    counts.sort()
    n = len(counts)
    median = counts[n // 2] if n % 2 else (counts[n // 2 - 1] + counts[n // 2]) // 2
    buckets = []
    for label, low, high in NGRAM_BUCKETS:
        hits = sum(1 for c in counts if c >= low and (high is None or c <= high))
        if hits:
            buckets.append((label, hits))
    return NgramDistribution(
        with_data=n,
        without_data=missing,
        minimum=counts[0],
        maximum=counts[-1],
        median=median,
        mean=sum(counts) / n,
        buckets=buckets,
    )


def dataset_counts(matches: Iterable[Match], base_dir: Path) -> list[tuple[str, int]]:
    """Unique training documents per training dataset, where a dataset is the first folder of
    the report file's path below ``base_dir`` (reports directly in ``base_dir`` count under
    their own file name)."""
    groups: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for m in matches:
        try:
            rel = m.source_file.relative_to(base_dir)
            name = rel.parts[0] if rel.parts else "unknown"
        except ValueError:
            name = "unknown"
        groups[name].add(m.training_doc)
    return _sorted_counts(groups)


@dataclass(frozen=True)
class TopExample:
    eval_dataset: str
    eval_line: int
    count: int
    text: str | None
    training_files: list[str]


def top_eval_examples(matches: Sequence[Match], n: int) -> list[TopExample]:
    """The ``n`` eval records (eval_dataset, eval_line) matched most often."""
    counter: Counter[tuple[str, int]] = Counter((m.eval_dataset, m.eval_line) for m in matches)
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[: max(n, 0)]
    result: list[TopExample] = []
    for (dataset, line), count in ranked:
        members = [m for m in matches if m.eval_dataset == dataset and m.eval_line == line]
        first = members[0]
        text = first.get_str("eval_question_text") or first.get_str("eval_overlap_text")
        result.append(
            TopExample(
                eval_dataset=dataset,
                eval_line=line,
                count=count,
                text=text,
                training_files=[m.training_file for m in members],
            )
        )
    return result
