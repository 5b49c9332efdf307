"""Turns meet words: each Whisper word goes to the speaker whose turn covers most of it, and a
segment is split where its speaker changes; and back, an episode's turns from its sentences."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import replace

from ..types import Segment, Sentence, Transcript, Turn, Word


def speaker_at(turns: Sequence[Turn], start: float, end: float, *, starts: Sequence[float] | None = None) -> str | None:
    """The speaker whose turns cover most of [start, end]; the nearest turn's when none does."""
    if not turns:
        return None
    starts = starts if starts is not None else [t.start for t in turns]
    i = max(bisect.bisect_right(starts, end) - 1, 0)
    cover: dict[str, float] = {}
    j = i
    while j >= 0 and turns[j].end > start - 60.0:  # turns are sorted; look back a little for long ones
        overlap = min(end, turns[j].end) - max(start, turns[j].start)
        if overlap > 0:
            cover[turns[j].speaker] = cover.get(turns[j].speaker, 0.0) + overlap
        j -= 1
    if cover:
        return max(cover, key=lambda k: cover[k])
    mid = (start + end) / 2
    near = [turns[k] for k in (i, i + 1) if 0 <= k < len(turns)]
    return min(near, key=lambda t: max(t.start - mid, mid - t.end, 0.0)).speaker


def assign_speakers(transcript: Transcript, turns: Sequence[Turn]) -> Transcript:
    """The transcript with a speaker on every segment, a segment split where its words change
    speaker. Segments without words go whole to the speaker covering most of them."""
    if not turns:
        return transcript
    turns = sorted(turns, key=lambda t: t.start)
    starts = [t.start for t in turns]
    out: list[Segment] = []
    for seg in transcript.segments:
        if not seg.words:
            out.append(replace(seg, speaker=speaker_at(turns, seg.start, seg.end, starts=starts)))
            continue
        runs: list[tuple[str | None, list[Word]]] = []
        for w in seg.words:
            who = speaker_at(turns, w.start, max(w.end, w.start + 0.01), starts=starts)
            if runs and runs[-1][0] == who:
                runs[-1][1].append(w)
            else:
                runs.append((who, [w]))
        if len(runs) == 1:
            out.append(replace(seg, speaker=runs[0][0]))
            continue
        for who, words in runs:
            text = "".join(w.text for w in words).strip()
            out.append(Segment(words[0].start, max(w.end for w in words), text, words=tuple(words), speaker=who))
    return replace(transcript, segments=tuple(out))


def turns_from_sentences(sentences: Iterable[Sentence], *, join_gap: float = 10.0) -> list[Turn]:
    """An episode's turns back from its sentences: consecutive sentences of one speaker make one
    turn (sentences without a speaker are left out)."""
    turns: list[Turn] = []
    for s in sentences:
        if s.speaker is None:
            continue
        if turns and turns[-1].speaker == s.speaker and s.start - turns[-1].end <= join_gap:
            turns[-1] = Turn(turns[-1].start, max(turns[-1].end, s.end), s.speaker)
        else:
            turns.append(Turn(s.start, s.end, s.speaker))
    return turns
