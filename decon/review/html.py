"""``decon review --html``: one self-contained HTML file (inline CSS, SVG charts and script; no
network) with the ``--stats`` summary, the run's configuration and a filterable list of matches.

The summary is rendered here as static HTML and SVG. The matches travel as a compressed blob
(:mod:`decon.review.html_data`) and the page's script renders only the page of matches in view.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from html import escape
from pathlib import Path

from decon import __version__
from decon.review import analysis
from decon.review.html_assets import PAGE_CSS, PAGE_SCRIPT
from decon.review.html_data import build_payload, encode_payload, match_score
from decon.review.records import Match
from decon.review.svg import histogram, horizontal_bars

TOP_FILES = 20
_REPORT_NAME = re.compile(r"-([a-z]+)-(\d+\.\d+)\.jsonl")


def score_bins(matches: Sequence[Match], width: float = 0.05) -> list[tuple[str, int]]:
    """Counts of scores in bins of ``width`` from the lowest score's bin up to 1.0 (1.0 and above in the
    last); matches without a score are counted as "none"."""
    scores = [s for s in (match_score(m) for m in matches) if s is not None]
    missing = len(matches) - len(scores)
    bins: list[tuple[str, int]] = []
    if scores:
        steps = round(1 / width)
        low = max(0, min(steps - 1, math.floor(min(scores) * steps + 1e-9)))
        counts = [0] * (steps - low)
        for s in scores:
            counts[min(steps - 1, max(low, math.floor(s * steps + 1e-9))) - low] += 1
        bins = [(f"{(low + i) / steps:.2f}-{(low + i + 1) / steps:.2f}", c) for i, c in enumerate(counts)]
    if missing:
        bins.append(("none", missing))
    return bins


def top_training_files(matches: Sequence[Match], n: int = TOP_FILES) -> list[tuple[str, int]]:
    """Training files with the most contaminated documents (unique lines)."""
    lines: dict[str, set[int]] = defaultdict(set)
    for m in matches:
        lines[m.training_file].add(m.training_line)
    ranked = sorted(((f, len(v)) for f, v in lines.items()), key=lambda kv: (-kv[1], kv[0]))
    return ranked[:n]


def run_configuration(directory: Path, files: Sequence[Path], matches: Sequence[Match],
                      config: object | None) -> list[tuple[str, str]]:
    """What is known of the run: from the report names and records, and the detect config if given."""
    modes = sorted({f"{m.group(1)} (threshold {m.group(2)})" for f in files
                    if (m := _REPORT_NAME.search(f.name))})
    methods = sorted({m.get_str("method") or "" for m in matches} - {""})
    rows = [("decon version (this report)", __version__), ("Report directory", str(directory)),
            ("Report files", str(len(files)))]
    if modes:
        rows.append(("Mode and threshold (from report names)", ", ".join(modes)))
    if methods:
        rows.append(("Methods in the records", ", ".join(methods)))
    if config is not None and dataclasses.is_dataclass(config):
        for field in dataclasses.fields(config):
            rows.append((f"config: {field.name}", repr(getattr(config, field.name))))
    return rows


def _table(table_id: str, head: Sequence[str], rows: Sequence[Sequence[object]], keys: Sequence[str] = ()) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = []
    for i, row in enumerate(rows):
        key = f' data-key="{escape(str(keys[i]))}"' if keys else ""
        body.append(f"<tr{key}>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>")
    return f'<table id="{table_id}"><thead><tr>{th}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _suite_section(matches: Sequence[Match]) -> str:
    docs = analysis.training_docs_per_suite(matches)
    instances = dict(analysis.eval_instances_per_suite(matches))
    per_suite: dict[str, int] = defaultdict(int)
    for m in matches:
        per_suite[m.suite] += 1
    rows = [(name, n, instances.get(name, 0), per_suite[name]) for name, n in docs]
    table = _table("suite-table", ("Eval suite", "Contaminated training documents", "Contaminated eval instances",
                                   "Matches"), rows, keys=[name for name, _ in docs])
    charts = (horizontal_bars("Contaminated training documents per eval suite", docs, "chart-suite-docs")
              + horizontal_bars("Contaminated eval instances per eval suite",
                                analysis.eval_instances_per_suite(matches), "chart-suite-instances", "#0f766e"))
    return f'<section id="suites"><h2>Per eval suite</h2>{table}<div class="charts">{charts}</div></section>'


def _distribution_section(matches: Sequence[Match]) -> str:
    parts = [histogram("Match score histogram (contamination score, or Jaccard similarity)",
                       score_bins(matches), "chart-scores")]
    dist = analysis.ngram_distribution(matches)
    if dist is not None:
        parts.append(histogram("Prompt n-gram matches per match", dist.buckets, "chart-ngrams", "#7c3aed"))
    top = top_training_files(matches)
    parts.append(horizontal_bars(f"Top {len(top)} contaminated training files (unique documents)", top,
                                 "chart-top-files", "#b91c1c"))
    table = _table("top-files-table", ("Training file", "Contaminated documents"), top)
    return f'<section id="distribution"><h2>Scores and files</h2><div class="charts">{"".join(parts)}</div>{table}</section>'


def _summary_section(matches: Sequence[Match]) -> str:
    s = analysis.summarize(matches)
    rows = [("Contaminated training documents", s.training_docs), ("Matches (report lines)", s.instances),
            ("Contaminated eval instances", s.eval_instances),
            ("Eval suites", len({m.suite for m in matches}))]
    return f'<section id="summary"><h2>Summary</h2>{_table("summary-table", ("", "Count"), rows)}</section>'


def render_page(directory: Path, files: Sequence[Path], matches: Sequence[Match], config: object | None = None,
                note: str | None = None) -> str:
    """The whole HTML document."""
    title = f"decon contamination report: {directory}"
    config_rows = run_configuration(directory, files, matches, config)
    sections = [
        _summary_section(matches), _suite_section(matches), _distribution_section(matches),
        '<section id="matches"><h2>Matches</h2><div id="controls"></div><div id="match-list">'
        "<p>Loading matches…</p></div><div id=\"pager\"></div></section>",
        f'<section id="config"><h2>Run configuration</h2>{_table("config-table", ("Setting", "Value"), config_rows)}'
        "</section>",
    ]
    note_html = f'<p class="note">{escape(note)}</p>' if note else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<meta name=\"generator\" content=\"decon {escape(__version__)}\">"
        f"<title>{escape(title)}</title><style>{PAGE_CSS}</style></head><body>"
        f"<header><h1>decon contamination report</h1><p>{escape(str(directory))} · "
        f"decon {escape(__version__)}</p>{note_html}<nav><a href=\"#summary\">Summary</a> "
        "<a href=\"#suites\">Eval suites</a> <a href=\"#distribution\">Scores and files</a> "
        "<a href=\"#matches\">Matches</a> <a href=\"#config\">Configuration</a></nav></header><main>"
        + "".join(sections)
        + "</main><script type=\"application/octet-stream\" id=\"decon-data\">"
        + encode_payload(build_payload(matches))
        + f"</script><script>{PAGE_SCRIPT}</script></body></html>\n"
    )
