"""Transcript -> sentences with their own times -> overlapping passages, and back.

Passages follow sentence boundaries, carry exact start/end times, and never exceed the embedding
model's token limit: a sentence longer than the limit is split at word boundaries, so nothing
is silently truncated by the model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .types import Passage, Segment, Sentence, Transcript, Word

CountTokens = Callable[[Sequence[str]], list[int]]


@dataclass(frozen=True)
class ChunkSettings:
    """How transcripts are cut into passages; recorded in the index manifest.

    A passage of ~60 s (about 150 English words) fits all-MiniLM-L6-v2's 256-token limit with
    room to spare and is half a TREC Podcasts judging unit (2 minutes), so a hit lands inside the
    stretch a listener wants; 15 s of overlap keeps an answer that straddles a boundary whole.
    """

    target_seconds: float = 60.0
    overlap_seconds: float = 15.0
    max_tokens: int = 256  # capped at the embedding model's own limit

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_seconds": self.target_seconds,
            "overlap_seconds": self.overlap_seconds,
            "max_tokens": self.max_tokens,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChunkSettings | None:
        """The settings an index recorded (None when it recorded something else)."""
        try:
            out = cls(float(d["target_seconds"]), float(d["overlap_seconds"]), int(d["max_tokens"]))
        except (KeyError, TypeError, ValueError):
            return None
        return out if out.to_dict() == d else None


# A sentence ends in .!?… maybe followed by closing quotes or brackets. Tested with rstrip, not the
# regex "[.!?…]+[\"'»”)\]]*$", which searched from every dot of a long run: quadratic (issue 12).
_SENTENCE_ENDERS = ".!?…"
_CLOSERS = "\"'»”)]"
# Split inside a cue's text where a sentence ends and another begins.
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?…])[\"'»”)\]]*\s+(?=[\"'«“(\[]?[A-ZÆØÅÄÖÜ0-9])")
# A full stop after these is not a sentence end (English and Danish).
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "st",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "approx",
        "no",
        "fig",
        "jr",
        "sr",
        "inc",
        "ltd",
        "co",
        "ca",
        "bl.a",
        "f.eks",
        "dvs",
        "osv",
        "mht",
        "pga",
        "hhv",
        "mv",
        "jf",
        "evt",
        "kl",
        "nr",
        "tlf",
        "ift",
        "vedr",
        "incl",
    ]
)
# Speech without punctuation still has to end a sentence somewhere.
MAX_SENTENCE_SECONDS = 30.0


@dataclass(frozen=True)
class _Piece:
    start: float
    end: float
    text: str
    word: bool = False  # one word with its own timestamp
    speaker: str | None = None


def _ends_sentence(text: str) -> bool:
    text = text.strip()
    core = text.rstrip(_CLOSERS)
    if not core or core[-1] not in _SENTENCE_ENDERS:
        return False
    last = text.rstrip(_SENTENCE_ENDERS + _CLOSERS).rsplit(None, 1)[-1:]
    return not (text.endswith(".") and last and last[0].lower().rstrip(".") in _ABBREVIATIONS)


def _pieces(transcript: Transcript) -> list[_Piece]:
    """Word-level pieces where Whisper gave words; else sentence fragments of each cue, timed
    in proportion to their length (cue times are exact, times inside a cue are estimates)."""
    pieces: list[_Piece] = []
    for seg in transcript.segments:
        if seg.words:
            pieces.extend(
                _Piece(w.start, max(w.end, w.start), w.text.strip(), word=True, speaker=seg.speaker)
                for w in seg.words
                if w.text.strip()
            )
            continue
        parts = [p.strip() for p in _SENTENCE_SPLIT.split(seg.text.strip()) if p.strip()]
        total = sum(len(p) for p in parts) or 1
        t = seg.start
        span = max(seg.end - seg.start, 0.0)
        for p in parts:
            end = t + span * len(p) / total
            pieces.append(_Piece(t, end, p, speaker=seg.speaker))
            t = end
    return pieces


def transcript_sentences(transcript: Transcript, *, max_seconds: float = MAX_SENTENCE_SECONDS) -> list[Sentence]:
    """Sentences across cue boundaries (subtitle cues often cut a sentence in two); a sentence
    never spans two speakers (it ends where the speaker changes)."""
    sentences: list[Sentence] = []
    buf: list[_Piece] = []

    def flush() -> None:
        if buf:
            text = " ".join(p.text for p in buf)
            # Word pieces (from Whisper's word timestamps) give every word its own start.
            exact = all(p.word for p in buf) and len(text.split()) == len(buf)
            sentences.append(
                Sentence(
                    start=buf[0].start,
                    end=max(p.end for p in buf),
                    text=text,
                    word_times=tuple(p.start for p in buf) if exact else (),
                    speaker=buf[0].speaker,
                )
            )
            buf.clear()

    for piece in _pieces(transcript):
        if buf and (piece.end - buf[0].start > max_seconds or piece.speaker != buf[0].speaker):
            flush()
        buf.append(piece)
        if _ends_sentence(piece.text):
            flush()
    flush()
    return sentences


def _split_long(sentence: Sentence, limit: int, count_tokens: CountTokens) -> list[Sentence]:
    """Split one over-long sentence at word boundaries into parts of at most ``limit`` tokens,
    timed by its word times where Whisper gave them, else in proportion to character length."""
    words = sentence.text.split()
    counts = count_tokens(words)
    parts: list[list[str]] = [[]]
    used = 0
    for word, n in zip(words, counts):
        if parts[-1] and used + n > limit:
            parts.append([])
            used = 0
        parts[-1].append(word)
        used += n
    spans = sentence.word_spans()  # exact word times when known, else spread by characters
    out, i = [], 0
    for part in parts:
        mine = spans[i : i + len(part)]
        exact = sentence.word_times[i : i + len(part)] if sentence.word_times else ()
        out.append(Sentence(mine[0][1], mine[-1][2], " ".join(part), word_times=tuple(exact), speaker=sentence.speaker))
        i += len(part)
    return out


def chunk_transcript(
    transcript: Transcript,
    *,
    count_tokens: CountTokens,
    max_tokens: int,
    settings: ChunkSettings = ChunkSettings(),
) -> list[Passage]:
    """Cut a transcript into overlapping windows of whole sentences.

    A window grows while it stays within ``settings.target_seconds`` and ``max_tokens``; the
    next window starts with the last sentences that fit in ``settings.overlap_seconds``.
    ``count_tokens`` is the embedding model's tokenizer (word pieces, no special tokens).
    """
    limit = min(max_tokens, settings.max_tokens)
    # The overlap is bounded in tokens as well as seconds (at most half a window): with zeroed or
    # dense cue times every sentence fits in overlap_seconds, and each window would start one
    # sentence after the last, one passage per sentence (issue 12, finding 13). So every passage
    # adds at least half a window of new text: passages are bounded by the text's length.
    overlap_tokens = limit / 2
    sentences = transcript_sentences(transcript)
    counts = count_tokens([s.text for s in sentences])
    fitted: list[Sentence] = []
    fitted_counts: list[int] = []
    for s, n in zip(sentences, counts):
        if n <= limit:
            fitted.append(s)
            fitted_counts.append(n)
        else:
            parts = _split_long(s, limit, count_tokens)
            fitted.extend(parts)
            fitted_counts.extend(count_tokens([p.text for p in parts]))
    sentences, counts = fitted, fitted_counts

    chunks: list[Passage] = []
    i, n = 0, len(sentences)
    while i < n:
        j, used = i + 1, counts[i]
        # +1 per joint: joining with a space can only merge pieces, never add more than that.
        while (
            j < n and used + counts[j] + 1 <= limit and sentences[j].end - sentences[i].start <= settings.target_seconds
        ):
            used += counts[j] + 1
            j += 1
        window = sentences[i:j]
        chunks.append(Passage(start=window[0].start, end=max(s.end for s in window), sentences=tuple(window)))
        if j >= n:
            break
        # Overlap: the next window starts with the last sentences that fit in overlap_seconds
        # (at least one sentence further on, so the loop always advances).
        k, kept = j, 0
        while (
            k - 1 > i
            and sentences[j - 1].end - sentences[k - 1].start <= settings.overlap_seconds
            and kept + counts[k - 1] + 1 <= overlap_tokens
        ):
            kept += counts[k - 1] + 1
            k -= 1
        # ...but never so much overlap that sentence j no longer fits: that window would only
        # repeat the end of this one.
        while k < j and (
            sum(counts[k : j + 1]) + (j - k) > limit or sentences[j].end - sentences[k].start > settings.target_seconds
        ):
            k += 1
        i = k
    return chunks


def sentences_from_passages(passages: Iterable[Passage]) -> list[Sentence]:
    """The inverse of ``chunk_transcript``: an episode's sentences once each, in time order.

    Consecutive passages share their overlap sentence for sentence (the same objects' values), so a
    sentence is the same one when its start, end and text are: the one key every reader uses."""
    seen: dict[tuple[float, float, str], Sentence] = {}
    for passage in passages:
        for s in passage.sentences:
            seen.setdefault((round(s.start, 3), round(s.end, 3), s.text), s)
    return sorted(seen.values(), key=lambda s: (s.start, s.end))


def transcript_from_passages(passages: Iterable[Passage], *, language: str | None) -> Transcript:
    """An episode's transcript back from its overlapping passages (``reindex`` chunks it anew): each
    sentence a segment, with its word times where the index kept them."""
    segments = []
    for s in sentences_from_passages(passages):
        tokens = s.text.split()
        words: tuple[Word, ...] = ()
        if s.word_times and len(s.word_times) == len(tokens):
            ends = [*s.word_times[1:], s.end]
            words = tuple(Word(a, max(a, b), f" {t}") for t, a, b in zip(tokens, s.word_times, ends))
        segments.append(Segment(s.start, s.end, s.text, words=words, speaker=s.speaker))
    return Transcript(tuple(segments), language=language, source="index")
