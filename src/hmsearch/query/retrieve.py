"""Question -> candidate rows: filters to rows, dense candidates (FAISS), lexical candidates (BM25),
and their fusion. A question is analysed once (:class:`Query`), then every step reads it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..config import SEARCH_MODES
from ..embed import Encoder
from ..embed.cards import ModelCard, card_for
from ..errors import InputError
from ..index import IndexStore
from ..text import analyze, guess_language, stopwords, words
from ..types import Episode
from .fusion import fuse
from .translate import known_words, translate_terms

MODES = SEARCH_MODES
CANDIDATES = 100  # passages each retriever contributes before fusion


@dataclass(frozen=True)
class Filters:
    episode: str | None = None
    since: str | None = None  # ISO date, inclusive, on the published date
    until: str | None = None
    speaker: str | None = None  # passages where this speaker (id or name, any case) says something
    among: tuple[str, ...] = ()  # only these episodes (the ones a question's names point to: names.py)

    def active(self) -> bool:
        return bool(self.episode or self.since or self.until or self.speaker or self.among)

    def allows(self, ep: Episode) -> bool:
        if self.episode and ep.id != self.episode:
            return False
        if self.among and ep.id not in self.among:
            return False
        if self.since or self.until:
            if not ep.published:  # unknown dates cannot be shown to be in range
                return False
            day = ep.published[:10]
            if (self.since and day < self.since) or (self.until and day > self.until):
                return False
        return True


class Query:
    """A question as every retriever reads it: its language (guessed once, among the languages
    the model's card names) and its BM25 terms (built on first use: semantic search needs none)."""

    def __init__(self, text: str, store: IndexStore, card: ModelCard | None = None) -> None:
        self.text = text
        self._store = store
        self._card = card
        self._vector: tuple[Encoder, np.ndarray] | None = None

    @property
    def card(self) -> ModelCard | None:
        """The embedding model's card the question is read with (None: the index's own)."""
        return self._card

    def vector(self, encoder: Encoder) -> np.ndarray:
        """The question's query vector from ``encoder``, embedded once however many steps read it
        (retrieval, then the answer's sentences)."""
        if self._vector is None or self._vector[0] is not encoder:
            self._vector = (encoder, encoder.encode_queries([self.text])[0])
        return self._vector[1]

    @cached_property
    def language(self) -> str | None:
        card = self._card or card_for(self._store.require().embedding_model)
        return guess_language(self.text, card.languages)

    def has_content(self) -> bool:
        """Whether any word of the question is a stopword in none of the languages it may be in
        (the index's and the embedding model's)."""
        card = self._card or card_for(self._store.require().embedding_model)
        langs = {*self._store.lexical().langs, *card.languages}
        stop: set[str] = set().union(*(stopwords(lang) for lang in langs)) if langs else set()
        return any(w not in stop for w in words(self.text))

    @cached_property
    def exact_terms(self) -> tuple[str, ...]:
        """The question analysed in every language of the index."""
        langs = self._store.lexical().langs
        return tuple(dict.fromkeys(t for lang in langs for t in analyze(self.text, lang)))

    @cached_property
    def terms(self) -> tuple[str, ...]:
        """``exact_terms`` plus dictionary translations into the index's other languages."""
        langs = self._store.lexical().langs
        translated = [
            t
            for lang in langs
            if lang != self.language  # a Danish "man" is not the English "man"
            for t in translate_terms(self.text, to=lang, source=self.language)
        ]
        return tuple(dict.fromkeys([*self.exact_terms, *translated]))


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise InputError(f"unknown search mode '{mode}': use one of {', '.join(MODES)}")


def allowed_rows(store: IndexStore, filters: Filters) -> np.ndarray | None:
    """The rows a filter lets through (None: every row)."""
    if not filters.active():
        return None
    rows = store.rows()
    parts = [
        np.arange(r.start, r.stop) for e in store.episodes() if filters.allows(e) for r in [rows.episode_rows(e.id)]
    ]
    allowed = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return allowed if not filters.speaker else _speaker_rows(store, allowed, filters.speaker)


def _speaker_rows(store: IndexStore, allowed: np.ndarray, speaker: str) -> np.ndarray:
    """The rows among ``allowed`` whose passage has a sentence by ``speaker`` (an id such as S1,
    an imported voice, or a name given with `hmsearch speakers --name`). Reads the passages of
    the allowed episodes: a filter for a host's archive, not a million-passage index."""
    from ..speakers.names import read_names, speaker_name

    wanted = speaker.casefold().strip()
    names = read_names(store.root)
    table = store.rows()
    keep = []
    for episode_id in dict.fromkeys(table.location(int(r))[0] for r in allowed):
        given = names.get(episode_id, {})
        first = table.episode_rows(episode_id).start
        for i, p in enumerate(store.passages(episode_id)):
            if any(
                s.speaker and wanted in (s.speaker.casefold(), (speaker_name(s.speaker, given) or "").casefold())
                for s in p.sentences
            ):
                keep.append(first + i)
    return np.intersect1d(np.asarray(keep, dtype=np.int64), allowed)


def top(scores: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """The rows of the n highest positive scores, best first."""
    idx = np.flatnonzero(scores > 0)
    if len(idx) > n:
        idx = idx[np.argpartition(-scores[idx], n - 1)[:n]]
    return rows[idx[np.argsort(-scores[idx], kind="stable")]]


def lexical_candidates(
    store: IndexStore, terms: tuple[str, ...], allowed: np.ndarray | None, n: int = CANDIDATES
) -> tuple[np.ndarray, np.ndarray]:
    """(BM25 score of every row, the n best allowed rows)."""
    lexical = store.lexical()
    if allowed is None:
        return lexical.ranked(terms, n)
    scores = lexical.scores(terms)
    return scores, top(scores[allowed], allowed, n)


def dense_candidates(
    store: IndexStore, qvec: np.ndarray, allowed: np.ndarray | None, n: int = CANDIDATES
) -> np.ndarray:
    dense = store.dense()
    if allowed is None:
        return dense.search(qvec, n)[1]
    return top(dense.scores(qvec, allowed), allowed, n)


def rank(
    store: IndexStore,
    encoder: Encoder | None,
    query: Query,
    *,
    mode: str = "hybrid",
    filters: Filters = Filters(),
    candidates: int = CANDIDATES,
) -> list[tuple[int, float]]:
    """(row, score) of the best passages, best first, before merging into hits."""
    check_mode(mode)
    allowed = allowed_rows(store, filters)
    if allowed is not None and len(allowed) == 0:
        return []
    dense_rows = lex_rows = np.zeros(0, dtype=np.int64)
    qvec = None
    if mode in ("hybrid", "semantic"):
        if encoder is None:
            raise InputError(f"search mode '{mode}' needs the embedding model")
        qvec = query.vector(encoder)
        dense_rows = dense_candidates(store, qvec, allowed, candidates)
    lex_scores = None
    if mode in ("hybrid", "lexical") and not query.has_content():
        # Only words every podcast says ("og det er", "what is it"): no passage answers that more
        # than another, and the best of arbitrary vectors would still read as a 1.000 hit.
        return []
    if mode in ("hybrid", "lexical"):
        lex_scores, lex_rows = lexical_candidates(store, query.terms, allowed, candidates)
        if mode == "hybrid" and len(lex_rows) == 0 and known_words(query.text) is False:
            # Not one word of any language we know, and none that any passage has: nonsense
            # ("asdf qwerty"), to which the nearest vectors (cosine ~0.8 with e5, as close as real
            # answers) would be no answer. Issue 12, finding 19.
            return []
    rows = np.concatenate([dense_rows, lex_rows])
    rows = rows[np.sort(np.unique(rows, return_index=True)[1])]  # union, first-seen order
    if len(rows) == 0:
        return []
    if mode == "semantic":
        assert qvec is not None
        scores = store.dense().scores(qvec, rows)
    elif mode == "lexical":
        assert lex_scores is not None
        scores = lex_scores[rows]
    else:
        assert qvec is not None and lex_scores is not None and encoder is not None
        # The trust of each row's episode language: looked up once per distinct language.
        langs, which = np.unique(store.rows().row_languages(rows), return_inverse=True)
        trust = encoder.card.trust
        weights = np.array([trust.weight(query.language, lang or None) for lang in langs], dtype=np.float32)[which]
        scores = fuse(store.dense().scores(qvec, rows), lex_scores[rows], weights)
    order = np.argsort(-scores, kind="stable")
    return list(zip(rows[order].tolist(), scores[order].tolist()))
