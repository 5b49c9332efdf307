"""Turn questions_src.jsonl (answers named by text fragments) into questions.jsonl (answers as times).

Standard library only, deterministic. The transcripts are read from the lexicap folder beside the
repository (not copied into it): --vtt-dir, $LEXICAP_VTT, or /work/shared/data/lexicap/vtt.

A gold span runs from the start of the cue where ``from`` begins to the end of the cue where ``to``
ends (searched after ``from``), both matched after normalisation (lower-case, apostrophes removed,
every other run of non-alphanumerics one space). Every third answerable question (en-003, en-006,
...) and every second unanswerable one is held back: ``"split": "test"``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_VTT = Path("/work/shared/data/lexicap/vtt")
_TIME = re.compile(r"^\s*((?:\d+:)?\d+:\d+\.\d+)\s*-->\s*((?:\d+:)?\d+:\d+\.\d+)")


def norm(text: str) -> str:
    text = text.lower().replace("'", "").replace("\u2019", "")
    return re.sub(r"[^0-9a-z]+", " ", text).strip()


def secs(stamp: str) -> float:
    parts = [float(p) for p in stamp.split(":")]
    return round(sum(p * 60**i for i, p in enumerate(reversed(parts))), 3)


def read_cues(path: Path) -> list[tuple[float, float, str]]:
    cues: list[tuple[float, float, str]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        m = _TIME.match(line)
        if m:
            text = []
            for nxt in lines[i + 1 :]:
                if not nxt.strip():
                    break
                text.append(nxt.strip())
            cues.append((secs(m.group(1)), secs(m.group(2)), " ".join(text)))
    return cues


def locate(cues: list[tuple[float, float, str]], start_frag: str, end_frag: str) -> tuple[float, float]:
    joined, owner = "", []
    for n, (_, _, text) in enumerate(cues):
        piece = norm(text) + " "
        joined += piece
        owner += [n] * len(piece)
    a, b = norm(start_frag), norm(end_frag)
    i = joined.find(a)
    if i < 0 or joined.find(a, i + 1) >= 0:
        raise ValueError(f"'from' fragment found {joined.count(a)} times: {start_frag!r}")
    j = joined.find(b, i)
    if j < 0:
        raise ValueError(f"'to' fragment not found after 'from': {end_frag!r}")
    return cues[owner[i]][0], cues[owner[j + len(b) - 1]][1]


def build(vtt_dir: Path) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    answerable = unanswerable = 0
    for line in (HERE / "questions_src.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        src = json.loads(line)
        row: dict[str, object] = {"id": src["id"], "question": src["question"]}
        if src.get("answerable", True):
            answerable += 1
            cues = read_cues(vtt_dir / f"{src['episode']}.vtt")
            start, end = locate(cues, src["from"], src["to"])
            row.update(episode=src["episode"], start=start, end=end, type="topical")
            test = answerable % 3 == 0
        else:
            unanswerable += 1
            row.update(answerable=False, type="unanswerable")
            test = unanswerable % 2 == 0
        row.update(lang="en", names_guest=bool(src.get("names_guest")), split="test" if test else "dev")
        out.append(row)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vtt-dir", type=Path, default=Path(os.environ.get("LEXICAP_VTT", DEFAULT_VTT)))
    ap.add_argument("--check", action="store_true", help="only check that questions.jsonl is up to date")
    args = ap.parse_args()
    rows = build(args.vtt_dir)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    target = HERE / "questions.jsonl"
    if args.check:
        ok = target.read_text(encoding="utf-8") == text
        print("questions.jsonl is up to date" if ok else "questions.jsonl is stale: run make_questions.py")
        return 0 if ok else 1
    target.write_text(text, encoding="utf-8")
    for split in ("dev", "test"):
        part = [r for r in rows if r["split"] == split]
        print(f"{split}: {len(part)} questions, {sum(r.get('answerable', True) is False for r in part)} unanswerable")
    return 0


if __name__ == "__main__":
    sys.exit(main())
