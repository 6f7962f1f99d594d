"""Comparing the matches of two detect runs (no output here; see ``command``).

Two matches are "the same" when they pair the same training document with the same eval record:
(training_file, training_line, eval_dataset, eval_line).  The ``--only-in-*`` views work one level
up, on eval records: a record is identified by its fingerprint, or, in reports written without
fingerprints, by its reference file and line.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from decon.review.records import Match, MatchKey


def index_by_key(matches: Iterable[Match]) -> dict[MatchKey, Match]:
    """Map each match key to its record (a later duplicate replaces an earlier one)."""
    return {m.key: m for m in matches}


@dataclass(frozen=True)
class RunMetrics:
    training_docs: int  # unique (training_file, training_line)
    instances: int  # distinct match keys
    eval_instances: int  # unique (suite, split, eval instance)
    mean_score: float  # mean contamination_score (records without one count as 0)


def run_metrics(matches: Iterable[Match]) -> RunMetrics:
    items = list(matches)
    docs = {m.training_doc for m in items}
    evals = {(m.suite, m.split or "unknown", m.eval_instance) for m in items}
    total = sum(m.contamination_score or 0.0 for m in items)
    return RunMetrics(
        training_docs=len(docs),
        instances=len(items),
        eval_instances=len(evals),
        mean_score=total / len(items) if items else 0.0,
    )


@dataclass(frozen=True)
class ScoreChanges:
    lower: int
    higher: int
    same: int
    mean_drop: float  # mean decrease among ``lower``
    mean_rise: float  # mean increase among ``higher``


SCORE_EPSILON = 0.001


def score_changes(first: dict[MatchKey, Match], second: dict[MatchKey, Match], common: set[MatchKey]) -> ScoreChanges:
    lower = higher = same = 0
    drop = rise = 0.0
    for key in common:
        a = first[key].contamination_score or 0.0
        b = second[key].contamination_score or 0.0
        if abs(b - a) < SCORE_EPSILON:
            same += 1
        elif b < a:
            lower += 1
            drop += a - b
        else:
            higher += 1
            rise += b - a
    return ScoreChanges(
        lower=lower,
        higher=higher,
        same=same,
        mean_drop=drop / lower if lower else 0.0,
        mean_rise=rise / higher if higher else 0.0,
    )


def _per_suite(matches: Iterable[Match], item: Callable[[Match], tuple]) -> dict[str, int]:
    groups: dict[str, set] = defaultdict(set)
    for m in matches:
        groups[m.suite].add(item(m))
    return {suite: len(members) for suite, members in groups.items()}


def suite_deltas(first: Iterable[Match], second: Iterable[Match], what: str) -> list[tuple[str, int, int, int]]:
    """(suite, count in first, count in second, change) per eval suite, largest rise first.

    ``what`` is ``"docs"`` (unique training documents) or ``"evals"`` (unique eval instances).
    """
    if what == "docs":
        def item(m: Match) -> tuple:
            return m.training_doc
    else:
        def item(m: Match) -> tuple:
            return (m.split or "unknown", m.eval_instance)
    a = _per_suite(first, item)
    b = _per_suite(second, item)
    rows = [(s, a.get(s, 0), b.get(s, 0), b.get(s, 0) - a.get(s, 0)) for s in set(a) | set(b)]
    rows.sort(key=lambda r: (-r[3], r[0]))
    return rows


@dataclass
class Comparison:
    first: dict[MatchKey, Match]
    second: dict[MatchKey, Match]

    @property
    def only_first(self) -> set[MatchKey]:
        return set(self.first) - set(self.second)

    @property
    def only_second(self) -> set[MatchKey]:
        return set(self.second) - set(self.first)

    @property
    def common(self) -> set[MatchKey]:
        return set(self.first) & set(self.second)

    def common_sorted(self) -> list[MatchKey]:
        """Common keys, biggest score difference first (ties in key order)."""

        def diff(key: MatchKey) -> float:
            a = self.first[key].contamination_score or 0.0
            b = self.second[key].contamination_score or 0.0
            return abs(b - a)

        return sorted(sorted(self.common), key=diff, reverse=True)


def compare(first: Iterable[Match], second: Iterable[Match]) -> Comparison:
    return Comparison(first=index_by_key(first), second=index_by_key(second))


def eval_records_only_in(
    mine: dict[MatchKey, Match], other: dict[MatchKey, Match]
) -> list[tuple[str, list[Match]]]:
    """Eval records matched in ``mine`` but never in ``other``, with their matches.

    Groups come largest first (ties by id); matches inside a group by score, lowest first.
    """
    others = {m.eval_record_id for m in other.values()}
    groups: dict[str, list[Match]] = defaultdict(list)
    for key in sorted(mine):
        match = mine[key]
        if match.eval_record_id not in others:
            groups[match.eval_record_id].append(match)
    result = [
        (record_id, sorted(items, key=lambda m: m.contamination_score or 0.0))
        for record_id, items in groups.items()
    ]
    result.sort(key=lambda g: (-len(g[1]), g[0]))
    return result
