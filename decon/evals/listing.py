"""Counting what a reference directory holds, per eval suite."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from decon.common.file_io import COLUMNAR_EXTENSIONS
from decon.common.file_io import COMPRESSION_SUFFIXES as COMPRESSED_SUFFIXES
from decon.common.jsonl import iter_json_lines
from decon.errors import DeconError

REFERENCE_SUFFIXES = (".jsonl", ".json") + tuple(f".jsonl{ext}" for ext in COMPRESSED_SUFFIXES) + \
    COLUMNAR_EXTENSIONS


@dataclass
class SuiteStats:
    records: int = 0
    instances: set[tuple[str, str, object]] = field(default_factory=set)
    question_lengths: list[int] = field(default_factory=list)
    answer_lengths: list[int] = field(default_factory=list)
    passage_lengths: list[int] = field(default_factory=list)

    @property
    def questions(self) -> int:
        return len(self.question_lengths)

    @property
    def answers(self) -> int:
        return len(self.answer_lengths)

    @property
    def passages(self) -> int:
        return len(self.passage_lengths)


@dataclass
class ReferenceStats:
    suites: dict[str, SuiteStats]
    files: int
    skipped: int  # records without an eval_key


def reference_files(directory: Path) -> list[Path]:
    if not directory.exists():
        raise DeconError(f"reference directory not found: {directory}")
    if not directory.is_dir():
        raise DeconError(f"not a directory: {directory}")
    return sorted(
        p
        for p in directory.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(REFERENCE_SUFFIXES)
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def collect(directory: Path) -> ReferenceStats:
    """Per-suite counts of records, eval instances and non-empty question/answer/passage."""
    files = reference_files(directory)
    suites: dict[str, SuiteStats] = defaultdict(SuiteStats)
    skipped = 0
    for path in files:
        for _lineno, obj in iter_json_lines(path):
            key = obj.get("eval_key") if isinstance(obj, dict) else None
            if not isinstance(key, str) or not key.strip():
                skipped += 1
                continue
            stats = suites[key]
            stats.records += 1
            stats.instances.add((str(obj.get("config")), str(obj.get("split")), obj.get("eval_instance_index")))
            for name, bucket in (
                ("question", stats.question_lengths),
                ("answer", stats.answer_lengths),
                ("passage", stats.passage_lengths),
            ):
                text = _text(obj.get(name))
                if text is not None:
                    bucket.append(len(text))
    return ReferenceStats(suites=dict(sorted(suites.items())), files=len(files), skipped=skipped)
