"""Text normalisation applied to eval records and training documents alike."""

from __future__ import annotations

import re
from functools import lru_cache

# Rust's regex `\s` (Unicode White_Space); Python's `\s` for str differs on a few code points
# (it also matches \x1c-\x1f), so spell the class out.
_WS_CHARS = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_WS_RUN = re.compile("[" + re.escape(_WS_CHARS) + "]+")


@lru_cache(maxsize=16)
def _punct_table(punctuation_chars: str) -> dict[int, str]:
    return {ord(c): " " for c in punctuation_chars}


_PY_ONLY_SPACE = re.compile("[\x1c-\x1f]")


def clean_text(text: str, punctuation_chars: str) -> str:
    """Lowercase, turn configured punctuation into spaces, fold whitespace runs, trim."""
    text = text.lower()
    if punctuation_chars:
        text = text.translate(_punct_table(punctuation_chars))
    # str.split() splits on Unicode White_Space plus U+001C..U+001F, which Rust's `\s` keeps.
    if _PY_ONLY_SPACE.search(text) is None:
        return " ".join(text.split())
    return _WS_RUN.sub(" ", text).strip(_WS_CHARS)
