"""Names in a question steer the search (issue 23): a guest's name finds the episode that says it,
and the rest of the question is what is matched; a question said word for word is answered by its
reply. Real index (the sample plus SRT episodes), the hashing stand-in encoder."""

from __future__ import annotations

from pathlib import Path

from hmsearch.query.names import name_spans, steer
from hmsearch.query.service import AskRequest, QueryService, SearchRequest

from helpers import HashingEncoder, index_sample

SHOW = "Welcome to the Pricing Show."


def conversation(guest: str, topic: list[str]) -> list[str]:
    return [SHOW, f"The following is a conversation with {guest}.", "And now here's my conversation.", *topic]


EPISODES = {
    "ep-berg": conversation(
        "Ann Berg",
        [
            "Why do prices end in ninety nine?",
            "Prices that end in ninety nine feel smaller because people read the first digit.",
            "Shops have known this trick for a hundred years.",
        ],
    ),
    "ep-holm": conversation(
        "Per Holm",
        [
            "Why do prices end in ninety nine in some shops but not in others?",
            "Luxury shops round their prices so that they look confident and calm.",
            "A discount shop ends every price in ninety nine to look cheap.",
        ],
    ),
    "ep-dahl": conversation(
        "Eva Dahl",
        [
            "What makes a loyalty card work?",
            "A loyalty card works when the reward is close enough to see.",
            "Nobody collects stamps for a reward that is a year away.",
        ],
    ),
}


def test_name_spans_are_runs_of_capitalised_words_longest_first():
    assert name_spans("Does Elon Musk think so?") == [["Does Elon Musk", "Does Elon", "Elon Musk"]]
    assert name_spans("What is Tom Brands' favourite bread?") == [["Tom Brands"]]
    assert name_spans("what does she think?") == []


def test_a_guests_name_searches_only_the_episode_that_names_the_guest(tmp_path: Path):
    store = index_sample(tmp_path, extra=EPISODES)
    pointed = steer(store, "Why does Per Holm think prices end in ninety nine?")
    assert pointed is not None
    assert pointed.episodes == ("ep-holm",) and pointed.names == ("Per Holm",)
    assert pointed.text == "Why does think prices end in ninety nine?"
    service = QueryService(store.root, encoder=HashingEncoder())
    hits = service.search(SearchRequest("Why does Per Holm think prices end in ninety nine?", k=5)).hits
    assert hits and {h.episode for h in hits} == {"ep-holm"}
    # without the name both pricing episodes answer
    hits = service.search(SearchRequest("Why do prices end in ninety nine?", k=5)).hits
    assert {"ep-berg", "ep-holm"} <= {h.episode for h in hits}


def test_a_name_every_episode_says_or_none_says_does_not_steer(tmp_path: Path):
    store = index_sample(tmp_path, extra=EPISODES)
    assert steer(store, "What does the Pricing Show say about loyalty cards?") is None
    assert steer(store, "What does Ole Bull say about loyalty cards?") is None
    assert steer(store, "why do prices end in ninety nine") is None


def test_an_episode_filter_is_not_overridden_by_a_name(tmp_path: Path):
    store = index_sample(tmp_path, extra=EPISODES)
    service = QueryService(store.root, encoder=HashingEncoder())
    from hmsearch.query.retrieve import Filters

    request = SearchRequest("What does Per Holm say about a loyalty card?", k=5, filters=Filters(episode="ep-dahl"))
    assert {h.episode for h in service.search(request).hits} == {"ep-dahl"}


def test_a_question_said_word_for_word_is_answered_by_its_reply(tmp_path: Path):
    store = index_sample(tmp_path, extra=EPISODES)
    service = QueryService(store.root, encoder=HashingEncoder())
    result = service.ask(AskRequest("What makes a loyalty card work?", k=3))
    assert result.answer, "a question found as it was said is never refused: its reply answers it"
    first = result.answer[0]
    assert first.episode == "ep-dahl"
    assert first.text == "A loyalty card works when the reward is close enough to see."


def test_a_feed_persons_name_steers_though_no_passage_says_it(tmp_path: Path):
    from hmsearch.chunk import ChunkSettings
    from hmsearch.index import IndexStore
    from hmsearch.types import Episode

    from helpers import passages_of

    encoder = HashingEncoder()
    store = IndexStore(tmp_path / "ix")
    talks = {
        "ep-1": ["Prices that end in ninety nine feel smaller.", "People read the first digit."],
        "ep-2": ["Luxury shops round their prices.", "Round prices look calm."],
        "ep-3": ["A loyalty card works when the reward is near.", "Nobody collects for a year."],
        "ep-4": ["Shipping costs decide a basket.", "Free shipping over a threshold works."],
    }
    with store.writing():
        store.ensure(embedding_model=encoder.name, dim=encoder.dim, chunking=ChunkSettings().to_dict())
        for ep, lines in talks.items():
            passages = passages_of(lines)
            guest = {"ep-2": "Per Holm"}.get(ep, "Ann Berg" if ep == "ep-1" else "Eva Dahl")
            store.put_episode(
                Episode(ep, f"Episode {ep[-1]}", 20.0, len(passages), source=""),
                passages,
                encoder.encode_documents([p.text for p in passages]),
                feed={"persons": [{"name": guest, "role": "guest"}]},
            )
    store = IndexStore(store.root)
    pointed = steer(store, "Why does Per Holm round prices?")
    assert pointed is not None and pointed.episodes == ("ep-2",)


def test_posting_lookups_agree_with_bm25_scores() -> None:
    """rows_with and document_frequency (what steering and abstention read) equal the rows BM25
    scores above zero, without scoring the archive."""
    import numpy as np

    from hmsearch.index.lexical import LexicalIndex

    texts = ["Elon Musk talks cars", "a talk on rockets", "cars and rockets and Musk", "nothing here"]
    index = LexicalIndex.build(texts, ["en"] * len(texts))
    for terms in (["musk"], ["car", "rocket"], ["absent"], []):
        want = np.flatnonzero(index.scores(terms) > 0) if terms else np.zeros(0, dtype=np.int64)
        assert index.rows_with(terms).tolist() == want.tolist(), terms
    for term in ("musk", "rocket", "absent"):
        assert index.document_frequency(term) == int((index.scores([term]) > 0).sum()), term


def test_the_answer_stage_reads_the_question_without_the_names_the_intro_says() -> None:
    import importlib

    from hmsearch.query.answer_model import episode_text
    from hmsearch.types import Sentence

    answer = importlib.import_module("hmsearch.query.answer")
    intro = episode_text(
        [Sentence(0.0, 4.0, "The following is a conversation with Tom Brands."), Sentence(5, 9, "Hi.")]
    )
    ask = answer.without_names
    assert ask("How does Tom Brands' team drill?", [intro], []) == "How does team drill?"
    assert ask("Why does Tom Brands's team win, according to Tom Brands?", [intro], []) == "Why does team win?"
    # a name the episodes do not say stays; so does a question that would be left with one word
    assert ask("What does Anne Hansen think?", [intro], ["Episode 1"]) == "What does Anne Hansen think?"
    assert ask("Tom Brands?", [intro], []) == "Tom Brands?"
