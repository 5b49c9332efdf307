"""Answer quality on a dev set: the earlier similarity scorer against the answer model, and a sweep
of the answer model's passage weight and abstention floor (on ``Candidates.evidence``) (what ``ask`` answers, from its default
3 supporting passages); with ``--encoder-weights``, a sweep of the answer encoder's weight and of
how many candidates it reads (answer_encoder.py), at the shipped passage weight and floors.

    PYTHONPATH=src python benchmarks/answer_quality.py --index-dir IDX \
        benchmarks/data/en_interview_dev/questions.jsonl --split dev
    PYTHONPATH=src python benchmarks/answer_quality.py --index-dir IDX QUESTIONS --split dev \
        --weights 0.03 --floors 0 --encoder-weights 0,0.05,0.1,0.2 --encoder-tops 6,12

Prints one row per setting: answer@1, answer@3, intro@1 (first answer in the episode's first 3
minutes), refused (answerable questions abstained), abst-R (unanswerable questions abstained).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from hmsearch.embed import load_encoder
from hmsearch.evaluate import ASK_PASSAGES, _relevant, judge_answers, load_questions
from hmsearch.index import IndexStore
from hmsearch.query import search
from hmsearch.query.answer import _WORD, MIN_WORDS, answer_candidates, choose_answers, pick_answers, score_sentences
from hmsearch.query.answer_encoder import ENCODER_PATH, load_answer_encoder
from hmsearch.query.answer_model import load_model
from hmsearch.query.quotes import quoted
from hmsearch.query.retrieve import Filters, Query
from hmsearch.query.service import answer_hits, steered


def old_answer(store, encoder, query, hits):  # type: ignore[no-untyped-def]
    """The similarity scorer of the landed code (before issue 23)."""
    cands = [(h, i) for h in hits for i, s in enumerate(h.sentences) if len(_WORD.findall(s.text)) >= MIN_WORDS]
    cands = cands or [(h, i) for h in hits for i in range(len(h.sentences))]
    if not cands:
        return []
    return pick_answers(store, cands, score_sentences(store, encoder, query, cands), max_sentences=3)


class Remembered:
    """An answer encoder whose scores are kept per (question, sentence, before), so that a sweep
    reads each pair once; ``seconds`` is the time spent reading."""

    def __init__(self, encoder):  # type: ignore[no-untyped-def]
        self.encoder, self.seen, self.seconds = encoder, {}, 0.0

    def score(self, question, sentences, before):  # type: ignore[no-untyped-def]
        keys = [(question, s, b) for s, b in zip(sentences, before)]
        todo = [k for k in dict.fromkeys(keys) if k not in self.seen]
        if todo:
            t0 = time.perf_counter()
            got = self.encoder.score(question, [k[1] for k in todo], [k[2] for k in todo])
            self.seconds += time.perf_counter() - t0
            self.seen.update(zip(todo, got.tolist()))
        return np.array([self.seen[k] for k in keys], dtype=np.float32)


def summarise(rows: list[dict[str, float]]) -> dict[str, float]:
    answerable = [r for r in rows if "unanswerable" not in r]
    unanswerable = [r for r in rows if "unanswerable" in r]
    out = {m: float(np.mean([r[m] for r in answerable])) for m in ("answer@1", "answer@3", "intro@1")}
    out["refused"] = float(np.mean([r["abstained"] for r in answerable]))
    if unanswerable:
        out["abst-R"] = float(np.mean([r["abstained"] for r in unanswerable]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("questions", type=Path)
    ap.add_argument("--index-dir", type=Path, required=True)
    ap.add_argument("--split", default=None)
    ap.add_argument("--weights", default="0,0.03,0.06,0.1", help="passage weights to try")
    ap.add_argument("--floors", default="0,0.8,0.84,0.85,0.86,0.87", help="abstention floors to try (same language)")
    ap.add_argument("--cross-floor", type=float, default=0.0, help="the floor for a question in another language")
    ap.add_argument("--encoder-weights", default="", help="answer encoder weights to try (e.g. 0,0.05,0.1)")
    ap.add_argument("--encoder-tops", default="12", help="how many of the best candidates the encoder reads")
    ap.add_argument("--encoder", type=Path, default=ENCODER_PATH, help="the answer encoder's weights")
    ap.add_argument("--json", type=Path, default=None, help="write the rows here too")
    args = ap.parse_args()
    store = IndexStore(args.index_dir)
    encoder = load_encoder(store.require().embedding_model, role="query", model_cache=store.model_cache)
    model = load_model()
    qs = load_questions(args.questions, split=args.split)
    prepared = []
    old_rows = []
    t0 = time.time()
    for q in qs:
        query, filters = steered(store, Query(q.question, store, encoder.card), Filters())
        hits = search(store, encoder, query, k=10, mode="hybrid", filters=filters, steer_names=False)[:ASK_PASSAGES]
        if quoted(q.question) or (hits and not hits[0].sentences):
            fixed = answer_hits(store, encoder, query, hits)
            prepared.append((q, None, fixed))
            old_rows.append(judge_answers(fixed, q))
            continue
        prepared.append((q, answer_candidates(store, encoder, query, hits), None))
        old_rows.append(judge_answers(old_answer(store, encoder, query, hits), q))
    print(f"{len(qs)} questions prepared in {time.time() - t0:.0f} s", file=sys.stderr)
    table = [{"scorer": "similarity (landed)", **summarise(old_rows)}]
    for w in [float(v) for v in args.weights.split(",")]:
        for floor in [float(v) for v in args.floors.split(",")]:
            rows = []
            for q, cands, fixed in prepared:
                if fixed is not None:
                    got = fixed
                elif cands is None:
                    got = []
                else:
                    at = floor if cands.same_language else args.cross_floor
                    got = choose_answers(store, cands, replace(model, blend={**model.blend, "passage": w}), floor=at)
                rows.append(judge_answers(got, q))
            table.append({"scorer": f"model w={w:g} floor={floor:g}", **summarise(rows)})
    if args.encoder_weights:
        found = load_answer_encoder(args.encoder)
        if found is None:
            raise SystemExit(f"the answer encoder {args.encoder} cannot load here")
        reader = Remembered(found)
        for top in [int(v) for v in args.encoder_tops.split(",")]:
            for w in [float(v) for v in args.encoder_weights.split(",")]:
                blended = replace(model, blend={**model.blend, "encoder": w, "encoder_top": float(top)})
                rows = []
                for q, cands, fixed in prepared:
                    got = fixed if fixed is not None else [] if cands is None else None
                    if got is None:
                        got = choose_answers(store, cands, blended, encoder=reader)
                    rows.append(judge_answers(got, q))
                table.append({"scorer": f"encoder w={w:g} top={top}", **summarise(rows)})
        print(f"encoder: {reader.seconds / max(1, len(prepared)):.3f} s per question", file=sys.stderr)
        # how often a gold sentence is among the candidates the encoder reads (answer@1's ceiling)
        for top in [int(v) for v in args.encoder_tops.split(",")]:
            reach = []
            for q, cands, fixed in prepared:
                if q.answerable and cands is not None and fixed is None:
                    order = np.argsort(-model.score(cands.features, cands.passage), kind="stable")[:top]
                    said = [SimpleNamespace(episode=h.episode, start=x.start, end=x.end) for h, x in cands.spoken]
                    reach.append(any(_relevant(said[j], span) for j in order for span in q.spans))
            print(
                f"top={top}: a gold sentence among those read for {sum(reach)} of {len(reach)} questions",
                file=sys.stderr,
            )
    keys = ["answer@1", "answer@3", "intro@1", "refused", "abst-R"]
    print(f"{'scorer':<28} " + " ".join(f"{k:>8}" for k in keys))
    for row in table:
        print(f"{row['scorer']:<28} " + " ".join(f"{row[k]:>8.3f}" if k in row else f"{'–':>8}" for k in keys))
    if args.json:
        args.json.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
