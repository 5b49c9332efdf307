"""The read side's one home: the service reads episodes back (one de-overlap, memoised per episode
version), derived chapter caches are disposable, and what a feed wrote never becomes an unsafe link,
header or document (issue 21; issue 27 findings 1, 2, 5, 8, 13 and the clip time parser).

Runs on the bundled sample plus a transcript-only episode, indexed with the HashingEncoder
stand-in (bag of words): these tests are about reading back, not about ranking."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from hmsearch.asr import TranscriberSpec
from hmsearch.chunk import sentences_from_passages
from hmsearch.host import chapters as ch
from hmsearch.host.notes import Quote, ShowNotes
from hmsearch.index import IndexStore
from hmsearch.ingest import IndexOptions, index_paths
from hmsearch.query import QueryService
from hmsearch.query.episodes import EpisodeReader
from hmsearch.query.links import playback_link
from hmsearch.types import Episode, Passage, Sentence

from helpers import SAMPLE_TRANSCRIPT, HashingEncoder, index_sample, write_srt

OPTIONS = IndexOptions(TranscriberSpec("turbo"))  # never runs: the sample has its transcript beside it


@pytest.fixture
def store(tmp_path: Path) -> IndexStore:
    return index_sample(
        tmp_path, extra={"notes-only": ["Et afsnit uden lyd.", "Kun en tekst.", "Og en sætning mere her."]}
    )


def test_sentences_come_back_once_in_order_from_overlapping_passages() -> None:
    a, b, c = Sentence(0, 2, "En."), Sentence(2, 4, "To."), Sentence(4, 6, "Tre.")
    same_b = Sentence(2, 4, "To.")  # the overlap, read from the next passage's file
    assert sentences_from_passages([Passage(0, 4, (a, b)), Passage(2, 6, (same_b, c))]) == [a, b, c]
    # two sentences with the same text at different times are both kept
    again = Sentence(8, 9, "To.")
    assert sentences_from_passages([Passage(0, 4, (a, b)), Passage(8, 9, (again,))]) == [a, b, again]


def test_service_transcript_is_the_sample_sentence_by_sentence(store: IndexStore) -> None:
    service = QueryService(store.root)
    text = service.transcript("hm-sample-001")
    said = [s["text"].strip() for s in json.loads(SAMPLE_TRANSCRIPT.read_text())["segments"]]
    assert " ".join(s.text for s in text.sentences) == " ".join(said)
    assert [s.start for s in text.sentences] == sorted(s.start for s in text.sentences)
    assert text.between(100, 110) and all(s.end > 100 and s.start < 110 for s in text.between(100, 110))
    assert [w for w, _, _ in text.words()] == " ".join(said).split()
    assert service.episode("hm-sample-001") == text.episode
    assert {e.id for e in service.episodes()} == {"hm-sample-001", "notes-only"}


def test_reader_memo_follows_the_episode_version(store: IndexStore, tmp_path: Path) -> None:
    reader = EpisodeReader()
    first = reader.text(store, "notes-only")
    assert reader.text(store, "notes-only").sentences is first.sentences  # read once per version
    write_srt(tmp_path / "audio" / "notes-only.srt", ["Helt ny tekst nu.", "Og mere."])
    with store.writing():
        index_paths([tmp_path / "audio"], store, encoder=HashingEncoder(), options=OPTIONS)
    fresh = IndexStore(store.root)
    assert [s.text for s in reader.text(fresh, "notes-only").sentences] == ["Helt ny tekst nu.", "Og mere."]


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_text("[" * 100_000),  # nested beyond the parser's recursion limit
        lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "chapters": [{"start": float("nan")}]})),
        lambda p: p.write_text(
            json.dumps(
                {
                    **json.loads(p.read_text()),
                    "chapters": [{"start": "NaN", "end": 1.0, "title": "x"}],
                }
            )
        ),
        lambda p: (p.unlink(), p.mkdir()),  # a folder in its place
    ],
    ids=["nested", "nan-missing", "nan", "folder"],
)
def test_damaged_chapter_cache_is_made_again_never_fatal(store: IndexStore, cli, damage) -> None:
    good = EpisodeReader().chapters(store, "hm-sample-001")
    (path,) = store.model_cache(ch.CACHE_KIND).glob("hm-sample-001-*")
    damage(path)
    assert EpisodeReader().chapters(IndexStore(store.root), "hm-sample-001") == good
    for args in (["chapters", "hm-sample-001", "--json"], ["notes", "hm-sample-001", "--json"]):
        result = cli("--index-dir", str(store.root), *args)
        assert result.exit_code == 0, result.output
        assert "NaN" not in result.output


def test_readers_never_delete_cache_files(store: IndexStore) -> None:
    folder = store.model_cache(ch.CACHE_KIND)
    folder.mkdir(parents=True, exist_ok=True)
    stray = folder / "gone-episode-0123456789ab-0123456789.json"
    stray.write_text("{}")
    EpisodeReader().chapters(store, "hm-sample-001")
    assert stray.exists()


def test_feed_urls_that_are_not_http_never_become_links() -> None:
    ep = Episode("x", "t", 10.0, 1, "s", url="javascript:alert(1)", enclosure="data:audio/mpeg;base64,AAAA", audio=None)
    assert ep.url is None and ep.enclosure is None
    assert playback_link(ep, 5) == ""
    ok = Episode("y", "t", 10.0, 1, "s", enclosure="https://cdn.example.com/a.mp3")
    assert playback_link(ok, 5.5) == "https://cdn.example.com/a.mp3#t=5"
    assert Episode.__dataclass_fields__  # still a plain frozen dataclass
    with pytest.raises(AttributeError):
        ok.url = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://cdn.example.com/a.mp3", "https://cdn.example.com"),
        ("https://CDN.example.com:8443/a.mp3", "https://cdn.example.com:8443"),
        ("https://bücher.example/a.mp3", "https://xn--bcher-kva.example"),
        ("https://evil.example;script-src-elem%20'unsafe-inline'/a.mp3", None),
        ("https://evil.example;script-src-elem 'unsafe-inline' */a.mp3", None),
        ("https://a'b.example/a.mp3", None),
    ],
)
def test_csp_media_origin_is_a_plain_host(url: str, origin: str | None) -> None:
    from hmsearch.web.pages import origin as csp_origin

    assert csp_origin(url) == origin


def test_hostile_enclosure_host_adds_no_csp_directive(store: IndexStore) -> None:
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from hmsearch.web.app import create_app, create_service

    with store.writing():
        manifest = store.require()
        rec = manifest.episodes["notes-only"]
        hostile = "https://evil.example;script-src-elem 'unsafe-inline' */a.mp3"
        idn = "https://bücher.example/a.mp3"
        for enclosure, name in ((hostile, "notes-only"),):
            manifest.episodes[name] = replace(rec, episode=replace(rec.episode, enclosure=enclosure))
        store._commit(manifest)
    client = TestClient(create_app(create_service(store.root)))
    page = client.get("/episode/notes-only")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "unsafe-inline" not in policy and "evil" not in policy and policy.count("script-src") == 1
    with store.writing():
        manifest = store.require()
        rec = manifest.episodes["notes-only"]
        manifest.episodes["notes-only"] = replace(rec, episode=replace(rec.episode, enclosure=idn))
        store._commit(manifest)
    page = client.get("/episode/notes-only")
    assert page.status_code == 200 and "https://xn--bcher-kva.example" in page.headers["content-security-policy"]


def test_notes_markdown_escapes_what_the_feed_and_transcript_wrote() -> None:
    notes = ShowNotes(
        episode="e",
        title="<script>alert(1)</script> \x1b[31mRed [click](javascript:alert(1))",
        published=None,
        duration=100.0,
        chapters=[],
        quotes=[
            Quote("Say *this* <b>now</b>", 1.0, 2.0, 1.0, "javascript:alert(1)"),
            Quote("Plain words here.", 3.0, 4.0, 1.0, "https://cdn.example.com/a (1).mp3#t=3"),
        ],
        key_terms=["a_b"],
        page="data:text/html,x",
    )
    md = notes.markdown()
    assert "<script>" not in md and "<b>" not in md and "\x1b" not in md
    assert not re.search(r"(?<!\\)\]\((?!https?:)", md)  # every link that is one goes to http(s)
    assert "data:text" not in md
    assert "\\[click\\]" in md and "\\*this\\*" in md
    assert "[00:03](https://cdn.example.com/a%20%281%29.mp3#t=3)" in md


def test_clip_never_overwrites_without_force_nor_the_episode_audio(store: IndexStore, cli, tmp_path: Path) -> None:
    pytest.importorskip("av")
    out = tmp_path / "c.mp3"
    (tmp_path / "c.srt").write_text("keep me")
    root = str(store.root)
    refused = cli("--index-dir", root, "clip", "hm-sample-001", "--start", "143", "--end", "146", "-o", str(out))
    assert refused.exit_code != 0 and "exists: pass --force" in refused.output
    assert (tmp_path / "c.srt").read_text() == "keep me" and not out.exists()
    ok = cli("--index-dir", root, "clip", "hm-sample-001", "--start", "143", "--end", "146", "-o", str(out), "--force")
    assert ok.exit_code == 0, ok.output
    audio = tmp_path / "audio" / "hm-sample-001.mp3"
    before = audio.read_bytes()
    own = cli(
        "--index-dir", root, "clip", "hm-sample-001", "--start", "143", "--end", "146", "-o", str(audio), "--force"
    )
    assert own.exit_code != 0 and "own audio" in own.output
    assert audio.read_bytes() == before


@pytest.mark.parametrize("bad", ["1:-5", "-3", "1:75", "1:2:3:4", "1e3", "nan", "", "1::2"])
def test_clip_times_must_be_times(store: IndexStore, cli, tmp_path: Path, bad: str) -> None:
    result = cli(
        "--index-dir",
        str(store.root),
        "clip",
        "hm-sample-001",
        "--start",
        bad,
        "--end",
        "9",
        "-o",
        str(tmp_path / "x.mp3"),
    )
    assert result.exit_code == 2 and "is not a time" in result.output


def test_downloaded_enclosures_are_named_by_the_whole_id_with_a_known_extension() -> None:
    from hmsearch.query.episodes import download_name

    prefix = "https://example.com/" + "x" * 70
    a = Episode(prefix + "/1", "t", 1.0, 1, "s", enclosure="https://cdn.example.com/a.mp3")
    b = Episode(prefix + "/2", "t", 1.0, 1, "s", enclosure="https://cdn.example.com/b.mp3")
    assert download_name(a) != download_name(b) and download_name(a).endswith(".mp3")
    odd = Episode("e", "t", 1.0, 1, "s", enclosure="https://cdn.example.com/a.php?x=.sh")
    assert download_name(odd).endswith(".audio") and "/" not in download_name(a)
