"""Quotes: where a phrase was said, tolerant of case, punctuation and a misheard word, with the hit
spanning exactly the quoted words (word-accurate times where Whisper gave them)."""

from __future__ import annotations

import re
from collections.abc import Callable
from difflib import SequenceMatcher

from ..index import IndexStore
from ..text import words
from ..types import Episode, Hit
from .links import LinkFn, playback_link
from .retrieve import CANDIDATES, Filters, Query, allowed_rows, lexical_candidates

_QUOTE = re.compile(r'["“”„«»]([^"“”„«»]+)["“”„«»]')


def quoted(query: str) -> str | None:
    """The phrase in double quotes in a query (the whole query, or a quote of two or more words
    inside it: `who said "we drink our own champagne"`), else None."""
    m = _QUOTE.search(query)
    if not m or not m.group(1).strip():
        return None
    phrase = m.group(1).strip()
    whole = query.strip()[1:-1].strip() == phrase
    return phrase if whole or len(phrase.split()) >= 2 else None


QUOTE_MIN_SIMILARITY = 0.6  # of word sequences: tolerates a wrong word or two in ten


def _norm(token: str) -> str:
    return "".join(words(token))


def find_quote(
    store: IndexStore,
    phrase: str,
    *,
    k: int = 10,
    filters: Filters = Filters(),
    link: LinkFn = playback_link,
    min_similarity: float = QUOTE_MIN_SIMILARITY,
) -> list[Hit]:
    """Where ``phrase`` was said, tolerant of case, punctuation and a few ASR errors; each hit
    spans exactly the matching words, with word-accurate times where Whisper gave them."""
    target = [t for t in (_norm(w) for w in phrase.split()) if t]
    if not target:
        return []
    return _best_places(
        store,
        phrase,
        lambda spans: _best_window(target, spans, min_similarity),
        k=k,
        filters=filters,
        link=link,
        key_digits=1,  # overlapping passages find the same words once
    )


def _best_places(
    store: IndexStore,
    phrase: str,
    match: Callable[[list[tuple[str, float, float]]], tuple[float, int, int] | None],
    *,
    k: int,
    filters: Filters,
    link: LinkFn,
    key_digits: int,
    score_digits: int | None = None,
) -> list[Hit]:
    """The ``k`` best places among BM25's candidate passages for ``phrase``: ``match(words)`` gives
    a passage's (similarity, first word, end word) or None; a hit spans those words, one per
    episode and start (rounded to ``key_digits``), best first, the earlier-ranked on a tie; its
    score the similarity (shown to ``score_digits`` when given)."""
    store.require()
    allowed = allowed_rows(store, filters)
    if allowed is not None and len(allowed) == 0:
        return []
    rows = lexical_candidates(store, Query(phrase, store).exact_terms, allowed, CANDIDATES)[1]
    table = store.rows()
    found: dict[tuple[str, float], tuple[float, int, Hit]] = {}
    episodes: dict[str, Episode] = {}
    for rank, row in enumerate(rows):
        episode_id, idx = table.location(int(row))
        spans = [w for s in store.passages(episode_id)[idx].sentences for w in s.word_spans()]
        matched = match(spans)
        if matched is None:
            continue
        similarity, i, j = matched
        if episode_id not in episodes:
            episodes[episode_id] = store.episode(episode_id)
        ep = episodes[episode_id]
        start, end = spans[i][1], spans[j - 1][2]
        hit = Hit(
            episode=episode_id,
            title=ep.title,
            start=start,
            end=end,
            text=" ".join(w for w, _, _ in spans[i:j]),
            score=similarity if score_digits is None else round(similarity, score_digits),
            link=link(ep, start),
            page=ep.url,
            published=ep.published,
        )
        key = (episode_id, round(start, key_digits))
        if key not in found or similarity > found[key][0]:
            found[key] = (similarity, -rank, hit)
    best = sorted(found.values(), key=lambda t: (-t[0], -t[1]))
    return [h for _, _, h in best[:k]]


CLOSEST_MIN_SIMILARITY = 0.6  # character-level, of the quote and the best stretch of a passage


def closest_quotes(
    store: IndexStore,
    phrase: str,
    *,
    k: int = 3,
    filters: Filters = Filters(),
    link: LinkFn = playback_link,
    min_similarity: float = CLOSEST_MIN_SIMILARITY,
) -> list[Hit]:
    """The places said most like ``phrase`` when it was not said as such (a quote remembered
    slightly wrong: "we are going to have" for "we're gonna have"): rapidfuzz's partial ratio of
    the quote's letters against each BM25 candidate passage's, the hit spanning the words of the
    best-aligned stretch; its score is that similarity (0-1)."""
    from rapidfuzz import fuzz

    target = " ".join(t for t in (_norm(w) for w in phrase.split()) if t)
    if not target:
        return []

    def match(spans: list[tuple[str, float, float]]) -> tuple[float, int, int] | None:
        tokens = [_norm(w) for w, _, _ in spans]
        text, offsets = "", []
        for t in tokens:  # each token's first character in ``text`` ("" tokens take no room)
            offsets.append(len(text) + (1 if text and t else 0))
            text = f"{text} {t}" if text and t else text + t
        if not text:
            return None
        aligned = fuzz.partial_ratio_alignment(target, text, score_cutoff=100 * min_similarity)
        if aligned is None:
            return None
        i = max(0, next((x for x, o in enumerate(offsets) if o + len(tokens[x]) > aligned.dest_start), 0))
        j = max((x + 1 for x, o in enumerate(offsets) if tokens[x] and o < aligned.dest_end), default=i + 1)
        while j - i > 1 and spans[i][0].endswith((".", "!", "?")):  # the end of the sentence before
            i += 1
        return aligned.score / 100, i, j

    return _best_places(store, phrase, match, k=k, filters=filters, link=link, key_digits=0, score_digits=3)


def _best_window(
    target: list[str], spans: list[tuple[str, float, float]], min_similarity: float = QUOTE_MIN_SIMILARITY
) -> tuple[float, int, int] | None:
    tokens = [_norm(w) for w, _, _ in spans]
    n = len(target)
    anchors = {t: i for i, t in reversed(list(enumerate(target[:3])))}
    starts = sorted({max(0, p - anchors[t]) for p, t in enumerate(tokens) if t in anchors})
    best = None
    lengths = (n - 1, n, n + 1) if n >= 4 else (n, n + 1)  # a short quote must match whole
    for s in starts:
        for length in lengths:
            if length < 1 or s + length > len(tokens):
                continue
            ratio = SequenceMatcher(None, target, tokens[s : s + length], autojunk=False).ratio()
            if best is None or ratio > best[0]:
                best = (ratio, s, s + length)
    if best is None or best[0] < min_similarity:
        return None
    # Trim unmatched words at the edges so the clip starts and ends on the quote.
    ratio, s, e = best
    while s < e and tokens[s] not in target:
        s += 1
    while e > s and tokens[e - 1] not in target:
        e -= 1
    return (ratio, s, e) if e - s >= max(1, round(0.75 * n)) else None
