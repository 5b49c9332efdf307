"""Sweep the dense weight of hybrid search per language pair on an index, and measure what FreeDict
query translation adds. Ranking only (no answers); query vectors are computed once.

    .venv/bin/python benchmarks/sweep_trust.py INDEX_DIR benchmarks/data/da_dev/questions.jsonl
    .venv/bin/python benchmarks/sweep_trust.py INDEX_DIR QUESTIONS --translation   # with / without, at the card's trust

Prints MRR@10 per question language (quotes left out: the quote path answers them whatever the
weights) for every (within-language weight, cross-language weight) on the grid, then the best.
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import replace

from hmsearch.embed import load_encoder
from hmsearch.embed.cards import Trust
from hmsearch.evaluate import judge, load_questions
from hmsearch.index import IndexStore
from hmsearch.query.hits import hits_from_rows
from hmsearch.query.quotes import quoted
from hmsearch.query.retrieve import Query, rank

GRID = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)


def mrr_by_language(store, encoder, questions, queries) -> dict[str, float]:
    by: dict[str, list[float]] = {"all": []}
    for q in questions:
        if quoted(q.question):
            continue
        ranked = rank(store, encoder, queries[q.id], mode="hybrid")
        m = judge(hits_from_rows(store, ranked, 10), q)["MRR@10"]
        by.setdefault(q.lang, []).append(m)
        by["all"].append(m)
    return {k: sum(v) / len(v) for k, v in by.items() if v}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("index")
    ap.add_argument("questions")
    ap.add_argument("--translation", action="store_true", help="compare with and without query translation")
    args = ap.parse_args()
    store = IndexStore(args.index)
    questions = [q for q in load_questions(args.questions) if q.answerable]
    encoder = load_encoder(store.require().embedding_model, role="query", model_cache=store.model_cache)
    vectors: dict[tuple[str, ...], object] = {}
    encode = encoder.encode_queries

    def once(texts):  # the slow part of a sweep: embed each question once
        key = tuple(texts)
        if key not in vectors:
            vectors[key] = encode(list(texts))
        return vectors[key]

    encoder.encode_queries = once  # type: ignore[method-assign]
    queries = {q.id: Query(q.question, store, encoder.card) for q in questions}
    if args.translation:
        print(
            "with translation   ",
            {k: round(v, 3) for k, v in mrr_by_language(store, encoder, questions, queries).items()},
        )
        for q in queries.values():
            q.__dict__["terms"] = q.exact_terms  # the cached property, without the dictionary's terms
        print(
            "without translation",
            {k: round(v, 3) for k, v in mrr_by_language(store, encoder, questions, queries).items()},
        )
        return
    results = []
    for same, cross in itertools.product(GRID, GRID):
        encoder.card = replace(encoder.card, trust=Trust(same_en=same, same=same, cross=cross))
        row = mrr_by_language(store, encoder, questions, queries)
        results.append((same, cross, row))
        print(f"within {same:.1f} across {cross:.1f}", {k: round(v, 3) for k, v in row.items()}, flush=True)
    same, cross, row = max(results, key=lambda r: r[2]["all"])
    print(f"best: within {same} across {cross}", {k: round(v, 3) for k, v in row.items()})


if __name__ == "__main__":
    main()
