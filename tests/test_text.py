"""clean_text: the fast path agrees with the literal definition (Rust's `\\s`, to_lowercase, trim)."""

from __future__ import annotations

import random
import re

from decon.common.config import DEFAULT_PUNCTUATION
from decon.common.text import _WS_CHARS, clean_text

_RUST_WS = re.compile("[" + re.escape(_WS_CHARS) + "]+")


def reference_clean(text: str, punct: str) -> str:
    text = text.lower()
    text = "".join(" " if c in punct else c for c in text)
    return _RUST_WS.sub(" ", text).strip(_WS_CHARS)


def test_random_strings_match_reference():
    rng = random.Random(7)
    alphabet = list("abcXYZ 019.,!?'\"-—“”‘’\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u2003\u3000\u200bÉßİΣ")
    for _ in range(3000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert clean_text(s, DEFAULT_PUNCTUATION) == reference_clean(s, DEFAULT_PUNCTUATION), repr(s)


def test_file_separator_controls_are_not_whitespace():
    # Python's str.split() treats U+001C..U+001F as whitespace; Rust's regex `\s` does not.
    assert clean_text("a\x1cb  c", "") == "a\x1cb c"
