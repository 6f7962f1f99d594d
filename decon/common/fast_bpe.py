"""A faster exact BPE encoder for the texts it can prove it handles like tiktoken.

riptoken (a Rust re-implementation of tiktoken's encoder, built here from the same verified ranks and
patterns) gives tiktoken's token ids except on pre-tokenizer pieces of 500 bytes or more, where it
merges in a different order. Every pattern of the BPE encodings splits text so that a piece is either
whitespace only or at most one leading character plus part of one run of non-space characters. So
in a text whose only whitespace is single ASCII spaces (what ``clean_text`` makes, with or without
the leading space upstream adds), no piece is longer than the longest span (a space or the
text's start, and the run of non-space characters after it).

``fallback_mask`` checks that (conservatively), for a whole batch at once on its UTF-8 bytes, and marks
the texts that must go to tiktoken: other whitespace (Rust's ``\\s``), two spaces in a row, a span
longer than ``MAX_SPAN`` bytes, or lone surrogates (riptoken cannot take them).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

# riptoken 0.2.4 handles pieces of up to 499 bytes as tiktoken does. Spans longer than MAX_SPAN
# bytes always go to tiktoken, spans of up to _BLOCK * 2 never do (the check works on aligned blocks).
MAX_SPAN = 384
_BLOCK = 128

# Bytes that start a whitespace character other than ' ' (or a surrogate): \t \n \v \f \r, and the
# lead bytes of U+0085/U+00A0 (C2), U+1680 (E1), U+2000-U+205F (E2), U+3000 (E3), surrogates (ED).
_LEADS = bytes(1 if b in (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0xC2, 0xE1, 0xE2, 0xE3, 0xED) else 0 for b in range(256))


def _odd_whitespace(joined: bytes, buf: np.ndarray, n: int) -> np.ndarray:
    """Positions in ``buf[:n]`` where a whitespace character other than ' ' or a surrogate starts
    (``buf`` is ``joined`` as uint8, with two padding bytes after ``n``)."""
    cand = np.flatnonzero(np.frombuffer(joined.translate(_LEADS), dtype=bool)[:n])
    if len(cand) == 0:
        return cand
    b0, b1, b2 = buf[cand], buf[cand + 1], buf[cand + 2]
    e2 = (b0 == 0xE2) & (
        ((b1 == 0x80) & ((b2 <= 0x8A) | (b2 == 0xA8) | (b2 == 0xA9) | (b2 == 0xAF)))
        | ((b1 == 0x81) & (b2 == 0x9F))
    )
    odd = (
        (b0 < 0x80)
        | ((b0 == 0xC2) & ((b1 == 0x85) | (b1 == 0xA0)))
        | ((b0 == 0xE1) & (b1 == 0x9A) & (b2 == 0x80))
        | e2
        | ((b0 == 0xE3) & (b1 == 0x80) & (b2 == 0x80))
        | ((b0 == 0xED) & (b1 >= 0xA0))
    )
    return cand[odd]


def _long_spans(delims: np.ndarray) -> np.ndarray:
    """Starts of two consecutive aligned blocks without a span start: where every span longer than
    MAX_SPAN lies (it covers at least two whole blocks)."""
    m = len(delims) // _BLOCK
    empty = ~delims[: m * _BLOCK].reshape(m, _BLOCK).any(axis=1)
    return np.flatnonzero(empty[1:] & empty[:-1]) * _BLOCK


def fallback_mask(texts: Sequence[str]) -> np.ndarray:
    """True for each text the fast encoder must not take (see the module docstring)."""
    parts = [t.encode("utf-8", "surrogatepass") for t in texts]
    lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
    starts = np.cumsum(lengths) - lengths
    n = int(lengths.sum())
    joined = b"".join(parts) + b"\0\0"
    buf = np.frombuffer(joined, dtype=np.uint8)
    space = buf[:n] == 0x20
    doubled = np.flatnonzero(space[1:] & space[:-1])
    space[starts[lengths > 0]] = True  # every text starts a span
    bad = np.concatenate([_odd_whitespace(joined, buf, n), doubled, _long_spans(space)])
    mask = np.zeros(len(texts), dtype=bool)
    if len(bad):
        mask[np.searchsorted(starts, bad, side="right") - 1] = True
    return mask


class FastCore:
    """riptoken's CoreBPE for one encoding, built on first use (it takes a fraction of a second)."""

    def __init__(self, mergeable_ranks: dict[bytes, int], pattern: str) -> None:
        self._ranks = mergeable_ranks
        self._pattern = pattern
        self._core: Any = None
        self._lock = threading.Lock()

    def encoder(self) -> Any:
        """The riptoken ``encode_ordinary`` callable."""
        if self._core is None:
            with self._lock:
                if self._core is None:
                    import riptoken

                    self._core = riptoken.CoreBPE(self._ranks, {}, self._pattern)
        return self._core.encode_ordinary
