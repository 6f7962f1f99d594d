"""Finding data files by name and writing outputs atomically (reading them: data_reader)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

#: Compression suffixes we read, and the data suffixes they may follow.
COMPRESSION_SUFFIXES = (".gz", ".zst", ".zstd", ".bz2", ".xz")
DATA_SUFFIXES = (".json", ".jsonl")
SUPPORTED_EXTENSIONS = tuple(
    d + c for d in DATA_SUFFIXES for c in ("",) + COMPRESSION_SUFFIXES
)


#: Training files may also be Parquet or Arrow IPC (read with pyarrow: decon.common.columnar).
COLUMNAR_EXTENSIONS = (".parquet", ".arrow", ".feather", ".ipc")
TRAINING_EXTENSIONS = SUPPORTED_EXTENSIONS + COLUMNAR_EXTENSIONS


def is_data_file(name: str | os.PathLike[str], columnar: bool = False) -> bool:
    """True for .json/.jsonl files, plain or compressed (and with ``columnar``, Parquet and Arrow)."""
    return str(name).endswith(TRAINING_EXTENSIONS if columnar else SUPPORTED_EXTENSIONS)


def has_data_files(root: Path, columnar: bool = False) -> bool:
    for _dirpath, _dirs, files in os.walk(root):
        if any(is_data_file(f, columnar) for f in files):
            return True
    return False


def find_data_files(root: str | os.PathLike[str], columnar: bool = False) -> list[Path]:
    """Data files under ``root`` (recursively, sorted by path); ``root`` may be a single file.
    Training inputs pass ``columnar`` to include Parquet and Arrow IPC files."""
    p = Path(root)
    if p.is_file():
        return [p]
    found: list[Path] = []
    for dirpath, dirs, files in os.walk(p):
        dirs.sort()
        found.extend(Path(dirpath) / f for f in files if is_data_file(f, columnar))
    return sorted(found)


def compression_of(path: str | os.PathLike[str]) -> str:
    name = str(path)
    for suffix in COMPRESSION_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return ""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(dest: str | os.PathLike[str], mode: str = "wb") -> Iterator[BinaryIO]:
    """Write to a temporary name beside ``dest`` and rename it into place only on success.

    A write error without a file name (a full disk, a quota) is raised again naming ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh  # type: ignore[misc]
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, dest)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno and not exc.filename:
            raise OSError(exc.errno, exc.strerror, str(dest)) from None
        raise


def sweep_temp_files(dests: Iterable[str | os.PathLike[str]]) -> int:
    """Remove the temporary files :func:`atomic_output` left beside any of ``dests`` when its process
    was killed (``.{name}.XXXXXXXX.tmp``); each folder is listed once. Returns how many."""
    wanted: dict[Path, set[str]] = {}
    for dest in map(Path, dests):
        wanted.setdefault(dest.parent, set()).add(dest.name)
    removed = 0
    for folder, names in wanted.items():
        try:
            entries = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            # mkstemp's random part has no dots, so the name is what lies between the first dot and it
            if entry.startswith(".") and entry.endswith(".tmp") and entry[1:].rsplit(".", 2)[0] in names:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(folder / entry)
                    removed += 1
    return removed
