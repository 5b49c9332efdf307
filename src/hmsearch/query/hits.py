"""Ranked rows -> hits: overlapping passages of one stretch of an episode become one hit (of at
most a TREC Podcasts judging unit), never repeated."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..index import IndexStore
from ..types import Episode, Hit, Sentence
from .links import LinkFn, playback_link

# Merged hits stay within the length of a TREC Podcasts judging unit, so a hit is a place, not an episode.
MAX_MERGED_SECONDS = 120.0


def _merge(hits: list[Hit]) -> Hit:
    """One hit for a stretch of overlapping passages: union of sentences, best score."""
    best = max(hits, key=lambda h: h.score)
    seen: dict[tuple[float, str], Sentence] = {}
    for h in hits:
        for s in h.sentences:
            seen.setdefault((round(s.start, 2), s.text), s)
    sentences = tuple(sorted(seen.values(), key=lambda s: s.start))
    return replace(
        best,
        start=min(h.start for h in hits),
        end=max(h.end for h in hits),
        sentences=sentences,
        text=" ".join(s.text for s in sentences),
    )


def _span_overlaps(group: list[Hit], start: float, end: float) -> bool:
    return min(h.start for h in group) < end and start < max(h.end for h in group)


def hits_from_rows(
    store: IndexStore, ranked: list[tuple[int, float]], k: int, *, link: LinkFn = playback_link
) -> list[Hit]:
    groups: list[list[Hit]] = []
    episodes: dict[str, Episode] = {}
    table = store.rows()
    positions = table.positions(np.array([row for row, _ in ranked], dtype=np.int64))
    by_episode: dict[str, list[list[Hit]]] = {}
    for (row, score), pos in zip(ranked, positions):
        episode_id = table.ids[pos]
        mine = by_episode.get(episode_id, [])
        if len(groups) >= k and not mine:
            continue  # the list is full and nothing of this episode is in it to merge with
        passage = store.passages(episode_id)[row - int(table.starts[pos])]
        start, end = passage.start, passage.end
        overlapping = [g for g in mine if _span_overlaps(g, start, end)]
        if overlapping:
            # Same stretch of the same episode: merge, do not repeat. A merge may not grow past
            # MAX_MERGED_SECONDS or into another hit; else the passage is already covered: drop it.
            group = overlapping[0]
            lo, hi = min(start, *(h.start for h in group)), max(end, *(h.end for h in group))
            if (
                len(overlapping) > 1
                or hi - lo > MAX_MERGED_SECONDS
                or any(_span_overlaps(g, lo, hi) for g in mine if g is not group)
            ):
                continue
        elif len(groups) >= k:
            continue
        if episode_id not in episodes:
            episodes[episode_id] = store.episode(episode_id)
        hit = Hit(
            episode=episode_id,
            title=episodes[episode_id].title,
            start=start,
            end=end,
            text=passage.text,
            score=score,
            link="",
            sentences=passage.sentences,
        )
        if overlapping:
            overlapping[0].append(hit)
        else:
            groups.append([hit])
            by_episode.setdefault(episode_id, []).append(groups[-1])
    hits = []
    for group in groups:
        merged = _merge(group) if len(group) > 1 else group[0]
        ep = episodes[merged.episode]
        hits.append(replace(merged, link=link(ep, merged.start), page=ep.url, published=ep.published))
    return hits
