"""Query -> ranked Hits (dense, lexical, fused; exact quotes), and answers: the sentences within
the top passages that answer a question."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from difflib import SequenceMatcher
from pathlib import Path

import numpy as np

from .embed import Embedder, canonical_model_name
from .errors import IndexError_, InputError
from .lexical import analyze, guess_language, words
from .store import IndexStore, search_one
from .types import AnswerSentence, Episode, Hit, Sentence

MODES = ("hybrid", "semantic", "lexical")
CANDIDATES = 100  # passages each retriever contributes before fusion
# Merged hits stay within the length of a TREC Podcasts judging unit, so a hit is a place, not an episode.
MAX_MERGED_SECONDS = 120.0

# How far the dense score is trusted against BM25, per (query language, passage language).
# all-MiniLM-L6-v2 is an English model: good for English, near-useless for Danish and across
# languages (SEB: ~28 nDCG@10 on Danish against ~62 for multilingual-e5-small). Tuned on the dev
# sets in benchmarks/ (see README "Search quality").
DENSE_TRUST: dict[str, dict[str, float]] = {
    "sentence-transformers/all-MiniLM-L6-v2": {"same:en": 0.7, "same": 0.1, "cross": 0.1},
    "default": {"same:en": 0.5, "same": 0.5, "cross": 0.5},  # multilingual models
}


def trust(model: str, query_lang: str | None, passage_lang: str | None) -> float:
    table = DENSE_TRUST.get(model, DENSE_TRUST["default"])
    if query_lang and passage_lang and query_lang != passage_lang:
        return table["cross"]
    return table.get(f"same:{passage_lang}", table["same"])


_TIMED_PAGES = ("youtube.com", "youtu.be", "vimeo.com")  # pages that take a start time (?t=)


def playback_link(episode: Episode, start: float) -> str:
    """A link that starts playback at ``start``: the episode page where it takes a start time,
    else the audio (its URL or local file) with a media fragment (#t=), else the page."""
    seconds = max(0, int(start))
    if episode.url and any(host in episode.url for host in _TIMED_PAGES):
        return f"{episode.url}{'&' if '?' in episode.url else '?'}t={seconds}s"
    if episode.enclosure:
        return f"{episode.enclosure}#t={seconds}"
    if episode.audio:
        return f"{Path(episode.audio).resolve().as_uri()}#t={seconds}"
    return episode.url or ""


def check_model(store: IndexStore, embedder: Embedder) -> None:
    manifest = store.require()
    if manifest.embedding_model != embedder.name:
        raise IndexError_(f"{store.root} was built with embedding model '{manifest.embedding_model}', "
                          f"not '{embedder.name}': drop --embedding-model or rebuild the index")


def embedder_for(store: IndexStore, requested: str | None = None) -> Embedder:
    """The index's own embedding model (a query must be embedded like the passages were): its
    torch-free ONNX export when the index has one (see onnx_query), else the model itself."""
    manifest = store.require()
    if requested is None or canonical_model_name(requested) == manifest.embedding_model:
        from .onnx_query import load

        exported = load(store.encoder_dir(), manifest.embedding_model)
        if exported is not None:
            return exported  # type: ignore[return-value]  # the same query-side interface
    embedder = Embedder(requested or manifest.embedding_model)
    check_model(store, embedder)
    return embedder


@dataclass(frozen=True)
class Filters:
    episode: str | None = None
    since: str | None = None  # ISO date, inclusive, on the published date
    until: str | None = None

    def active(self) -> bool:
        return bool(self.episode or self.since or self.until)

    def allows(self, ep: Episode) -> bool:
        if self.episode and ep.id != self.episode:
            return False
        if self.since or self.until:
            if not ep.published:  # unknown dates cannot be shown to be in range
                return False
            day = ep.published[:10]
            if (self.since and day < self.since) or (self.until and day > self.until):
                return False
        return True


def _allowed_rows(store: IndexStore, filters: Filters) -> np.ndarray | None:
    if not filters.active():
        return None
    rows = [np.arange(r.start, r.stop) for e in store.episodes() if filters.allows(e)
            for r in [store.episode_rows(e.id)]]
    return np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)


def _top(scores: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """The rows of the n highest positive scores, best first."""
    idx = np.flatnonzero(scores > 0)
    if len(idx) > n:
        idx = idx[np.argpartition(-scores[idx], n - 1)[:n]]
    return rows[idx[np.argsort(-scores[idx], kind="stable")]]


def _minmax(x: np.ndarray) -> np.ndarray:
    if len(x) == 0:
        return x
    lo, hi = float(x.min()), float(x.max())
    return np.zeros_like(x) if hi - lo < 1e-9 else (x - lo) / (hi - lo)


def rank_rows(store: IndexStore, embedder: Embedder | None, query: str, *, mode: str = "hybrid",
              filters: Filters = Filters(), candidates: int = CANDIDATES) -> list[tuple[int, float]]:
    """(row, score) of the best passages, best first, before merging into hits."""
    if mode not in MODES:
        raise InputError(f"unknown search mode '{mode}': use one of {', '.join(MODES)}")
    store.require()
    allowed = _allowed_rows(store, filters)
    if allowed is not None and len(allowed) == 0:
        return []
    dense_rows = lex_rows = np.zeros(0, dtype=np.int64)
    qvec = None
    if mode in ("hybrid", "semantic"):
        assert embedder is not None
        qvec = embedder.encode_queries([query])[0]
        if allowed is None:
            dense_rows = np.array(_faiss_rows(store, qvec, candidates), dtype=np.int64)
        else:
            dense_rows = _top(store.dense_scores(qvec, allowed), allowed, candidates)
    lex_scores_all = None
    if mode in ("hybrid", "lexical"):
        if allowed is None:
            lex_scores_all, lex_rows = store.lexical_index().ranked(query, candidates)
        else:
            lex_scores_all = store.lexical_index().scores(query)
            lex_rows = _top(lex_scores_all[allowed], allowed, candidates)
    rows = np.concatenate([dense_rows, lex_rows])
    rows = rows[np.sort(np.unique(rows, return_index=True)[1])]  # union, first-seen order
    if len(rows) == 0:
        return []
    if mode == "semantic":
        scores = store.dense_scores(qvec, rows)
    elif mode == "lexical":
        scores = lex_scores_all[rows]
    else:
        dense = _minmax(store.dense_scores(qvec, rows))
        lex = _minmax(lex_scores_all[rows])
        qlang = guess_language(query, ("da", "en"))
        # The trust of each row's episode language: looked up once per distinct language.
        langs, which = np.unique(store.episode_languages()[store.row_episodes(rows)], return_inverse=True)
        weights = np.array([trust(embedder.name, qlang, lang or None) for lang in langs], dtype=np.float32)[which]
        scores = weights * dense + (1 - weights) * lex
    order = np.argsort(-scores, kind="stable")
    return list(zip(rows[order].tolist(), scores[order].tolist()))


def _faiss_rows(store: IndexStore, qvec: np.ndarray, n: int) -> list[int]:
    index = store.faiss_index()
    if index.ntotal == 0:
        return []
    _, rows = search_one(index, qvec, min(n, index.ntotal))
    return [int(r) for r in rows[0] if r >= 0]


def _merge(hits: list[Hit]) -> Hit:
    """One hit for a stretch of overlapping passages: union of sentences, best score."""
    best = max(hits, key=lambda h: h.score)
    seen: dict[tuple[float, str], Sentence] = {}
    for h in hits:
        for s in h.sentences:
            seen.setdefault((round(s.start, 2), s.text), s)
    sentences = tuple(sorted(seen.values(), key=lambda s: s.start))
    return replace(best, start=min(h.start for h in hits), end=max(h.end for h in hits), sentences=sentences,
                   text=" ".join(s.text for s in sentences))


def _span_overlaps(group: list[Hit], start: float, end: float) -> bool:
    return min(h.start for h in group) < end and start < max(h.end for h in group)


def _sentences(raw: list) -> tuple[Sentence, ...]:
    return tuple(Sentence(float(s[0]), float(s[1]), str(s[2]), tuple(s[3]) if len(s) > 3 else ()) for s in raw)


def _hits_from_rows(store: IndexStore, ranked: list[tuple[int, float]], k: int) -> list[Hit]:
    groups: list[list[Hit]] = []
    episodes: dict[str, Episode] = {}
    ids = store.episode_ids()
    positions = store.row_episodes(np.array([row for row, _ in ranked], dtype=np.int64)) if ranked else []
    starts = store.episode_starts()
    by_episode: dict[str, list[list[Hit]]] = {}
    for (row, score), pos in zip(ranked, positions):
        episode_id = ids[pos]
        mine = by_episode.get(episode_id, [])
        if len(groups) >= k and not mine:
            continue  # the list is full and nothing of this episode is in it to merge with
        chunk = store.chunks(episode_id)[row - int(starts[pos])]
        start, end = float(chunk["start"]), float(chunk["end"])
        overlapping = [g for g in mine if _span_overlaps(g, start, end)]
        if overlapping:
            # Same stretch of the same episode: merge, do not repeat. A merge may not grow past
            # MAX_MERGED_SECONDS or into another hit; else the passage is already covered: drop it.
            group = overlapping[0]
            lo, hi = min(start, *(h.start for h in group)), max(end, *(h.end for h in group))
            if len(overlapping) > 1 or hi - lo > MAX_MERGED_SECONDS or any(
                    _span_overlaps(g, lo, hi) for g in mine if g is not group):
                continue
        elif len(groups) >= k:
            continue
        if episode_id not in episodes:
            episodes[episode_id] = store.episode(episode_id)
        sentences = _sentences(chunk["sentences"])
        hit = Hit(episode=episode_id, title=episodes[episode_id].title, start=start, end=end,
                  text=" ".join(s.text for s in sentences), score=score, link="", sentences=sentences)
        if overlapping:
            overlapping[0].append(hit)
        else:
            groups.append([hit])
            by_episode.setdefault(episode_id, []).append(groups[-1])
    hits = []
    for group in groups:
        merged = _merge(group) if len(group) > 1 else group[0]
        ep = episodes[merged.episode]
        hits.append(replace(merged, link=playback_link(ep, merged.start), page=ep.url, published=ep.published))
    return hits


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


def search(store: IndexStore, embedder: Embedder | None, query: str, *, k: int = 10, mode: str = "hybrid",
           episode: str | None = None, since: str | None = None, until: str | None = None) -> list[Hit]:
    """The k best passages for ``query``; overlapping passages of one episode come back as one hit.
    A query in double quotes finds that phrase (see ``find_quote``)."""
    store.require()
    if embedder is not None:
        check_model(store, embedder)
    if not query.strip():
        return []
    filters = Filters(episode=episode, since=since, until=until)
    phrase = quoted(query)
    if phrase:
        return find_quote(store, phrase, k=k, filters=filters)
    ranked = rank_rows(store, embedder, query, mode=mode, filters=filters)
    return _hits_from_rows(store, ranked, k)


# ---- quotes ------------------------------------------------------------------------------
QUOTE_MIN_SIMILARITY = 0.6  # of word sequences: tolerates a wrong word or two in ten


def _norm(token: str) -> str:
    return "".join(words(token))


def find_quote(store: IndexStore, phrase: str, *, k: int = 10, filters: Filters = Filters()) -> list[Hit]:
    """Where ``phrase`` was said, tolerant of case, punctuation and a few ASR errors; each hit
    spans exactly the matching words, with word-accurate times where Whisper gave them."""
    target = [t for t in (_norm(w) for w in phrase.split()) if t]
    if not target:
        return []
    store.require()
    allowed = _allowed_rows(store, filters)
    if allowed is None:
        rows = store.lexical_index().ranked(phrase, CANDIDATES, translate=False)[1]
    else:
        lex = store.lexical_index().scores(phrase, translate=False)
        rows = _top(lex[allowed], allowed, CANDIDATES)
    found: dict[tuple[str, float], tuple[float, float, Hit]] = {}
    episodes: dict[str, Episode] = {}
    for rank, row in enumerate(rows):
        episode_id, idx = store.row_location(int(row))
        spans = [w for s in _sentences(store.chunks(episode_id)[idx]["sentences"]) for w in s.word_spans()]
        match = _best_window(target, spans)
        if match is None:
            continue
        similarity, i, j = match
        if episode_id not in episodes:
            episodes[episode_id] = store.episode(episode_id)
        ep = episodes[episode_id]
        start, end = spans[i][1], spans[j - 1][2]
        hit = Hit(episode=episode_id, title=ep.title, start=start, end=end,
                  text=" ".join(w for w, _, _ in spans[i:j]), score=similarity, link=playback_link(ep, start),
                  page=ep.url, published=ep.published)
        key = (episode_id, round(start, 1))  # overlapping passages find the same words once
        if key not in found or similarity > found[key][0]:
            found[key] = (similarity, -rank, hit)
    best = sorted(found.values(), key=lambda t: (-t[0], -t[1]))
    return [h for _, _, h in best[:k]]


def _best_window(target: list[str], spans: list[tuple[str, float, float]]) -> tuple[float, int, int] | None:
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
            ratio = SequenceMatcher(None, target, tokens[s:s + length], autojunk=False).ratio()
            if best is None or ratio > best[0]:
                best = (ratio, s, s + length)
    if best is None or best[0] < QUOTE_MIN_SIMILARITY:
        return None
    # Trim unmatched words at the edges so the clip starts and ends on the quote.
    ratio, s, e = best
    while s < e and tokens[s] not in target:
        s += 1
    while e > s and tokens[e - 1] not in target:
        e -= 1
    return (ratio, s, e) if e - s >= max(1, round(0.75 * n)) else None


# ---- answers -----------------------------------------------------------------------------
QUESTION_HANDOFF = 0.02
ANSWER_MARGIN = 0.08  # further answer sentences must score within this of the best
_WORD = re.compile(r"\w+", re.UNICODE)


def answer(store: IndexStore, embedder: Embedder, question: str, *, k: int = 5, max_sentences: int = 3,
           mode: str = "hybrid", episode: str | None = None, since: str | None = None,
           until: str | None = None) -> tuple[list[AnswerSentence], list[Hit]]:
    """The sentences that best answer ``question``, each with its own time, and the passages
    they come from. A sentence scores by its own similarity to the question (dense and lexical,
    weighted by how far the model is trusted for the language) plus its passage's score."""
    hits = search(store, embedder, question, k=k, mode=mode, episode=episode, since=since, until=until)
    if not hits:
        return [], hits
    if quoted(question):  # a quote is its own answer
        return [AnswerSentence(text=h.text, episode=h.episode, title=h.title, start=h.start, end=h.end,
                               score=h.score, link=h.link) for h in hits[:max_sentences]], hits
    candidates = [(h, s) for h in hits for s in h.sentences if len(_WORD.findall(s.text)) >= 3]
    if not candidates:
        candidates = [(h, s) for h in hits for s in h.sentences]
    qvec = embedder.encode_queries([question])[0]
    dense = embedder.encode_documents([s.text for _, s in candidates]) @ qvec
    qlang = guess_language(question, ("da", "en"))
    langs = {e.id: e.language for e in store.episodes()}
    lexical = store.lexical_index()
    # Lexical match of each sentence, weighted by how rare a query term is among the candidate
    # sentences: the words of the episode's topic are everywhere, the answer's are not.
    qterms = set(lexical.query_terms(question))
    sterms = [qterms & set(analyze(s.text, langs.get(h.episode))) for h, s in candidates]
    n = len(candidates)
    sf = {t: sum(t in st for st in sterms) for t in qterms}
    idf = {t: float(np.log(1 + (n - f + 0.5) / (f + 0.5))) for t, f in sf.items() if f}
    lex = np.array([sum(idf[t] for t in st) for st in sterms], dtype=np.float32)
    w = np.array([trust(embedder.name, qlang, langs.get(h.episode)) for h, _ in candidates], dtype=np.float32)
    passage = _minmax(np.array([h.score for h, _ in candidates], dtype=np.float32))
    scores = 0.7 * (w * _minmax(dense) + (1 - w) * _minmax(lex)) + 0.3 * passage
    # In conversation the answer follows the question: a question sentence hands its score to
    # the sentence after it and drops below any answer itself.
    for i, (hit, sentence) in enumerate(candidates):
        if sentence.text.rstrip().endswith("?"):
            if i + 1 < len(candidates) and candidates[i + 1][0] is hit:
                scores[i + 1] = max(scores[i + 1], scores[i] - QUESTION_HANDOFF)
            scores[i] -= 1.0
    order = np.argsort(-scores, kind="stable")
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
