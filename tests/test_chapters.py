"""Chapters: change points over passage vectors, extractive titles, the output formats, the
index-folder cache, and chapters in `episodes` and in search hits.

The index-level tests use the HashingEncoder stand-in (bag of words): an episode whose three
parts share no vocabulary has its topic changes where the parts meet, so these prove the
plumbing and the boundary placement on a clear case; how well real topic changes are found is
measured by benchmarks/bench_chapters.py (README "Chapters")."""

from __future__ import annotations

import io
import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
import webvtt

from hmsearch.asr import TranscriberSpec
from hmsearch.chunk import sentences_from_passages
from hmsearch.host import chapters as ch
from hmsearch.host.chapters import (
    Chapter,
    ChapterSettings,
    chapter_at,
    chapter_of,
    find_boundaries,
    format_show_notes,
    format_webvtt_chapters,
    key_terms,
    make_chapters,
    podcast_chapters,
)
from hmsearch.index import IndexStore
from hmsearch.ingest import IndexOptions, index_paths
from hmsearch.query import episodes as eps
from hmsearch.query.episodes import EpisodeReader
from hmsearch.types import Hit, Passage, Sentence

from helpers import HashingEncoder, write_srt

TOPICS = {
    "coffee": ["coffee", "espresso", "beans", "roast", "grinder", "barista", "milk", "crema", "brewing", "kettle"],
    "rockets": ["rocket", "engine", "orbit", "launch", "fuel", "booster", "payload", "thrust", "satellite", "landing"],
    "gardens": [
        "garden",
        "tomatoes",
        "compost",
        "soil",
        "seeds",
        "watering",
        "greenhouse",
        "harvest",
        "weeds",
        "spade",
    ],
}
PART_SECONDS = 300.0


def _sentences_for(topic: str, n: int, rng: random.Random) -> list[str]:
    words = TOPICS[topic]
    return [f"We talk about {' '.join(rng.sample(words, 5))} today." for _ in range(n)]


def synthetic(parts: list[str], *, seconds: float = PART_SECONDS, seed: int = 0):
    """Passages (60 s, 15 s overlap) of an episode of ``parts`` and their topic vectors with noise."""
    rng = np.random.default_rng(seed)
    dirs = {t: rng.normal(size=32) for t in TOPICS}
    duration = seconds * len(parts)
    passages, vectors = [], []
    start = 0.0
    while start + 60 <= duration + 1e-6:
        sents = tuple(Sentence(start + k * 5, start + k * 5 + 4.5, f"s{start + k * 5:.0f}.") for k in range(12))
        passages.append(Passage(start, start + 60, sents))
        mid = start + 30
        topic = parts[min(int(mid // seconds), len(parts) - 1)]
        vectors.append(dirs[topic] + rng.normal(scale=0.6, size=32))
        start += 45
    v = np.array(vectors, dtype=np.float32)
    return passages, v / np.linalg.norm(v, axis=1, keepdims=True), duration


def test_boundaries_land_where_the_topic_changes() -> None:
    passages, vectors, duration = synthetic(["coffee", "rockets", "gardens", "coffee"])
    found = find_boundaries(passages, vectors, sentences_from_passages(passages), duration=duration)
    truth = [300.0, 600.0, 900.0]
    assert len(found) == len(truth)
    assert all(abs(f - t) <= 30 for f, t in zip(found, truth)), found
    sentence_starts = {s.start for p in passages for s in p.sentences}
    assert set(found) <= sentence_starts  # a chapter starts at a sentence


def test_one_topic_is_one_chapter() -> None:
    passages, vectors, duration = synthetic(["coffee"], seconds=1200)
    assert find_boundaries(passages, vectors, sentences_from_passages(passages), duration=duration) == []


def test_minimum_length_and_number_per_hour_are_kept() -> None:
    parts = ["coffee", "rockets", "gardens"] * 4  # a change every 100 s for 20 minutes
    passages, vectors, duration = synthetic(parts, seconds=100)
    settings = ChapterSettings(min_seconds=150, max_per_hour=12)
    found = find_boundaries(passages, vectors, sentences_from_passages(passages), duration=duration, settings=settings)
    starts = [0.0, *found, duration]
    assert all(b - a >= 150 - 45 for a, b in zip(starts, starts[1:]))  # within one passage step
    assert len(found) <= 12 * duration / 3600
    few = find_boundaries(
        passages,
        vectors,
        sentences_from_passages(passages),
        duration=duration,
        settings=ChapterSettings(max_per_hour=6),
    )
    assert len(few) <= 2


def test_short_episode_gets_no_boundaries_closer_than_a_fifth() -> None:
    passages, vectors, duration = synthetic(["coffee", "rockets"], seconds=60)
    found = find_boundaries(passages, vectors, sentences_from_passages(passages), duration=duration)
    assert all(t >= 45 / 2 and duration - t >= 45 / 2 for t in found)


def test_titles_are_the_chapters_own_key_words() -> None:
    rng = random.Random(1)
    texts = [" ".join(_sentences_for(t, 30, rng)) for t in ("coffee", "rockets", "gardens")]
    terms = key_terms(texts, "en")
    for topic, got in zip(("coffee", "rockets", "gardens"), terms):
        assert got and all(set(phrase.split()) <= set(TOPICS[topic]) for phrase in got), (topic, got)
    # Danish: stopwords and fillers are not title words
    da = key_terms(
        ["Og så er det jo altså LinkedIn og LinkedIn og profilen, profilen.", "Nyhedsbreve nyhedsbreve."], "da"
    )
    assert da[0] and not {"og", "så", "det", "jo", "altså"} & {w for p in da[0] for w in p.split()}
    assert "linkedin" in " ".join(da[0])


def test_make_chapters_covers_the_episode_in_order() -> None:
    passages, vectors, duration = synthetic(["coffee", "rockets", "gardens"])
    found = make_chapters(passages, vectors, duration=duration, language="en")
    assert found[0].start == 0.0 and found[-1].end == pytest.approx(duration)
    assert all(a.end == b.start for a, b in zip(found, found[1:]))
    assert chapter_at(found, 0.0) is found[0] and chapter_at(found, duration - 1) is found[-1]
    b = found[1].start
    assert chapter_of(found, b - 5, b + 50) is found[1] and chapter_of(found, b - 50, b + 5) is found[0]


CHAPTERS = [Chapter(0.0, 95.5, "Intro & <welcome>"), Chapter(95.5, 400.0, "Rockets"), Chapter(400.0, 3700.0, "Gardens")]


def test_show_notes_lines_are_youtube_chapters() -> None:
    text = format_show_notes(CHAPTERS)
    lines = text.splitlines()
    assert lines[0] == "0:00:00 Intro & <welcome>" and lines[1] == "0:01:35 Rockets"  # past an hour: H:MM:SS
    short = format_show_notes([Chapter(0.0, 60.0, "A"), Chapter(60.0, 125.0, "B")])
    assert short == "00:00 A\n01:00 B\n"
    assert all(re.match(r"^(\d+:)?\d\d:\d\d \S", line) for line in lines)


def test_podcast_chapters_json() -> None:
    doc = podcast_chapters(CHAPTERS, title="Ep")
    assert doc["version"] == "1.2.0" and doc["title"] == "Ep"
    assert [c["startTime"] for c in doc["chapters"]] == [0.0, 95.5, 400.0]
    assert all(set(c) == {"startTime", "endTime", "title"} for c in doc["chapters"])
    json.dumps(doc, allow_nan=False)


def test_webvtt_chapters_parse_with_webvtt_py() -> None:
    text = format_webvtt_chapters(CHAPTERS)
    captions = webvtt.from_buffer(io.StringIO(text)).captions
    assert [c.text for c in captions] == [
        "Intro &amp; &lt;welcome&gt;",
        "Rockets",
        "Gardens",
    ]  # escaped, as WebVTT wants
    assert [c.start for c in captions] == ["00:00:00.000", "00:01:35.500", "00:06:40.000"]


# ---------------------------------------------------------------------------- through the index

OPTIONS = IndexOptions(TranscriberSpec("turbo"))  # never runs: the episodes are transcripts


@pytest.fixture
def topical(tmp_path: Path) -> tuple[IndexStore, Path]:
    """An index (HashingEncoder) of one 15-minute episode in three topics of 5 minutes each."""
    rng = random.Random(7)
    lines = [s for t in ("coffee", "rockets", "gardens") for s in _sentences_for(t, 60, rng)]
    folder = tmp_path / "eps"
    folder.mkdir()
    write_srt(folder / "topics.srt", lines, seconds=5.0)
    store = IndexStore(tmp_path / "ix")
    with store.writing():
        index_paths([folder], store, encoder=HashingEncoder(), options=OPTIONS)
    return IndexStore(tmp_path / "ix"), folder


def test_index_chapters_are_found_and_cached(topical, monkeypatch) -> None:
    store, _ = topical
    found = EpisodeReader().chapters(store, "topics")
    assert len(found) == 3
    assert [round(c.start) for c in found][1:] == pytest.approx([300, 600], abs=30)
    assert {w for w in found[1].title.lower().replace(",", "").split()} <= set(TOPICS["rockets"])
    cached = list(store.model_cache(ch.CACHE_KIND).glob("*.json"))
    assert len(cached) == 1

    def fail(*a, **k):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(eps, "make_chapters", fail)
    assert EpisodeReader().chapters(IndexStore(store.root), "topics") == found  # a new reader: from the file


def test_damaged_cache_is_made_again(topical) -> None:
    store, _ = topical
    first = EpisodeReader().chapters(store, "topics")
    (path,) = store.model_cache(ch.CACHE_KIND).glob("*.json")
    path.write_text("{not json")
    assert EpisodeReader().chapters(IndexStore(store.root), "topics") == first
    json.loads(path.read_text())  # rewritten whole


def test_changed_episode_gets_new_chapters(topical) -> None:
    store, folder = topical
    EpisodeReader().chapters(store, "topics")
    rng = random.Random(3)
    write_srt(folder / "topics.srt", _sentences_for("coffee", 120, rng), seconds=5.0)  # one topic now
    with store.writing():
        index_paths([folder], store, encoder=HashingEncoder(), options=OPTIONS)
    fresh = IndexStore(store.root)
    assert len(EpisodeReader().chapters(fresh, "topics")) == 1
    assert len(list(fresh.model_cache(ch.CACHE_KIND).glob("*.json"))) == 1  # the old version's are pruned


def test_the_writer_prunes_chapters_of_replaced_and_removed_episodes(topical) -> None:
    """The index's sweep drops cached chapters of episode versions it no longer holds: no reader
    has to prune (readers only add files)."""
    store, folder = topical
    EpisodeReader().chapters(store, "topics")
    cache = store.model_cache(ch.CACHE_KIND)
    (old,) = cache.glob("*.json")
    write_srt(folder / "topics.srt", _sentences_for("coffee", 120, random.Random(3)), seconds=5.0)
    with store.writing():
        index_paths([folder], store, encoder=HashingEncoder(), options=OPTIONS)  # commits and sweeps
    assert not old.exists()
    EpisodeReader().chapters(IndexStore(store.root), "topics")
    (new,) = cache.glob("*.json")
    with store.writing():
        store.remove_episode("topics")
        store.finish()
    assert not new.exists() and cache.is_dir()


def test_cli_chapters_formats(topical, cli) -> None:
    store, _ = topical
    root = str(store.root)
    text = cli("--index-dir", root, "chapters", "topics")
    assert text.exit_code == 0 and text.output.startswith("00:00 ") and len(text.output.splitlines()) == 3
    pod = json.loads(cli("--index-dir", root, "chapters", "topics", "--format", "podcast").output)
    assert len(pod["chapters"]) == 3
    vtt = cli("--index-dir", root, "chapters", "topics", "--format", "vtt").output
    assert len(webvtt.from_buffer(io.StringIO(vtt)).captions) == 3
    js = json.loads(cli("--index-dir", root, "chapters", "topics", "--json").output)
    assert js["episode"] == "topics" and all(c["keywords"] for c in js["chapters"])
    missing = cli("--index-dir", root, "chapters", "nope")
    assert missing.exit_code == 6 and len(missing.output.strip().splitlines()) == 1


def test_episodes_and_search_show_chapters(topical, cli) -> None:
    store, _ = topical
    root = str(store.root)
    listed = json.loads(cli("--index-dir", root, "episodes", "--chapters", "--json").output)
    assert len(listed[0]["chapters"]) == 3
    assert "chapters" not in json.loads(cli("--index-dir", root, "episodes", "--json").output)[0]
    out = cli("--index-dir", root, "search", "rocket booster payload", "--mode", "lexical", "--json", "-k", "1")
    hit = json.loads(out.output)["hits"][0]
    titles = [c["title"] for c in listed[0]["chapters"]]
    assert hit["chapter"] == titles[1]


def test_hit_json_from_before_chapters_still_parses() -> None:
    old = {"episode": "e", "title": "T", "start": 1.0, "end": 2.0, "text": "x", "score": 0.5, "link": ""}
    assert Hit.from_dict(old).chapter is None
    hit = Hit("e", "T", 1.0, 2.0, "x", 0.5, "", chapter="Rockets")
    assert Hit.from_dict(hit.to_dict()) == hit
