"""Chapter titles on long real episodes: the titles of before (keyword lists), YAKE and today's, side by side.

Ten long episodes (five Lex Fridman/lexicap, five Talk Python, VTT in /work/shared/data, read from
there) are cut into sentences and 60 s passages as indexing does. The boundaries are the library's
own change-point search (``find_boundaries``), run here over tf-idf vectors of the passages instead
of the index's e5 vectors (embedding ten 1-3 h episodes takes most of an hour on this machine;
what is measured is the titles, and every method titles the same chapters).

Per method: the share of titles of 2-6 words, the share said verbatim in their chapter (case and
punctuation aside), the share that are a comma list, distinct titles per episode, and "own": of the
times the title's phrase is said in the episode, the share said in its chapter (1.0 = it names this
chapter and no other).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_chapter_titles.py --out benchmarks/results/chapter_titles.md \
        [--index-dir INDEX ...]   # also the chapters `hmsearch chapters` makes there (e5 boundaries), before vs now

The "before" titles come from the chapters module as of ``--before`` (a git revision), loaded from git.
YAKE (pip install yake) is scored if it imports (``--yake-path DIR`` adds a folder to sys.path).
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import subprocess
import sys
import types
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from hmsearch.chunk import ChunkSettings, chunk_transcript, sentences_from_passages
from hmsearch.formats import read_transcript
from hmsearch.host.chapters import chapter_titles, find_boundaries
from hmsearch.text import words

SHARED = Path("/work/shared/data")
ROOT = Path(__file__).resolve().parent.parent
TitleFn = Callable[[Sequence[str], str], list[str]]


def episodes(n_each: int) -> list[Path]:
    """The longest-named-first is arbitrary; take files spread over each sorted corpus, long ones only."""
    out: list[Path] = []
    for corpus, min_minutes in (("lexicap", 90), ("talkpython", 55)):
        files = sorted((SHARED / corpus / "vtt").glob("*.vtt"))
        picked = 0
        for f in files[:: max(1, len(files) // (4 * n_each))]:
            t = read_transcript(f)
            if t.segments and t.segments[-1].end >= min_minutes * 60:
                out.append(f)
                picked += 1
                if picked == n_each:
                    break
    return out


def tfidf_vectors(texts: Sequence[str], dim: int = 4096) -> np.ndarray:
    """Hashed sublinear tf-idf of each passage's words, unit length (a stand-in for e5 vectors)."""
    from hmsearch.text import analyze

    docs = [analyze(t, "en") for t in texts]
    df: Counter[str] = Counter()
    for d in docs:
        df.update(set(d))
    v = np.zeros((len(docs), dim))
    for i, d in enumerate(docs):
        for term, c in Counter(d).items():
            v[i, zlib.crc32(term.encode()) % dim] += (1 + math.log(c)) * math.log(len(docs) / df[term])
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)
    return v


def chapters_of(path: Path) -> tuple[list[str], list[float]]:
    transcript = read_transcript(path)
    passages = chunk_transcript(
        transcript,
        count_tokens=lambda texts: [len(s.split()) * 4 // 3 for s in texts],
        max_tokens=512,
        settings=ChunkSettings(),
    )
    sentences = sentences_from_passages(passages)
    duration = passages[-1].end
    vectors = tfidf_vectors([" ".join(s.text for s in p.sentences) for p in passages])
    bounds = find_boundaries(passages, vectors, sentences, duration=duration)
    starts = [0.0, *bounds]
    ends = [*bounds, duration]
    return [" ".join(s.text for s in sentences if a <= s.start < b) for a, b in zip(starts, ends)], starts


def before_module(rev: str) -> types.ModuleType:
    code = subprocess.run(
        ["git", "show", f"{rev}:src/hmsearch/host/chapters.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    mod = types.ModuleType("hmsearch.host._chapters_before")
    mod.__package__ = "hmsearch.host"
    sys.modules[mod.__name__] = mod  # dataclasses look their module up
    exec(compile(code, "chapters_before.py", "exec"), mod.__dict__)
    return mod


def before_titles(rev: str) -> TitleFn:
    mod = before_module(rev)
    return lambda texts, lang: [mod._title(p, i, lang) for i, p in enumerate(mod.key_terms(texts, lang))]


def new_titles(texts: Sequence[str], lang: str) -> list[str]:
    return [t for t, _ in chapter_titles(texts, lang)]


def yake_titles(texts: Sequence[str], lang: str) -> list[str]:
    import yake

    ex = yake.KeywordExtractor(lan=lang, n=3, top=10, dedupLim=0.7)
    out: list[str] = []
    used: set[str] = set()
    for i, t in enumerate(texts):
        # YAKE ranks lower scores first; take the best phrase of 2-3 words not used by an earlier chapter
        ranked = [k for k, _ in sorted(ex.extract_keywords(t), key=lambda kv: kv[1])]
        pick = next((k for k in ranked if len(k.split()) >= 2 and k.lower() not in used), None)
        pick = pick or next((k for k in ranked if k.lower() not in used), f"Part {i + 1}")
        used.add(pick.lower())
        out.append(pick[:1].upper() + pick[1:])
    return out


def _said(phrase: str, text: str) -> int:
    toks = words(phrase)
    if not toks:
        return 0
    pattern = r"\b" + r"\W+".join(re.escape(t) for t in toks) + r"\b"
    return len(re.findall(pattern, text.lower()))


def score(titles: list[list[str]], chapters: list[list[str]]) -> dict[str, float]:
    flat = [(t, i, texts) for ts, texts in zip(titles, chapters) for i, t in enumerate(ts)]
    n = len(flat)
    own = []
    for t, i, texts in flat:
        everywhere = sum(_said(t, x) for x in texts)
        own.append(_said(t, texts[i]) / everywhere if everywhere else 0.0)
    return {
        "titles": n,
        "2-6 words": sum(2 <= len(t.split()) <= 6 and "," not in t for t, _, _ in flat) / n,
        "said in its chapter": sum(_said(t, texts[i]) > 0 for t, i, texts in flat) / n,
        "comma lists": sum("," in t for t, _, _ in flat) / n,
        "distinct in episode": statistics.mean(len({t.lower() for t in ts}) / len(ts) for ts in titles),
        "own (mean)": statistics.mean(own),
    }


def real_pipeline(index_dir: Path, old: types.ModuleType) -> list[str]:
    """The chapters the real pipeline makes (the index's e5 vectors), titled as before and now."""
    from hmsearch.query import QueryService

    service = QueryService(index_dir)
    lines = [f"## The real pipeline: `hmsearch chapters` on {index_dir.name} (e5 boundaries)", ""]
    for ep in service.episodes():
        chapters = service.chapters(ep.id)
        text = service.transcript(ep.id)
        texts = [" ".join(s.text for s in text.sentences if c.start <= s.start < c.end) for c in chapters]
        before = [old._title(p, i, ep.language) for i, p in enumerate(old.key_terms(texts, ep.language))]
        lines += [f"### {ep.id}", "", "| start | before | now |", "|---|---|---|"]
        for c, b in zip(chapters, before):
            t = int(c.start)
            lines.append(f"| {t // 3600}:{t // 60 % 60:02d}:{t % 60:02d} | {b} | {c.title} |")
        lines.append("")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--each", type=int, default=5, help="episodes per corpus")
    ap.add_argument("--before", default="23b1ab5", help="git revision of the titles of before")
    ap.add_argument("--yake-path", type=Path, help="a folder holding the yake package (added to sys.path)")
    ap.add_argument(
        "--index-dir",
        type=Path,
        action="append",
        default=[],
        help="also title the chapters `hmsearch chapters` makes (e5 boundaries) of every episode in this index",
    )
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.yake_path:
        sys.path.append(str(args.yake_path))
    methods: dict[str, TitleFn] = {"before (tf-idf keywords)": before_titles(args.before)}
    try:
        import yake  # noqa: F401

        methods["YAKE n=3"] = yake_titles
    except ImportError:
        print("yake not importable: not scored", file=sys.stderr)
    methods["now (tf-idf phrases)"] = new_titles
    eps = episodes(args.each)
    chapters: list[list[str]] = []
    starts: list[list[float]] = []
    for f in eps:
        texts, st = chapters_of(f)
        chapters.append(texts)
        starts.append(st)
        print(f"{f.name}: {len(texts)} chapters", file=sys.stderr)
    titles = {name: [fn(texts, "en") for texts in chapters] for name, fn in methods.items()}
    lines = [
        "# Chapter titles on long real episodes",
        "",
        f"`{' '.join(['benchmarks/bench_chapter_titles.py', *sys.argv[1:]])}`",
        "",
    ]
    lines += [
        "Boundaries: `find_boundaries` over hashed tf-idf passage vectors (not e5: embedding ten long",
        "episodes is most of an hour here); every method titles the same chapters. *own*: of the times the",
        "title's phrase is said in the episode, the share said in its chapter. YAKE 0.7.3 was installed",
        "outside the project (`uv pip install --target /tmp/yake_pkgs yake`) for this comparison only.",
        "",
    ]
    names = list(methods)
    lines += ["| " + " | ".join(["method", *score(titles[names[0]], chapters).keys()]) + " |"]
    lines += ["|" + "---|" * (len(lines[-1].split("|")) - 2)]
    for name in names:
        s = score(titles[name], chapters)
        lines.append(
            "| " + " | ".join([name, *(f"{v:.2f}" if isinstance(v, float) else str(v) for v in s.values())]) + " |"
        )
    lines.append("")
    for e, f in enumerate(eps):
        lines += [
            f"## {f.parent.parent.name} {f.stem}",
            "",
            "| start | " + " | ".join(names) + " |",
            "|---" * (len(names) + 1) + "|",
        ]
        for i, st in enumerate(starts[e]):
            clock = f"{int(st) // 3600}:{int(st) // 60 % 60:02d}:{int(st) % 60:02d}"
            lines.append(f"| {clock} | " + " | ".join(titles[n][e][i].replace("|", "/") for n in names) + " |")
        lines.append("")
    for index_dir in args.index_dir:
        lines += real_pipeline(index_dir, before_module(args.before))
    text = "\n".join(lines)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
