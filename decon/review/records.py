"""In-memory form of one contamination report line, as written by ``decon detect``.

A report line is a JSON object.  Only a handful of fields are required to place a match
(which training document, which eval record); everything else is optional and read lazily
from the raw mapping, so reports from newer or older detectors still load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# (training_file, training_line, eval_dataset, eval_line): identifies one match across runs.
MatchKey = tuple[str, int, str, int]


def _opt_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _opt_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass
class Match:
    """One report record plus where it was read from."""

    raw: dict[str, Any]
    source_file: Path = field(default_factory=Path)
    source_line: int = 0  # 1-based line in source_file

    # -- identity ---------------------------------------------------------------------------
    @property
    def training_file(self) -> str:
        return str(self.raw["training_file"])

    @property
    def training_line(self) -> int:
        return int(self.raw["training_line"])

    @property
    def eval_dataset(self) -> str:
        value = self.raw.get("eval_dataset")
        if isinstance(value, str):
            return value
        return self.eval_key or ""

    @property
    def eval_key(self) -> str | None:
        return _opt_str(self.raw.get("eval_key"))

    @property
    def suite(self) -> str:
        """The eval suite name: ``eval_key`` when present, else ``eval_dataset``."""
        return self.eval_key or self.eval_dataset

    @property
    def eval_line(self) -> int:
        value = _opt_int(self.raw.get("eval_line"))
        if value is None:
            value = _opt_int(self.raw.get("eval_instance_index"))
        return value if value is not None else 0

    @property
    def eval_instance_index(self) -> int | None:
        return _opt_int(self.raw.get("eval_instance_index"))

    @property
    def eval_instance(self) -> int:
        """The eval instance index, falling back to the reference line number."""
        idx = self.eval_instance_index
        return idx if idx is not None else self.eval_line

    @property
    def split(self) -> str | None:
        return _opt_str(self.raw.get("split"))

    @property
    def fingerprint(self) -> str | None:
        return _opt_str(self.raw.get("fingerprint"))

    @property
    def reference_file(self) -> str | None:
        return _opt_str(self.raw.get("reference_file"))

    @property
    def key(self) -> MatchKey:
        return (self.training_file, self.training_line, self.eval_dataset, self.eval_line)

    @property
    def training_doc(self) -> tuple[str, int]:
        return (self.training_file, self.training_line)

    @property
    def eval_record_id(self) -> str:
        """Identity of the matched eval record: its fingerprint, or its reference file and line."""
        if self.fingerprint:
            return self.fingerprint
        return f"{self.reference_file or self.eval_dataset}:{self.eval_line}"

    # -- scores -----------------------------------------------------------------------------
    @property
    def contamination_score(self) -> float | None:
        """The match's score: ``contamination_score`` (SIMPLE), else ``jaccard_similarity`` (MinHash)."""
        score = _opt_float(self.raw.get("contamination_score"))
        return score if score is not None else _opt_float(self.raw.get("jaccard_similarity"))

    @property
    def ngram_match_cnt(self) -> int | None:
        return _opt_int(self.raw.get("ngram_match_cnt"))

    def get_float(self, name: str) -> float | None:
        return _opt_float(self.raw.get(name))

    def get_int(self, name: str) -> int | None:
        return _opt_int(self.raw.get(name))

    def get_str(self, name: str) -> str | None:
        return _opt_str(self.raw.get(name))

    @property
    def location(self) -> str:
        return f"{self.source_file}:{self.source_line}"


REQUIRED_FIELDS: tuple[tuple[str, type], ...] = (("training_file", str), ("training_line", int))


def validate_record(obj: Any) -> str | None:
    """Return why ``obj`` is not a usable report record, or None when it is."""
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}"
    for name, typ in REQUIRED_FIELDS:
        value = obj.get(name)
        if value is None:
            return f"missing field '{name}'"
        if typ is int and (isinstance(value, bool) or not isinstance(value, int)):
            return f"field '{name}' must be an integer"
        if typ is str and not isinstance(value, str):
            return f"field '{name}' must be a string"
    if not isinstance(obj.get("eval_dataset"), str) and not isinstance(obj.get("eval_key"), str):
        return "missing field 'eval_dataset' (or 'eval_key')"
    return None
