"""Building a reference directory from an ``evals.yaml`` configuration.

Each entry of the ``evals`` mapping reads its examples from one of:

- ``hf_path`` (+ optional ``hf_config``): a Hugging Face dataset, through the optional
  ``datasets`` library;
- ``local_path``: a local ``.jsonl``/``.json``/``.parquet`` file (its rows form the ``train``
  split; a JSON object mapping split names to row lists gives several splits), or a mapping
  ``{split: path}``;
- ``local_path: bundled_evals/<prefix>``: the bundled reference files starting with ``<prefix>``
  are copied as they are.

For every listed split the examples are turned into records (``decon.evals.extract``) and written
as gzip chunks (``decon.evals.writer``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from decon.common.resources import bundled_config, bundled_reference_dir
from decon.errors import DeconError
from decon.evals.extract import build_records
from decon.evals.writer import DEFAULT_CHUNK_BYTES, ChunkedGzipWriter

BUNDLED_REFERENCE_DIR = bundled_reference_dir()
DEFAULT_CONFIG = bundled_config("evals.yaml")
BUNDLED_PREFIX = "bundled_evals/"

Rows = list[dict[str, Any]]
Log = Callable[[str], None]


def default_output_dir() -> Path:
    import os

    base = os.environ.get("XDG_DATA_HOME")
    root = Path(base) if base else Path.home() / ".local" / "share"
    return root / "decon" / "references"


def load_config(path: Path) -> dict[str, dict[str, Any]]:
    """The ``evals`` mapping of a configuration file."""
    if not path.is_file():
        raise DeconError(f"evals config not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise DeconError(f"{where}: invalid YAML ({getattr(exc, 'problem', None) or exc})") from None
    except OSError as exc:
        raise DeconError(f"cannot read evals config {path}: {exc.strerror or exc}") from None
    evals = data.get("evals") if isinstance(data, dict) else None
    if not isinstance(evals, dict):
        raise DeconError(f"{path}: expected a top-level 'evals:' mapping of dataset entries")
    for name, entry in evals.items():
        if not isinstance(entry, dict):
            raise DeconError(f"{path}: entry '{name}' must be a mapping")
        if "hf_path" not in entry and "local_path" not in entry:
            raise DeconError(f"{path}: entry '{name}' needs 'hf_path' or 'local_path'")
    return evals


# -- reading examples ----------------------------------------------------------------------


def _uniform_rows(rows: Iterable[Any], source: Path) -> Rows:
    """Give every row the same columns (missing ones as None), like a table would."""
    rows = list(rows)
    columns: dict[str, None] = {}
    for pos, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DeconError(f"{source}: row {pos + 1} is not a JSON object")
        for key in row:
            columns.setdefault(key, None)
    return [{key: row.get(key) for key in columns} for row in rows]


def read_local_file(path: Path) -> dict[str, Rows]:
    """Rows of a local data file, by split."""
    if not path.is_file():
        raise DeconError(f"local dataset file not found: {path}")
    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            try:
                import pyarrow.parquet as pq
            except ImportError:
                raise DeconError(
                    f"reading {path} needs pyarrow: pip install pyarrow"
                ) from None
            return {"train": pq.read_table(path).to_pylist()}
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DeconError(f"cannot read {path}: {exc.strerror or exc}") from None
    except DeconError:
        raise
    except Exception as exc:  # pyarrow errors
        raise DeconError(f"cannot read {path}: {exc}") from None
    if name.endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DeconError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        if isinstance(data, list):
            return {"train": _uniform_rows(data, path)}
        if isinstance(data, dict) and data and all(isinstance(v, list) for v in data.values()):
            return {split: _uniform_rows(rows, path) for split, rows in data.items()}
        raise DeconError(f"{path}: expected a list of objects or a mapping of split name to list")
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DeconError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
    return {"train": _uniform_rows(rows, path)}


def _resolve(path_text: str, config_dir: Path | None) -> Path:
    path = Path(path_text).expanduser()
    if path.is_absolute() or path.exists() or config_dir is None:
        return path
    return config_dir / path


def load_local(entry: Mapping[str, Any], config_dir: Path | None) -> dict[str, Rows]:
    spec = entry["local_path"]
    if isinstance(spec, str):
        return read_local_file(_resolve(spec, config_dir))
    if isinstance(spec, dict):
        splits: dict[str, Rows] = {}
        for split, file in spec.items():
            found = read_local_file(_resolve(str(file), config_dir))
            splits[str(split)] = found.get(str(split), found.get("train", []))
        return splits
    raise DeconError("'local_path' must be a file path or a mapping of split name to file path")


def load_hf(entry: Mapping[str, Any]) -> Any:
    try:
        import datasets  # noqa: F401 - optional dependency
        from datasets import load_dataset
    except ImportError:
        raise DeconError(
            "downloading Hugging Face datasets needs the 'datasets' library: pip install 'decon[hf]'"
        ) from None
    if "hf_config" in entry and entry["hf_config"] is not None:
        return load_dataset(entry["hf_path"], entry["hf_config"])
    return load_dataset(entry["hf_path"])


def hf_available() -> bool:
    try:
        import datasets  # noqa: F401
    except ImportError:
        return False
    return True


# -- processing ----------------------------------------------------------------------------


@dataclass
class Outcome:
    name: str
    records: int = 0
    files: list[Path] = field(default_factory=list)
    missing_splits: list[str] = field(default_factory=list)


def copy_bundled(name: str, prefix: str, output_dir: Path, bundled_dir: Path, log: Log) -> Outcome:
    matches = sorted(bundled_dir.glob(f"{prefix}*.jsonl.gz"))
    if not matches:
        raise DeconError(f"{name}: no bundled reference files named {prefix}*.jsonl.gz in {bundled_dir}")
    outcome = Outcome(name)
    for src in matches:
        dest_name = src.name.replace(prefix, f"{name}_", 1)
        dest = output_dir / dest_name
        temp = dest.with_name(f".{dest.name}.tmp")
        shutil.copyfile(src, temp)
        temp.replace(dest)
        outcome.files.append(dest)
        log(f"  copied {src.name} -> {dest_name}")
    return outcome


def process_eval(
    name: str,
    entry: Mapping[str, Any],
    output_dir: Path,
    next_doc_id: list[int],
    *,
    config_dir: Path | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    bundled_dir: Path = BUNDLED_REFERENCE_DIR,
    log: Log = print,
) -> Outcome:
    """Normalise one configured dataset into ``output_dir``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    local = entry.get("local_path")
    if isinstance(local, str) and local.startswith(BUNDLED_PREFIX) and local.endswith("_"):
        log(f"{name}: copying bundled reference files")
        return copy_bundled(name, local[len(BUNDLED_PREFIX):], output_dir, bundled_dir, log)
    if local is not None:
        log(f"{name}: reading {local}")
        dataset: Any = load_local(entry, config_dir)
    else:
        log(f"{name}: loading {entry['hf_path']}" + (f" ({entry['hf_config']})" if entry.get("hf_config") else ""))
        try:
            dataset = load_hf(entry)
        except DeconError:
            raise
        except Exception as exc:  # network, missing dataset, ...
            raise DeconError(f"{name}: cannot load {entry['hf_path']}: {exc}") from None
    outcome = Outcome(name)
    splits = entry.get("splits") or []
    for split in splits:
        if split not in dataset:
            log(f"  warning: split '{split}' not found in {name}")
            outcome.missing_splits.append(split)
            continue
        examples = dataset[split]
        writer = ChunkedGzipWriter(output_dir, f"{name}_{split}", chunk_bytes)
        try:
            for record in build_records(name, entry, split, examples, next_doc_id):
                writer.write(record)
        except BaseException:
            writer.abort()
            raise
        files = writer.commit()
        outcome.records += writer.records
        outcome.files.extend(files)
        log(f"  {split}: {writer.records} records in {len(files)} file(s)")
    return outcome
