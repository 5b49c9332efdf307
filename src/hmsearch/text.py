"""Text analysis shared by indexing and querying: word tokens, stopwords, stemming, and a
stopword-based language guess.

Each passage is stemmed with its own episode's language (Snowball stemmers from PyStemmer) with
that language's stopwords removed; a query is analysed in every language the index holds, so a
Danish query meets Danish stems and an English one English stems.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Any

# C0 and C1 controls, zero-width and direction marks, bidi embeddings/overrides/isolates, line and
# paragraph separators and the BOM: none is ever wanted in a line shown to a user.
INVISIBLE = "\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff"
_CONTROL = re.compile(rf"[\x00-\x1f\x7f-\x9f{INVISIBLE}]")


def one_line(text: str) -> str:
    """Text from a transcript, feed or file made safe to print or to write into a document: every
    control character (escape sequences, carriage returns, newlines, C1 codes) and every invisible
    mark that can reorder or hide what a line shows (bidi overrides, zero-width characters) becomes
    a space, runs of space one."""
    return " ".join(_CONTROL.sub(" ", text).split())


_TOKEN = re.compile(r"\w+(?:[-'’]\w+)*", re.UNICODE)
STEMMERS = {
    "da": "danish",
    "en": "english",
    "sv": "swedish",
    "no": "norwegian",
    "nb": "norwegian",
    "nn": "norwegian",
    "de": "german",
    "nl": "dutch",
    "fr": "french",
    "es": "spanish",
    "it": "italian",
    "pt": "portuguese",
    "fi": "finnish",
}
_STOPWORD_LISTS = {
    "da": "STOPWORDS_DANISH",
    "en": "STOPWORDS_EN_PLUS",
    "sv": "STOPWORDS_SWEDISH",
    "no": "STOPWORDS_NORWEGIAN",
    "de": "STOPWORDS_GERMAN",
    "nl": "STOPWORDS_DUTCH",
    "fr": "STOPWORDS_FRENCH",
    "es": "STOPWORDS_SPANISH",
    "it": "STOPWORDS_ITALIAN",
    "pt": "STOPWORDS_PORTUGUESE",
}


def words(text: str) -> list[str]:
    """Lower-cased word tokens (keeps inner hyphens and apostrophes: e-mail, don't)."""
    return _TOKEN.findall(text.lower())


@cache
def stopwords(lang: str) -> frozenset[str]:
    import bm25s.stopwords as sw

    name = _STOPWORD_LISTS.get(lang)
    return frozenset(getattr(sw, name)) if name else frozenset()


@cache
def _stemmer(lang: str) -> Any:
    import Stemmer

    algorithm = STEMMERS.get(lang)
    return Stemmer.Stemmer(algorithm) if algorithm else None


def analyze(text: str, lang: str | None) -> list[str]:
    """Index terms of ``text`` in ``lang``: words, minus stopwords, stemmed."""
    lang = lang if lang in STEMMERS else "en"
    stop = stopwords(lang)
    toks = [w for w in words(text) if w not in stop]
    stemmer = _stemmer(lang)
    return stemmer.stemWords(toks) if stemmer else toks


def guess_language(text: str, candidates: Sequence[str] = ("da", "en", "sv", "no", "de")) -> str | None:
    """The candidate language whose stopwords cover most of ``text`` (None if none fits).

    Stopwords make up ~40 % of running speech in these languages, so a few dozen words suffice.
    """
    toks = words(text[:20_000])
    if not toks:
        return None
    best, best_share = None, 0.0
    for lang in candidates:
        stop = stopwords(lang)
        share = sum(t in stop for t in toks) / len(toks)
        if share > best_share:
            best, best_share = lang, share
    return best if best_share >= 0.15 else None
