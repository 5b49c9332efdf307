#!/usr/bin/env python3
"""Build questions.jsonl from questions_src.jsonl, with exact answer times, and validate it.

questions_src.jsonl holds the hand-written questions. Instead of times, each names its answer by
text: "answer": [first] or [first, last], where first/last are fragments of the first and last
script sentence of the answer span (case and punctuation are ignored; each fragment must match
exactly one sentence in the question's episode). "also" entries name further spans the same way.
The times are then taken from the same timeline that make_srt.py writes to episodes/*.srt:
start = start of the first cue of the first sentence, end = end of the last cue of the last one.

Usage:
  python make_questions.py           # write questions.jsonl (ids da-001, da-002, ... in file order)
  python make_questions.py --check   # only validate questions.jsonl against episodes/*.srt
Standard library only.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

import make_srt

HERE = Path(__file__).resolve().parent
SRC = HERE / "questions_src.jsonl"
OUT = HERE / "questions.jsonl"

TYPES = ("topical", "known-item", "quote", "unanswerable")
LANGS = ("da", "en")
_TIME = re.compile(r"(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)")


def _one(fragment: str, episode: str, corpus) -> make_srt.Sentence:
    hits = make_srt.find(fragment, episode, corpus)
    if len(hits) != 1:
        raise SystemExit(f"{episode}: fragment {fragment!r} matches {len(hits)} sentences, need exactly 1")
    return hits[0]


def resolve(episode: str, answer: list[str], corpus) -> tuple[float, float, list[make_srt.Sentence]]:
    first = _one(answer[0], episode, corpus)
    last = _one(answer[-1], episode, corpus)
    if last.index < first.index:
        raise SystemExit(f"{episode}: answer {answer!r} ends before it starts")
    sents = corpus[episode][first.index : last.index + 1]
    return first.cues[0].start_ms / 1000, last.cues[-1].end_ms / 1000, sents


def build() -> list[dict]:
    corpus = make_srt.load_all()
    out = []
    for line in SRC.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        src = json.loads(line)
        if src.get("answerable", True) is False:
            # never discussed in any episode; every second one is held back for the final check
            n = sum(q.get("answerable", True) is False for q in out) + 1
            out.append(
                {
                    "id": f"da-u{n:02d}",
                    "question": src["question"],
                    "type": "unanswerable",
                    "lang": src["lang"],
                    "answerable": False,
                    "split": "test" if n % 2 == 0 else "dev",
                }
            )
            continue
        start, end, sents = resolve(src["episode"], src["answer"], corpus)
        q = {
            "id": f"da-{len(out) + 1:03d}",
            "question": src["question"],
            "episode": src["episode"],
            "start": start,
            "end": end,
            "type": src["type"],
            "lang": src["lang"],
            # the first 64 were all tuned on before the split existed; the 16 written after it
            # (stop 30) are held back
            "split": src.get("split", "dev"),
        }
        if src.get("also"):
            q["also"] = []
            for a in src["also"]:
                s, e, _ = resolve(a["episode"], a["answer"], corpus)
                q["also"].append({"episode": a["episode"], "start": s, "end": e})
        if src["type"] == "quote":
            _check_quote(q, sents)
        out.append(q)
    return out


def _words(s: str) -> list[str]:
    return make_srt._norm(s).split()


def _check_quote(q: dict, sents) -> None:
    """A quote must be a run of the answer's words with one or two of them changed (as ASR would)."""
    quote = _words(q["question"])
    text = _words(" ".join(s.text for s in sents))
    best = None
    for i in range(len(text)):
        window = text[i : i + len(quote) + 2]
        # words of the quote that are not at the same place in the transcript, allowing a one-word
        # shift (an ASR split of a compound, "tiendedel" -> "tiende del", adds a word)
        diff = sum(1 for j, w in enumerate(quote) if w not in window[max(0, j - 1) : j + 2])
        best = diff if best is None else min(best, diff)
    if not best or best > 2:
        raise SystemExit(f"{q['id']}: quote differs from its answer in {best} words; want 1 or 2")


def read_srt(path: Path) -> list[tuple[float, float]]:
    cues = []
    for m in _TIME.finditer(path.read_text(encoding="utf-8")):
        g = [int(x) for x in m.groups()]
        cues.append(((g[0] * 3600 + g[1] * 60 + g[2]) + g[3] / 1000, (g[4] * 3600 + g[5] * 60 + g[6]) + g[7] / 1000))
    return cues


def validate(questions: list[dict], quiet: bool = False) -> None:
    srts = {p.stem: read_srt(p) for p in sorted(make_srt.EPISODES.glob("*.srt"))}
    ids = Counter(q["id"] for q in questions)
    problems = [f"duplicate id {i}" for i, c in ids.items() if c > 1]

    def span_ok(qid: str, ep: str, start: float, end: float) -> None:
        cues = srts.get(ep)
        if cues is None:
            problems.append(f"{qid}: no episodes/{ep}.srt")
            return
        if not (0 <= start < end <= cues[-1][1]):
            problems.append(f"{qid}: span {start}-{end} outside {ep} (0-{cues[-1][1]})")
        if start not in {c[0] for c in cues} or end not in {c[1] for c in cues}:
            problems.append(f"{qid}: span {start}-{end} does not start and end on cue boundaries of {ep}")

    for q in questions:
        if q.get("answerable", True) is False:
            if q.get("type") != "unanswerable" or q.get("lang") not in LANGS or "episode" in q:
                problems.append(f"{q.get('id')}: an unanswerable question has type unanswerable, a lang and no episode")
            continue
        for k in ("id", "question", "episode", "start", "end", "type", "lang"):
            if k not in q:
                problems.append(f"{q.get('id')}: missing {k}")
        if q.get("type") not in TYPES:
            problems.append(f"{q['id']}: bad type {q.get('type')!r}")
        if q.get("lang") not in LANGS:
            problems.append(f"{q['id']}: bad lang {q.get('lang')!r}")
        if q.get("type") == "quote" and (q.get("lang") != "da" or not q["question"].startswith('"')):
            problems.append(f"{q['id']}: quotes must be Danish and in double quotes")
        span_ok(q["id"], q["episode"], q["start"], q["end"])
        for a in q.get("also", []):
            span_ok(q["id"] + " (also)", a["episode"], a["start"], a["end"])
    if problems:
        raise SystemExit("invalid questions:\n  " + "\n  ".join(problems))
    if quiet:
        return
    by = Counter((q["type"], q["lang"]) for q in questions)
    print(
        f"{len(questions)} questions OK; " + ", ".join(f"{t}: {by[(t, 'da')]} da + {by[(t, 'en')]} en" for t in TYPES)
    )
    print(
        "per episode: "
        + ", ".join(f"{e}: {c}" for e, c in sorted(Counter(q["episode"] for q in questions if "episode" in q).items()))
    )


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        questions = [json.loads(row) for row in OUT.read_text(encoding="utf-8").splitlines() if row.strip()]
    elif not argv:
        questions = build()
        validate(questions, quiet=True)
        OUT.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in questions), encoding="utf-8")
        print(f"wrote {OUT.name}")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    validate(questions)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
