"""A second stage over the first stage's top passages: each passage scored by its best sentences'
e5 similarity to the question, fused with its first-stage score (issue 23).

Sentence vectors are computed at query time for the few passages re-ranked (storing them at index
time is the faster, larger alternative). Not wired into ``search`` yet: measured by
benchmarks/rerank_quality.py.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..embed import Encoder
from ..types import Hit
from .fusion import minmax

RERANK_DEPTH = 10  # first-stage passages re-ranked
BEST_SENTENCES = 2  # a passage's sentence score: the mean of its best this many
SENTENCE_WEIGHT = 0.5  # share of the sentence score in the fused score (the rest: first stage)


def rerank_hits(
    encoder: Encoder,
    question: str,
    hits: list[Hit],
    *,
    depth: int = RERANK_DEPTH,
    weight: float = SENTENCE_WEIGHT,
    sentence_vectors: dict[tuple[str, float], np.ndarray] | None = None,
) -> list[Hit]:
    """``hits`` with the first ``depth`` re-ordered by their best sentences' similarity to
    ``question`` fused with their own score; the rest follow unchanged. ``sentence_vectors``
    (episode, start) -> unit vector is filled and reused when given."""
    head, tail = hits[:depth], hits[depth:]
    if len(head) < 2 or not all(h.sentences for h in head):
        return hits
    cache = sentence_vectors if sentence_vectors is not None else {}
    todo = sorted(
        {(h.episode, s.start): s.text for h in head for s in h.sentences if (h.episode, s.start) not in cache}.items()
    )
    if todo:
        vecs = encoder.encode_documents([t for _, t in todo])
        cache.update({k: v for (k, _), v in zip(todo, vecs)})
    qvec = encoder.encode_queries([question])[0]
    best = []
    for h in head:
        sims = np.sort(np.array([float(cache[(h.episode, s.start)] @ qvec) for s in h.sentences]))[::-1]
        best.append(float(sims[:BEST_SENTENCES].mean()))
    fused = weight * minmax(np.array(best, dtype=np.float32)) + (1 - weight) * minmax(
        np.array([h.score for h in head], dtype=np.float32)
    )
    order = np.argsort(-fused, kind="stable")
    return [replace(head[int(i)]) for i in order] + tail
