#!/usr/bin/env python3
"""Turn the synthetic dev scripts (scripts/<id>.txt) into SRT files (episodes/<id>.srt).

Standard library only, deterministic: the same scripts always give byte-identical SRT files.

Timing rule (all arithmetic in whole milliseconds):
  * the first sentence starts at 0.5 s;
  * a sentence lasts 0.4 s + words / 2.6 words per second;
  * 0.3 s of silence between two sentences by the same speaker, 0.6 s when the speaker changes.

Cues: one sentence per cue. A sentence of more than 18 words is split into two cues, at the comma
closest to its middle (if that comma lies in the middle half of the sentence) or else after the
middle word; its time is shared between the two cues by word count, so the cues touch.
Cue text longer than 50 characters is broken into two balanced lines. No speaker labels or <v> tags are written.

Usage:
  python make_srt.py                       # (re)write episodes/*.srt from scripts/*.txt
  python make_srt.py find "text" [...]     # look up sentences containing the text(s) -> exact times
  python make_srt.py stats                 # sentences, words and duration per episode
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "scripts"
EPISODES = HERE / "episodes"

LEAD_IN_MS = 500
BASE_MS = 400
WORDS_PER_S = 2.6
PAUSE_SAME_MS = 300
PAUSE_CHANGE_MS = 600
SPLIT_OVER_WORDS = 18
WRAP = 50

_LINE_RE = re.compile(r"^(VÆRT|GÆST):\s*(.+?)\s*$")


@dataclass
class Cue:
    start_ms: int
    end_ms: int
    text: str


@dataclass
class Sentence:
    episode: str
    index: int  # 0-based position in the script
    speaker: str  # "Vært" or "Gæst"
    text: str
    start_ms: int
    end_ms: int
    cues: list[Cue] = field(default_factory=list)


def read_script(path: Path) -> list[tuple[str, str]]:
    """(speaker, sentence) pairs; '#' lines and blank lines are skipped."""
    out = []
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE_RE.match(line)
        if not m:
            raise SystemExit(f"{path.name}:{n}: expected 'VÆRT: ...' or 'GÆST: ...', got {line!r}")
        out.append(("Vært" if m.group(1) == "VÆRT" else "Gæst", m.group(2)))
    return out


def duration_ms(words: int) -> int:
    return BASE_MS + round(words * 1000 / WORDS_PER_S)


def split_point(words: list[str]) -> int:
    """How many words go in the first cue of a long sentence."""
    n = len(words)
    mid = n / 2
    commas = [i + 1 for i, w in enumerate(words[:-1]) if w.endswith(",")]
    good = [k for k in commas if abs(k - mid) <= n / 4]
    if good:
        return min(good, key=lambda k: (abs(k - mid), k))
    return (n + 1) // 2


def timeline(episode: str, lines: list[tuple[str, str]]) -> list[Sentence]:
    out: list[Sentence] = []
    t = LEAD_IN_MS
    prev = None
    for i, (speaker, text) in enumerate(lines):
        if prev is not None:
            t += PAUSE_SAME_MS if speaker == prev else PAUSE_CHANGE_MS
        words = text.split()
        d = duration_ms(len(words))
        s = Sentence(episode, i, speaker, text, t, t + d)
        if len(words) > SPLIT_OVER_WORDS:
            k = split_point(words)
            cut = t + round(d * k / len(words))
            s.cues = [Cue(t, cut, " ".join(words[:k])), Cue(cut, t + d, " ".join(words[k:]))]
        else:
            s.cues = [Cue(t, t + d, text)]
        out.append(s)
        t += d
        prev = speaker
    return out


def load_all() -> dict[str, list[Sentence]]:
    return {p.stem: timeline(p.stem, read_script(p)) for p in sorted(SCRIPTS.glob("*.txt"))}


def ts(ms: int) -> str:
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def wrap(text: str) -> str:
    """One line if it fits in WRAP characters, else two lines broken at the space nearest the middle."""
    if len(text) <= WRAP or " " not in text:
        return text
    mid = len(text) / 2
    cut = min((i for i, ch in enumerate(text) if ch == " "), key=lambda i: (abs(i - mid), i))
    return text[:cut] + "\n" + text[cut + 1 :]


def to_srt(sentences: list[Sentence]) -> str:
    blocks = []
    n = 0
    for s in sentences:
        for c in s.cues:
            n += 1
            body = wrap(c.text)
            blocks.append(f"{n}\n{ts(c.start_ms)} --> {ts(c.end_ms)}\n{body}\n")
    return "\n".join(blocks)


def _norm(s: str) -> str:
    return " ".join(re.sub(r"[^\wæøå]+", " ", s.lower()).split())


def find(fragment: str, episode: str | None = None, corpus: dict[str, list[Sentence]] | None = None) -> list[Sentence]:
    """Sentences whose text contains the fragment (case and punctuation ignored)."""
    corpus = corpus or load_all()
    f = _norm(fragment)
    return [s for ep, ss in corpus.items() if episode in (None, ep) for s in ss if f in _norm(s.text)]


def main(argv: list[str]) -> int:
    corpus = load_all()
    if not argv:
        EPISODES.mkdir(exist_ok=True)
        for ep, ss in corpus.items():
            (EPISODES / f"{ep}.srt").write_text(to_srt(ss), encoding="utf-8", newline="\n")
            print(
                f"wrote episodes/{ep}.srt: {len(ss)} sentences, "
                f"{sum(len(s.cues) for s in ss)} cues, {ss[-1].end_ms / 1000:.3f} s"
            )
        return 0
    if argv[0] == "find":
        for frag in argv[1:]:
            hits = find(frag, corpus=corpus)
            print(f"{frag!r}: {len(hits)} hit(s)")
            for s in hits:
                print(
                    f"  {s.episode} #{s.index} {s.start_ms / 1000:.3f}-{s.end_ms / 1000:.3f} "
                    f"({len(s.cues)} cue(s)) {s.speaker}: {s.text}"
                )
        return 0
    if argv[0] == "stats":
        for ep, ss in corpus.items():
            words = sum(len(s.text.split()) for s in ss)
            end = ss[-1].end_ms / 1000
            print(
                f"{ep}: {len(ss)} sentences, {sum(len(s.cues) for s in ss)} cues, {words} words, "
                f"{end:.1f} s ({int(end // 60)}:{end % 60:04.1f})"
            )
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
