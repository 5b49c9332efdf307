"""What a podcast feed can carry back, made from what the index holds (Podcasting 2.0): the
transcript as WebVTT (speakers as ``<v>`` names) and as JSON (``application/json``, a segment per
word with its time), the chapters JSON (``application/json+chapters``), and the item's tags
that point at them: ``<podcast:transcript>``, ``<podcast:chapters>``, ``<podcast:soundbite>``
(and ``<podcast:person>`` for each named speaker), as an XML snippet to paste into the item.

Spec: https://github.com/Podcastindex-org/podcast-namespace (transcripts.md, chapters.md,
soundbite in docs/1.0.md). Pure: the service hands over the episode, its sentences, chapters and
the soundbites; the CLI writes the files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

from ..types import Episode, Segment, Sentence, Transcript, Word
from .chapters import Chapter, podcast_chapters

PODCAST_NS = "https://podcastindex.org/namespace/1.0"
SOUNDBITE_MAX_SECONDS = 60.0  # the spec: "a soundbite should be ... between 15 and 120 seconds"; players cut short


@dataclass(frozen=True)
class Soundbite:
    start: float
    duration: float
    title: str


def _speaker(sentence: Sentence) -> str | None:
    name = getattr(sentence, "speaker", None)
    return " ".join(name.split()) if isinstance(name, str) and name.strip() else None


def _transcript(sentences: Sequence[Sentence], language: str | None) -> Transcript:
    segments = []
    for s in sentences:
        spans = s.word_spans()
        words = tuple(Word(a, b, f" {w}") for w, a, b in spans) if s.word_times else ()
        segments.append(Segment(s.start, s.end, s.text, words=words, speaker=_speaker(s)))
    return Transcript(tuple(segments), language=language, source="index")


def transcript_vtt(sentences: Sequence[Sentence], language: str | None) -> str:
    """The transcript as player-ready WebVTT cues (host/subtitles.py), ``<v Name>`` where known."""
    from .subtitles import format_vtt_cues, make_cues

    return format_vtt_cues(make_cues(_transcript(sentences, language)), language=language)


def transcript_json(sentences: Sequence[Sentence]) -> dict[str, object]:
    """The Podcasting 2.0 JSON transcript: one segment per word with its time (Whisper's word times,
    else spread over the sentence), a speaker where the transcript names one."""
    segments: list[dict[str, object]] = []
    for s in sentences:
        who = _speaker(s)
        for word, start, end in s.word_spans():
            seg: dict[str, object] = {"startTime": round(start, 3), "endTime": round(end, 3), "body": word}
            if who:
                seg["speaker"] = who
            segments.append(seg)
    return {"version": "1.0.0", "segments": segments}


def file_stem(episode_id: str) -> str:
    """A file name of the episode's id that is safe in a URL and a folder."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", episode_id).strip(".-") or "episode"


@dataclass(frozen=True)
class Published:
    files: dict[str, str]  # file name -> content
    snippet: str  # the item's XML tags


def publish(
    episode: Episode,
    sentences: Sequence[Sentence],
    chapters: Sequence[Chapter],
    soundbites: Sequence[Soundbite],
    *,
    base_url: str,
    names: Mapping[str, str] | None = None,
) -> Published:
    """The files of one episode and the ``<item>`` tags that point at them under ``base_url``;
    ``names``: the names given to its speaker ids (``S1`` -> "Anne Hansen"), for ``<v>`` and
    ``<podcast:person>`` (a speaker with only an id gets no person tag)."""
    from ..speakers.names import is_detected

    if names:
        sentences = [
            replace(s, speaker=names[s.speaker]) if s.speaker is not None and s.speaker in names else s
            for s in sentences
        ]
    stem = file_stem(episode.id)
    base = base_url.rstrip("/") + "/"
    vtt, js, ch = f"{stem}.vtt", f"{stem}.transcript.json", f"{stem}.chapters.json"
    files = {
        vtt: transcript_vtt(sentences, episode.language),
        js: json.dumps(transcript_json(sentences), ensure_ascii=False, separators=(",", ":")) + "\n",
        ch: json.dumps(podcast_chapters(chapters, title=episode.title), ensure_ascii=False, indent=2) + "\n",
    }
    lang = f" language={quoteattr(episode.language)}" if episode.language else ""
    tags = [
        f'<podcast:transcript url={quoteattr(base + quote(vtt))} type="text/vtt"{lang} />',
        f'<podcast:transcript url={quoteattr(base + quote(js))} type="application/json"{lang} />',
        f'<podcast:chapters url={quoteattr(base + quote(ch))} type="application/json+chapters" />',
    ]
    for b in soundbites:
        duration = min(b.duration, SOUNDBITE_MAX_SECONDS)
        tags.append(
            f'<podcast:soundbite startTime="{b.start:.3f}" duration="{duration:.3f}">{escape(b.title)}</podcast:soundbite>'
        )
    for name in dict.fromkeys(n for n in (_speaker(s) for s in sentences) if n and not is_detected(n)):
        tags.append(f"<podcast:person>{escape(name)}</podcast:person>")
    snippet = (
        f"<!-- {escape(episode.title.replace('--', '- -'))}: paste into its <item>; the feed's <rss> declares "
        f'xmlns:podcast="{PODCAST_NS}" -->\n' + "\n".join(tags) + "\n"
    )
    files[f"{stem}.item.xml"] = snippet
    return Published(files=files, snippet=snippet)
