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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from decon.common.resources import bundled_reference_dir
from decon.errors import DeconError

DEFAULT_PUNCTUATION = "!'\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\u201c\u201d\u2018\u2019\u2014"

#: Name upstream uses for its bundled reference set; resolves to the package's copy.
BUNDLED_EVALS_NAME = "bundled-evals"
USER_REFERENCE_DIR = Path(os.path.expanduser("~/.local/share/decon/references"))


def default_worker_threads() -> int:
    return os.cpu_count() or 4


@dataclass
class DetectionConfig:
    mode: str = "simple"
    ngram_size: int = 5
    tokenizer_str: str = "cl100k"
    hash_seed: int = 0
    content_key: str = "text"
    training_dir: str | None = None
    evals_dir: str = BUNDLED_EVALS_NAME
    report_output_dir: str | None = None
    cleaned_output_dir: str | None = None
    exact_override: bool = False
    sample_every_m_tokens: int = 10
    question_max_consecutive_misses: int = 11
    ngram_bucket_lru_cache: int = 10000
    punctuation_chars: str = DEFAULT_PUNCTUATION
    worker_threads: int = field(default_factory=default_worker_threads)
    window_size_increment: int | None = None
    num_windows: int | None = None
    window_step_size: int | None = None
    short_answer_window_length: int = 50
    min_long_answer_window: int = 100
    short_answer_token_threshold: int = 3
    answer_ngram_size: int = 3
    min_passage_distance: int = 100
    passage_max_consecutive_misses: int = 2
    passage_ngram_size: int = 4
    contamination_score_threshold: float = 0.8
    purify: bool = False
    eval_dedup: bool = True
    eval_min_token_length: int = 20
    eval_min_unique_word_count: int = 4
    perfect_match_decay_start: int | None = 20
    perfect_match_decay_end: int | None = 50
    verbose: bool = False
    index_passages: bool = True
    index_answers: bool = True

    # ---- derived -------------------------------------------------------------------------
    @property
    def minimum_question_idf_threshold(self) -> float:
        from decon.detect.scoring import minimum_question_idf_threshold

        return minimum_question_idf_threshold(self.contamination_score_threshold)

    def resolved_evals_dir(self) -> Path:
        return resolve_evals_dir(self.evals_dir)

    def index_fingerprint_fields(self) -> dict[str, Any]:
        """The options that change what the reference index holds (for the index cache)."""
        keys = (
            "ngram_size", "tokenizer_str", "punctuation_chars", "short_answer_token_threshold",
            "answer_ngram_size", "passage_ngram_size", "eval_dedup", "eval_min_token_length",
            "eval_min_unique_word_count", "index_passages", "index_answers",
        )
        return {k: getattr(self, k) for k in keys}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELD_NAMES = {f.name for f in dataclasses.fields(DetectionConfig)}


def resolve_evals_dir(value: str | os.PathLike[str]) -> Path:
    """Map upstream's ``bundled-evals`` default onto the project's bundled reference set."""
    path = Path(value)
    if str(value) == BUNDLED_EVALS_NAME and not path.exists():
        return bundled_reference_dir()
    return path


def load_config_file(path: str | os.PathLike[str]) -> DetectionConfig:
    """Read a YAML config; missing keys keep their defaults, unknown keys are reported."""
    p = Path(path)
    if not p.is_file():
        raise DeconError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
        raise DeconError(f"cannot parse config file {p}: {first}") from None
    if not isinstance(data, dict):
        raise DeconError(f"config file {p} must hold a mapping of option: value")
    cfg = DetectionConfig()
    for key, value in data.items():
        if key not in FIELD_NAMES:
            print(f"Warning: unknown option '{key}' in {p} ignored", file=sys.stderr)
            continue
        if value is None and key in ("training_dir",):
            continue
        setattr(cfg, key, _coerce(key, value, p))
    return cfg


def _coerce(key: str, value: Any, source: Path) -> Any:
    default = getattr(DetectionConfig(), key)
    f_type = {f.name: f.type for f in dataclasses.fields(DetectionConfig)}[key]
    if value is None:
        if "None" in str(f_type):
            return None
        return default
    try:
        if isinstance(default, bool) or f_type == "bool":
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if f_type.startswith("int"):
            return int(value)
        if f_type.startswith("float"):
            return float(value)
        if f_type.startswith("str"):
            return str(value)
    except (TypeError, ValueError):
        raise DeconError(f"option '{key}' in {source} has an invalid value: {value!r}") from None
    return value


def generate_temp_dir(prefix: str) -> str:
    """A fresh, unique directory name under the system temp dir, e.g. /tmp/decon-1a2b3c4d."""
    seed = f"{time.time_ns()}-{os.getpid()}".encode()
    short = hashlib.blake2b(seed, digest_size=4).hexdigest()
    return str(Path(tempfile.gettempdir()) / f"{prefix}-{short}")
