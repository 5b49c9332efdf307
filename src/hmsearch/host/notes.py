"""A show-notes draft for one episode: title and date, chapters with links that play from each
start, the most quotable sentences with their times and links, and key terms.

A sentence is quotable when it is distinctive (dense in the words that are the episode's own
subject: said often in the episode, by few of its sentences) and stands on its own: a statement of 8-35
words that ends a sentence, is not a question, and does not open by pointing back at what was
said before ("And", "But", "That", "Og", "Men", "Det" ...). The picks are spread over the episode
(60 s apart, at most two per chapter when there are enough chapters).
"""

from __future__ import annotations

import html
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..text import one_line
from ..types import Episode, LinkFn, Sentence
from .chapters import Chapter, content_terms, key_terms, stem_language

# Openings that lean on the sentence before (lower-cased first word).
_LEANING = {
    "en": {
        "i'll",
        "let's",
        "we'll",
        "thanks",
        "and",
        "but",
        "so",
        "or",
        "because",
        "that",
        "this",
        "it",
        "it's",
        "they",
        "he",
        "she",
        "which",
        "yeah",
        "yes",
        "no",
        "well",
        "also",
        "then",
        "those",
        "these",
        "there",
        "right",
        "okay",
        "um",
        "uh",
    },
    "da": {
        "og",
        "men",
        "så",
        "eller",
        "fordi",
        "det",
        "den",
        "de",
        "han",
        "hun",
        "der",
        "som",
        "ja",
        "nej",
        "jo",
        "altså",
        "også",
        "dem",
        "dét",
        "hvilket",
    },
}
MIN_WORDS, MAX_WORDS = 8, 35
MIN_APART = 60.0


@dataclass(frozen=True)
class Quote:
    text: str
    start: float
    end: float
    score: float
    link: str
    speaker: str | None = None  # who said it, where the transcript knows

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "score": round(self.score, 4),
            "link": self.link,
            "speaker": self.speaker,
        }


@dataclass(frozen=True)
class ShowNotes:
    episode: str
    title: str
    published: str | None
    duration: float
    chapters: list[tuple[Chapter, str]]  # with the link that plays from its start
    quotes: list[Quote]
    key_terms: list[str] = field(default_factory=list)
    page: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "episode": self.episode,
            "title": self.title,
            "published": self.published,
            "duration": round(self.duration, 3),
            "page": self.page,
            "chapters": [{**c.to_dict(), "link": link} for c, link in self.chapters],
            "quotes": [q.to_dict() for q in self.quotes],
            "key_terms": self.key_terms,
        }

    def markdown(self) -> str:
        from ..formats import format_timestamp

        def stamp(t: float) -> str:
            s = format_timestamp(t)
            return s[3:] if self.duration < 3600 else s

        def md(text: str) -> str:
            # Text a feed or transcript chose: no control characters, no HTML, no Markdown markup.
            return _MARKDOWN.sub(r"\\\g<0>", html.escape(one_line(text), quote=False))

        def url(link: str | None) -> str | None:
            # Only http(s) and local file links, written so no parenthesis or space ends them early.
            if not link or urlsplit(link).scheme.lower() not in ("http", "https", "file"):
                return None
            return one_line(link).replace(" ", "%20").replace("(", "%28").replace(")", "%29")

        head = [f"# {md(self.title)}", ""]
        meta = [x for x in (self.published[:10] if self.published else None, stamp(self.duration)) if x]
        page = url(self.page)
        head += [f"*{' · '.join(meta)}*" + (f" · [episode page]({page})" if page else ""), ""]
        out = [*head, "## Chapters", ""]
        out += [
            f"- [{stamp(c.start)}]({url(link)}) {md(c.title)}" if url(link) else f"- {stamp(c.start)} {md(c.title)}"
            for c, link in self.chapters
        ]
        out += ["", "## Quotes", ""]
        for q in self.quotes:
            where = f"[{stamp(q.start)}]({url(q.link)})" if url(q.link) else stamp(q.start)
            who = f"{md(q.speaker)}, " if q.speaker else ""
            out += [f"> {md(q.text)}", ">", f"> — {who}{where}", ""]
        if self.key_terms:
            out += ["## Key terms", "", ", ".join(md(t) for t in self.key_terms), ""]
        return "\n".join(out).rstrip() + "\n"


_MARKDOWN = re.compile(r"[\\`*_\[\]|~]")  # what Markdown would read as markup
_PLUG = re.compile(r"https?://|www\.|@\w|\w\.(?:com|fm|org|io|net|dk|co|ai)\b", re.IGNORECASE)


def quotable(
    sentences: list[Sentence], language: str | None, *, k: int = 5, chapters: list[Chapter] | None = None
) -> list[tuple[Sentence, float]]:
    """The ``k`` most quotable sentences, with their scores, in time order.

    A word counts for a sentence by how often the episode says it (topical: log of its count)
    times how few sentences say it (specific: log idf over the episode's sentences), so the words
    that score are the episode's own subject, neither its fillers nor one-off asides. Sponsor
    reads (URLs, addresses) and the first and last minute (intros, outros) are left out."""
    lang = stem_language(language)
    lean = _LEANING.get(lang, _LEANING["en"])
    docs = [[t[0] for t in content_terms(s.text, lang) if t] for s in sentences]
    df: Counter[str] = Counter()
    tf: Counter[str] = Counter()
    for d in docs:
        df.update(set(d))
        tf.update(d)
    n = max(1, len(docs))
    end = sentences[-1].end if sentences else 0.0
    edge = 60.0 if end > 600 else 0.0
    scored: list[tuple[float, Sentence]] = []
    for s, d in zip(sentences, docs):
        toks = s.text.split()
        text = s.text.strip()
        if not (MIN_WORDS <= len(toks) <= MAX_WORDS) or not d or _PLUG.search(text):
            continue
        if s.start < edge or s.end > end - edge:
            continue
        if text.endswith(("?", "...")) or not text.rstrip("\"'»”)").endswith((".", "!")):
            continue
        first = toks[0].strip(",.!?\"'«»“”").lower()
        if first in lean:
            continue
        weight = [math.log(1 + tf[t]) * math.log(1 + n / df[t]) for t in set(d)]
        score = sum(weight) / len(toks) * min(1.0, len(set(d)) / 4)  # dense in such words, several of them
        scored.append((score, s))
    scored.sort(key=lambda x: (-x[0], x[1].start))
    picked: list[tuple[Sentence, float]] = []
    per_chapter: Counter[float] = Counter()
    cap = max(2, math.ceil(k / max(1, len(chapters or []))))
    for score, s in scored:
        if len(picked) >= k:
            break
        if any(abs(s.start - p.start) < MIN_APART for p, _ in picked):
            continue
        chapter = next((c.start for c in reversed(chapters or []) if c.start <= s.start), 0.0)
        if per_chapter[chapter] >= cap:
            continue
        per_chapter[chapter] += 1
        picked.append((s, score))
    return sorted(picked, key=lambda x: x[0].start)


def _speaker(sentence: Sentence) -> str | None:
    """The sentence's speaker where the transcript names one (``Sentence.speaker``, when it has it)."""
    name = getattr(sentence, "speaker", None)
    return one_line(name) if isinstance(name, str) and name.strip() else None


def show_notes(
    episode: Episode,
    sentences: list[Sentence],
    chapters: list[Chapter],
    *,
    link: LinkFn,
    other_texts: Sequence[str] = (),
    quotes: int = 5,
    terms: int = 8,
) -> ShowNotes:
    """The show-notes draft of an episode from its sentences and chapters; its key terms are
    weighed against ``other_texts`` (other episodes of the podcast)."""
    picks = quotable(sentences, episode.language, k=quotes, chapters=chapters)
    texts = [" ".join(s.text for s in sentences), *other_texts]
    return ShowNotes(
        episode=episode.id,
        title=episode.title,
        published=episode.published,
        duration=episode.duration,
        chapters=[(c, link(episode, c.start)) for c in chapters],
        quotes=[Quote(s.text, s.start, s.end, score, link(episode, s.start), _speaker(s)) for s, score in picks],
        key_terms=key_terms(texts, episode.language, k=terms)[0],
        page=episode.url,
    )
