"""Rule-based rewording of eval questions for the semantic benchmark (``make bench-semantic``).

``rephrase`` changes the wording and keeps the facts: numbers, names and the asked quantity stay, while
words become synonyms, fillers go, contractions change and the question sentence may move to the front.
``renumber`` keeps the wording and changes every number: a *templated variant*, the same problem with
other numbers, which must not count as a leak. Both are deterministic for a given ``random.Random``.
The rules are the benchmark's own; they are not tuned to the detector (its key tokens, its threshold).
"""

from __future__ import annotations

import random
import re

# word -> replacements (lower case; the first letter's case is kept)
SYNONYMS: dict[str, tuple[str, ...]] = {
    "how many": ("what number of", "how many total"),
    "how much": ("what amount of", "how much in total"),
    "altogether": ("in total", "combined"),
    "in total": ("altogether", "overall"),
    "total": ("overall", "combined"),
    "buys": ("purchases", "picks up"),
    "bought": ("purchased", "picked up"),
    "buy": ("purchase", "get"),
    "sells": ("offers", "trades"),
    "sold": ("traded", "offered"),
    "each": ("every", "per"),
    "every": ("each",),
    "wants to": ("would like to", "hopes to"),
    "gets": ("receives", "obtains"),
    "got": ("received", "obtained"),
    "uses": ("makes use of", "employs"),
    "used": ("employed", "made use of"),
    "needs": ("requires",),
    "need": ("require",),
    "makes": ("produces", "creates"),
    "made": ("produced", "created"),
    "starts": ("begins",),
    "started": ("began",),
    "gives": ("hands", "passes"),
    "gave": ("handed", "passed"),
    "takes": ("requires", "spends"),
    "took": ("spent", "required"),
    "costs": ("is priced at", "runs"),
    "cost": ("price",),
    "spends": ("pays out", "uses up"),
    "spent": ("paid out", "used up"),
    "earns": ("makes", "brings in"),
    "earned": ("brought in",),
    "remaining": ("left over", "left"),
    "left": ("remaining",),
    "people": ("persons", "individuals"),
    "children": ("kids",),
    "friends": ("pals", "companions"),
    "money": ("cash", "funds"),
    "minutes": ("mins",),
    "twice": ("two times",),
    "half": ("one half",),
    "which of the following": ("which one of these", "which option"),
    "the following": ("these", "the options below"),
    "most likely": ("probably", "most probably"),
    "best describes": ("most accurately describes", "best characterizes"),
    "describes": ("characterizes", "portrays"),
    "refers to": ("denotes", "means"),
    "because": ("since", "as"),
    "however": ("but", "yet"),
    "therefore": ("so", "thus"),
    "approximately": ("roughly", "about"),
    "several": ("a number of", "some"),
    "large": ("big", "sizeable"),
    "small": ("little", "tiny"),
    "big": ("large",),
    "begin": ("start",),
    "increase": ("rise", "growth"),
    "decrease": ("drop", "decline"),
    "true": ("correct", "accurate"),
    "false": ("incorrect", "wrong"),
    "statement": ("claim", "assertion"),
    "example": ("instance", "case"),
    "important": ("significant", "key"),
    "primary": ("main", "chief"),
    "function": ("role", "job"),
    "called": ("known as", "named"),
    "following": ("next",),
    "result": ("outcome",),
    "cause": ("reason",),
    "group": ("set",),
    "found": ("discovered",),
    "shows": ("demonstrates", "indicates"),
    "show": ("demonstrate",),
    "likely": ("probably",),
    "would": ("will",),
    "could": ("might",),
}
# frequent words, each replaced with probability COMMON_SHARE: enough change that few word 8-grams survive
COMMON: dict[str, tuple[str, ...]] = {
    "and": ("as well as", "plus", "and also"),
    "with": ("along with", "together with"),
    "in": ("within", "inside"),
    "for": ("meant for", "intended for"),
    "she": ("this woman",),
    "he": ("this man",),
    "there are": ("there exist", "we have"),
    "if": ("assuming", "supposing"),
    "after": ("following", "once past"),
    "before": ("prior to", "ahead of"),
    "more": ("additional", "extra"),
    "many": ("numerous",),
    "number": ("count",),
    "amount": ("quantity",),
    "store": ("shop",),
    "house": ("home",),
    "car": ("vehicle",),
    "pay": ("spend",),
    "paid": ("spent",),
    "can": ("is able to",),
    "will": ("is going to",),
    "what": ("which",),
    "which": ("what",),
    "is": ("is in fact", "happens to be"),
    "are": ("are in fact", "happen to be"),
    "was": ("was in fact",),
    "has": ("possesses", "owns"),
    "have": ("possess", "own"),
    "from": ("out of",),
    "into": ("inside",),
    "of the": ("of that",),
    "the": ("that", "this"),
    "a": ("one",),
}
COMMON_SHARE = 0.6
CONTRACTIONS = {"does not": "doesn't", "is not": "isn't", "are not": "aren't", "cannot": "can't",
                "will not": "won't", "did not": "didn't", "she is": "she's", "he is": "he's", "it is": "it's",
                "they are": "they're", "there is": "there's", "what is": "what's"}
FILLERS = ("then ", "also ", "just ", "really ", "very ", "actually ", "still ")
_SYN = re.compile(r"\b(" + "|".join(sorted(map(re.escape, SYNONYMS), key=len, reverse=True)) + r")\b", re.I)
_CON = re.compile(r"\b(" + "|".join(map(re.escape, CONTRACTIONS)) + r")\b", re.I)
_COMMON = re.compile(r"\b(" + "|".join(sorted(map(re.escape, COMMON), key=len, reverse=True)) + r")\b(?![-'])", re.I)
_FILL = re.compile(r"\b(" + "|".join(f.strip() for f in FILLERS) + r") ", re.I)
_SENTENCES = re.compile(r"(?<=[.!?])\s+")
_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?!\d)|\d+(?:\.\d+)?")


def _case(src: str, new: str) -> str:
    return new[:1].upper() + new[1:] if src[:1].isupper() else new


def rephrase(text: str, rng: random.Random) -> str:
    """A rewording of ``text`` with its numbers and names kept."""
    text = re.sub(r"\s+", " ", text).strip()
    text = _SYN.sub(lambda m: _case(m.group(0), rng.choice(SYNONYMS[m.group(0).lower()])), text)
    text = _CON.sub(lambda m: _case(m.group(0), CONTRACTIONS[m.group(0).lower()]), text)
    text = _COMMON.sub(lambda m: _case(m.group(0), rng.choice(COMMON[m.group(0).lower()]))
                       if rng.random() < COMMON_SHARE else m.group(0), text)
    text = _FILL.sub("", text)
    parts = _SENTENCES.split(text)
    if len(parts) >= 3 and parts[-1].endswith("?"):
        ask = parts[-1]
        lead = rng.choice(("Find out: ", "Work out this: ", "Question: ", ""))
        body = " ".join(parts[:-1])
        first = ask[0].lower() + ask[1:] if lead else ask
        text = rng.choice((f"{lead}{first} Here is what we know. {body}",
                           f"{body} With that in mind, {ask[0].lower() + ask[1:]}"))
    elif parts and parts[-1].endswith("?"):
        text = rng.choice(("Tell me: ", "Consider this. ", "")) + text
    return text


def renumber(text: str, rng: random.Random) -> str | None:
    """``text`` with every number changed (None when it has none): a templated variant."""
    if not _NUMBER.search(text):
        return None

    def other(m: re.Match[str]) -> str:
        s = m.group(0)
        if "." in s:
            return f"{float(s) + rng.randint(1, 9) + 0.5:.{len(s.split('.')[1])}f}"
        v = int(s.replace(",", ""))
        new = v + rng.randint(1, 9) if v < 10 else v + rng.randint(2, max(3, v // 2))
        return f"{new:,}" if "," in s else str(new)

    return _NUMBER.sub(other, text)
