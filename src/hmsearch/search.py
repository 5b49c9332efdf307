"""Query -> ranked Hits, and answers: the sentences within the top passages that answer a question."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from .embed import Embedder
from .errors import IndexError_
from .store import IndexStore
from .types import AnswerSentence, Episode, Hit, Sentence

CANDIDATES_PER_HIT = 4  # fetch more than k: overlapping passages merge into one hit
# Merged hits stay within the length of a TREC Podcasts judging unit, so a hit is a place, not an episode.
MAX_MERGED_SECONDS = 120.0


def playback_link(episode: Episode, start: float) -> str:
    """A link that starts playback at ``start``: the episode URL or the audio file, plus #t=."""
    seconds = max(0, int(start))
    if episode.url:
        return f"{episode.url}#t={seconds}"
    if episode.audio:
        return f"{Path(episode.audio).resolve().as_uri()}#t={seconds}"
    return ""


def check_model(store: IndexStore, embedder: Embedder) -> None:
    manifest = store.require()
    if manifest.embedding_model != embedder.name:
        raise IndexError_(f"{store.root} was built with embedding model '{manifest.embedding_model}', "
                          f"not '{embedder.name}': drop --embedding-model or rebuild the index")


def embedder_for(store: IndexStore, requested: str | None = None) -> Embedder:
    """The index's own embedding model (a query must be embedded like the passages were)."""
    manifest = store.require()
    embedder = Embedder(requested or manifest.embedding_model)
    check_model(store, embedder)
    return embedder


def _merge(hits: list[Hit]) -> Hit:
    """One hit for a stretch of overlapping passages: union of sentences, best score."""
    best = max(hits, key=lambda h: h.score)
    seen: dict[tuple[float, str], Sentence] = {}
    for h in hits:
        for s in h.sentences:
            seen.setdefault((round(s.start, 2), s.text), s)
    sentences = tuple(sorted(seen.values(), key=lambda s: s.start))
    start = min(h.start for h in hits)
    return replace(best, start=start, end=max(h.end for h in hits), sentences=sentences,
                   text=" ".join(s.text for s in sentences))


def _span_overlaps(group: list[Hit], start: float, end: float) -> bool:
    return min(h.start for h in group) < end and start < max(h.end for h in group)


def search(store: IndexStore, embedder: Embedder, query: str, *, k: int = 10,
           episode: str | None = None) -> list[Hit]:
    """The k best passages for ``query``; overlapping passages of one episode come back as one hit."""
    manifest = store.require()
    check_model(store, embedder)
    if not query.strip():
        return []
    qvec = embedder.encode_queries([query])[0]
    total = sum(r["chunks"] for r in manifest.episodes.values())
    fetch = total if episode else max(k * CANDIDATES_PER_HIT, 20)
    groups: list[list[Hit]] = []
    episodes: dict[str, Episode] = {}
    for score, episode_id, idx in store.search_vectors(qvec, fetch):
        if episode and episode_id != episode:
            continue
        if episode_id not in episodes:
            episodes[episode_id] = store.episode(episode_id)
        ep = episodes[episode_id]
        chunk = store.chunks(episode_id)[idx]
        sentences = tuple(Sentence(float(a), float(b), str(t)) for a, b, t in chunk["sentences"])
        hit = Hit(episode=episode_id, title=ep.title, start=float(chunk["start"]), end=float(chunk["end"]),
                  text=" ".join(s.text for s in sentences), score=score, link="", sentences=sentences)
        overlapping = [g for g in groups if g[0].episode == episode_id and _span_overlaps(g, hit.start, hit.end)]
        if not overlapping:
            if len(groups) < k:
                groups.append([hit])
            continue
        # Same stretch of the same episode: merge, do not repeat. A merge may not grow past
        # MAX_MERGED_SECONDS or into another hit; then the passage is already covered: drop it.
        group = overlapping[0]
        start, end = min(hit.start, *(h.start for h in group)), max(hit.end, *(h.end for h in group))
        others = [g for g in groups if g is not group and g[0].episode == episode_id]
        if len(overlapping) == 1 and end - start <= MAX_MERGED_SECONDS and not any(
                _span_overlaps(g, start, end) for g in others):
            group.append(hit)
    hits = []
    for group in groups:
        merged = _merge(group) if len(group) > 1 else group[0]
        hits.append(replace(merged, link=playback_link(episodes[merged.episode], merged.start)))
    return hits


QUESTION_HANDOFF = 0.02
ANSWER_MARGIN = 0.08  # further answer sentences must score within this of the best
_WORD = re.compile(r"\w+", re.UNICODE)


def answer(store: IndexStore, embedder: Embedder, question: str, *, k: int = 5,
           max_sentences: int = 3, episode: str | None = None) -> tuple[list[AnswerSentence], list[Hit]]:
    """The sentences that best answer ``question``, each with its own time, and the passages
    they come from. Sentences are scored by their own similarity to the question, weighted by
    the score of the passage around them (context matters: a sentence alone is short)."""
    hits = search(store, embedder, question, k=k, episode=episode)
    if not hits:
        return [], hits
    candidates: list[tuple[Hit, Sentence]] = [(h, s) for h in hits for s in h.sentences if len(_WORD.findall(s.text)) >= 3]
    if not candidates:
        candidates = [(h, s) for h in hits for s in h.sentences]
    qvec = embedder.encode_queries([question])[0]
    svecs = embedder.encode_documents([s.text for _, s in candidates])
    sims = svecs @ qvec
    scores = 0.6 * sims + 0.4 * np.array([h.score for h, _ in candidates], dtype=np.float32)
    # In conversation the answer follows the question: a question sentence hands its score to
    # the sentence after it and keeps only a fraction for itself.
    for i, (hit, sentence) in enumerate(candidates):
        if sentence.text.rstrip().endswith("?"):
            if i + 1 < len(candidates) and candidates[i + 1][0] is hit:
                scores[i + 1] = max(scores[i + 1], scores[i] - QUESTION_HANDOFF)
            scores[i] -= 1.0  # below any answer: shown only when nothing else is there
    order = np.argsort(-scores)
    best = float(scores[order[0]])
    picked: list[AnswerSentence] = []
    for i in order:
        hit, sentence = candidates[int(i)]
        if len(picked) >= max_sentences or (picked and float(scores[i]) < best - ANSWER_MARGIN):
            break
        if any(p.episode == hit.episode and abs(p.start - sentence.start) < 1e-6 for p in picked):
            continue
        ep = store.episode(hit.episode)
        picked.append(AnswerSentence(text=sentence.text, episode=hit.episode, title=hit.title,
                                     start=sentence.start, end=sentence.end, score=float(scores[i]),
                                     link=playback_link(ep, sentence.start)))
    return picked, hits

