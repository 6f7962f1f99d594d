"""Detection flags shared by `decon detect` and `decon server`, and how they override the config."""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from decon.common.config import (
    BUNDLED_EVALS_NAME,
    USER_REFERENCE_DIR,
    DetectionConfig,
    describe_validation_error,
    load_config_file,
    resolve_evals_dir,
)
from decon.common.data_reader import describe_os_error
from decon.common.file_io import COLUMNAR_EXTENSIONS, has_data_files
from decon.common.resources import bundled_config
from decon.errors import DeconError

SUPPORTED_SUFFIX_HELP = ".json/.jsonl, plain or .gz/.zst/.zstd/.bz2/.xz, or .parquet/.arrow"


def _bool(value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def add_detection_args(parser: argparse.ArgumentParser) -> None:
    """Add every detection option (all default to None so the config file can supply them)."""
    io = parser.add_argument_group("Input and Output")
    io.add_argument("--training-dir", metavar="PATH",
                    help=f"Training data: a folder searched recursively, or a single file ({SUPPORTED_SUFFIX_HELP})")
    io.add_argument("--training-dataset", metavar="ORG/NAME",
                    help="Training data from a Hugging Face hub dataset instead of --training-dir, fetched "
                         "through huggingface_hub and its cache (works offline from a filled cache; "
                         "pip install 'decon[hf]')")
    io.add_argument("--config-name", metavar="NAME",
                    help="With a hub-style dataset (--training-dataset, or a --training-dir laid out as the "
                         "hub lays it out): only the files of this configuration [default: all]")
    io.add_argument("--split", metavar="NAME",
                    help="With a hub-style dataset: only the files of this split, e.g. train [default: all]")
    add_reference_args(io)
    io.add_argument("--report-output-dir", metavar="DIR",
                    help="Where contamination reports go [default: a new folder under /tmp, announced at start]")
    io.add_argument("--cleaned-output-dir", metavar="DIR",
                    help="Where cleaned files go with --purify [default: a new folder under /tmp]")
    io.add_argument("--purify", action="store_true", default=None,
                    help="Also write a cleaned copy of every training file with contaminated lines removed")
    io.add_argument("--max-line-bytes", type=int, metavar="N",
                    help="Longest training line read, in bytes; a longer line is skipped, counted and named by "
                         "its line number (not scanned, not copied to the cleaned file) [default: 67108864 = 64 MiB]")
    io.add_argument("--skip-bad-files", action="store_true", default=None,
                    help="Skip (and count in the summary) training files that cannot be read: truncated or "
                         "corrupt compressed data, not a regular file, permission denied [default: stop with "
                         "an error]")
    parser.add_argument("--config", "-c", metavar="FILE",
                        help="YAML config file; flags given on the command line override its values "
                             f"(an annotated example ships with decon: {bundled_config('default.yaml')})")
    add_scoring_args(parser)


def add_reference_args(group: argparse._ActionsContainer) -> None:
    """--content-key and --evals-dir: what to read from the training data and what to look for."""
    group.add_argument("--content-key", metavar="KEY",
                       help="JSON field holding the document text; a dotted path reaches nested objects "
                            "[default: text]")
    group.add_argument("--evals-dir", "--reference-input", dest="evals_dir", metavar="DIR",
                       help="Reference (eval) set in decon's format [default: ~/.local/share/decon/references "
                            "if it holds files, else the bundled set shipped with decon (`decon evals` shows "
                            "where)]")


def add_scoring_args(parser: argparse.ArgumentParser, *, worker_threads: bool = True) -> None:
    """Matching, scoring, performance and reference-preprocessing options, and --verbose."""
    ms = parser.add_argument_group("Matching and Scoring")
    ms.add_argument("--tokenizer", dest="tokenizer_str", metavar="NAME",
                    help="Tokenizer: cl100k, o200k, r50k, p50k, p50k_edit or uniseg [default: cl100k]")
    ms.add_argument("--ngram-size", type=int, metavar="N", help="N-gram size of the question index [default: 5]")
    ms.add_argument("--sample-every-m-tokens", type=int, metavar="M",
                    help="Probe the index every M tokens of a training document [default: 10]")
    ms.add_argument("--question-max-consecutive-misses", type=int, metavar="N",
                    help="Stop expanding a question cluster after N n-gram misses in a row [default: 11]")
    ms.add_argument("--contamination-score-threshold", "--question-threshold",
                    dest="contamination_score_threshold", type=float, metavar="T",
                    help="Combined score a match must reach to count as contamination [default: 0.8] "
                         "(--question-threshold is the legacy name)")
    ms.add_argument("--answer-threshold", type=float, metavar="T",
                    help="Accepted for compatibility; SIMPLE scoring has no separate answer threshold")
    ms.add_argument("--short-answer-token-threshold", type=int, metavar="N",
                    help="Answers of at most N tokens must match exactly [default: 3]")
    ms.add_argument("--short-answer-window-length", type=int, metavar="N",
                    help="Tokens around a question searched for a short answer [default: 50]")
    ms.add_argument("--min-long-answer-window", type=int, metavar="N",
                    help="Smallest window searched for a long answer [default: 100]")
    ms.add_argument("--answer-ngram-size", type=int, metavar="N",
                    help="N-gram size for long-answer matching [default: 3]")
    ms.add_argument("--passage-max-consecutive-misses", type=int, metavar="N",
                    help="Stop expanding a passage after N misses in a row [default: 2]")
    ms.add_argument("--passage-ngram-size", type=int, metavar="N",
                    help="N-gram size for passage matching [default: 4]")
    ms.add_argument("--perfect-match-decay-start", type=int, metavar="N",
                    help="Up to this combined token length a match must be perfect [default: 20]")
    ms.add_argument("--perfect-match-decay-end", type=int, metavar="N",
                    help="From this combined token length the normal threshold applies [default: 50]")

    mh = parser.add_argument_group("MinHash (--mode minhash)")
    mh.add_argument("--mode", choices=("simple", "minhash"),
                    help="Detection algorithm: simple (n-gram clusters, upstream's default) or minhash "
                         "(document-level near duplicates by estimated Jaccard similarity) [default: simple]")
    mh.add_argument("--num-bands", type=int, metavar="N", help="MinHash LSH bands [default: 7]")
    mh.add_argument("--band-size", type=int, metavar="N",
                    help="Signature values per LSH band; a signature has num_bands x band_size values [default: 8]")
    mh.add_argument("--jaccard-similarity-threshold", type=float, metavar="T",
                    help="Estimated Jaccard similarity a match must exceed [default: 0.5]")
    mh.add_argument("--exact-override", type=_bool, metavar="BOOL",
                    help="true: signatures of token n-grams (near duplicates); false: one hash of the whole "
                         "cleaned text (identical texts only), as upstream's default [default: false]")
    mh.add_argument("--hash-seed", type=int, metavar="N", help="Seed of the MinHash permutations [default: 0]")
    mh.add_argument("--window-size-increment", type=int, metavar="N",
                    help="Windowing: window sizes are N, 2N, ... tokens (needs the two options below and "
                         "exact_override) [default: off]")
    mh.add_argument("--num-windows", type=int, metavar="N", help="Windowing: window sizes per start [default: off]")
    mh.add_argument("--window-step-size", type=int, metavar="N",
                    help="Windowing: tokens between window starts [default: off]")
    mh.add_argument("--debug", action="store_true", default=None,
                    help="MinHash reports carry the matching training text in training_overlap_text")

    rc = parser.add_argument_group("Recall (--recall: an additive pass after SIMPLE; SIMPLE's matches are unchanged)")
    rc.add_argument("--recall", action="store_true", default=None,
                    help="Also report the verbatim and question-only leaks SIMPLE's scoring misses: long "
                         "questions covered almost fully, questions with the answer as datasets write it "
                         "(GSM8K '#### 18', the correct choice or its letter), short questions equal token by "
                         "token. Entries carry method question_exact / question_answer / short_exact and "
                         "recall_evidence [default: off]")
    rc.add_argument("--recall-question-coverage", type=float, metavar="C",
                    help="IDF-weighted n-gram coverage a long question needs on its own [default: 0.9]")
    rc.add_argument("--recall-answer-coverage", type=float, metavar="C",
                    help="Coverage a long question needs when its answer evidence follows [default: 0.8]")
    rc.add_argument("--recall-long-question-tokens", type=int, metavar="N",
                    help="Questions of at least N tokens are scored by coverage; shorter ones must be equal "
                         "token by token [default: 20]")
    rc.add_argument("--recall-short-alone-tokens", type=int, metavar="N",
                    help="A short question without its answer counts only from N tokens on (and when "
                         "distinctive) [default: 12]")
    rc.add_argument("--recall-short-alone-rare-share", type=float, metavar="S",
                    help="Share of a short question's n-grams that no other question has, needed without "
                         "its answer [default: 0.5]")
    rc.add_argument("--recall-answer-gap", type=int, metavar="N",
                    help="A short question's answer must start within N tokens after it [default: 8]")

    sm = parser.add_argument_group("Semantic (--semantic: reworded questions; implies --recall)")
    sm.add_argument("--semantic", action="store_true", default=None,
                    help="Also report reworded eval questions: windows that hold a question's rare words, numbers "
                         "and names close together, whose sentence embedding is close to the question's and whose "
                         "numbers (or answer) agree. CPU only; needs the decon[semantic] extra. Entries carry "
                         "method semantic and semantic_evidence [default: off]")
    sm.add_argument("--semantic-threshold", type=float, metavar="C",
                    help="Cosine a window needs with the question's embedding [default: 0.9]")
    sm.add_argument("--semantic-model", metavar="PATH_OR_ID",
                    help="Sentence-embedding model: a folder with model.safetensors and tokenizer.json, or a hub "
                         "id (org/name, downloaded once) [default: WordLlama l2_supercat-256, bundled in the "
                         "extra, loaded offline]")

    perf = parser.add_argument_group("Performance")
    if worker_threads:
        perf.add_argument("--worker-threads", type=int, metavar="N",
                          help="Worker processes [default: number of CPU cores]")
    perf.add_argument("--no-index-cache", action="store_true", default=False,
                      help="Build the reference index from scratch and do not save it")

    ref = parser.add_argument_group("Reference Preprocessing")
    ref.add_argument("--eval-dedup", action="store_true", default=None,
                     help="Skip reference records repeating an (eval_key, fingerprint) pair [default: on]")
    ref.add_argument("--index-passages", type=_bool, metavar="BOOL",
                     help="Index passages of reference records (true/false) [default: true]")
    ref.add_argument("--index-answers", type=_bool, metavar="BOOL",
                     help="Index answers of reference records (true/false) [default: true]")
    ref.add_argument("--eval-min-token-length", type=int, metavar="N",
                     help="Skip reference records with fewer non-space tokens (0 = off) [default: 20]")
    ref.add_argument("--eval-min-unique-word-count", type=int, metavar="N",
                     help="Skip reference records with fewer distinct words (0 = off) [default: 4]")

    parser.add_argument("--verbose", "-v", action="store_true", default=None,
                        help="Print the effective settings and extra counters")


_OVERRIDES = (
    "training_dir", "training_dataset", "config_name", "split", "content_key", "report_output_dir", "cleaned_output_dir", "tokenizer_str",
    "ngram_size", "sample_every_m_tokens", "question_max_consecutive_misses",
    "contamination_score_threshold", "short_answer_token_threshold", "short_answer_window_length",
    "min_long_answer_window", "answer_ngram_size", "passage_max_consecutive_misses",
    "passage_ngram_size", "worker_threads", "index_passages", "index_answers", "eval_min_token_length",
    "eval_min_unique_word_count", "perfect_match_decay_start", "perfect_match_decay_end", "max_line_bytes",
    "mode", "num_bands", "band_size", "jaccard_similarity_threshold", "exact_override", "hash_seed",
    "window_size_increment", "num_windows", "window_step_size", "recall_question_coverage",
    "recall_answer_coverage", "recall_long_question_tokens", "recall_short_alone_tokens",
    "recall_short_alone_rare_share", "recall_answer_gap", "semantic_threshold", "semantic_model",
)


def config_from_args(args: argparse.Namespace, *, log: Callable[[str], None] | None = None) -> DetectionConfig:
    """Build the effective config: defaults < --config file < flags. Prints upstream's notices."""
    say = log or (lambda msg: print(msg, file=sys.stderr))
    cfg = load_config_file(args.config) if getattr(args, "config", None) else DetectionConfig()
    for name in _OVERRIDES:
        value = getattr(args, name, None)
        if value is not None:
            try:
                setattr(cfg, name, value)
            except ValidationError as exc:
                raise DeconError(f"invalid command-line value: {describe_validation_error(exc)}") from None
    if getattr(args, "purify", None):
        cfg.purify = True
    if getattr(args, "eval_dedup", None):
        cfg.eval_dedup = True
    if getattr(args, "verbose", None):
        cfg.verbose = True
    if getattr(args, "skip_bad_files", None):
        cfg.skip_bad_files = True
    if getattr(args, "debug", None):
        cfg.debug = True
    if getattr(args, "recall", None):
        cfg.recall = True
    if getattr(args, "semantic", None):
        cfg.semantic = True
    if cfg.semantic and cfg.mode != "simple":
        raise DeconError("--semantic (semantic: true) works with mode simple only")
    if cfg.recall and cfg.mode != "simple":
        raise DeconError("--recall (recall: true) works with mode simple only")
    if cfg.semantic:
        cfg.recall = True  # the semantic pass runs after the recall pass and reuses its index
        check_semantic_extra(cfg)

    # Reference set precedence: flag, then the user's downloaded set, then the bundled set.
    if getattr(args, "evals_dir", None):
        cfg.evals_dir = args.evals_dir
        say(f"Using evaluation directory from --evals-dir: {args.evals_dir}")
    elif cfg.evals_dir == BUNDLED_EVALS_NAME and _dir_has_reference_files(USER_REFERENCE_DIR):
        cfg.evals_dir = str(USER_REFERENCE_DIR)
        say(f"Using user-downloaded evaluation directory: {USER_REFERENCE_DIR}")
    else:
        say(f"Using default evaluation directory: {resolve_evals_dir(cfg.evals_dir)}")

    if getattr(args, "cleaned_output_dir", None) and not cfg.purify:
        say("WARNING: --cleaned-output-dir is set but --purify is not enabled; no cleaned files will be "
            "written. Add --purify to write them.")
    if getattr(args, "answer_threshold", None) is not None:
        say("Note: --answer-threshold is accepted for compatibility and has no effect: SIMPLE scoring "
            "folds answers into the combined contamination score.")
    if cfg.sample_every_m_tokens < 1:
        say(f"Warning: sample_every_m_tokens was {cfg.sample_every_m_tokens}, adjusting to 1 (minimum value)")
        cfg.sample_every_m_tokens = 1
    if cfg.sample_every_m_tokens > 100:
        say(f"Warning: sample_every_m_tokens is set to {cfg.sample_every_m_tokens}, which is quite large; "
            "contamination may be missed. Consider a smaller value.")
    return cfg


def _dir_has_reference_files(path: Path) -> bool:
    if not path.is_dir():
        return False
    return any(p.suffix in (".jsonl", ".gz", *COLUMNAR_EXTENSIONS) for p in path.iterdir())


def validate_paths(cfg: DetectionConfig, *, need_training: bool = True) -> None:
    """Fail early, with one line, on missing or empty inputs."""
    if need_training:
        if not cfg.training_dir:
            raise DeconError("training_dir is required: pass --training-dir or set training_dir in the config file")
        td = Path(cfg.training_dir)
        _must_exist(td, "training path")
        if td.is_dir() and not has_data_files(td, columnar=True):
            raise DeconError(f"training directory holds no data files ({SUPPORTED_SUFFIX_HELP}): {td}")
    ed = resolve_evals_dir(cfg.evals_dir)
    _must_exist(ed, "evaluation directory")
    if not ed.is_dir():
        raise DeconError(f"evaluation path is not a directory: {ed}")
    if not has_data_files(ed, columnar=True):
        raise DeconError(f"evaluation directory holds no data files ({SUPPORTED_SUFFIX_HELP}): {ed}")
    if cfg.sample_every_m_tokens < 1:
        raise DeconError(f"sample_every_m_tokens must be at least 1, got {cfg.sample_every_m_tokens}")
    _validate_minhash(cfg)
    if (cfg.perfect_match_decay_start is not None and cfg.perfect_match_decay_end is not None
            and cfg.perfect_match_decay_end < cfg.perfect_match_decay_start):
        raise DeconError(
            f"perfect_match_decay_end ({cfg.perfect_match_decay_end}) must be greater than or equal to "
            f"perfect_match_decay_start ({cfg.perfect_match_decay_start})")


def _must_exist(path: Path, what: str) -> None:
    """Raise a one-line DeconError when ``path`` cannot be reached, telling "does not exist" from
    "permission denied"."""
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise DeconError(f"{what} does not exist: {path}") from None
        raise DeconError(f"cannot access {what} {path}: {describe_os_error(exc)}") from None


def _validate_minhash(cfg: DetectionConfig) -> None:
    """What the config model cannot check key by key: in MinHash mode the window keys go together."""
    from decon.errors import DeconError

    if cfg.mode != "minhash":
        return
    windows = {k: getattr(cfg, k) for k in ("window_size_increment", "num_windows", "window_step_size")}
    for key, value in windows.items():
        if value is not None and value < 1:
            raise DeconError(f"{key} must be at least 1, got {value!r}")
    if any(v is not None for v in windows.values()) and None in windows.values():
        missing = ", ".join(k for k, v in windows.items() if v is None)
        raise DeconError(f"windowing needs window_size_increment, num_windows and window_step_size; missing: {missing}")


def check_semantic_extra(cfg: DetectionConfig) -> None:
    """``--semantic`` without its extra, with a tokenizer that cannot give text back, or with a model
    that does not load is a one-line error before any work starts (the model is loaded once here;
    each worker loads its own copy on first use)."""
    import importlib.util

    from decon.common.tokenizer import BPE_NAMES

    if importlib.util.find_spec("wordllama") is None:
        raise DeconError("--semantic needs wordllama, an optional extra: pip install 'decon[semantic]'")
    if cfg.tokenizer_str not in BPE_NAMES:
        raise DeconError(f"--semantic needs a BPE tokenizer ({', '.join(sorted(BPE_NAMES))}), not "
                         f"'{cfg.tokenizer_str}': windows are turned back into text for the model")
    from decon.detect.semantic_model import load_model

    load_model(cfg.semantic_model)
