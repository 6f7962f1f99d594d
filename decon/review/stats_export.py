"""Machine-readable statistics for ``decon review --stats`` and ``decon compare --stats``
(``--format json|csv``): the numbers of the text tables, per eval suite and in total.

JSON is one object following the versioned schema ``decon.stats/1`` (``docs/stats-schema.json``);
CSV is one row per eval suite. Computations only; the commands write the text (:func:`write_text`).
"""

from __future__ import annotations

import csv
import io
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from decon.common.file_io import atomic_output
from decon.compare.core import run_metrics
from decon.review import analysis
from decon.review.records import Match

SCHEMA = "decon.stats/1"
FORMATS = ("text", "json", "csv")
QUANTILES = (("min", 0.0), ("p25", 0.25), ("p50", 0.5), ("p75", 0.75), ("p90", 0.9), ("max", 1.0))
SCORE_KEYS = tuple(name for name, _ in QUANTILES) + ("mean",)

# (matches, contaminated training documents, eval instances hit) of some matches, counted as the
# command's text view counts them
Measure = Callable[[list[Match]], tuple[int, int, int]]


def review_measure(matches: list[Match]) -> tuple[int, int, int]:
    """As ``decon review --stats`` counts: report lines, (file, line), (eval dataset, instance)."""
    s = analysis.summarize(matches)
    return s.instances, s.training_docs, s.eval_instances


def compare_measure(matches: list[Match]) -> tuple[int, int, int]:
    """As ``decon compare`` counts: distinct matches, (file, line), (suite, split, instance)."""
    m = run_metrics(matches)
    return m.instances, m.training_docs, m.eval_instances


def suite_sizes(evals_dir: Path) -> dict[str, int]:
    """Eval instances per suite in a reference set (as ``decon evals`` counts them)."""
    from decon.evals import listing

    return {suite: len(s.instances) for suite, s in listing.collect(evals_dir).suites.items()}


def score_summary(scores: Sequence[float]) -> dict[str, float] | None:
    """Quantiles (linear interpolation) and mean of the scores; None without scores."""
    if not scores:
        return None
    values = np.asarray(scores, dtype=np.float64)
    summary = {name: round(float(np.quantile(values, q)), 6) for name, q in QUANTILES}
    summary["mean"] = round(float(values.mean()), 6)
    return summary


def _counts(matches: list[Match], measure: Measure) -> dict[str, Any]:
    found, docs, instances = measure(matches)
    scores = [s for s in (m.contamination_score for m in matches) if s is not None]
    return {"matches": found, "training_docs": docs, "eval_instances": instances, "score": score_summary(scores)}


def run_stats(matches: Iterable[Match], sizes: dict[str, int] | None,
              measure: Measure = review_measure) -> dict[str, Any]:
    """``total`` and per-``suites`` counts of one run's matches (suites sorted by name). The share
    of a suite's instances hit needs its size in the reference set (``sizes``); else it is null."""
    items = list(matches)
    by_suite: dict[str, list[Match]] = defaultdict(list)
    for m in items:
        by_suite[m.suite].append(m)
    suites = []
    for name in sorted(by_suite):
        row = {"suite": name, **_counts(by_suite[name], measure)}
        total = (sizes or {}).get(name)
        row["eval_instances_total"] = total
        row["share_hit"] = round(row["eval_instances"] / total, 6) if total else None
        suites.append(row)
    return {"total": _counts(items, measure), "suites": suites}


def review_document(directory: Path, matches: Sequence[Match], report_lines: int, filters: list[str],
                    sizes: dict[str, int] | None, evals_dir: Path | None) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "command": "review",
        "reports": str(directory),
        "evals_dir": str(evals_dir) if evals_dir is not None else None,
        "filters": filters,
        "report_lines": report_lines,
        **run_stats(matches, sizes, review_measure),
    }


def compare_document(dirs: tuple[Path, Path], runs: tuple[dict, dict], report_lines: tuple[int, int],
                     filters: list[str], sizes: dict[str, int] | None, evals_dir: Path | None,
                     score_changes: dict[str, Any]) -> dict[str, Any]:
    """Both runs' statistics (``a``, ``b``), what only one found, and per-suite changes."""
    first, second = runs
    a = {"reports": str(dirs[0]), "report_lines": report_lines[0],
         **run_stats(first.values(), sizes, compare_measure)}
    b = {"reports": str(dirs[1]), "report_lines": report_lines[1],
         **run_stats(second.values(), sizes, compare_measure)}
    rows_a = {r["suite"]: r for r in a["suites"]}
    rows_b = {r["suite"]: r for r in b["suites"]}
    suites = []
    for name in sorted(set(rows_a) | set(rows_b)):
        ra, rb = rows_a.get(name, {}), rows_b.get(name, {})
        row: dict[str, Any] = {"suite": name}
        for key in ("matches", "training_docs", "eval_instances"):
            row[f"{key}_a"], row[f"{key}_b"] = ra.get(key, 0), rb.get(key, 0)
            row[f"{key}_change"] = row[f"{key}_b"] - row[f"{key}_a"]
        suites.append(row)
    keys_a, keys_b = set(first), set(second)
    return {
        "schema": SCHEMA,
        "command": "compare",
        "evals_dir": str(evals_dir) if evals_dir is not None else None,
        "filters": filters,
        "a": a,
        "b": b,
        "only_a": len(keys_a - keys_b),
        "only_b": len(keys_b - keys_a),
        "common": len(keys_a & keys_b),
        "score_changes": score_changes,
        "suites": suites,
    }


# ---- text -------------------------------------------------------------------------------------

def to_json(document: dict[str, Any]) -> str:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"


def _flat_row(prefix: str, row: dict[str, Any]) -> dict[str, Any]:
    out = {f"{prefix}{k}": row.get(k) for k in ("matches", "training_docs", "eval_instances",
                                                 "eval_instances_total", "share_hit")}
    score = row.get("score") or {}
    out.update({f"{prefix}score_{k}": score.get(k) for k in SCORE_KEYS})
    return out


def to_csv(document: dict[str, Any]) -> str:
    """One row per eval suite (review: the run's numbers; compare: both runs' and the changes)."""
    rows: list[dict[str, Any]] = []
    if document["command"] == "review":
        rows = [{"suite": r["suite"], **_flat_row("", r)} for r in document["suites"]]
        header = ["suite", *_flat_row("", {}).keys()]
    else:
        per_a = {r["suite"]: r for r in document["a"]["suites"]}
        per_b = {r["suite"]: r for r in document["b"]["suites"]}
        for r in document["suites"]:
            name = r["suite"]
            rows.append({**r, **_flat_row("a_", per_a.get(name, {})), **_flat_row("b_", per_b.get(name, {}))})
        header = ["suite"] + [f"{k}_{w}" for k in ("matches", "training_docs", "eval_instances")
                              for w in ("a", "b", "change")]
        header += [k for k in _flat_row("a_", {}) if k not in {"a_matches", "a_training_docs", "a_eval_instances"}]
        header += [k for k in _flat_row("b_", {}) if k not in {"b_matches", "b_training_docs", "b_eval_instances"}]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()


def render(document: dict[str, Any], fmt: str) -> str:
    return to_json(document) if fmt == "json" else to_csv(document)


def write_text(text: str, output: Path | None) -> None:
    """To ``output`` (a temporary name, then renamed) or to stdout."""
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with atomic_output(output) as fh:
        fh.write(text.encode("utf-8"))
