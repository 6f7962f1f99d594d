"""Detection configuration: defaults < YAML config file < command-line flags.

Field names are upstream decon's YAML keys, so upstream config files load unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
import tempfile
import time
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass

from decon.common.resources import bundled_reference_dir
from decon.errors import DeconError

DEFAULT_PUNCTUATION = "!'\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\u201c\u201d\u2018\u2019\u2014"

#: Name upstream uses for its bundled reference set; resolves to the package's copy.
BUNDLED_EVALS_NAME = "bundled-evals"
USER_REFERENCE_DIR = Path(os.path.expanduser("~/.local/share/decon/references"))


MAX_NGRAM_SIZE = 256
MAX_COUNT = 2**31 - 1


def default_worker_threads() -> int:
    return os.cpu_count() or 4


# Value types: strict (no bool for int, no float for int, no string for bool) and bounded.
NgramSize = Annotated[int, Field(ge=1, le=MAX_NGRAM_SIZE)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
OptionalCount = Annotated[int | None, Field(ge=0, le=MAX_COUNT)]
Score = Annotated[float, Field(ge=0.0, le=1.0)]
NonEmpty = Annotated[str, Field(min_length=1)]

_STRICT = ConfigDict(strict=True, extra="forbid", validate_assignment=True, allow_inf_nan=False)


@dataclass(config=_STRICT)
class DetectionConfig:
    """Every detection option, validated on construction and on every assignment."""

    mode: Literal["simple", "minhash"] = "simple"
    ngram_size: NgramSize = 5
    tokenizer_str: NonEmpty = "cl100k"
    hash_seed: Annotated[int, Field(ge=0, le=2**64 - 1)] = 0
    content_key: NonEmpty = "text"
    training_dir: str | None = None
    training_dataset: str | None = None  # a Hugging Face hub dataset id (org/name) instead of training_dir
    config_name: str | None = None  # with a hub-style dataset: only this configuration's files
    split: str | None = None  # with a hub-style dataset: only this split's files
    evals_dir: NonEmpty = BUNDLED_EVALS_NAME
    report_output_dir: str | None = None
    cleaned_output_dir: str | None = None
    exact_override: bool = False
    sample_every_m_tokens: Annotated[int, Field(ge=-MAX_COUNT, le=MAX_COUNT)] = 10  # < 1 is raised to 1
    question_max_consecutive_misses: Count = 11
    ngram_bucket_lru_cache: Count = 10000
    punctuation_chars: str = DEFAULT_PUNCTUATION
    worker_threads: Annotated[int, Field(ge=1, le=4096)] = field(default_factory=default_worker_threads)
    window_size_increment: OptionalCount = None
    num_windows: OptionalCount = None
    window_step_size: OptionalCount = None
    short_answer_window_length: Count = 50
    min_long_answer_window: Count = 100
    short_answer_token_threshold: Count = 3
    answer_ngram_size: NgramSize = 3
    min_passage_distance: Count = 100
    passage_max_consecutive_misses: Count = 2
    passage_ngram_size: NgramSize = 4
    contamination_score_threshold: Score = 0.8
    purify: bool = False
    eval_dedup: bool = True
    eval_min_token_length: Count = 20
    eval_min_unique_word_count: Count = 4
    perfect_match_decay_start: OptionalCount = 20
    perfect_match_decay_end: OptionalCount = 50
    verbose: bool = False
    index_passages: bool = True
    index_answers: bool = True
    max_line_bytes: Annotated[int, Field(ge=1, le=1 << 40)] = 64 << 20
    skip_bad_files: bool = False
    # MinHash mode (mode: minhash)
    num_bands: Annotated[int, Field(ge=2, le=4096)] = 7
    band_size: Annotated[int, Field(ge=1, le=4096)] = 8
    jaccard_similarity_threshold: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.5
    debug: bool = False
    # Recall mode (recall: true): an additive pass after SIMPLE, see decon/detect/recall_scan.py
    recall: bool = False
    recall_question_coverage: Score = 0.9
    recall_answer_coverage: Score = 0.8
    recall_long_question_tokens: Annotated[int, Field(ge=1, le=MAX_COUNT)] = 20
    recall_short_alone_tokens: Count = 12
    recall_short_alone_rare_share: Score = 0.5
    recall_answer_gap: Count = 8
    # Semantic pass (semantic: true; it implies recall): reworded questions, see decon/detect/semantic_scan.py
    semantic: bool = False
    semantic_threshold: Score = 0.9
    semantic_model: str | None = None

    @property
    def runs_recall(self) -> bool:
        """Whether the recall pass runs (``recall: true``, or ``semantic: true``, which implies it)."""
        return self.recall or self.semantic

    # ---- derived -------------------------------------------------------------------------
    def resolved_evals_dir(self) -> Path:
        return resolve_evals_dir(self.evals_dir)

    def index_fingerprint_fields(self) -> dict[str, Any]:
        """The options that change what the reference index holds (for the index cache)."""
        if self.mode == "minhash":
            keys: tuple[str, ...] = ("mode", "ngram_size", "tokenizer_str", "punctuation_chars", "num_bands",
                                     "band_size", "hash_seed", "exact_override")
            return {k: getattr(self, k) for k in keys}
        keys = (
            "ngram_size", "tokenizer_str", "punctuation_chars", "short_answer_token_threshold",
            "answer_ngram_size", "passage_ngram_size", "eval_dedup", "eval_min_token_length",
            "eval_min_unique_word_count", "index_passages", "index_answers",
        )
        out = {k: getattr(self, k) for k in keys}
        if self.runs_recall:  # the recall arrays ride with the index; a SIMPLE-only key stays as it was
            out["recall"] = 2  # the recall arrays' layout version
        if self.semantic:
            out["semantic"] = 2  # the semantic arrays' layout version (semantic_index.LAYOUT)
        return out

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(config=_STRICT)
class LegacyKeys:
    """Keys upstream's older config files and tests write: checked, then ignored (upstream ignores
    them too; SIMPLE scoring has one combined threshold, and the reference set is ``evals_dir``)."""

    question_threshold: Score | None = None
    answer_threshold: Score | None = None
    passage_threshold: Score | None = None
    reference_dir: str | None = None


FIELD_NAMES = {f.name for f in dataclasses.fields(DetectionConfig)}
LEGACY_KEYS = {f.name for f in dataclasses.fields(LegacyKeys)}
NULLABLE_FIELDS = {f.name for f in dataclasses.fields(DetectionConfig) if "None" in str(f.type)} | LEGACY_KEYS


def resolve_evals_dir(value: str | os.PathLike[str]) -> Path:
    """Map upstream's ``bundled-evals`` default onto the project's bundled reference set."""
    path = Path(value)
    if str(value) == BUNDLED_EVALS_NAME and not path.exists():
        return bundled_reference_dir()
    return path


def load_config_file(path: str | os.PathLike[str]) -> DetectionConfig:
    """Read a YAML config; missing keys keep their defaults. Any unknown key, wrong type or value
    out of range is a one-line DeconError naming the file and the key."""
    p = Path(path)
    if not p.is_file():
        raise DeconError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise DeconError(f"cannot parse config file {p}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
        raise DeconError(f"cannot parse config file {p}: {first}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise DeconError(f"config file {p} must hold a mapping of option: value")
    # an empty value means "unset" (the default), except where None is itself a setting
    values = {k: v for k, v in data.items() if v is not None or k in NULLABLE_FIELDS}
    legacy = {k: v for k, v in values.items() if k in LEGACY_KEYS}
    for key in sorted(k for k, v in legacy.items() if v is not None):
        print(f"Note: legacy option '{key}' in {p} is accepted and has no effect", file=sys.stderr)
    try:
        LegacyKeys(**legacy)
        return DetectionConfig(**{k: v for k, v in values.items() if k not in LEGACY_KEYS})
    except ValidationError as exc:
        raise DeconError(f"config file {p}: {describe_validation_error(exc)}") from None


def describe_validation_error(exc: ValidationError) -> str:
    """The first problem of a pydantic ValidationError as one line naming the option."""
    err = exc.errors()[0]
    key = ".".join(str(part) for part in err["loc"]) or "?"
    if err["type"] == "unexpected_keyword_argument":
        return f"unknown option '{key}'"
    shown = repr(err.get("input"))
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"option '{key}': {err['msg'].rstrip('.')} (got {shown})"


def generate_temp_dir(prefix: str) -> str:
    """A fresh, unique directory name under the system temp dir, e.g. /tmp/decon-1a2b3c4d."""
    seed = f"{time.time_ns()}-{os.getpid()}".encode()
    short = hashlib.blake2b(seed, digest_size=4).hexdigest()
    return str(Path(tempfile.gettempdir()) / f"{prefix}-{short}")
