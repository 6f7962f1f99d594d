"""clean_text (byte-table implementation) equals the literal definition on any text and punctuation set."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from decon.common.config import DEFAULT_PUNCTUATION
from decon.common.text import _WS_CHARS, clean_text
from tests.test_text import reference_clean

SPECIAL = list(_WS_CHARS + DEFAULT_PUNCTUATION) + [
    "\x1c", "\x1d", "\x1e", "\x1f", "\u200b", "\u2060", "\ufeff", "İ", "Σ", "ẞ", "K", "Å", "ǅ", "ﬁ",
    "A", "Z", "a", "z", "é", "É", "…", "–", "\ud800", "\udfff", "😀", "\x00", "\x7f", "\x80", "\xff",
]
texts = st.lists(
    st.one_of(st.sampled_from(SPECIAL), st.text(st.characters(codec=None, exclude_categories=()), max_size=6)),
    max_size=40,
).map("".join)
punctuation = st.one_of(
    st.just(DEFAULT_PUNCTUATION),
    st.just(""),
    st.text(st.sampled_from(SPECIAL), max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(text=texts, punct=punctuation)
def test_clean_text_equals_definition(text: str, punct: str) -> None:
    assert clean_text(text, punct) == reference_clean(text, punct)


@settings(max_examples=150, deadline=None)
@given(text=st.text(st.characters(max_codepoint=127), max_size=200), punct=punctuation)
def test_ascii_clean_text_equals_definition(text: str, punct: str) -> None:
    assert clean_text(text, punct) == reference_clean(text, punct)
