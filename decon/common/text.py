"""Text normalisation applied to eval records and training documents alike.

``clean_text`` lowercases (``str.lower``), turns every configured punctuation character into a space,
folds runs of whitespace (Rust's regex ``\\s``: Unicode White_Space) into one space and trims. It works
on UTF-8 bytes: one 256-entry ``bytes.translate`` table does the ASCII part (A-Z, punctuation,
whitespace) in a single pass, and the few non-ASCII punctuation/whitespace characters are replaced
before encoding, only in documents that are not pure ASCII.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

# Rust's regex `\s` (Unicode White_Space); Python's `\s` for str differs on a few code points
# (it also matches \x1c-\x1f), so spell the class out.
_WS_CHARS = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_SPACE_RUNS = re.compile(b"  +")


@lru_cache(maxsize=16)
def _cleaner(punctuation_chars: str) -> tuple[bytes, Callable[[str], str] | None]:
    """The byte table (ASCII lowercase, ASCII punctuation and whitespace -> space) and the
    substitution that turns non-ASCII punctuation and whitespace into spaces (None: there is none)."""
    table = bytearray(range(256))
    for b in range(128):
        lowered = chr(b).lower()
        table[b] = 0x20 if lowered in punctuation_chars or lowered in _WS_CHARS else ord(lowered)
    wide = sorted({c for c in punctuation_chars + _WS_CHARS if not c.isascii()})
    sub = re.compile("[" + "".join(map(re.escape, wide)) + "]").sub if wide else None
    return bytes(table), (None if sub is None else lambda s: sub(" ", s))


def clean_text(text: str, punctuation_chars: str) -> str:
    """Lowercase, turn configured punctuation into spaces, fold whitespace runs, trim."""
    table, widen = _cleaner(punctuation_chars)
    if text.isascii():
        raw = text.encode("ascii")  # the table lowercases A-Z itself
    else:
        text = text.lower()
        if widen is not None:
            text = widen(text)
        raw = text.encode("utf-8", "surrogatepass")
    raw = raw.translate(table)
    if b"  " in raw:
        raw = _SPACE_RUNS.sub(b" ", raw)
    return raw.strip(b" ").decode("utf-8", "surrogatepass")
