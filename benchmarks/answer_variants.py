"""Answer@1 and MRR@10 of variants of the answer stage and the second stage, scored offline from one
`ask` per question (the candidates the shipped code reads, with their features), so that many
variants cost one pass. What stop 31 tried against the shipped blend (benchmarks/results/answers.md):

- answer stage: the shipped blend plus one more feature at a time (the sentence with the two after
  it, with the one after it, the sentence before / after, "starts the reply to a prompt", local-IDF
  word match, passage rank, rank by similarity);
- a second opinion from all-MiniLM-L6-v2 (English) on each candidate and its neighbours;
- snapping the answer back to the start of the reply it is in;
- second stage: the best sentence with its neighbours and sentence-level word match beside the
  best sentence, depth 10 / 20.

    PYTHONPATH=src python benchmarks/answer_variants.py --en IDX_EN --da IDX_DA [--minilm]

IDX_EN / IDX_DA: indexes of en_interview_dev and da_dev built with sentence vectors. Weights are
read on the dev parts; the test parts are printed beside them for the final check only.
"""

from __future__ import annotations

import argparse
import importlib
import math
from pathlib import Path

import numpy as np

from hmsearch.embed import load_encoder
from hmsearch.evaluate import ASK_PASSAGES, _relevant, load_questions
from hmsearch.index import IndexStore
from hmsearch.query import search
from hmsearch.query.answer_model import FEATURES, prompts
from hmsearch.query.retrieve import Filters, Query
from hmsearch.query.service import AskRequest, QueryService, steered
from hmsearch.text import analyze

A = importlib.import_module("hmsearch.query.answer")  # the package exports a function named answer
DATA = Path(__file__).resolve().parent / "data"
SETS = {"en": DATA / "en_interview_dev" / "questions.jsonl", "da": DATA / "da_dev" / "questions.jsonl"}
SHIPPED = {"dense": 1.0, "context": 0.25, "asked": 0.1, "overlap": 0.1, "passage": 0.03}


def minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def candidates(service: QueryService, question: str) -> dict | None:
    """The candidates `ask` reads for ``question``, with the shipped features and a few more."""
    seen: dict = {}
    original = A.answer_candidates

    def capture(store, encoder, query, hits):  # type: ignore[no-untyped-def]
        c = original(store, encoder, query, hits)
        seen.update(store=store, encoder=encoder, query=query, hits=hits, c=c)
        return c

    A.answer_candidates = capture
    try:
        service.ask(AskRequest(question, k=10, mode="hybrid", answer_from=ASK_PASSAGES))
    finally:
        A.answer_candidates = original
    c = seen.get("c")
    if c is None:
        return None  # a quote: its own answer
    store, encoder, hits = seen["store"], seen["encoder"], seen["hits"]
    langs = {e.id: e.language for e in store.episodes()}
    texts_of = A._episode_texts(store, hits)
    texts, runs, rows, where, taken = [], [], [], [], set()
    for r, hit in enumerate(hits):  # the runs answer_candidates reads, in its order
        if not hit.sentences:
            continue
        text = texts_of[hit.episode]
        a, b = text.index_of(hit.sentences[0].start), text.index_of(hit.sentences[-1].start)
        for i in range(max(0, a - A.FOLLOW_WINDOW), min(len(text.sentences), b + 1 + A.REPLY_SPILL)):
            if i >= a and (hit.episode, i) not in taken and A.answerable(text, i):
                taken.add((hit.episode, i))
                rows.append(len(texts))
            texts.append(text.sentences[i].text)
            runs.append(r)
            where.append((hit, text.sentences[i]))
    reading = Query(c.question, store, encoder.card)
    qv = reading.vector(encoder)
    vecs = A.sentence_vectors(store, encoder, texts, where)
    sims = vecs @ qv
    qt = set(reading.terms)
    terms = [set(analyze(t, langs.get(h.episode))) & qt for t, (h, _) in zip(texts, where)]
    n = len(texts)

    def same(j: int, k: int) -> bool:
        return 0 <= k < n and runs[k] == runs[j]

    def cos(ks: list[int]) -> float:
        v = vecs[ks].sum(axis=0)
        return float(v @ qv / (np.linalg.norm(v) or 1.0))

    df = {t: sum(t in terms[j] for j in rows) for t in qt}
    idf = {t: math.log(1 + (len(rows) - f + 0.5) / (f + 0.5)) for t, f in df.items() if f}
    F = {name: c.features[:, i] for i, name in enumerate(FEATURES)}
    F["passage"] = c.passage
    extra = {
        "fwd": [cos([k for k in (j, j + 1, j + 2) if same(j, k)]) for j in rows],
        "fwd1": [cos([k for k in (j, j + 1) if same(j, k)]) for j in rows],
        "prev": [float(sims[j - 1]) if same(j, j - 1) else 0.0 for j in rows],
        "next": [float(sims[j + 1]) if same(j, j + 1) else 0.0 for j in rows],
        "starts_reply": [float(same(j, j - 1) and prompts(texts[j - 1])) for j in rows],
        "lexidf": [sum(idf.get(t, 0.0) for t in terms[j]) for j in rows],
        "hit_rank": [float(runs[j]) for j in rows],
    }
    extra["dense_rank"] = list(np.argsort(np.argsort(-F["dense"])))
    # each added feature on the scale of the similarity: its spread among the candidates is dense's
    spread = float(F["dense"].std()) or 1.0
    for k, v in extra.items():
        x = np.array(v, dtype=np.float32)
        F[k] = (x - x.mean()) / (x.std() or 1.0) * spread
    spans = [(h.episode, s.start, s.end) for h, s in where]
    return {"F": F, "rows": rows, "runs": runs, "texts": texts, "spans": spans, "question": c.question}


def answer_at_1(items: list[tuple[dict, list]], weights: dict[str, float], snap: float = 0.0) -> int:
    right = 0
    for cand, gold in items:
        s = sum((w * cand["F"][k] for k, w in weights.items()), np.zeros(len(cand["rows"])))
        best = int(np.argmax(s))
        j = cand["rows"][best]
        if snap:  # back to the start of the reply it is in, if that is a candidate scoring near it
            rows, runs, spans = cand["rows"], cand["runs"], cand["spans"]
            at = {row: i for i, row in enumerate(rows)}
            k = j
            while (
                k
                and runs[k - 1] == runs[j]
                and not prompts(cand["texts"][k - 1])
                and spans[j][1] - spans[k - 1][1] <= snap
            ):
                k -= 1
            j = next((kk for kk in range(k, j) if kk in at and s[at[kk]] >= 0.95 * s[best]), j)
        ep, start, end = cand["spans"][j]
        right += any(_relevant(_Span(ep, start, end), g) for g in gold)
    return right


class _Span:
    def __init__(self, episode: str, start: float, end: float) -> None:
        self.episode, self.start, self.end = episode, start, end


def second_stage(
    store: IndexStore, questions: list, depth: int, variants: dict[str, dict[str, float]]
) -> dict[str, float]:
    """MRR@10 of first-stage hits re-ordered by each variant's blend of min-max scaled features."""
    encoder = load_encoder(store.require().embedding_model, role="query", model_cache=store.model_cache)
    langs = {e.id: e.language for e in store.episodes()}
    out = {name: 0.0 for name in variants}
    for q in questions:
        query, filters = steered(store, Query(q.question, store, encoder.card), Filters())
        hits = search(
            store, encoder, query, k=depth, mode="hybrid", filters=filters, steer_names=False, second_stage=False
        )
        qv, qt = query.vector(encoder), set(query.terms)
        vecs = A.stored_vectors(store, [(h, s) for h in hits for s in h.sentences])
        best, ctx, lex, at = [], [], [], 0
        said = [[set(analyze(s.text, langs.get(h.episode))) & qt for s in h.sentences] for h in hits]
        flat = [t for p in said for t in p]
        idf = {t: math.log(1 + (len(flat) - f + 0.5) / (f + 0.5)) for t in qt for f in [sum(t in x for x in flat)] if f}
        for h, terms in zip(hits, said):
            v = vecs[at : at + len(h.sentences)]
            at += len(h.sentences)
            best.append(float((v @ qv).max(initial=0.0)))
            windows = [v[max(0, j - 1) : j + 2].sum(axis=0) for j in range(len(v))]
            ctx.append(max((float(w @ qv / (np.linalg.norm(w) or 1.0)) for w in windows), default=0.0))
            lex.append(max((sum(idf.get(t, 0.0) for t in x) for x in terms), default=0.0))
        F = {
            "first": np.array([h.score for h in hits]),
            "best": np.array(best),
            "ctx": np.array(ctx),
            "lex": np.array(lex),
        }
        for name, w in variants.items():
            s = sum((wt * minmax(F[k]) for k, wt in w.items()), np.zeros(len(hits)))
            order = np.argsort(-s, kind="stable")
            rank = next((r for r, i in enumerate(order[:10], 1) if any(_relevant(hits[i], g) for g in q.spans)), None)
            out[name] += 1.0 / rank if rank else 0.0
    return {name: round(v / len(questions), 3) for name, v in out.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--en", type=Path, required=True, help="index of en_interview_dev")
    ap.add_argument("--da", type=Path, required=True, help="index of da_dev")
    ap.add_argument("--minilm", action="store_true", help="also a second opinion from all-MiniLM-L6-v2")
    args = ap.parse_args()
    items: dict[str, list] = {}
    for lang, index in (("en", args.en), ("da", args.da)):
        service = QueryService(index)
        for split in ("dev", "test"):
            qs = [q for q in load_questions(SETS[lang], split=split) if q.answerable]
            items[f"{lang} {split}"] = [(c, q.spans) for q in qs for c in [candidates(service, q.question)] if c]
    if args.minilm:
        mini = load_encoder("all-MiniLM-L6-v2", role="index")
        for group in items.values():
            for cand, _ in group:
                qv = mini.encode_documents([cand["question"]])[0]
                v = mini.encode_documents(cand["texts"])
                x = (v @ qv)[cand["rows"]]
                cand["F"]["minilm"] = (x - x.mean()) / (x.std() or 1.0) * (float(cand["F"]["dense"].std()) or 1.0)
    groups = sorted(items)
    print("| variant | " + " | ".join(f"{g} answer@1 (of {len(items[g])})" for g in groups) + " |")
    print("|---|" + "---|" * len(groups))

    def row(name: str, weights: dict[str, float], snap: float = 0.0) -> None:
        print(f"| {name} | " + " | ".join(str(answer_at_1(items[g], weights, snap)) for g in groups) + " |", flush=True)

    row("shipped blend", SHIPPED)
    extra = ["fwd", "fwd1", "prev", "next", "starts_reply", "lexidf", "hit_rank", "dense_rank"]
    extra += ["minilm"] if args.minilm else []
    for name in extra:
        for w in (-0.3, -0.1, 0.1, 0.3, 0.6, 1.0):
            row(f"+ {w} × {name}", {**SHIPPED, name: w})
    for snap in (5.0, 15.0, 30.0):
        row(f"snapped to the reply's start within {snap:.0f} s", SHIPPED, snap)
    print()
    variants = {"first stage": {"first": 1.0}, "shipped (0.5 best)": {"first": 0.5, "best": 0.5}}
    for wc in (0.1, 0.3):
        for wl in (0.0, 0.1, 0.2):
            variants[f"0.5 best, {wc} ctx, {wl} lex"] = {"first": 0.5 - wc - wl, "best": 0.5, "ctx": wc, "lex": wl}
    variants["0.5 best, 0.2 lex"] = {"first": 0.3, "best": 0.5, "lex": 0.2}
    for depth in (10, 20):
        print(f"second stage, depth {depth}: MRR@10")
        for lang, index in (("en", args.en), ("da", args.da)):
            store = IndexStore(index)
            for split in ("dev", "test"):
                qs = [q for q in load_questions(SETS[lang], split=split) if q.answerable]
                print(f"  {lang} {split}", second_stage(store, qs, depth, variants), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
