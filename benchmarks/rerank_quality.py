"""MRR@10 and R@k before and after the second stage (hmsearch.query.rerank) on a dev set, for a few
sentence weights, from one first-stage search per question (hybrid, k=10). Needs an index with
stored sentence vectors (built or reindexed since they are stored).

    PYTHONPATH=src python benchmarks/rerank_quality.py --index-dir IDX \
        benchmarks/data/en_interview_dev/questions.jsonl --split dev
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from hmsearch.embed import load_encoder
from hmsearch.evaluate import judge, load_questions
from hmsearch.index import IndexStore
from hmsearch.query import search
from hmsearch.query.rerank import rerank_hits
from hmsearch.query.retrieve import Filters, Query
from hmsearch.query.service import steered


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("questions", type=Path)
    ap.add_argument("--index-dir", type=Path, required=True)
    ap.add_argument("--split", default=None)
    ap.add_argument("--weights", default="0,0.25,0.5,0.75,1")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    store = IndexStore(args.index_dir)
    encoder = load_encoder(store.require().embedding_model, role="query", model_cache=store.model_cache)
    qs = [q for q in load_questions(args.questions, split=args.split) if q.answerable]
    weights = [float(w) for w in args.weights.split(",")]
    rows: dict[float, list[dict[str, float]]] = {w: [] for w in weights}
    t0 = time.time()
    for q in qs:
        query, filters = steered(store, Query(q.question, store, encoder.card), Filters())
        hits = search(
            store, encoder, query, k=10, mode="hybrid", filters=filters, steer_names=False, second_stage=False
        )
        for w in weights:
            ranked = hits if w == 0 else rerank_hits(store, encoder, query, hits, weight=w)
            rows[w].append(judge(ranked, q))
    print(f"{len(qs)} questions in {time.time() - t0:.0f} s", file=sys.stderr)
    table = []
    for w in weights:
        m = {k: float(np.mean([r[k] for r in rows[w]])) for k in ("R@1", "R@5", "R@10", "MRR@10")}
        table.append({"sentence_weight": w, **m})
        print(f"weight {w:<5g} " + " ".join(f"{k} {v:.3f}" for k, v in m.items()))
    if args.json:
        args.json.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
