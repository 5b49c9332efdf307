"""`reindex`: the whole index rebuilt with another model from its own passages, committed at once,
and unquoted phrases found where they were said. Model-free: the HashingEncoder stand-in
(tests/helpers.py) proves the plumbing, not search quality."""

from __future__ import annotations

import pytest

from hmsearch.asr import TranscriberSpec
from hmsearch.chunk import ChunkSettings, transcript_from_passages
from hmsearch.evaluate import Question, judge_answer
from hmsearch.index import IndexStore
from hmsearch.ingest import IndexOptions, index_paths
from hmsearch.ingest.reindex import reindex
from hmsearch.query import QueryService, SearchRequest
from hmsearch.types import AnswerSentence

from helpers import HashingEncoder, write_srt

OPTIONS = IndexOptions(TranscriberSpec("turbo"))


class SmallHashing(HashingEncoder):
    name = "test/another-hashing-encoder"
    dim = 32
    max_tokens = 12


@pytest.fixture
def index(tmp_path):
    folder = tmp_path / "eps"
    folder.mkdir()
    write_srt(folder / "a.srt", [f"Sætning nummer {i} om nyhedsbreve og e-mail." for i in range(30)])
    write_srt(
        folder / "b.srt",
        ["Vi sender nyhedsbrevet ud hver tirsdag klokken syv om morgenen.", "Det virker bedst for os."],
    )
    store = IndexStore(tmp_path / "ix")
    with store.writing():
        index_paths([folder], store, encoder=HashingEncoder(), options=OPTIONS)
    return store, folder


def test_reindex_switches_model_in_one_commit_and_keeps_every_episode(index):
    store, folder = index
    before = {e.id: [p.text for p in store.passages(e.id)] for e in store.episodes()}
    generation = store.require().generation
    events = []
    with store.writing():
        report = reindex(store, SmallHashing(), settings=ChunkSettings(max_tokens=12), on_event=events.append)
    fresh = IndexStore(store.root)
    manifest = fresh.require()
    assert (manifest.embedding_model, manifest.dim) == (SmallHashing.name, 32)
    assert manifest.generation == generation + 1  # one commit for the whole switch
    assert report.replaced == ["a", "b"] and [e.kind for e in events].count("replaced") == 2
    for episode_id, texts in before.items():
        again = [p.text for p in fresh.passages(episode_id)]
        # the same words, cut for the smaller token limit
        assert " ".join(dict.fromkeys(" ".join(texts).split())) == " ".join(dict.fromkeys(" ".join(again).split()))
        assert all(len(p.text.split()) <= 12 for p in fresh.passages(episode_id))
    assert fresh.dense().dim == 32
    # The inputs did not change: a later `index` of the same files has nothing to do.
    with fresh.writing():
        again = index_paths([folder], fresh, encoder=SmallHashing(), options=OPTIONS)
    assert again.unchanged == ["a", "b"] and not again.added and not again.replaced


def test_a_failed_reindex_leaves_the_old_index_whole(index):
    store, _ = index

    class Breaks(SmallHashing):
        def encode_documents(self, texts, *, progress=None):
            if self.calls:
                raise RuntimeError("killed")
            return super().encode_documents(texts, progress=progress)

    with store.writing(), pytest.raises(RuntimeError):
        reindex(store, Breaks(), settings=ChunkSettings(max_tokens=12))
    fresh = IndexStore(store.root)
    assert fresh.require().embedding_model == HashingEncoder.name
    assert [e.id for e in fresh.episodes()] == ["a", "b"] and fresh.passages("b")
    with fresh.writing():  # the next writer sweeps what the failed run wrote
        pass
    named = {r.segment for r in fresh.require().episodes.values()}
    assert {p.stem for p in (store.root / "segments").iterdir()} == named


def test_transcript_from_passages_has_each_sentence_once_with_word_times():
    from hmsearch.types import Passage, Sentence

    s1, s2, s3 = (
        Sentence(0, 2, "Hej med dig.", (0.0, 0.5, 1.2)),
        Sentence(2, 4, "Godt at se dig."),
        Sentence(4, 6, "Farvel."),
    )
    t = transcript_from_passages([Passage(0, 4, (s1, s2)), Passage(2, 6, (s2, s3))], language="da")
    assert [s.text for s in t.segments] == ["Hej med dig.", "Godt at se dig.", "Farvel."]
    assert [w.start for w in t.segments[0].words] == [0.0, 0.5, 1.2] and t.segments[1].words == ()


def test_an_unquoted_phrase_is_found_where_it_was_said(index):
    store, _ = index
    service = QueryService(store.root, encoder=HashingEncoder())
    hits = service.search(SearchRequest("vi sender nyhedsbrevet ud hver tirsdag klokken 7", k=3)).hits
    assert hits[0].episode == "b" and hits[0].text == "Vi sender nyhedsbrevet ud hver tirsdag klokken"
    assert hits[0].start == pytest.approx(0.0, abs=0.01) and hits[0].end < 5.0
    # A question is not a phrase: no hit is cut to a word span.
    plain = service.search(SearchRequest("hvornår sendes nyhedsbrevet", k=3)).hits
    assert all(h.sentences for h in plain)


def test_answer_at_1_counts_the_first_answer_sentence():
    q = Question("q", "?", (("e", 10.0, 20.0),))
    inside = AnswerSentence("x", "e", "", 12.0, 15.0, 1.0, "")
    elsewhere = AnswerSentence("x", "e", "", 40.0, 45.0, 1.0, "")
    assert judge_answer([inside, elsewhere], q) == 1.0
    assert judge_answer([elsewhere, inside], q) == 0.0 and judge_answer([], q) == 0.0
