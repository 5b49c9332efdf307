"""The query service: typed requests and results, validated in one place, over a warm index.

The one read API: the CLI (in process), the socket server, the web page, MCP and the host tools
all call this. A question goes down once — request → service → retrieve → fuse → hits (→ answers)
— and comes back as a result dataclass that each presenter renders (text, JSON, HTML); an episode
is read back (transcript, words, chapters, notes, clips) through ``query/episodes.py``. The service keeps the index and the
encoder loaded and reloads when another process commits a new manifest.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..embed import Encoder, load_encoder
from ..errors import IndexStateError, InputError
from ..index import IndexStore
from ..index.store import MANIFEST
from ..text import words
from ..types import AnswerSentence, Episode, Hit

if TYPE_CHECKING:
    from ..host.chapters import Chapter
    from ..host.clip import ClipResult
    from ..host.notes import ShowNotes
    from ..speakers.names import EpisodeSpeakers
from .answer import answer_from_hits
from .episodes import EpisodeReader, EpisodeText, local_audio
from .hits import hits_from_rows
from .links import LinkFn, playback_link
from .names import name_spans, steer
from .quotes import closest_quotes, find_quote, quoted
from .rerank import RERANK_DEPTH, rerank_hits
from .retrieve import Filters, Query, check_mode, rank

log = logging.getLogger(__name__)

MAX_K = 1000
CLOSEST_K = 3  # near-matches offered for a quote with no exact match
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
    answer_from: int | None = None  # the answer is read from this many of the k passages (default: all)

    def __post_init__(self) -> None:
        _check_text(self.question, "question")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AskRequest:
        return cls(
            question=str(d["question"]),
            k=int(d.get("k") or 3),
            mode=str(d.get("mode") or "hybrid"),
            filters=_filters(d),
            answer_from=int(d["answer_from"]) if d.get("answer_from") else None,
        )

    def to_dict(self) -> dict[str, Any]:
        out = {"op": "ask", "question": self.question, "k": self.k, "mode": self.mode, **_filters_dict(self.filters)}
        if self.answer_from is not None:
            out["answer_from"] = self.answer_from
        return out


def _filters(d: dict[str, Any]) -> Filters:
    return Filters(
        episode=d.get("episode") or None,
        since=d.get("since") or None,
        until=d.get("until") or None,
        speaker=d.get("speaker") or None,
    )


def _filters_dict(f: Filters) -> dict[str, Any]:
    return {"episode": f.episode, "since": f.since, "until": f.until, **({"speaker": f.speaker} if f.speaker else {})}


@dataclass(frozen=True)
class SearchResult:
    query: str
    hits: list[Hit]
    # a quote with no exact match: the places said most like it ("closest" in JSON, only then)
    closest: list[Hit] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"query": self.query, "hits": [h.to_dict() for h in self.hits]}
        if self.closest:
            d["closest"] = [h.to_dict() for h in self.closest]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SearchResult:
        return cls(
            query=d["query"],
            hits=[Hit.from_dict(h) for h in d["hits"]],
            closest=[Hit.from_dict(h) for h in d.get("closest") or ()],
        )


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
    query: str | Query,
    *,
    k: int = 10,
    mode: str = "hybrid",
    filters: Filters = Filters(),
    link: LinkFn = playback_link,
    reader: EpisodeReader | None = None,
    steer_names: bool = True,
    second_stage: bool = True,
) -> list[Hit]:
    """The k best passages for ``query``; overlapping passages of one episode come back as one hit.
    A query in double quotes finds that phrase (see ``find_quote``). ``encoder`` may be None in
    lexical mode. ``query`` may be a ``Query`` already analysed (``ask`` reads the same one).
    A name in the query that a few episodes say searches those episodes for the rest of the query
    (``steered``; ``steer_names=False``: the caller has done so). The first stage's top passages
    are re-ordered by their best sentence (rerank.py) unless ``second_stage=False``."""
    check_mode(mode)
    store.require()
    if encoder is not None:
        check_encoder(store, encoder)
    text = query.text if isinstance(query, Query) else query
    if not text.strip():
        return []
    phrase = quoted(text)
    if phrase:
        return find_quote(store, phrase, k=k, filters=filters, link=link)
    if not isinstance(query, Query):
        query = Query(text, store, encoder.card if encoder is not None else None)
    if steer_names:
        query, filters = steered(store, query, filters)
    ranked = rank(store, encoder, query, mode=mode, filters=filters)
    second_stage = second_stage and encoder is not None and mode != "lexical"
    hits = hits_from_rows(store, ranked, max(k, RERANK_DEPTH) if second_stage else k, link=link)
    if second_stage:
        assert encoder is not None
        hits = rerank_hits(store, encoder, query, hits)[:k]
    if len(words(text)) >= PHRASE_MIN_WORDS:
        # A sentence pasted or half-remembered without quote marks: where it was said comes first,
        # spanning exactly its words (a stricter match than for quoted phrases).
        said = find_quote(store, text, k=1, filters=filters, link=link, min_similarity=PHRASE_MIN_SIMILARITY)
        if said:
            top = said[0]
            rest = [h for h in hits if h.episode != top.episode or h.end <= top.start or top.end <= h.start]
            hits = [top, *rest][:k]
    return (reader or _READER).with_chapters(store, hits)


def steered(store: IndexStore, query: Query, filters: Filters) -> tuple[Query, Filters]:
    """``query`` without the names that point to a few episodes, and ``filters`` narrowed to those
    episodes (names.py); both unchanged when the query names none, is a quote, or one episode is
    already chosen."""
    if filters.episode or filters.among or quoted(query.text) or not name_spans(query.text):
        return query, filters  # (no name-like words: the speaker-names file is not read)
    from ..speakers.names import read_names

    try:
        given = read_names(store.root)
    except IndexStateError:
        given = {}  # a damaged names file fails `speakers`, not every question
    pointed = steer(store, query.text, speaker_names=given)
    if pointed is None:
        return query, filters
    log.info("names %s: searching %s for %r", ", ".join(pointed.names), ", ".join(pointed.episodes), pointed.text)
    return Query(pointed.text, store, query.card), replace(filters, among=pointed.episodes)


_READER = EpisodeReader()  # the module functions' memo; each QueryService has its own


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
    answer_from: int | None = None,
    reader: EpisodeReader | None = None,
) -> tuple[list[AnswerSentence], list[Hit]]:
    """The sentences that best answer ``question``, each with its own time, and the ``k`` passages
    found for it; the answer is read from the first ``answer_from`` of them (all by default). The
    question is analysed and embedded once for both."""
    query, filters = steered(store, Query(question, store, encoder.card), filters)
    hits = search(store, encoder, query, k=k, mode=mode, filters=filters, link=link, reader=reader, steer_names=False)
    among = hits if answer_from is None else hits[:answer_from]
    return _said_by(answer_hits(store, encoder, query, among, max_sentences=max_sentences, link=link), among), hits


def _named(store: IndexStore, items: list[Any]) -> list[Any]:
    """Hits or answer sentences with a speaker's given name (`hmsearch speakers --name`) instead of its id."""
    if not any(getattr(x, "speaker", None) for x in items):
        return items
    from ..speakers.names import read_names

    names = read_names(store.root)
    return [
        replace(x, speaker=names[x.episode][x.speaker]) if x.speaker in names.get(x.episode, {}) else x for x in items
    ]


def _said_by(sentences: list[AnswerSentence], hits: list[Hit]) -> list[AnswerSentence]:
    """Answer sentences with their speaker, from the hits' sentences they were picked from."""
    who = {(h.episode, round(s.start, 3)): s.speaker for h in hits for s in h.sentences if s.speaker}
    quotes = {(h.episode, round(h.start, 3)): h.speaker for h in hits if not h.sentences and h.speaker}
    out = []
    for a in sentences:
        key = (a.episode, round(a.start, 3))
        speaker = who.get(key) or quotes.get(key)
        out.append(replace(a, speaker=speaker) if speaker and not a.speaker else a)
    return out


def answer_hits(
    store: IndexStore,
    encoder: Encoder,
    question: str | Query,
    hits: list[Hit],
    *,
    max_sentences: int = 3,
    link: LinkFn = playback_link,
) -> list[AnswerSentence]:
    """The answer sentences among ``hits`` (search's hits for ``question``). A quote, and a phrase
    found as it was said, are their own answer."""
    if not hits:
        return []
    text = question.text if isinstance(question, Query) else question
    query = question if isinstance(question, Query) else Query(text, store, encoder.card)
    if not quoted(text) and not hits[0].sentences and text.rstrip().endswith("?"):
        # The question was said as it is asked (the host's own question): its reply answers it.
        reply = _reply(store, hits[0], link)
        if reply:
            return answer_from_hits(store, encoder, query, reply, max_sentences=max_sentences, link=link, abstain=False)
    if quoted(text) or not hits[0].sentences:  # find_quote's hits span the words themselves
        exact = [h for h in hits if not h.sentences] or hits
        return [
            AnswerSentence(
                text=h.text, episode=h.episode, title=h.title, start=h.start, end=h.end, score=h.score, link=h.link
            )
            for h in exact[:max_sentences]
        ]
    return answer_from_hits(store, encoder, query, hits, max_sentences=max_sentences, link=link)


REPLY_PASSAGES = 2  # passages read for the reply to a question found as it was said


def _reply(store: IndexStore, said: Hit, link: LinkFn) -> list[Hit]:
    """The passages that follow the words of ``said`` (a question found as it was said), with
    only the sentences after it: where its reply is."""
    first = store.rows().episode_rows(said.episode).start
    rows = [first + i for i, p in enumerate(store.passages(said.episode)) if p.end > said.end + 1.0][:REPLY_PASSAGES]
    out = []
    for hit in hits_from_rows(store, [(row, said.score) for row in rows], len(rows), link=link):
        after = tuple(s for s in hit.sentences if s.start >= said.end - 0.5)
        if after:
            out.append(replace(hit, sentences=after))
    return out


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
        self.reader = EpisodeReader()

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

    def check_index(self) -> None:
        """A missing, foreign or damaged index fails here (exit 4), before anything loads."""
        self.store()

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
            store,
            encoder,
            request.query,
            k=request.k,
            mode=request.mode,
            filters=request.filters,
            link=self.link,
            reader=self.reader,
        )
        phrase = quoted(request.query)
        if hits or not phrase:
            return SearchResult(request.query, _named(store, hits))
        # remembered slightly wrong: the places said most like it, for the user to pick from
        near = closest_quotes(store, phrase, k=CLOSEST_K, filters=request.filters, link=self.link)
        return SearchResult(request.query, hits, closest=_named(store, self.reader.with_chapters(store, near)))

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
            answer_from=request.answer_from,
            reader=self.reader,
        )
        return AnswerResult(request.question, _named(store, sentences), _named(store, hits))

    # ---- episodes: what every surface and host tool reads besides search and ask -------------
    def episodes(self) -> list[Episode]:
        """Every indexed episode, as `episodes --json` lists them."""
        return self.store().episodes()

    def episode(self, episode_id: str) -> Episode:
        """One episode (NotFoundError for an id the index does not hold)."""
        return self.store().episode(episode_id)

    def transcript(self, episode_id: str) -> EpisodeText:
        """The episode and its sentences, once each, in time order (``.between(start, end)``,
        ``.words()``)."""
        return self.reader.text(self.store(), episode_id)

    def chapters(self, episode_id: str) -> list[Chapter]:
        """The episode's chapters: topic changes with times and titles (host/chapters.py)."""
        return self.reader.chapters(self.store(), episode_id)

    def speakers(self, episode_id: str) -> EpisodeSpeakers:
        """Who speaks when in the episode: turns from its sentences' speakers, with the names given,
        and the people its feed names."""
        from ..speakers.names import episode_speakers, read_names
        from ..speakers.persons import persons_from_dicts

        store = self.store()
        text = self.reader.text(store, episode_id)
        feed = store.record(episode_id).feed
        persons = persons_from_dicts(feed.get("persons") if isinstance(feed, dict) else None)
        names = read_names(store.root).get(episode_id, {})
        return episode_speakers(episode_id, text.sentences, names, [p.to_dict() for p in persons])

    def speaker_names(self, episode_id: str) -> dict[str, str]:
        """The names given to the episode's speaker ids (``S1`` -> "Anne Hansen"); empty when none."""
        from ..speakers.names import read_names

        return dict(read_names(self.store().root).get(episode_id, {}))

    def notes(self, episode_id: str, *, quotes: int = 5, link: LinkFn | None = None) -> ShowNotes:
        """A show-notes draft of the episode (host/notes.py); its links by ``link`` (default the
        service's own)."""
        from ..host.notes import show_notes

        store = self.store()
        text = self.reader.text(store, episode_id)
        return show_notes(
            text.episode,
            list(text.sentences),
            self.reader.chapters(store, episode_id),
            link=link or self.link,
            other_texts=self.reader.other_texts(store, episode_id),
            quotes=quotes,
        )

    def clip(
        self,
        episode_id: str,
        start: float,
        end: float,
        out: Path,
        *,
        download: bool = False,
        force: bool = False,
        sentences: bool = False,
        pad: float = 0.0,
        max_seconds: float | None = None,
    ) -> ClipResult:
        """The episode's audio from ``start`` to ``end`` (snapped to whole words) cut into ``out``
        with its subtitles beside it (host/clip.py); a remote enclosure is fetched only when asked.
        ``sentences``: widened to the whole sentences said there (a quote's clip), then ``pad``
        seconds either side, at most ``max_seconds`` (host/clip.py quote_range)."""
        from ..errors import AudioError
        from ..host.clip import QUOTE_CLIP_MAX_SECONDS, make_clip, quote_range

        store = self.store()
        text = self.reader.text(store, episode_id)
        if sentences or pad:
            start, end = quote_range(
                text.between(start, end) if sentences else [],
                start,
                end,
                pad=pad,
                max_seconds=QUOTE_CLIP_MAX_SECONDS if max_seconds is None else max_seconds,
                duration=text.episode.duration,
            )
        found: list[Path] = []

        def audio() -> Path:
            found.append(local_audio(store, text.episode, download=download))
            return found[0]

        try:
            return make_clip(text.episode, text.words(), audio, start, end, out, force=force)
        except AudioError:
            # a downloaded enclosure that does not decode is not kept for the next clip
            if found and found[0].parent == store.root / "downloads":
                found[0].unlink(missing_ok=True)
            raise

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
