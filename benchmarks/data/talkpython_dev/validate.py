#!/usr/bin/env python3
"""Validate the talkpython_dev evaluation set (stdlib only).

Checks questions.jsonl against episodes.txt and, when available, against the
Talk Python To Me WebVTT transcripts (not part of this repo):

  * every line is a JSON object with the expected fields and types
  * ids are unique, types are topical / known-item / quote, lang is "en"
  * every episode (and every "also" episode) is listed in episodes.txt
  * with the transcripts present: each episode file exists, 0 <= start < end <= duration,
    spans start/end on cue boundaries (warning only), exact quotes occur in the cited
    cue span after normalising case and punctuation, inexact quotes are close to it
    but not identical

Usage:
    python3 benchmarks/data/talkpython_dev/validate.py [--vtt-dir DIR]

The transcript folder defaults to $TALKPYTHON_VTT, else ../shared/data/talkpython/vtt
next to the repository root. If it is absent the transcript checks are skipped
(with a message) and only the structural checks run. Exit code 0 = valid, 1 = errors.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]
DEFAULT_VTT = REPO_ROOT.parent / "shared" / "data" / "talkpython" / "vtt"

TYPES = ("topical", "known-item", "quote")
REQUIRED = {
    "id": str,
    "question": str,
    "episode": str,
    "start": (int, float),
    "end": (int, float),
    "type": str,
    "lang": str,
}
TIMING = re.compile(r"(\d+):(\d{2}):(\d{2})[.,](\d{3})\s+-->\s+(\d+):(\d{2}):(\d{2})[.,](\d{3})")
TAG = re.compile(r"<[^>]*>")
BOUNDARY_TOL = 0.0015  # seconds; spans are copied from cue times
DURATION_TOL = 0.5
FUZZY_MIN = 0.75  # share of an inexact quote's characters found in its cue span


def _secs(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000.0


def parse_vtt(path: Path) -> list[tuple[float, float, str]]:
    """Return [(start, end, text)] for every cue; voice/format tags stripped."""
    cues: list[tuple[float, float, str]] = []
    cur: list | None = None
    with path.open(encoding="utf-8-sig") as fh:
        for raw in fh:
            line = raw.rstrip("\r\n")
            m = TIMING.search(line)
            if m:
                g = m.groups()
                cur = [_secs(*g[:4]), _secs(*g[4:]), []]
                cues.append(cur)
            elif not line.strip():
                cur = None
            elif cur is not None:
                cur[2].append(TAG.sub("", line).strip())
    return [(s, e, " ".join(t for t in parts if t)) for s, e, parts in cues]


def norm(text: str) -> str:
    """Lower-case, drop apostrophes, turn every other non-alphanumeric run into one space."""
    text = text.lower().replace("'", "").replace("\u2019", "")
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text).split())


def quoted_text(question: str) -> str | None:
    first, last = question.find('"'), question.rfind('"')
    if first == -1 or last <= first:
        return None
    return question[first + 1 : last]


def coverage(needle: str, hay: str) -> float:
    """Share of needle's characters that appear, in order, in hay."""
    if not needle:
        return 0.0
    sm = difflib.SequenceMatcher(None, needle, hay, autojunk=False)
    return sum(b.size for b in sm.get_matching_blocks()) / len(needle)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vtt-dir", type=Path, default=Path(os.environ.get("TALKPYTHON_VTT", DEFAULT_VTT)))
    ap.add_argument("--questions", type=Path, default=HERE / "questions.jsonl")
    ap.add_argument("--episodes", type=Path, default=HERE / "episodes.txt")
    args = ap.parse_args(argv)

    errors: list[str] = []
    warnings: list[str] = []

    # episodes.txt
    ep_lines = [ln.rstrip("\r\n") for ln in args.episodes.read_text(encoding="utf-8").splitlines()]
    ep_lines = [ln for ln in ep_lines if ln.strip()]
    episodes = set(ep_lines)
    if len(episodes) != len(ep_lines):
        errors.append("episodes.txt: duplicate episode ids")
    for ln in ep_lines:
        if ln != ln.strip():
            errors.append(f"episodes.txt: leading/trailing whitespace in {ln!r}")

    # questions.jsonl: structure
    items: list[dict] = []
    for n, raw in enumerate(args.questions.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        where = f"questions.jsonl:{n}"
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            errors.append(f"{where}: invalid JSON ({exc})")
            continue
        if not isinstance(obj, dict):
            errors.append(f"{where}: not a JSON object")
            continue
        ok = True
        for key, typ in REQUIRED.items():
            if key not in obj:
                errors.append(f"{where}: missing {key!r}")
                ok = False
            elif not isinstance(obj[key], typ) or isinstance(obj[key], bool):
                errors.append(f"{where}: {key!r} has wrong type")
                ok = False
        if not ok:
            continue
        qid = obj["id"]
        if obj["type"] not in TYPES:
            errors.append(f"{qid}: unknown type {obj['type']!r}")
        if obj["lang"] != "en":
            errors.append(f"{qid}: lang should be 'en'")
        if not obj["start"] < obj["end"] or obj["start"] < 0:
            errors.append(f"{qid}: bad span {obj['start']}..{obj['end']}")
        if obj["episode"] not in episodes:
            errors.append(f"{qid}: episode {obj['episode']!r} not in episodes.txt")
        if obj["type"] == "quote":
            if not isinstance(obj.get("exact"), bool):
                errors.append(f"{qid}: quote question needs boolean 'exact'")
            q = quoted_text(obj["question"])
            if not q:
                errors.append(f"{qid}: quote question has no double-quoted text")
            elif not 8 <= len(q.split()) <= 20:
                warnings.append(f"{qid}: quote has {len(q.split())} words (expected 8-20)")
        for k, alt in enumerate(obj.get("also", []) or []):
            if not (
                isinstance(alt, dict)
                and isinstance(alt.get("episode"), str)
                and isinstance(alt.get("start"), (int, float))
                and isinstance(alt.get("end"), (int, float))
            ):
                errors.append(f"{qid}: also[{k}] needs episode/start/end")
            elif alt["episode"] not in episodes:
                errors.append(f"{qid}: also[{k}] episode {alt['episode']!r} not in episodes.txt")
            elif not 0 <= alt["start"] < alt["end"]:
                errors.append(f"{qid}: also[{k}] bad span")
        items.append(obj)

    ids = Counter(o["id"] for o in items)
    for qid, c in ids.items():
        if c > 1:
            errors.append(f"{qid}: id used {c} times")

    # transcripts
    if not args.vtt_dir.is_dir():
        print(f"NOTE: transcript folder {args.vtt_dir} not found; skipping file, duration and quote-text checks.")
    else:
        cache: dict[str, list] = {}

        def load(ep: str):
            if ep not in cache:
                p = args.vtt_dir / f"{ep}.vtt"
                cache[ep] = parse_vtt(p) if p.is_file() else None
            return cache[ep]

        for ep in sorted(episodes):
            if load(ep) is None:
                errors.append(f"episodes.txt: {ep}.vtt not found in {args.vtt_dir}")
            elif not cache[ep]:
                errors.append(f"{ep}.vtt: no cues parsed")

        def check_span(qid: str, ep: str, start: float, end: float, label: str = "") -> list | None:
            cues = load(ep)
            if not cues:
                return None
            duration = max(e for _, e, _ in cues)
            if end > duration + DURATION_TOL:
                errors.append(f"{qid}{label}: span end {end} beyond duration {duration:.3f}")
            if not any(abs(s - start) <= BOUNDARY_TOL for s, _, _ in cues):
                warnings.append(f"{qid}{label}: start {start} is not a cue start")
            if not any(abs(e - end) <= BOUNDARY_TOL for _, e, _ in cues):
                warnings.append(f"{qid}{label}: end {end} is not a cue end")
            inside = [c for c in cues if c[0] >= start - BOUNDARY_TOL and c[1] <= end + BOUNDARY_TOL]
            if not inside:
                errors.append(f"{qid}{label}: no cue lies inside {start}..{end}")
            return inside

        for obj in items:
            qid = obj["id"]
            inside = check_span(qid, obj["episode"], float(obj["start"]), float(obj["end"]))
            for k, alt in enumerate(obj.get("also", []) or []):
                if isinstance(alt, dict) and alt.get("episode") in episodes:
                    check_span(qid, alt["episode"], float(alt["start"]), float(alt["end"]), f" also[{k}]")
            if obj["type"] != "quote" or not inside:
                continue
            q = quoted_text(obj["question"])
            if not q:
                continue
            nq = norm(q)
            span_text = " " + norm(" ".join(t for _, _, t in inside)) + " "
            found = f" {nq} " in span_text
            if obj.get("exact") is True and not found:
                errors.append(f"{qid}: exact quote not found in cited cue span")
            elif obj.get("exact") is False:
                if found:
                    warnings.append(f"{qid}: marked inexact but matches the span exactly")
                elif coverage(nq, span_text.strip()) < FUZZY_MIN:
                    errors.append(f"{qid}: inexact quote is not close to the cited cue span")
            if obj.get("exact") is True:
                hits = [
                    ep
                    for ep in sorted(episodes)
                    if cache.get(ep) and f" {nq} " in " " + " ".join(norm(t) for _, _, t in cache[ep]) + " "
                ]
                if len(hits) != 1:
                    warnings.append(f"{qid}: exact quote occurs in {len(hits)} eval episodes")

    # report
    by_type = Counter(o["type"] for o in items)
    print(f"questions: {len(items)}")
    for t in TYPES:
        extra = ""
        if t == "quote":
            ex = sum(1 for o in items if o["type"] == "quote" and o.get("exact") is True)
            extra = f" (exact {ex}, inexact {by_type[t] - ex})"
        eps_t = len({o["episode"] for o in items if o["type"] == t})
        print(f"  {t:<10} {by_type[t]:>3}  in {eps_t} episodes{extra}")
    print(f"episodes listed: {len(episodes)}; covered by questions: {len({o['episode'] for o in items})}")
    for w in warnings:
        print("WARNING:", w)
    for e in errors:
        print("ERROR:", e)
    print("OK" if not errors else f"FAILED ({len(errors)} errors)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
