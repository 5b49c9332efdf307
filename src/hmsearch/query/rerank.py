"""A second stage over the first stage's top passages: each passage scored by its best sentences'
e5 similarity to the question, fused with its first-stage score (issue 23).

The sentences' vectors are the ones stored at index time (index/sentences.py); when one of the
passages' episodes has none (indexed before they were stored), the first stage's order stands.
``search`` (and so ``ask``) applies it in hybrid and semantic mode. Depth, weight and how many best
sentences were chosen on the dev parts of da_dev and en_interview_dev (benchmarks/rerank_quality.py).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..embed import Encoder
from ..index import IndexStore
from ..types import Hit
from .answer import stored_vectors
from .fusion import minmax
from .retrieve import Query

RERANK_DEPTH = 10  # first-stage passages re-ranked
BEST_SENTENCES = 1  # a passage's sentence score: the mean of its best this many


def rerank_hits(
    store: IndexStore,
    encoder: Encoder,
    query: Query,
    hits: list[Hit],
    *,
    depth: int = RERANK_DEPTH,
    weight: float | None = None,
) -> list[Hit]:
    """``hits`` with the first ``depth`` re-ordered by their best sentences' similarity to
    ``query`` fused with their own score (``weight``: the sentences' share; by default the
    embedding model card's ``second_stage``); the rest follow unchanged."""
    weight = encoder.card.second_stage if weight is None else weight
    head, tail = hits[:depth], hits[depth:]
    if len(head) < 2 or not all(h.sentences for h in head) or weight <= 0:
        return hits
    where = [(h, s) for h in head for s in h.sentences]
    vecs = stored_vectors(store, where)
    if vecs is None:
        # an episode indexed before sentence vectors were stored (`hmsearch reindex` stores them):
        # embedding ~70 sentences per question here would cost a search more than it gains
        return hits
    sims = vecs @ query.vector(encoder)
    best, at = [], 0
    for h in head:
        own = np.sort(sims[at : at + len(h.sentences)])[::-1]
        at += len(h.sentences)
        best.append(float(own[:BEST_SENTENCES].mean()))
    first = np.array([h.score for h in head], dtype=np.float32)
    scores = fused_scores(np.array(best, dtype=np.float32), first, weight)
    order = np.argsort(-scores, kind="stable")  # ties keep the first stage's order
    return [replace(head[int(i)], score=float(scores[i])) for i in order] + tail


def fused_scores(best: np.ndarray, first: np.ndarray, weight: float) -> np.ndarray:
    """Each passage's score after the second stage: ``weight`` × its best sentence's similarity plus
    the rest × its first-stage score, each min-max scaled over the passages, then put back in the
    first-stage scores' range, so that a list read best-first still reads highest score first
    (and the passages after the re-ranked ones, lower in the first stage, stay below)."""
    fused = weight * minmax(best) + (1 - weight) * minmax(first)
    lo, hi = float(first.min()), float(first.max())
    return np.asarray(lo + fused * (hi - lo), dtype=np.float32)
