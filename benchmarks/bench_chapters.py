"""Chapter boundaries on episodes with known topic changes: excerpts of different real episodes joined.

Each join takes 6-8 excerpts of 5-10 minutes from different episodes (Talk Python VTT and Lex
Fridman/lexicap VTT in /work/shared/data, half each), cut at sentence boundaries, away from the
episodes' intros, and puts them end to end: the true boundaries are the joints. The join goes
through the indexing path (sentences -> 60 s passages -> the index's embedding model) and
``make_chapters`` finds its chapters from those passages and vectors, as ``hmsearch chapters`` does.

Scored: boundary precision/recall/F1 within ±30 s (one-to-one matching), Pk and WindowDiff
(over sentences, k = half the mean true chapter length), against a fixed-interval baseline
(a boundary every 7.5 minutes, the excerpts' mean length, which the baseline is given for free).

Tuning is done on the tune joins only (seeds 0..; source episodes from one half of the corpora),
and the test joins (seeds 1000..; source episodes from the other half) are scored once with the
settings chosen there (and with the library's defaults).

    nice .venv/bin/python benchmarks/bench_chapters.py                  # tune 8 + test 12 joins
    nice .venv/bin/python benchmarks/bench_chapters.py --tune 4 --test 4 --no-sweep   # quick

Passage vectors are cached in benchmarks/.work/chapters/ (keyed by the passage texts), so a
second run only re-scores.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import itertools
import json
import random
import statistics
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from bench_util import SHARED, WORK, load

from hmsearch.chunk import ChunkSettings, chunk_transcript, sentences_from_passages, transcript_sentences
from hmsearch.embed import load_encoder
from hmsearch.formats import read_transcript
from hmsearch.fsutil import atomic_write
from hmsearch.host.chapters import ChapterSettings, make_chapters
from hmsearch.types import Passage, Segment, Sentence, Transcript

MODEL = "intfloat/multilingual-e5-small"
TOLERANCE = 30.0
BASELINE_INTERVAL = 450.0
CACHE = WORK / "chapters"


def corpus() -> list[Path]:
    files = sorted((SHARED / "talkpython" / "vtt").glob("*.vtt")) + sorted((SHARED / "lexicap" / "vtt").glob("*.vtt"))
    if not files:
        sys.exit(f"no VTT files under {SHARED}/talkpython/vtt or {SHARED}/lexicap/vtt")
    return files


def half(files: list[Path], which: int) -> list[Path]:
    """A fixed split of the source episodes: tune and test joins never share an episode."""
    return [f for f in files if int(hashlib.sha1(f.name.encode()).hexdigest(), 16) % 2 == which]


_SENTENCES: dict[Path, list[Sentence]] = {}


def sentences_of(path: Path) -> list[Sentence]:
    if path not in _SENTENCES:
        _SENTENCES[path] = transcript_sentences(read_transcript(path))
    return _SENTENCES[path]


def make_join(seed: int, pool: list[Path]) -> tuple[Transcript, list[float], list[str]]:
    """A joined transcript, its true boundaries (seconds) and the source episodes."""
    rng = random.Random(seed)
    talk = [p for p in pool if "talkpython" in str(p)]
    lex = [p for p in pool if "lexicap" in str(p)]
    n = rng.randint(6, 8)
    segments: list[Segment] = []
    bounds: list[float] = []
    names: list[str] = []
    offset = 0.0
    used: set[Path] = set()
    while len(names) < n:
        path = rng.choice(talk if len(names) % 2 == seed % 2 else lex)
        if path in used:
            continue
        used.add(path)
        sents = sentences_of(path)
        if not sents or sents[-1].end < 900:
            continue
        length = rng.uniform(300, 600)
        s0 = rng.uniform(180, sents[-1].end - length - 60)
        part = [s for s in sents if s.start >= s0 and s.end <= s0 + length]
        if len(part) < 10:
            continue
        first = part[0].start
        if names:
            bounds.append(offset)
        for s in part:
            segments.append(Segment(start=s.start - first + offset, end=s.end - first + offset, text=s.text))
        offset = segments[-1].end + 0.5
        names.append(f"{path.parent.parent.name}/{path.stem}@{int(s0)}+{int(length)}")
    return Transcript(segments=tuple(segments), language="en", source="join"), bounds, names


def embed_join(transcript: Transcript, encoder: Any) -> tuple[list[Passage], np.ndarray]:
    passages = chunk_transcript(
        transcript, count_tokens=encoder.count_tokens, max_tokens=encoder.max_tokens, settings=ChunkSettings()
    )
    texts = [p.text for p in passages]
    key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:20]
    path = CACHE / f"{key}.npy"
    if path.exists():
        try:
            vecs = np.load(path)
            if vecs.shape[0] == len(texts):
                return passages, vecs
        except (ValueError, OSError):
            pass  # a cut-off cache file: embed again
    vecs = encoder.encode_documents(texts)
    buf = io.BytesIO()
    np.save(buf, vecs)
    atomic_write(path, buf.getvalue())
    return passages, vecs


# ------------------------------------------------------------------------------ metrics


def match(ref: list[float], hyp: list[float], tol: float = TOLERANCE) -> int:
    """Boundaries matched one to one within ``tol`` (closest pairs first)."""
    pairs = sorted((abs(r - h), i, j) for i, r in enumerate(ref) for j, h in enumerate(hyp) if abs(r - h) <= tol)
    ref_used: set[int] = set()
    hyp_used: set[int] = set()
    for _, i, j in pairs:
        if i not in ref_used and j not in hyp_used:
            ref_used.add(i)
            hyp_used.add(j)
    return len(ref_used)


def labels(times: list[float], bounds: list[float]) -> list[int]:
    return [sum(t >= b for b in bounds) for t in times]


def pk_windowdiff(times: list[float], ref: list[float], hyp: list[float]) -> tuple[float, float]:
    r, h = labels(times, ref), labels(times, hyp)
    k = max(2, round(len(times) / (len(ref) + 1) / 2))
    n = len(times) - k
    pk = sum((r[i] == r[i + k]) != (h[i] == h[i + k]) for i in range(n)) / n
    wd = sum((r[i + k] - r[i]) != (h[i + k] - h[i]) for i in range(n)) / n
    return pk, wd


def score(joins: list[dict[str, Any]], hyps: list[list[float]]) -> dict[str, float]:
    tp = sum(match(j["bounds"], h) for j, h in zip(joins, hyps))
    n_ref = sum(len(j["bounds"]) for j in joins)
    n_hyp = sum(len(h) for h in hyps)
    p = tp / n_hyp if n_hyp else 0.0
    r = tp / n_ref if n_ref else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    pks, wds = zip(*(pk_windowdiff(j["times"], j["bounds"], h) for j, h in zip(joins, hyps)))
    return {
        "precision": round(p, 3),
        "recall": round(r, 3),
        "F1": round(f1, 3),
        "Pk": round(statistics.mean(pks), 3),
        "WindowDiff": round(statistics.mean(wds), 3),
        "boundaries_true": n_ref,
        "boundaries_found": n_hyp,
    }


def detect(join: dict[str, Any], settings: ChapterSettings) -> list[float]:
    chapters = make_chapters(
        join["passages"], join["vectors"], duration=join["duration"], language="en", settings=settings
    )
    return [c.start for c in chapters[1:]]


def baseline(join: dict[str, Any]) -> list[float]:
    return list(np.arange(BASELINE_INTERVAL, join["duration"] - 60, BASELINE_INTERVAL))


def build(seeds: range, pool: list[Path], encoder: Any) -> list[dict[str, Any]]:
    joins = []
    for seed in seeds:
        t0 = time.time()
        transcript, bounds, names = make_join(seed, pool)
        passages, vectors = embed_join(transcript, encoder)
        times = [s.start for s in sentences_from_passages(passages)]
        joins.append(
            {
                "seed": seed,
                "bounds": bounds,
                "sources": names,
                "passages": passages,
                "vectors": vectors,
                "times": times,
                "duration": transcript.end,
            }
        )
        print(
            f"join {seed}: {len(names)} excerpts, {transcript.end / 60:.0f} min, {len(passages)} passages "
            f"({time.time() - t0:.0f} s)",
            file=sys.stderr,
        )
    return joins


SWEEP = {
    "penalty": [1.0, 1.5, 2.0, 2.5, 3.0, 4.0],
    "min_seconds": [90.0, 150.0, 210.0],
}


def texttiling(join: dict[str, Any], *, window: float = 180.0, relative_depth: float = 0.5) -> list[float]:
    """The first method tried, kept for comparison: TextTiling depth scores over the cosine of the
    mean (uncentred) passage vectors wholly before and wholly after each sentence start, the
    deepest dips kept while 150 s apart and deeper than half the mean of the deepest."""
    passages, duration = join["passages"], join["duration"]
    times = [t for t in join["times"] if 150 <= t <= duration - 150]
    starts = np.array([p.start for p in passages])
    ends = np.array([p.end for p in passages])
    vecs = np.asarray(join["vectors"], dtype=np.float64)
    sim = np.full(len(times), np.nan)
    for i, t in enumerate(times):
        left = (ends <= t + 1e-6) & (starts >= t - window)
        right = (starts >= t - 1e-6) & (ends <= t + window)
        if left.any() and right.any():
            a, b = vecs[left].mean(axis=0), vecs[right].mean(axis=0)
            sim[i] = float(a @ b) / float(np.linalg.norm(a) * np.linalg.norm(b))
    depth = np.zeros(len(times))
    for i in range(len(times)):
        if np.isnan(sim[i]):
            continue
        peaks = []
        for step in (-1, 1):
            peak, j = sim[i], i + step
            while 0 <= j < len(times) and not np.isnan(sim[j]) and sim[j] >= peak:
                peak, j = sim[j], j + step
            peaks.append(peak - sim[i])
        depth[i] = sum(peaks)
    order = sorted(((float(d), t) for d, t in zip(depth, times) if d > 0), reverse=True)
    limit = int(12 * duration / 3600)
    top = [d for d, _ in order[: max(1, limit)]]
    floor = relative_depth * (sum(top) / len(top) if top else 0.0)
    chosen: list[float] = []
    for d, t in order:
        if len(chosen) >= limit or d < floor:
            break
        if all(abs(t - c) >= 150 for c in chosen):
            chosen.append(t)
    return sorted(chosen)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tune", type=int, default=8, help="tune joins (seeds 0..)")
    ap.add_argument("--test", type=int, default=12, help="test joins (seeds 1000..)")
    ap.add_argument("--no-sweep", action="store_true", help="score the library defaults only")
    ap.add_argument("--out", type=Path, default=None, help="write the report as JSON here")
    args = ap.parse_args()
    files = corpus()
    encoder = load_encoder(MODEL, role="query")  # the C engine's passage embeddings: the index's model
    started = time.time()
    tune = build(range(args.tune), half(files, 0), encoder)
    test = build(range(1000, 1000 + args.test), half(files, 1), encoder)
    defaults = ChapterSettings()
    chosen = defaults
    sweep_rows = []
    if not args.no_sweep and tune:
        best = None
        grid = [replace(defaults, **dict(zip(SWEEP, values))) for values in itertools.product(*SWEEP.values())]
        for settings in sorted(grid, key=lambda g: g != defaults):  # a tie keeps the library's defaults
            values = tuple(getattr(settings, name) for name in SWEEP)
            s = score(tune, [detect(j, settings) for j in tune])
            sweep_rows.append({**dict(zip(SWEEP, values)), **s})
            key = (s["F1"], -s["WindowDiff"])
            if best is None or key > best[0]:
                best = (key, settings)
        assert best is not None
        chosen = best[1]
    report: dict[str, Any] = {
        "model": MODEL,
        "tolerance_s": TOLERANCE,
        "joins": {"tune": len(tune), "test": len(test)},
        "defaults": asdict(defaults),
        "chosen_on_tune": asdict(chosen),
        "load": load(),
        "seconds": round(time.time() - started),
    }
    for name, joins in (("tune", tune), ("test", test)):
        if not joins:
            continue
        report[name] = {
            "chapters (defaults)": score(joins, [detect(j, defaults) for j in joins]),
            "chapters (chosen on tune)": score(joins, [detect(j, chosen) for j in joins]),
            "TextTiling depth (uncentred)": score(joins, [texttiling(j) for j in joins]),
            f"fixed interval {BASELINE_INTERVAL / 60:g} min": score(joins, [baseline(j) for j in joins]),
            "minutes": round(sum(j["duration"] for j in joins) / 60),
        }
    if sweep_rows:
        report["sweep_top"] = sorted(sweep_rows, key=lambda r: (-r["F1"], r["WindowDiff"]))[:5]
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
