"""Hugging Face datasets as training input.

A dataset is a folder laid out as the hub lays it out: ``data/train-00000-of-00003.parquet`` (one
configuration), ``<config>/train-00000-of-00001.parquet`` (several), or ``<config>/<split>/0000.parquet``
(the hub's Parquet conversion). It is either a local folder (``--training-dir``) or a hub dataset
(``--training-dataset org/name``), resolved through ``huggingface_hub`` and its cache, so a filled
cache works offline (``HF_HUB_OFFLINE=1``). ``--config-name`` and ``--split`` narrow it to the
files of one configuration and split; the scan then sees only those (linked into a fresh folder
that keeps their relative paths, so report names still mirror the dataset's; removed at exit).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from decon.common.file_io import find_data_files, is_data_file
from decon.errors import DeconError

HUB_HINT = "pip install 'decon[hf]'"


def selected(relative: PurePosixPath, config_name: str | None, split: str | None) -> bool:
    """Whether a file of a hub-style folder belongs to ``config_name`` and ``split`` (None: any)."""
    name, dirs = relative.name, relative.parts[:-1]
    if not is_data_file(name, columnar=True):
        return False
    if split is not None and not (name.startswith((f"{split}-", f"{split}.", f"{split}_")) or split in dirs):
        return False
    if config_name is None:
        return True
    if dirs and dirs[0] == config_name:
        return True
    return config_name == "default" and (not dirs or dirs[0] == "data")


def _allow_patterns(config_name: str | None, split: str | None) -> list[str] | None:
    """What to fetch from the hub (a superset of :func:`selected`; None: everything)."""
    if config_name is None and split is None:
        return None
    tails = [f"{split}-*", f"{split}.*", f"{split}_*", f"{split}/*"] if split else ["*"]
    heads = [f"{config_name}/"] if config_name else ["", "*/"]
    if config_name == "default":
        heads += ["data/", ""]
    return [h + t for h in heads for t in tails]


def hub_snapshot(repo: str, config_name: str | None, split: str | None, revision: str | None = None) -> Path:
    """The local folder of hub dataset ``repo`` (downloaded, or from the cache when offline)."""
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise DeconError(f"--training-dataset must be a hub dataset id such as org/name, got {repo!r}")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise DeconError(f"--training-dataset needs huggingface_hub, an optional extra: {HUB_HINT}") from None
    try:
        folder = snapshot_download(repo_id=repo, repo_type="dataset", revision=revision,
                                   allow_patterns=_allow_patterns(config_name, split))
    except Exception as exc:  # noqa: BLE001 - hub errors (offline, unknown repo, auth) become one line
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DeconError(f"cannot get dataset {repo} from the Hugging Face hub: {reason}") from None
    return Path(folder)


def narrow(folder: Path, config_name: str | None, split: str | None) -> Path:
    """``folder`` itself, or with a config or split a fresh folder of links to just its files."""
    if config_name is None and split is None:
        return folder
    files = find_data_files(folder, columnar=True)
    chosen = [f for f in files if selected(PurePosixPath(f.relative_to(folder).as_posix()), config_name, split)]
    if not chosen:
        rels = sorted({f.relative_to(folder).as_posix() for f in files})
        shown = ", ".join(rels[:8]) + (", ..." if len(rels) > 8 else "") if rels else "no data files"
        wanted = " and ".join(x for x in (f"config {config_name!r}" if config_name else "",
                                         f"split {split!r}" if split else "") if x)
        raise DeconError(f"no training files for {wanted} in {folder} (it holds: {shown})")
    view = Path(tempfile.mkdtemp(prefix="decon-dataset-"))
    atexit.register(shutil.rmtree, view, True)  # links only; gone when the run ends
    for f in chosen:
        link = view / f.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(f.resolve(), link)
    return view


def resolve_training_input(training_dir: str | None, dataset: str | None, config_name: str | None,
                           split: str | None) -> str | None:
    """The training path to scan for these options (``training_dir`` unchanged when none applies)."""
    if dataset and training_dir:
        raise DeconError("give --training-dir or --training-dataset, not both")
    if dataset:
        return str(narrow(hub_snapshot(dataset, config_name, split), config_name, split))
    if training_dir and (config_name or split):
        folder = Path(training_dir)
        if not folder.is_dir():
            raise DeconError(f"--split and --config-name need a dataset folder, not a file: {training_dir}")
        return str(narrow(folder, config_name, split))
    return training_dir
