"""Search quality on the dev sets, all modes side by side: the README's results table.

    .venv/bin/python benchmarks/search_quality.py            # build indexes (cached), evaluate, write table
    .venv/bin/python benchmarks/search_quality.py --sweep    # also sweep the dense weight per language pair

Dev sets (benchmarks/data/): the synthetic Danish corpus (da_dev: 4 SRT episodes, 64 questions,
half English) and 60 real Talk Python episodes read from ../shared/data/talkpython (113 questions).
Indexes are built with the default settings into benchmarks/.work/ (not committed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "benchmarks" / "data"
WORK = REPO / "benchmarks" / ".work"
SHARED = REPO.parent / "shared" / "data"
METRICS = ["R@1", "R@5", "R@10", "MRR@10", "nDCG@10"]


def dev_sets() -> dict[str, tuple[list[Path], Path]]:
    sets = {"da_dev": (sorted((DATA / "da_dev" / "episodes").glob("*.srt")), DATA / "da_dev" / "questions.jsonl")}
    vtt = SHARED / "talkpython" / "vtt"
    if vtt.is_dir():
        stems = (DATA / "talkpython_dev" / "episodes.txt").read_text().split()
        sets["talkpython_dev"] = ([vtt / f"{s}.vtt" for s in stems], DATA / "talkpython_dev" / "questions.jsonl")
    else:
        print(f"skipping talkpython_dev: {vtt} not present", file=sys.stderr)
    return sets


def build(name: str, files: list[Path]):
    from hmsearch.asr import TranscriberSpec
    from hmsearch.embed import load_encoder
    from hmsearch.index import IndexStore
    from hmsearch.ingest import IndexOptions, index_paths

    store = IndexStore(WORK / name)
    encoder = load_encoder("all-MiniLM-L6-v2", role="index")  # the torch model, also for the questions
    t = time.perf_counter()
    with store.writing():
        report = index_paths(files, store, encoder=encoder, options=IndexOptions(transcriber=TranscriberSpec("turbo")))
    if report.failed:
        raise SystemExit(f"{name}: {report.failed}")
    print(f"{name}: {report.summary()} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return store, encoder


def cached(encoder, store):
    """Query embeddings and BM25 scores are the slow part of a sweep; compute each once."""
    encode = encoder.encode_queries
    encode_once = lru_cache(maxsize=None)(lambda texts: encode(list(texts)))
    encoder.encode_queries = lambda texts: encode_once(tuple(texts))
    lexical = store.lexical()
    scores = lexical.scores
    lexical.scores = lru_cache(maxsize=None)(lambda terms: scores(terms))  # terms: a Query's tuple


def evaluate_all(store, encoder, questions, modes=("lexical", "semantic", "hybrid")):
    from hmsearch.evaluate import evaluate
    from hmsearch.query import QueryService

    return {m: evaluate(QueryService(store.root, encoder=encoder), questions, mode=m).table() for m in modes}


# The sweep's language-pair keys and the fields of the model card's Trust they set.
TRUST_KEYS = {"same:en": "same_en", "same": "same", "cross": "cross"}


def sweep(store, encoder, questions) -> list[dict]:
    """Hybrid MRR@10 per group for dense weights 0..1 on each language-pair key."""
    from dataclasses import replace

    card = encoder.card  # search reads the dense weight from encoder.card.trust
    rows = []
    try:
        for key, field in TRUST_KEYS.items():
            for w in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0):
                encoder.card = replace(card, trust=replace(card.trust, **{field: w}))
                result = evaluate_all(store, encoder, questions, modes=("hybrid",))["hybrid"]
                rows.append({"key": key, "w": w, **{g: round(v["MRR@10"], 3) for g, v in result.items()}})
    finally:
        encoder.card = card
    return rows


def markdown(results: dict[str, dict[str, dict]]) -> str:
    lines = [
        "| dev set | group | n | mode | " + " | ".join(METRICS) + " |",
        "|---|---|---|---|" + "---|" * len(METRICS),
    ]
    for name, by_mode in results.items():
        groups = next(iter(by_mode.values()))
        for group in groups:
            for mode, table in by_mode.items():
                row = table[group]
                lines.append(
                    f"| {name} | {group} | {row['n']} | {mode} | " + " | ".join(f"{row[m]:.3f}" for m in METRICS) + " |"
                )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweep", action="store_true", help="sweep the dense weight per language pair")
    args = parser.parse_args()
    from hmsearch.evaluate import load_questions

    results, sweeps = {}, {}
    for name, (files, qfile) in dev_sets().items():
        store, encoder = build(name, files)
        cached(encoder, store)
        questions = [q for q in load_questions(qfile) if q.answerable]  # search quality: questions with a place
        results[name] = evaluate_all(store, encoder, questions)
        if args.sweep:
            sweeps[name] = sweep(store, encoder, questions)
    out = REPO / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "search_quality.md").write_text(markdown(results) + "\n", encoding="utf-8")
    (out / "search_quality.json").write_text(json.dumps({"results": results, "sweeps": sweeps}, indent=1))
    print(markdown(results))
    if sweeps:
        for name, rows in sweeps.items():
            print(f"\n{name} sweep (hybrid MRR@10):")
            for r in rows:
                print(json.dumps(r))


if __name__ == "__main__":
    main()
