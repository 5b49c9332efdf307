"""The query service: typed requests and results, validated in one place, over a warm index.

The CLI (in process), the socket server and (next) the web page all call this: a question goes
down once — request → service → retrieve → fuse → hits (→ answers) — and comes back as a result
dataclass that each presenter renders (text, JSON, HTML). The service keeps the index and the
encoder loaded and reloads when another process commits a new manifest.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..embed import Encoder, load_encoder
from ..errors import IndexStateError, InputError
from ..index import IndexStore
from ..index.store import MANIFEST
from ..text import words
from ..types import AnswerSentence, Hit
from .answer import answer_from_hits
from .hits import hits_from_rows
from .links import LinkFn, playback_link
from .quotes import find_quote, quoted
from .retrieve import Filters, Query, check_mode, rank

log = logging.getLogger(__name__)

MAX_K = 1000
# An unquoted query of at least this many words that matches a transcript's word sequence this
# closely (SequenceMatcher ratio: two misheard words in eight is 0.75) is treated as a phrase.
PHRASE_MIN_WORDS = 5
PHRASE_MIN_SIMILARITY = 0.7


def _check_text(text: str, what: str) -> None:
    """A query must be text that can be written as UTF-8: bytes from a terminal in another encoding
    arrive as lone surrogates (issue 12, finding 18)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"the {what} is not valid UTF-8 text: check the terminal's encoding") from None


@dataclass(frozen=True)
class SearchRequest:
    query: str
    k: int = 5
    mode: str = "hybrid"
    filters: Filters = field(default_factory=Filters)

    def __post_init__(self) -> None:
        _check_text(self.query, "query")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SearchRequest:
        return cls(
            query=str(d["query"]), k=int(d.get("k") or 5), mode=str(d.get("mode") or "hybrid"), filters=_filters(d)
        )

    def to_dict(self) -> dict[str, Any]:
        return {"op": "search", "query": self.query, "k": self.k, "mode": self.mode, **_filters_dict(self.filters)}


@dataclass(frozen=True)
class AskRequest:
    question: str
    k: int = 3  # supporting passages
    mode: str = "hybrid"
    filters: Filters = field(default_factory=Filters)
    max_sentences: int = 3

    def __post_init__(self) -> None:
        _check_text(self.question, "question")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AskRequest:
        return cls(
            question=str(d["question"]),
            k=int(d.get("k") or 3),
            mode=str(d.get("mode") or "hybrid"),
            filters=_filters(d),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"op": "ask", "question": self.question, "k": self.k, "mode": self.mode, **_filters_dict(self.filters)}


def _filters(d: dict[str, Any]) -> Filters:
    return Filters(episode=d.get("episode") or None, since=d.get("since") or None, until=d.get("until") or None)


def _filters_dict(f: Filters) -> dict[str, Any]:
    return {"episode": f.episode, "since": f.since, "until": f.until}


@dataclass(frozen=True)
class SearchResult:
    query: str
    hits: list[Hit]

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "hits": [h.to_dict() for h in self.hits]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SearchResult:
        return cls(query=d["query"], hits=[Hit.from_dict(h) for h in d["hits"]])


@dataclass(frozen=True)
class AnswerResult:
    question: str
    answer: list[AnswerSentence]
    hits: list[Hit]

    @property
    def abstained(self) -> bool:
        """Nothing in the index answers the question (the hits are only the closest passages)."""
        return not self.answer

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": [s.to_dict() for s in self.answer],
            "hits": [h.to_dict() for h in self.hits],
            "abstained": self.abstained,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AnswerResult:
        return cls(
            question=d["question"],
            answer=[AnswerSentence.from_dict(s) for s in d["answer"]],
            hits=[Hit.from_dict(h) for h in d["hits"]],
        )


def check_encoder(store: IndexStore, encoder: Encoder) -> None:
    manifest = store.require()
    if manifest.embedding_model != encoder.name:
        raise IndexStateError(
            f"{store.root} was built with embedding model '{manifest.embedding_model}', "
            f"not '{encoder.name}': drop --embedding-model or rebuild the index"
        )


def search(
    store: IndexStore,
    encoder: Encoder | None,
    query: str,
    *,
    k: int = 10,
    mode: str = "hybrid",
    filters: Filters = Filters(),
    link: LinkFn = playback_link,
) -> list[Hit]:
    """The k best passages for ``query``; overlapping passages of one episode come back as one hit.
    A query in double quotes finds that phrase (see ``find_quote``). ``encoder`` may be None in
    lexical mode."""
    check_mode(mode)
    store.require()
    if encoder is not None:
        check_encoder(store, encoder)
    if not query.strip():
        return []
    phrase = quoted(query)
    if phrase:
        return find_quote(store, phrase, k=k, filters=filters, link=link)
    card = encoder.card if encoder is not None else None
    ranked = rank(store, encoder, Query(query, store, card), mode=mode, filters=filters)
    hits = hits_from_rows(store, ranked, k, link=link)
    if len(words(query)) >= PHRASE_MIN_WORDS:
        # A sentence pasted or half-remembered without quote marks: where it was said comes first,
        # spanning exactly its words (a stricter match than for quoted phrases).
        said = find_quote(store, query, k=1, filters=filters, link=link, min_similarity=PHRASE_MIN_SIMILARITY)
        if said:
            top = said[0]
            rest = [h for h in hits if h.episode != top.episode or h.end <= top.start or top.end <= h.start]
            hits = [top, *rest][:k]
    return with_chapters(store, hits)


def with_chapters(store: IndexStore, hits: list[Hit]) -> list[Hit]:
    """Each hit with the title of the chapter it lies in most (see host/chapters.py); a chapter list
    that cannot be made (a damaged episode file) leaves the hit without one, never fails a search."""
    from dataclasses import replace

    from ..errors import HmsearchError
    from ..host.chapters import chapter_of, episode_chapters

    found: dict[str, Any] = {}
    out = []
    for h in hits:
        if h.episode not in found:
            try:
                found[h.episode] = episode_chapters(store, h.episode)
            except (HmsearchError, OSError, ValueError) as exc:
                log.info("no chapters for %s: %s", h.episode, exc)
                found[h.episode] = []
        chapter = chapter_of(found[h.episode], h.start, h.end)
        out.append(replace(h, chapter=chapter.title) if chapter else h)
    return out


def answer(
    store: IndexStore,
    encoder: Encoder,
    question: str,
    *,
    k: int = 5,
    max_sentences: int = 3,
    mode: str = "hybrid",
    filters: Filters = Filters(),
    link: LinkFn = playback_link,
) -> tuple[list[AnswerSentence], list[Hit]]:
    """The sentences that best answer ``question``, each with its own time, and the passages they
    come from."""
    hits = search(store, encoder, question, k=k, mode=mode, filters=filters, link=link)
    return answer_hits(store, encoder, question, hits, max_sentences=max_sentences, link=link), hits


def answer_hits(
    store: IndexStore,
    encoder: Encoder,
    question: str,
    hits: list[Hit],
    *,
    max_sentences: int = 3,
    link: LinkFn = playback_link,
) -> list[AnswerSentence]:
    """The answer sentences among ``hits`` (search's hits for ``question``). A quote, and a phrase
    found as it was said, are their own answer."""
    if not hits:
        return []
    if quoted(question) or not hits[0].sentences:  # find_quote's hits span the words themselves
        exact = [h for h in hits if not h.sentences] or hits
        return [
            AnswerSentence(
                text=h.text, episode=h.episode, title=h.title, start=h.start, end=h.end, score=h.score, link=h.link
            )
            for h in exact[:max_sentences]
        ]
    query = Query(question, store, encoder.card)
    return answer_from_hits(store, encoder, query, hits, max_sentences=max_sentences, link=link)


class QueryService:
    """Answers search and ask requests over one index folder, keeping it and its encoder warm."""

    def __init__(self, index_dir: Path, *, link: LinkFn = playback_link, encoder: Encoder | None = None) -> None:
        """``encoder``: an engine already loaded for the index's model (else the service loads the
        index's own through ``load_encoder`` on first use)."""
        self.index_dir = Path(index_dir)
        self.link = link
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._store: IndexStore | None = None
        self._encoder: Encoder | None = encoder

    def store(self) -> IndexStore:
        """The index as last committed: a new store object (so never a half-updated one) whenever
        the manifest file changed since the last request."""
        path = self.index_dir / MANIFEST
        try:
            st = path.stat()
            stamp: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if self._store is None or stamp != self._stamp:
                store = IndexStore(self.index_dir)
                store.require()
                self._store, self._stamp = store, stamp
                if self._encoder is not None and self._encoder.name != store.require().embedding_model:
                    self._encoder = None
            return self._store

    def encoder(self, store: IndexStore) -> Encoder:
        with self._lock:
            if self._encoder is None:
                self._encoder = load_encoder(
                    store.require().embedding_model, role="query", model_cache=store.model_cache
                )
            return self._encoder

    def warm(self) -> None:
        """Load everything a first query needs (FAISS, BM25, the encoder)."""
        store = self.store()
        store.dense()
        store.lexical()
        self.encoder(store).encode_queries(["warm up"])

    def _validate(self, store: IndexStore, k: int, mode: str, filters: Filters) -> None:
        check_mode(mode)
        if not 1 <= k <= MAX_K:
            raise InputError(f"k must be between 1 and {MAX_K}, not {k}")
        if filters.episode:
            store.episode(filters.episode)  # NotFoundError for an unknown episode

    def search(self, request: SearchRequest) -> SearchResult:
        store = self.store()
        self._validate(store, request.k, request.mode, request.filters)
        encoder = None if request.mode == "lexical" or quoted(request.query) else self.encoder(store)
        hits = search(
            store, encoder, request.query, k=request.k, mode=request.mode, filters=request.filters, link=self.link
        )
        return SearchResult(request.query, hits)

    def ask(self, request: AskRequest) -> AnswerResult:
        store = self.store()
        self._validate(store, request.k, request.mode, request.filters)
        # ask scores the answer sentences with the model whatever the mode
        sentences, hits = answer(
            store,
            self.encoder(store),
            request.question,
            k=request.k,
            mode=request.mode,
            filters=request.filters,
            max_sentences=request.max_sentences,
            link=self.link,
        )
        return AnswerResult(request.question, sentences, hits)

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """One wire request ({"op": "search"|"ask", ...}) -> its result as the ``--json`` dict."""
        op = request.get("op")
        try:
            if op == "search":
                return self.search(SearchRequest.from_dict(request)).to_dict()
            if op == "ask":
                return self.ask(AskRequest.from_dict(request)).to_dict()
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed {op} request ({type(exc).__name__}: {exc})") from None
        raise InputError(f"unknown request op {op!r}: use search or ask")
