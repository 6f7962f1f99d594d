"""The fast BPE path (riptoken where exact, tiktoken elsewhere) gives tiktoken's ids token for token."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decon.common.config import DEFAULT_PUNCTUATION
from decon.common.fast_bpe import MAX_SPAN, fallback_mask
from decon.common.text import _WS_CHARS, clean_text
from decon.common.tokenizer import BPE_NAMES, bpe_encoding, get_tokenizer
from tests.test_tokenizer import _run_python

PIECES = [
    " ", "  ", "   ", "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\x85", "\xa0", "\u1680", "\u2000", "\u200a",
    "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\u200b", "\x1c", "\x1f", "\x00", "\x7f", "a", "Z", "é",
    "É", "ß", "İ", "Σ", "ς", "ж", "中文", "日本語", "ｶﾀｶﾅ", "한국어", "العربية", "עברית", "हिन्दी", "0", "7",
    "١٢٣", "²", "½", "Ⅻ", "'", "'s", "'S", "'ll", "'VE", "’", "’s", ".", ",", "!", "?", "$", "@", "/", "\\",
    "-", "_", "…", "—", "“", "😀", "👍🏽", "👨\u200d👩\u200d👧", "🇺🇸", "\u0301", "\u200d", "\ufeff", "\ufffd",
    "<|endoftext|>", "<|fim_prefix|>", "hello", "World", "the", "THE", "don't", "3.14159",
    "12345678901234567890", "\ud800", "\udfff", "\ud83d\ude00",
]

adversarial = st.lists(
    st.one_of(
        st.sampled_from(PIECES),
        st.text(st.characters(codec=None, exclude_categories=()), max_size=8),
        st.builds(lambda c, k: c * k, st.sampled_from(["a", "7", " ", "é", "😀", "!", "\n", "中", "ab"]),
                  st.integers(1, 1200)),
    ),
    max_size=12,
).map("".join)

FAST_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _tiktoken(name: str, texts: list[str]) -> list[list[int]]:
    enc = bpe_encoding(name)
    return [enc.encode_ordinary(t) for t in texts]


def _check(name: str, texts: list[str]) -> None:
    tok = get_tokenizer(name)
    expected = _tiktoken(name, texts)
    assert tok.encode_batch(texts) == expected
    ids, ptr = tok.encode_flat(texts)
    assert ptr.tolist() == np.cumsum([0] + [len(e) for e in expected]).tolist()
    assert ids.tolist() == [i for e in expected for i in e]


@pytest.mark.parametrize("name", BPE_NAMES)
@FAST_SETTINGS
@given(texts=st.lists(adversarial, min_size=1, max_size=6))
def test_adversarial_text_matches_tiktoken(name: str, texts: list[str]) -> None:
    _check(name, texts)


@pytest.mark.parametrize("name", BPE_NAMES)
@FAST_SETTINGS
@given(texts=st.lists(adversarial, min_size=1, max_size=6))
def test_cleaned_text_matches_tiktoken(name: str, texts: list[str]) -> None:
    padded = [" " + clean_text(t, DEFAULT_PUNCTUATION) for t in texts]
    _check(name, padded)


def _corpus_like(rng: random.Random, n: int) -> list[str]:
    words = [p for p in PIECES if p.strip(_WS_CHARS) and not any("\ud800" <= c <= "\udfff" for c in p)]
    words += ["question", "answer", "Which", "of", "following", "is", "x^2", "+", "=", "42", "1,000", "(a)"]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(0, 300))) for _ in range(n)]


@pytest.mark.parametrize("name", BPE_NAMES)
def test_cleaned_documents_take_the_fast_path_and_match(name: str) -> None:
    rng = random.Random(11)
    padded = [" " + clean_text(t, DEFAULT_PUNCTUATION) for t in _corpus_like(rng, 300)]
    assert not fallback_mask(padded).any()  # so this really compares riptoken with tiktoken
    _check(name, padded)


@pytest.mark.parametrize("name", BPE_NAMES)
def test_long_words_near_and_past_the_span_limit(name: str) -> None:
    # riptoken merges pieces of 500+ bytes differently: such texts must reach tiktoken
    texts = []
    for length in [MAX_SPAN - 2, MAX_SPAN - 1, MAX_SPAN, MAX_SPAN + 1, 499, 500, 501, 777, 3000]:
        for unit in ["x", "ab", "é", "日", "😀", "7", "!?"]:
            word = (unit * length)[:length]
            texts += [" " + word, word, " a " + word + " b", " " + word + " " + word[::-1]]
    _check(name, texts)


def test_fallback_mask_marks_what_riptoken_must_not_see() -> None:
    ok = [" plain words", "", " ", "no leading space", " 中文 😀 ünïcödé … ‚ °", " a\x1cb"]
    assert fallback_mask(ok).tolist() == [False] * len(ok)
    bad = [" two  spaces", " tab\there", " line\nbreak", " nbsp\xa0x", " nel\x85x", " em\u2003x",
           " ideo\u3000x", " ls\u2028x", " ogham\u1680x", " mmsp\u205fx", " nnbsp\u202fx", " lone \ud800",
           " " + "y" * (MAX_SPAN + 1), "z" * (MAX_SPAN + 1)]
    assert fallback_mask(bad).tolist() == [True] * len(bad)
    # only the offending text of a batch is marked
    mixed = [" fine", " " + "y" * 1000, " also fine", "", " x\ty"]
    assert fallback_mask(mixed).tolist() == [False, True, False, False, True]


@pytest.mark.parametrize("shift", range(0, 140, 3))
def test_span_limits_hold_at_every_alignment(shift: int) -> None:
    lead = "s" * (shift + 1)  # moves the next texts across the check's block boundaries
    short = [" " + "q" * 255, "q" * 256, " a " + "q" * 255 + " b"]
    long = [" " + "q" * MAX_SPAN, "q" * (MAX_SPAN + 1), " a " + "q" * MAX_SPAN + " b"]
    assert fallback_mask([lead, *short]).tolist() == [False] * 4
    assert fallback_mask([lead, *long]).tolist() == [False, True, True, True]


def test_fast_path_builds_offline_from_the_verified_ranks(tmp_path: Path) -> None:
    code = """
        import json, socket

        def refuse(*args, **kwargs):
            raise OSError("network disabled in test")

        socket.socket = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse

        from decon.common.tokenizer import get_tokenizer
        out = {}
        for name in ["cl100k", "o200k", "r50k", "p50k", "p50k_edit"]:
            tok = get_tokenizer(name)
            ids, ptr = tok.encode_flat([" hello world", " again"])
            out[name] = [ids.tolist(), ptr.tolist(), tok._fast._core is not None]
        print(json.dumps(out))
    """
    proc = _run_python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in BPE_NAMES:
        ids, ptr, built = out[name]
        assert built, name  # the riptoken core was used
        expected = _tiktoken(name, [" hello world", " again"])
        assert ids == expected[0] + expected[1] and ptr == [0, len(expected[0]), len(ids)]
