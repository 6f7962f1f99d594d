"""The sentence-embedding model of the semantic pass: a static (token-embedding average) model on CPU.

The default is WordLlama's ``l2_supercat`` at 256 dimensions, whose weights and tokenizer ship inside
the ``wordllama`` wheel (the ``decon[semantic]`` extra, pinned exactly): it is loaded from the installed
package folder with downloads disabled, so it makes no network call. ``--semantic-model`` also takes

- a local folder holding ``model.safetensors`` (a token-embedding matrix under ``embeddings`` or
  ``embedding.weight``, Model2Vec's layout) and ``tokenizer.json``, or
- a Hugging Face hub id (``org/name``) of such a model, fetched once through ``huggingface_hub``'s
  cache: the only case that downloads, and only because the user named a remote model.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from decon.errors import DeconError

DEFAULT_MODEL = "wordllama"
DEFAULT_CONFIG, DEFAULT_DIM = "l2_supercat", 256
EXTRA_HINT = "pip install 'decon[semantic]'"
_TENSOR_KEYS = ("embeddings", "embedding.weight")
CHUNK = 128  # texts per gather (their token rows are gathered at once)


class Embedder:
    """Unit-length sentence embeddings of texts: the mean of their tokens' rows of a static embedding
    matrix. Each text is pooled on its own (``np.add.reduceat`` over its rows), so its vector does not
    depend on the other texts of a batch, and reports are the same for any worker count."""

    def __init__(self, name: str, matrix: np.ndarray, tokenizer: Any) -> None:
        self.name = name
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self.tokenizer = tokenizer
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def embed(self, texts: list[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32, unit rows (a text with no known token: zeros)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        for lo in range(0, len(texts), CHUNK):
            out[lo:lo + CHUNK] = self._embed(texts[lo:lo + CHUNK])
        return out

    def _embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        encs = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        lengths = np.fromiter((len(e.ids) for e in encs), dtype=np.int64, count=len(encs))
        if int(lengths.sum()) == 0:
            return out
        ids = np.concatenate([np.asarray(e.ids, dtype=np.int64) for e in encs if e.ids])
        np.clip(ids, 0, len(self.matrix) - 1, out=ids)
        rows = self.matrix[ids]
        has = lengths > 0
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))[has]
        sums = np.add.reduceat(rows, starts, axis=0)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        out[has] = sums / np.maximum(norms, 1e-12)  # the mean's direction: no need to divide by the length
        return out


def _import_wordllama() -> Any:
    """``wordllama``, imported without its import-time ``logging.basicConfig`` touching the root logger."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # worker processes are the parallelism
    try:
        import wordllama
    except ImportError:
        raise DeconError(f"--semantic needs wordllama, an optional extra: {EXTRA_HINT}") from None
    finally:
        for h in root.handlers[:]:
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)
    logging.getLogger("wordllama").setLevel(logging.WARNING)
    return wordllama


def load_model(spec: str | None = None) -> Embedder:
    """The embedder ``spec`` names (see module docstring); errors are one-line DeconErrors. A model is
    loaded once per process (the check before work, the scanner and forked workers share it); a
    folder's model again when its files change."""
    if spec in (None, "", DEFAULT_MODEL):
        return _default()
    path = Path(spec).expanduser()
    if path.exists():
        return _from_folder(path, str(path))
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
        return _from_folder(_hub_folder(spec), spec)
    raise DeconError(f"--semantic-model {spec}: no such folder, and not a hub id (org/name)")


@functools.lru_cache(maxsize=1)
def _default() -> Embedder:
    wordllama = _import_wordllama()
    folder = Path(wordllama.__file__).parent
    try:
        model = wordllama.WordLlama.load(config=DEFAULT_CONFIG, dim=DEFAULT_DIM, cache_dir=folder,
                                         disable_download=True)
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise DeconError(f"cannot load the bundled semantic model from {folder}: {exc} "
                         f"(reinstall the extra: {EXTRA_HINT})") from None
    name = f"wordllama-{wordllama.__version__}/{DEFAULT_CONFIG}-{DEFAULT_DIM}"
    return Embedder(name, model.embedding, model.tokenizer)


def _from_folder(folder: Path, name: str) -> Embedder:
    weights = folder / "model.safetensors"
    tok_file = folder / "tokenizer.json"
    if folder.is_file() or not weights.is_file() or not tok_file.is_file():
        raise DeconError(f"--semantic-model {name}: expected a folder with model.safetensors and tokenizer.json")
    stamp = tuple((st.st_ino, st.st_size, st.st_mtime_ns) for st in (weights.stat(), tok_file.stat()))
    return _load_folder(str(folder), name, stamp)


@functools.lru_cache(maxsize=4)
def _load_folder(folder_str: str, name: str, _stamp: tuple) -> Embedder:
    """The model of a checked folder (``_stamp``: its files' identity, so a changed file is reloaded)."""
    _import_wordllama()  # the extra brings safetensors and tokenizers
    folder = Path(folder_str)
    weights = folder / "model.safetensors"
    tok_file = folder / "tokenizer.json"
    from safetensors import safe_open
    from tokenizers import Tokenizer

    try:
        with safe_open(str(weights), framework="np", device="cpu") as f:
            key = next((k for k in _TENSOR_KEYS if k in f.keys()), None)
            if key is None:
                raise DeconError(f"--semantic-model {name}: {weights} has no tensor named "
                                 f"{' or '.join(_TENSOR_KEYS)}")
            matrix = f.get_tensor(key)
        tokenizer = Tokenizer.from_file(str(tok_file))
    except DeconError:
        raise
    except Exception as exc:  # a corrupt file: safetensors and tokenizers raise their own types
        raise DeconError(f"--semantic-model {name}: cannot read the model: {exc}") from None
    if matrix.ndim != 2:
        raise DeconError(f"--semantic-model {name}: the embedding matrix must be 2-D, not {matrix.shape}")
    return Embedder(name, matrix, tokenizer)


def _hub_folder(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise DeconError(f"--semantic-model {repo_id}: a hub model needs huggingface_hub: "
                         "pip install 'decon[hf]'") from None
    try:
        return Path(snapshot_download(repo_id, allow_patterns=["model.safetensors", "tokenizer.json", "*.md"]))
    except Exception as exc:  # offline, unknown repo, gated: one line
        raise DeconError(f"--semantic-model {repo_id}: cannot fetch it from the hub: "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
