"""Tests for decon.common.tokenizer (port of upstream's OmniTokenizer tests plus offline/uniseg checks)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from decon.common import tokenizer as tok
from decon.common.tokenizer import Tokenizer, TokenizerDataError, get_tokenizer, split_word_bounds

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BPE = ["cl100k", "o200k", "r50k", "p50k", "p50k_edit"]
ALL = [*BPE, "uniseg", "unknown"]


# ---------------------------------------------------------------- upstream's tests


def test_tokenizer_new() -> None:
    for name in BPE:
        t = get_tokenizer(name)
        assert t.name == name
        assert t.is_bpe
    uniseg = get_tokenizer("uniseg")
    assert uniseg.name == "uniseg"
    assert not uniseg.is_bpe
    unknown = get_tokenizer("unknown")
    assert unknown.name == "unknown"
    assert not unknown.is_bpe


def test_encode() -> None:
    assert get_tokenizer("p50k").encode("hello world") == [31373, 995]
    assert get_tokenizer("cl100k").encode("hello world") == [15339, 1917]
    assert len(get_tokenizer("o200k").encode("hello world")) == 2
    assert len(get_tokenizer("uniseg").encode("hello world")) == 3  # "hello", " ", "world"
    assert get_tokenizer("unknown").encode("abc") == [97, 98, 99]


def test_is_space_token() -> None:
    cl100k = get_tokenizer("cl100k")
    assert cl100k.is_space_token(cl100k.encode(" ")[0])
    assert not cl100k.is_space_token(100)
    o200k = get_tokenizer("o200k")
    assert o200k.is_space_token(o200k.encode(" ")[0])
    p50k = get_tokenizer("p50k")
    assert p50k.is_space_token(p50k.encode(" ")[0])
    assert not p50k.is_space_token(100)
    r50k = get_tokenizer("r50k")
    assert r50k.is_space_token(r50k.encode(" ")[0])
    uniseg = get_tokenizer("uniseg")
    assert not uniseg.is_space_token(0)
    assert not uniseg.is_space_token(12345)
    unknown = get_tokenizer("unknown")
    assert unknown.is_space_token(32)
    assert not unknown.is_space_token(65)


# ---------------------------------------------------------------- more behaviour


def test_space_token_lists_are_whitespace() -> None:
    assert len(tok.SPACE_TOKEN_IDS["cl100k"]) == 45
    assert len(tok.SPACE_TOKEN_IDS["o200k"]) == 37
    assert tok.SPACE_TOKEN_IDS["p50k"] == tok.SPACE_TOKEN_IDS["r50k"] == tok.SPACE_TOKEN_IDS["p50k_edit"]
    for name in BPE:
        t = get_tokenizer(name)
        assert t.space_token_ids == tok.SPACE_TOKEN_IDS[name]
        for tid in t.space_token_ids:
            assert t.is_space_token(tid)
            assert t.decode([tid]).strip() == "", (name, tid)
    assert get_tokenizer("uniseg").space_token_ids == frozenset()


def test_byte_fallback_space_token_casts_to_byte() -> None:
    unknown = get_tokenizer("unknown")
    assert unknown.space_token_ids == frozenset({9, 10, 13, 32})
    for tid in (9, 10, 13, 32, 256 + 32):  # upstream casts the id to u8
        assert unknown.is_space_token(tid)
    assert not unknown.is_space_token(11)


def test_unknown_name_warns_once(capsys: pytest.CaptureFixture[str]) -> None:
    Tokenizer("no-such-tokenizer-xyz")
    Tokenizer("no-such-tokenizer-xyz")
    get_tokenizer("no-such-tokenizer-xyz")
    out = capsys.readouterr().out
    warning = "Warning: Unknown tokenizer 'no-such-tokenizer-xyz', using character-level tokenization"
    assert out.count(warning) == 1


def test_get_tokenizer_is_cached_and_defaults_to_cl100k() -> None:
    assert get_tokenizer("cl100k") is get_tokenizer("cl100k")
    assert get_tokenizer() is get_tokenizer("cl100k")


def test_special_tokens_are_ordinary_text() -> None:
    cl100k = get_tokenizer("cl100k")
    ids = cl100k.encode("<|endoftext|>")
    assert 100257 not in ids
    assert cl100k.decode(ids) == "<|endoftext|>"


def test_p50k_adds_space_run_tokens() -> None:
    assert get_tokenizer("r50k").encode("a     b") == [64, 220, 220, 220, 220, 275]
    assert get_tokenizer("p50k").encode("a     b") == [64, 50259, 275]
    assert get_tokenizer("p50k_edit").encode("a     b") == [64, 50259, 275]


def test_encoding_vocab_sizes() -> None:
    assert get_tokenizer("r50k").encoding.n_vocab == 50257
    assert get_tokenizer("p50k").encoding.n_vocab == 50281
    assert get_tokenizer("p50k_edit").encoding.n_vocab == 50284
    assert get_tokenizer("cl100k").encoding.n_vocab == 100277
    assert get_tokenizer("o200k").encoding.n_vocab == 200019


def test_decode() -> None:
    text = "The quick brown fox — 日本語 😀"
    for name in [*BPE, "unknown"]:
        t = get_tokenizer(name)
        assert t.decode(t.encode(text)) == text
    cl100k = get_tokenizer("cl100k")
    partial = cl100k.encoding.encode_single_token(b"\xe6")
    assert cl100k.decode([partial]) == f"(decode failed for tokens: [{partial}])"
    assert cl100k.decode([10**9]) == f"(decode failed for tokens: [{10**9}])"
    assert get_tokenizer("uniseg").decode([1, 2]) == "(uniseg tokens: [1, 2])"
    unknown = get_tokenizer("unknown")
    assert unknown.decode([0xE6]) == "(decode failed for tokens: [230])"
    assert unknown.decode([256 + 97]) == "a"


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("threads", [1, 4])
def test_encode_batch_equals_encode(name: str, threads: int) -> None:
    t = get_tokenizer(name)
    rng = random.Random(5)
    words = ["alpha", "beta", " ", "  ", "\n", "日本", "naïve", "3.14", "can't", "😀", "<|endoftext|>"]
    texts = ["".join(rng.choice(words) for _ in range(rng.randint(0, 40))) for _ in range(50)]
    assert t.encode_batch(texts, num_threads=threads) == [t.encode(x) for x in texts]


# ---------------------------------------------------------------- packaged ranks and verification


def test_ranks_sizes() -> None:
    assert len(tok.load_mergeable_ranks("r50k_base")) == 50256
    assert len(tok.load_mergeable_ranks("p50k_base")) == 50280
    assert len(tok.load_mergeable_ranks("cl100k_base")) == 100256
    assert len(tok.load_mergeable_ranks("o200k_base")) == 199998


def test_expected_hashes_match_tiktoken() -> None:
    from tiktoken_ext import openai_public

    src = Path(openai_public.__file__).read_text()
    for encoding, digest in tok.EXPECTED_HASHES.items():
        assert digest in src, encoding
    assert tok.GPT2_VOCAB_BPE_HASH in src and tok.GPT2_ENCODER_JSON_HASH in src


def test_corrupted_tiktoken_file_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    real = tok._read_packaged_tiktoken("cl100k_base")
    corrupted = real.replace(b" 1000\n", b" 1001\n", 1)
    assert corrupted != real
    monkeypatch.setattr(tok, "_read_packaged_tiktoken", lambda encoding: corrupted)
    with pytest.raises(TokenizerDataError, match="cl100k_base BPE ranks failed verification"):
        tok.load_mergeable_ranks.__wrapped__("cl100k_base")


def test_corrupted_gpt2_ranks_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    load_uncached = tok.load_mergeable_ranks.__wrapped__
    ranks = dict(tok._gpt2_data_gym_ranks())
    ranks[b"decon"] = ranks.pop(b"hello")
    monkeypatch.setattr(tok, "_gpt2_data_gym_ranks", lambda: ranks)
    with pytest.raises(TokenizerDataError, match="r50k_base BPE ranks failed verification"):
        load_uncached("r50k_base")
    # p50k is checked on its own too
    monkeypatch.setattr(tok, "load_mergeable_ranks", lambda encoding: ranks)
    with pytest.raises(TokenizerDataError, match="p50k_base BPE ranks failed verification"):
        load_uncached("p50k_base")


def _run_python(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path / "tiktoken-cache"), **env}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), full_env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, env=full_env, cwd=tmp_path, timeout=120, check=False,
    )


def test_all_tokenizers_load_without_network(tmp_path: Path) -> None:
    code = """
        import json, socket

        def refuse(*args, **kwargs):
            raise OSError("network disabled in test")

        socket.socket = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse

        from decon.common.tokenizer import get_tokenizer
        out = {}
        for name in ["cl100k", "o200k", "r50k", "p50k", "p50k_edit", "uniseg"]:
            out[name] = get_tokenizer(name).encode("hello world")
        print(json.dumps(out))
    """
    proc = _run_python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["cl100k"] == [15339, 1917]
    assert out["p50k"] == out["r50k"] == out["p50k_edit"] == [31373, 995]
    assert len(out["o200k"]) == 2 and len(out["uniseg"]) == 3


# ---------------------------------------------------------------- uniseg

# Expected segments produced by Rust unicode-segmentation 1.12.0 `split_word_bounds` (the version
# upstream locks), checked with a throwaway Rust program.
RUST_SEGMENTS = [
    ("hello world", ["hello", " ", "world"]),
    ("can't stop", ["can't", " ", "stop"]),
    ("don't", ["don't"]),
    ("3.14", ["3.14"]),
    ("1,000,000.50 and 2.5.1", ["1,000,000.50", " ", "and", " ", "2.5.1"]),
    ("e\u0301te\u0301 naïve", ["e\u0301te\u0301", " ", "naïve"]),
    ("I ❤️ you 😀!", ["I", " ", "❤️", " ", "you", " ", "😀", "!"]),
    ("👨\u200d👩\u200d👧 family", ["👨\u200d👩\u200d👧", " ", "family"]),
    ("👍🏽 ok", ["👍🏽", " ", "ok"]),
    ("🇺🇸🇬🇧🇫", ["🇺🇸", "🇬🇧", "🇫"]),
    ("日本語のテキスト", ["日", "本", "語", "の", "テキスト"]),
    ("カタカナ_テスト", ["カタカナ_テスト"]),
    ("한국어 텍스트", ["한국어", " ", "텍스트"]),
    ("שָׁלוֹם", ["שָׁלוֹם"]),
    ('ש"ב', ['ש"ב']),
    ("א'1", ["א'", "1"]),
    ("U.S.A. e.g.", ["U.S.A", ".", " ", "e.g", "."]),
    ("foo_bar_1", ["foo_bar_1"]),
    ("a\r\nb\n\nc", ["a", "\r\n", "b", "\n", "\n", "c"]),
    ("tab\tsep  two", ["tab", "\t", "sep", "  ", "two"]),
    ("a.1 1.a a:b 1:2", ["a", ".", "1", " ", "1", ".", "a", " ", "a:b", " ", "1", ":", "2"]),
    ("१२३ हिन्दी", ["१२३", " ", "हिन्दी"]),
    ("\u0301start", ["\u0301", "start"]),
    ("x\u200d😀y", ["x\u200d😀", "y"]),
    ("ℹ\u200dℹa", ["ℹ\u200dℹ", "a"]),
    ("\u3000\u3000x", ["\u3000\u3000", "x"]),
]


@pytest.mark.parametrize(("text", "expected"), RUST_SEGMENTS)
def test_uniseg_segments_match_rust(text: str, expected: list[str]) -> None:
    assert split_word_bounds(text) == expected
    assert len(get_tokenizer("uniseg").encode(text)) == len(expected)


def test_uniseg_ascii_fast_path_agrees_with_full_pattern() -> None:
    from uniseg.db_lookups import columns, index1, index2, shift, values

    col = columns.index("Word_Break")
    expected_classes = {
        **{c: "ALetter" for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"},
        **{c: "Numeric" for c in "0123456789"},
        ":": "MidLetter", ".": "MidNumLet", "'": "Single_Quote", '"': "Double_Quote", ",": "MidNum",
        ";": "MidNum", "_": "ExtendNumLet", " ": "WSegSpace", "\r": "CR", "\n": "LF",
        "\x0b": "Newline", "\x0c": "Newline",
    }
    for cp in range(128):
        value = values[index2[(index1[cp >> shift] << shift) + (cp & ((1 << shift) - 1))]][col] or "Other"
        assert value == expected_classes.get(chr(cp), "Other"), repr(chr(cp))

    full = tok._word_bound_regex(True)
    rng = random.Random(11)
    pool = [chr(i) for i in range(128)] + list("aaZZ00  .,';:_")
    for _ in range(3000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(1, 14)))
        assert tok._ASCII_WORD_BOUNDS.findall(text) == full.findall(text), repr(text)


def test_uniseg_segments_cover_text() -> None:
    rng = random.Random(3)
    pool = list("ab1 .,'_\r\n\t") + ["\u0301", "\u200d", "😀", "ℹ", "ש", "ア", "🇺", "\u3000", "日", "é"]
    for _ in range(2000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 16)))
        segments = split_word_bounds(text)
        assert "".join(segments) == text
        assert all(segments)


def test_uniseg_ids_are_stable_int63() -> None:
    ids = get_tokenizer("uniseg").encode("hello world")
    assert ids == [9022087748821825191, 4790524309720616724, 1122476747036766552]
    assert all(0 <= i < 2**63 for i in ids)
    assert ids[0] == get_tokenizer("uniseg").encode("hello")[0]


def test_uniseg_ids_stable_across_processes(tmp_path: Path) -> None:
    text = "Zürich's 3.14 naïve — 日本語 😀 can't"
    code = f"""
        import json
        from decon.common.tokenizer import get_tokenizer
        print(json.dumps(get_tokenizer("uniseg").encode({text!r})))
    """
    runs = [json.loads(_run_python(code, tmp_path, PYTHONHASHSEED=seed).stdout) for seed in ("1", "2", "random")]
    assert runs[0] == runs[1] == runs[2] == get_tokenizer("uniseg").encode(text)
