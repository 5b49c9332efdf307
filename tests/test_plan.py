"""Planning and the query service without any model: what is new, what is unchanged, what a feed
changed, the model check before any work, and the service's validation. The embedding model is
the HashingEncoder stand-in (tests/helpers.py): these tests prove plumbing, not search quality."""

from __future__ import annotations

import os

import pytest

from hmsearch.asr import TranscriberSpec, load_transcriber
from hmsearch.chunk import ChunkSettings
from hmsearch.errors import IndexStateError, InputError, NotFoundError
from hmsearch.index import IndexStore
from hmsearch.ingest import IndexOptions, discover, index_paths
from hmsearch.ingest.events import IndexReport
from hmsearch.ingest.plan import plan_feed_items, plan_sources
from hmsearch.query import AskRequest, Filters, QueryService, SearchRequest

from helpers import HashingEncoder, write_srt

OPTIONS = IndexOptions(TranscriberSpec("turbo"))  # never runs: every episode here has a transcript


def _plan(store: IndexStore, folder, **kw):
    sources, errors = discover([folder])
    assert not errors
    report, events = IndexReport(), []
    plan = plan_sources(
        sources,
        store.manifest,
        model=HashingEncoder.name,
        transcriber=load_transcriber(OPTIONS.transcriber),
        settings=ChunkSettings(),
        report=report,
        emit=events.append,
        **{"force": False, **kw},
    )
    return plan, report, events


@pytest.fixture
def episodes(tmp_path):
    folder = tmp_path / "eps"
    folder.mkdir()
    write_srt(
        folder / "a.srt",
        [
            "Vi taler om nyhedsbreve i dag.",
            "Hvor tit skal man sende et nyhedsbrev?",
            "En gang om ugen er nok for de fleste.",
        ],
    )
    write_srt(folder / "b.srt", ["Today we talk about search engines.", "Keywords still matter for SEO."])
    return folder


def test_planning_finds_new_unchanged_changed_and_forced(tmp_path, episodes):
    store = IndexStore(tmp_path / "ix")
    plan, _, _ = _plan(store, episodes)
    assert [j.source.id for j in plan.jobs] == ["a", "b"] and not any(j.replaces for j in plan.jobs)
    encoder = HashingEncoder()
    with store.writing():
        report = index_paths([episodes], store, encoder=encoder, options=OPTIONS)
    assert report.added == ["a", "b"] and report.passages >= 2

    plan, report, events = _plan(IndexStore(tmp_path / "ix"), episodes)
    assert plan.jobs == [] and plan.unchanged == ["a", "b"] and [e.kind for e in events] == ["unchanged"] * 2

    os.utime(episodes / "a.srt", ns=(1, 1))  # touched, same bytes: still unchanged (hash reused or redone)
    write_srt(episodes / "b.srt", ["Today we talk about podcasts instead."])
    plan, _, _ = _plan(IndexStore(tmp_path / "ix"), episodes)
    assert [(j.source.id, j.replaces) for j in plan.jobs] == [("b", True)] and plan.unchanged == ["a"]

    plan, _, _ = _plan(IndexStore(tmp_path / "ix"), episodes, force=True)
    assert [j.source.id for j in plan.jobs] == ["a", "b"]


def test_a_model_mismatch_stops_the_run_before_any_work(tmp_path, episodes):
    store = IndexStore(tmp_path / "ix")
    with store.writing():
        index_paths([episodes], store, encoder=HashingEncoder(), options=OPTIONS)
    other = HashingEncoder()
    other.name = "test/another-model"
    write_srt(episodes / "c.srt", ["A third episode."])
    with store.writing(), pytest.raises(IndexStateError, match="was built with embedding model"):
        index_paths([episodes], store, encoder=other, options=OPTIONS)
    assert other.calls == 0  # nothing was embedded
    assert [e.id for e in IndexStore(tmp_path / "ix").episodes()] == ["a", "b"]


def test_index_events_are_typed_with_counts_and_phases(tmp_path, episodes):
    events = []
    store = IndexStore(tmp_path / "ix")
    with store.writing():
        index_paths([episodes], store, encoder=HashingEncoder(), options=OPTIONS, on_event=events.append)
    assert events[0].kind == "plan" and events[0].count == 2
    added = [e for e in events if e.kind == "added"]
    assert [e.episode for e in added] == ["a", "b"]
    for e in added:
        assert e.count >= 1 and e.detail == f"{e.count} passages"
        assert set(e.phases) >= {"chunk", "embed", "commit"} and e.seconds >= sum(e.phases.values()) - 1e-9


class _Item:
    def __init__(self, guid: str, title: str) -> None:
        self.guid, self.title = guid, title

    def fingerprint(self):
        return {"title": self.title}


def test_feed_items_are_planned_by_their_fingerprint_without_a_download(tmp_path):
    from hmsearch.index.manifest import EpisodeRecord, Manifest
    from hmsearch.types import Episode

    ep = Episode(id="g1", title="One", duration=1, n_passages=1, source="", content_hash="x")
    manifest = Manifest(
        "m", 8, {}, episodes={"g1": EpisodeRecord(ep, "k", feed={"url": "u", "item": {"title": "One"}})}
    )
    items = [_Item("g1", "One"), _Item("g2", "Two")]
    assert [(i.guid, a) for i, a in plan_feed_items(items, manifest, force=False)] == [
        ("g1", "unchanged"),
        ("g2", "new"),
    ]
    items[0].title = "One, renamed"
    assert plan_feed_items(items, manifest, force=False)[0][1] == "changed"
    assert plan_feed_items([_Item("g1", "One")], manifest, force=True)[0][1] == "changed"


def test_query_service_validates_in_one_place(tmp_path, episodes):
    store = IndexStore(tmp_path / "ix")
    encoder = HashingEncoder()
    with store.writing():
        index_paths([episodes], store, encoder=encoder, options=OPTIONS)
    service = QueryService(tmp_path / "ix", encoder=encoder)
    hits = service.search(SearchRequest("nyhedsbrev om ugen", k=3)).hits
    assert hits and hits[0].episode == "a"
    assert service.search(SearchRequest("search engines keywords", mode="lexical")).hits[0].episode == "b"
    with pytest.raises(NotFoundError):
        service.search(SearchRequest("x", filters=Filters(episode="nope")))
    with pytest.raises(InputError, match="unknown search mode"):
        service.search(SearchRequest("x", mode="fuzzy"))
    with pytest.raises(InputError, match="k must be"):
        service.search(SearchRequest("x", k=0))
    with pytest.raises(InputError, match="unknown request op"):
        service.handle({"op": "drop"})
    with pytest.raises(InputError, match="malformed"):
        service.handle({"op": "search"})
    answer = service.ask(AskRequest("Hvor tit skal man sende et nyhedsbrev?"))
    assert answer.answer and answer.answer[0].episode == "a"
    assert service.handle(SearchRequest("keywords", mode="lexical").to_dict())["hits"][0]["episode"] == "b"


def test_query_service_sees_a_new_commit_without_a_restart(tmp_path, episodes):
    store = IndexStore(tmp_path / "ix")
    encoder = HashingEncoder()
    with store.writing():
        index_paths([episodes / "a.srt"], store, encoder=encoder, options=OPTIONS)
    service = QueryService(tmp_path / "ix", encoder=encoder)
    assert {h.episode for h in service.search(SearchRequest("keywords SEO", mode="lexical")).hits} == set()
    with IndexStore(tmp_path / "ix").writing() as writer:
        index_paths([episodes / "b.srt"], writer, encoder=encoder, options=OPTIONS)
    assert service.search(SearchRequest("keywords SEO", mode="lexical")).hits[0].episode == "b"
