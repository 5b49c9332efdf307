"""Subtitles players accept: a transcript re-cut into cues of common subtitle limits, split at
word times, written as SRT or WebVTT.

The limits are the ones broadcasters and platforms publish (Netflix's timed-text guide, the BBC's
subtitle guidelines): at most two lines of about 42 characters, a cue on screen for 1 to 7
seconds. A cue ends at a sentence end when one comes, else at a pause, else where the limits
force it, always between words (a Whisper transcript's own word times; without them, times
inside a segment are spread by characters, as ``Sentence.word_spans`` does). Lines are broken at
the word that balances them best.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..types import Segment, Sentence, Transcript

MAX_LINE = 42  # characters a line
MAX_LINES = 2
MIN_SECONDS = 1.0
MAX_SECONDS = 7.0
PAUSE = 0.6  # a silence this long between words is a good place to end a cue
MIN_GAP = 0.04  # cues never touch: some players drop a cue that starts as the last one ends

TimedWord = tuple[str, float, float]  # text (no surrounding spaces), start, end


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: tuple[str, ...]
    speaker: str | None = None

    @property
    def text(self) -> str:
        return " ".join(self.lines)


def segment_words(seg: Segment) -> list[TimedWord]:
    """A segment's words with times: Whisper's own, else spread over the segment by characters."""
    words = [(w.text.strip(), float(w.start), float(w.end)) for w in seg.words if w.text.strip()]
    if words:
        return words
    return Sentence(seg.start, seg.end, " ".join(seg.text.split())).word_spans()


def _ends_sentence(word: str) -> bool:
    return word.rstrip("\"'»”)]").endswith((".", "!", "?", "…"))


def _fits(words: Sequence[TimedWord], max_line: int, max_lines: int) -> bool:
    return len(split_lines([w for w, _, _ in words], max_line)) <= max_lines


def split_lines(words: Sequence[str], max_line: int = MAX_LINE) -> list[str]:
    """Words into as few lines of at most ``max_line`` characters as fit; two lines are balanced
    (the break that makes the longer line shortest). A single word longer than a line stays whole."""
    text = " ".join(words)
    if len(text) <= max_line:
        return [text] if text else []
    best: tuple[int, int] | None = None
    for i in range(1, len(words)):
        a, b = " ".join(words[:i]), " ".join(words[i:])
        if len(a) <= max_line and len(b) <= max_line:
            key = max(len(a), len(b))
            if best is None or key < best[0]:
                best = (key, i)
    if best is not None:
        return [" ".join(words[: best[1]]), " ".join(words[best[1] :])]
    lines: list[str] = []
    for w in words:  # more than two lines' worth: fill greedily (the caller splits the cue)
        if lines and len(lines[-1]) + 1 + len(w) <= max_line:
            lines[-1] += " " + w
        else:
            lines.append(w)
    return lines


def make_cues(
    transcript: Transcript,
    *,
    max_line: int = MAX_LINE,
    max_lines: int = MAX_LINES,
    min_seconds: float = MIN_SECONDS,
    max_seconds: float = MAX_SECONDS,
) -> list[Cue]:
    """The transcript's words in cues within the limits (a cue never spans two speakers)."""
    runs: list[tuple[str | None, list[TimedWord]]] = []
    for seg in transcript.segments:
        words = segment_words(seg)
        if not words:
            continue
        if runs and runs[-1][0] == seg.speaker:
            runs[-1][1].extend(words)
        else:
            runs.append((seg.speaker, list(words)))
    cues: list[Cue] = []
    for speaker, words in runs:
        i = 0
        while i < len(words):
            # the longest run of words from i that fits the limits
            j = i + 1
            while (
                j < len(words)
                and words[j][2] - words[i][1] <= max_seconds
                and _fits(words[i : j + 1], max_line, max_lines)
            ):
                j += 1
            # prefer to end at a sentence end, else at a pause, past the first third of what fits
            if j < len(words):
                lo = i + max(2, (j - i) // 3)
                ends = [k for k in range(lo, j) if _ends_sentence(words[k - 1][0])]
                pauses = [k for k in range(lo, j) if words[k][1] - words[k - 1][2] >= PAUSE]
                if ends:
                    j = ends[-1]
                elif pauses:
                    j = pauses[-1]
            chunk = words[i:j]
            cues.append(
                Cue(
                    start=chunk[0][1],
                    end=max(chunk[-1][2], chunk[0][1]),
                    lines=tuple(split_lines([w for w, _, _ in chunk], max_line)),
                    speaker=speaker,
                )
            )
            i = j
    return _retime(cues, min_seconds=min_seconds, max_seconds=max_seconds)


def _retime(cues: list[Cue], *, min_seconds: float, max_seconds: float) -> list[Cue]:
    """Cues in order, not overlapping, each on screen 1-7 s where the neighbours leave room."""
    out: list[Cue] = []
    for n, c in enumerate(cues):
        start = max(c.start, out[-1].end + MIN_GAP) if out else max(0.0, c.start)
        nxt = cues[n + 1].start - MIN_GAP if n + 1 < len(cues) else float("inf")
        end = min(max(c.end, start + min_seconds), start + max_seconds, nxt)
        if end <= start:  # words closer than the gap: take what there is
            end = start + 0.01
        out.append(Cue(start=start, end=end, lines=c.lines, speaker=c.speaker))
    return out


def shift(cues: Sequence[Cue], offset: float, *, until: float | None = None) -> list[Cue]:
    """Cues moved by ``-offset`` (a clip's own times), clamped to [0, until]."""
    out = []
    for c in cues:
        start, end = max(0.0, c.start - offset), c.end - offset
        if until is not None:
            end = min(end, until)
        if end > start:
            out.append(Cue(start=start, end=end, lines=c.lines, speaker=c.speaker))
    return out


def _stamp(seconds: float, sep: str) -> str:
    from ..formats import format_timestamp

    return format_timestamp(seconds, decimal_marker=sep)


def format_srt_cues(cues: Sequence[Cue]) -> str:
    return "\n".join(
        f"{i}\n{_stamp(c.start, ',')} --> {_stamp(c.end, ',')}\n" + "\n".join(c.lines) + "\n"
        for i, c in enumerate(cues, 1)
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def format_vtt_cues(cues: Sequence[Cue], *, language: str | None = None) -> str:
    parts = ["WEBVTT" + (f"\nLanguage: {language}" if language else "") + "\n"]
    for c in cues:
        lines = [_escape(line) for line in c.lines]
        if c.speaker:
            speaker = " ".join(c.speaker.replace(">", "").replace("<", "").split())
            lines[0] = f"<v {speaker}>{lines[0]}"
        parts.append(f"{_stamp(c.start, '.')} --> {_stamp(c.end, '.')}\n" + "\n".join(lines) + "\n")
    return "\n".join(parts)


def subtitles_text(cues: Sequence[Cue], format_: str, *, language: str | None = None) -> str:
    if format_ == "srt":
        return format_srt_cues(cues)
    if format_ == "vtt":
        return format_vtt_cues(cues, language=language)
    raise InputError(f"unknown subtitle format {format_!r}; expected srt or vtt")


def write_subtitles(transcript: Transcript, path: Path, format_: str) -> None:
    """``transcript`` as player-ready SRT or WebVTT at ``path`` (an atomic write)."""
    from ..fsutil import atomic_write

    text = subtitles_text(make_cues(transcript), format_, language=transcript.language)
    try:
        atomic_write(Path(path), text.encode("utf-8"), make_parents=False)
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from None
