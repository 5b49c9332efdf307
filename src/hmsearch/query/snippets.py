"""Snippets: the line or two of a passage shown in a result list (web results, `ask`'s supporting
passages), around the sentence that answers or that holds most of the question's words."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..text import analyze
from ..types import Hit


class Said(Protocol):
    """Where a sentence was said (an AnswerSentence is one)."""

    @property
    def episode(self) -> str: ...
    @property
    def start(self) -> float: ...


def query_terms(query: str, lang: str | None) -> frozenset[str]:
    return frozenset(analyze(query, lang))


SNIPPET_WORDS = 50  # a result's snippet: one or two lines, as podcast apps and yt-fts show them


def matched(text: str, terms: frozenset[str], lang: str | None) -> int:
    """How many of ``terms`` the text holds (each counted once)."""
    return len(terms.intersection(analyze(text, lang))) if terms else 0


def trim_words(text: str, terms: frozenset[str], lang: str | None, limit: int = SNIPPET_WORDS) -> str:
    """``text`` cut to ``limit`` words around its first matched word, with an ellipsis where cut."""
    words = text.split()
    if len(words) <= limit:
        return text
    first = next((i for i, w in enumerate(words) if matched(w, terms, lang)), 0)
    lo = max(0, min(first - limit // 3, len(words) - limit))
    cut = " ".join(words[lo : lo + limit])
    return ("… " if lo else "") + cut + (" …" if lo + limit < len(words) else "")


@dataclass(frozen=True)
class Snippet:
    """The line or two of a hit shown in the results: the sentence that answers, or that matches the
    question best (most of its words; the first sentence when none does), with the next one when
    both fit and the same speaker says it."""

    text: str
    start: float
    end: float
    speaker: str | None
    by_words: bool  # the question's words are in the passage (else it was found by meaning alone)


def snippet(
    hit: Hit, terms: frozenset[str], lang: str | None, limit: int = SNIPPET_WORDS, *, around: Sequence[Said] = ()
) -> Snippet:
    """``hit``'s snippet: around its sentence that is the first of ``around`` it holds (the answer
    sentences, best first: the same episode and start), else around the sentence with most of
    ``terms``."""
    sentences = hit.sentences
    by_words = matched(hit.text, terms, lang) > 0
    if not sentences:  # a quote's hit spans exactly the words said
        return Snippet(trim_words(hit.text, terms, lang, limit), hit.start, hit.end, None, by_words)
    counts = [matched(s.text, terms, lang) for s in sentences]
    answers = [
        i for a in around if a.episode == hit.episode for i, s in enumerate(sentences) if abs(s.start - a.start) < 1e-3
    ]
    best = answers[0] if answers else max(range(len(sentences)), key=lambda i: (counts[i], -i))
    chosen = [sentences[best]]
    nxt = best + 1
    if (
        nxt < len(sentences)
        and sentences[nxt].speaker == sentences[best].speaker  # a snippet names one speaker
        and len((sentences[best].text + " " + sentences[nxt].text).split()) <= limit
    ):
        chosen.append(sentences[nxt])
    text = trim_words(" ".join(s.text for s in chosen), terms, lang, limit)
    speaker = chosen[0].speaker
    return Snippet(text, chosen[0].start, chosen[-1].end, speaker, by_words)
