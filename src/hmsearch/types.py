"""Frozen dataclasses passed between the pipeline's stages. Times are float seconds."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str  # as Whisper gives it, usually with a leading space
    probability: float | None = None


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    speaker: str | None = None


@dataclass(frozen=True)
class Transcript:
    """What was said in one episode, in order. ``source`` says where it came from
    ("whisper:turbo", "srt", "vtt", "whisper-json", ...)."""

    segments: tuple[Segment, ...]
    language: str | None = None
    source: str = ""
    duration: float | None = None  # the audio's length when known, else None

    @property
    def end(self) -> float:
        """The last cue's end (0.0 for an empty transcript)."""
        return max((s.end for s in self.segments), default=0.0)

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    def to_dict(self) -> dict[str, Any]:
        """Whisper-compatible JSON: {"text", "language", "segments": [{"start","end","text","words"}]}."""
        return {
            "text": self.text,
            "language": self.language,
            "source": self.source,
            "duration": self.duration,
            "segments": [
                {
                    "id": i,
                    "start": s.start,
                    "end": s.end,
                    "text": s.text,
                    **({"speaker": s.speaker} if s.speaker else {}),
                    "words": [
                        {
                            "start": w.start,
                            "end": w.end,
                            "word": w.text,
                            **({"probability": w.probability} if w.probability is not None else {}),
                        }
                        for w in s.words
                    ],
                }
                for i, s in enumerate(self.segments)
            ],
        }


@dataclass(frozen=True)
class Sentence:
    """One sentence of a transcript with its own time span (used for passages and answers).

    ``word_times`` holds the start of each whitespace-separated word of ``text`` when Whisper
    gave word timestamps (empty otherwise: times inside the sentence are then estimated).
    """

    start: float
    end: float
    text: str
    word_times: tuple[float, ...] = ()
    speaker: str | None = None  # a speaker id ("S1") or an imported voice's name, when known

    def word_spans(self) -> list[tuple[str, float, float]]:
        """(word, start, end) for each word: exact from word_times, else spread by characters."""
        toks = self.text.split()
        if not toks:
            return []
        if len(self.word_times) == len(toks):
            starts = list(self.word_times)
        else:
            total = sum(len(t) + 1 for t in toks)
            starts, pos = [], 0
            for t in toks:
                starts.append(self.start + (self.end - self.start) * pos / total)
                pos += len(t) + 1
        ends = starts[1:] + [self.end]
        return [(t, a, max(a, b)) for t, a, b in zip(toks, starts, ends)]


@dataclass(frozen=True)
class Turn:
    """One speaker's stretch of speech: ``speaker`` is an id ("S1") or a voice's name."""

    start: float
    end: float
    speaker: str


@dataclass(frozen=True)
class Passage:
    """A window of consecutive sentences: the unit that is embedded and searched.

    (In the code "segment" is a transcript cue and "passage" this; the index files keep their
    older names, "segments/" and "chunks".)"""

    start: float
    end: float
    sentences: tuple[Sentence, ...]

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.sentences)


@dataclass(frozen=True)
class Episode:
    """What the index knows about one episode."""

    id: str
    title: str
    duration: float
    n_passages: int
    source: str  # the transcript or audio file the text came from
    audio: str | None = None  # absolute path of the audio file, when there is one
    url: str | None = None  # the episode's page, when a feed gave one
    enclosure: str | None = None  # the audio's URL, when a feed gave one
    published: str | None = None  # ISO date, when known
    language: str | None = None
    content_hash: str = ""  # of the inputs and settings; unchanged hash = nothing to do
    transcript_source: str = ""

    def __post_init__(self) -> None:
        # A feed writes these: only an absolute http(s) URL is kept, so no javascript:, data: or
        # file: URL ever comes back as a link from any surface (issue 27, finding 2).
        for name in ("url", "enclosure"):
            value = getattr(self, name)
            if value is not None and not is_http_url(value):
                object.__setattr__(self, name, None)

    def to_dict(self) -> dict[str, Any]:
        """The ``episodes --json`` shape (and the manifest record's fields): "chunks" is the count."""
        out: dict[str, Any] = {"episode": self.id}
        for k, v in asdict(self).items():
            if k != "id":
                out["chunks" if k == "n_passages" else k] = v
        return out


def is_http_url(url: str) -> bool:
    """An absolute http(s) URL with a host, and no space around it."""
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://[::1": not a URL at all
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc) and url == url.strip()


def is_clean_http_url(url: str) -> bool:
    """An http(s) URL (``is_http_url``) with no white space anywhere in it: what a link written
    by a person (a sidecar, a feed's ``<podcast:person>``) must be. Enclosures keep the looser
    check, as real feeds carry unencoded spaces in them."""
    return is_http_url(url) and not any(c.isspace() for c in url)


LinkFn = Callable[["Episode", float], str]  # a playback link to an episode from a second; each presenter has its own


@dataclass(frozen=True)
class Hit:
    """One ranked passage returned by search."""

    episode: str
    title: str
    start: float
    end: float
    text: str
    score: float
    link: str
    sentences: tuple[Sentence, ...] = field(default=(), repr=False)
    page: str | None = None  # the episode's web page, when a feed gave one
    published: str | None = None
    chapter: str | None = None  # the title of the episode's chapter the hit lies in most
    speaker: str | None = None  # who says most of it, when known (from its sentences unless given)

    def __post_init__(self) -> None:
        if self.speaker is None and self.sentences:
            object.__setattr__(self, "speaker", main_speaker(self.sentences))

    def to_dict(self) -> dict[str, Any]:
        return {
            "episode": self.episode,
            "title": self.title,
            **_span(self.start, self.end),
            "text": self.text,
            "score": _score(self.score),
            "link": self.link,
            "page": self.page,
            "published": self.published,
            "chapter": self.chapter,
            **({"speaker": self.speaker} if self.speaker else {}),  # absent when unknown
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Hit:
        """A hit as ``to_dict`` wrote it (the sentences are not sent: ``text`` holds them)."""
        return cls(
            episode=d["episode"],
            title=d["title"],
            start=float(d["start"]),
            end=float(d["end"]),
            text=d["text"],
            score=float(d["score"]),
            link=d["link"],
            page=d.get("page"),
            published=d.get("published"),
            chapter=d.get("chapter"),  # absent in JSON from before chapters
            speaker=d.get("speaker"),
        )


@dataclass(frozen=True)
class AnswerSentence:
    """A sentence picked from the top passages as the answer to a question."""

    text: str
    episode: str
    title: str
    start: float
    end: float
    score: float
    link: str
    speaker: str | None = None  # who said it, when known

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "episode": self.episode,
            "title": self.title,
            **_span(self.start, self.end),
            "score": _score(self.score),
            "link": self.link,
            **({"speaker": self.speaker} if self.speaker else {}),  # absent when unknown
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AnswerSentence:
        return cls(
            text=d["text"],
            episode=d["episode"],
            title=d["title"],
            start=float(d["start"]),
            end=float(d["end"]),
            score=float(d["score"]),
            link=d["link"],
            speaker=d.get("speaker"),
        )


def main_speaker(sentences: tuple[Sentence, ...]) -> str | None:
    """The speaker who says most of ``sentences`` (by time), None when none is known."""
    said: dict[str, float] = {}
    for s in sentences:
        if s.speaker:
            said[s.speaker] = said.get(s.speaker, 0.0) + max(s.end - s.start, 1e-3)
    return max(said, key=lambda k: said[k]) if said else None


def _span(start: float, end: float) -> dict[str, float]:
    return {"start": round(start, 3), "end": round(end, 3)}


def _score(score: float) -> float:
    """A score for JSON: rounded, and never NaN or infinite (not valid JSON)."""
    value = float(score)
    return round(value, 6) if math.isfinite(value) else 0.0
