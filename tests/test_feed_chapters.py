"""The publisher's chapters: a feed item's <podcast:chapters> JSON is read by `update` and used by
`chapters`, notes and the web page instead of the chapters hmsearch finds; a broken or hostile one
is said once and fails nothing. Real code path end to end: a loopback HTTP server, `hmsearch
update`, the index, `hmsearch chapters --json` (a hashing encoder stands in for e5)."""

from __future__ import annotations

import json

import pytest

import hmsearch.cli.index as cli_index
from hmsearch.host.chapters import MAX_FEED_CHAPTER_TITLE, MAX_FEED_CHAPTERS, read_podcast_chapters
from hmsearch.ingest.feeds import parse_feed
from test_feed_persons import NS, vtt
from test_feeds import Server

from helpers import HashingEncoder

TALK = vtt(*[("S1" if i % 2 else "S2", f"Sætning nummer {i} handler om nyhedsbreve og kurve.") for i in range(12)])


def feed(server: Server, chapters: dict[str, str | None], extra: str = "") -> bytes:
    """RSS of one item per guid with a VTT transcript, ``extra`` tags and, when given, a
    <podcast:chapters> path."""
    items = "".join(
        f"<item><title>{guid}</title><guid>{guid}</guid>"
        f'<podcast:transcript url="{server.url}/talk.vtt" type="text/vtt"/>{extra}'
        + (f'<podcast:chapters url="{server.url}{path}" type="application/json+chapters"/>' if path else "")
        + "</item>"
        for guid, path in chapters.items()
    )
    return f'<?xml version="1.0"?><rss version="2.0" {NS}><channel><title>HM</title>{items}</channel></rss>'.encode()


def doc(*chapters: dict) -> bytes:
    return json.dumps({"version": "1.2.0", "chapters": list(chapters)}).encode()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(cli_index, "indexing_encoder", lambda store, name: HashingEncoder())
    s = Server()
    s.routes["/talk.vtt"] = (200, "text/vtt", TALK, None)
    s.routes["/ch.json"] = (
        200,
        "application/json+chapters",
        doc(
            {"startTime": 30, "title": "Kurven"},
            {"startTime": 0, "title": "Intro\u202e\x1b[31m"},
            {"startTime": 12.5, "title": "Skjult", "toc": False},
            {"startTime": 20, "endTime": 25, "title": "Nyhedsbreve"},
        ),
        None,
    )
    yield s
    s.close()


def chapters_json(cli, episode: str, source: str | None = None) -> list[dict]:
    res = cli("chapters", episode, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert source is None or out["source"] == source
    return out["chapters"]


def update(cli, server: Server, body: bytes, *args: str):
    server.routes["/feed.xml"] = (200, "application/rss+xml", body, None)
    return cli("update", "--feed", f"{server.url}/feed.xml", *args)


def test_the_publishers_chapters_replace_the_found_ones(cli, server) -> None:
    found_before = None
    res = update(cli, server, feed(server, {"ep-1": None}))
    assert res.exit_code == 0, res.output
    found_before = chapters_json(cli, "ep-1", "found")
    assert all(c["title"] not in ("Kurven", "Intro") for c in found_before)
    # the host adds chapters to the published item: read on the next update, nothing re-indexed;
    # control characters and a bidi override out of the title (the escape sequence's text stays)
    res = update(cli, server, feed(server, {"ep-1": "/ch.json"}), "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["metadata_updated"] == ["ep-1"] and report["unchanged"] == ["ep-1"] and not report["replaced"]
    got = chapters_json(cli, "ep-1", "feed")
    assert [(c["start"], c["title"]) for c in got] == [(0.0, "Intro [31m"), (20.0, "Nyhedsbreve"), (30.0, "Kurven")]
    assert got[1]["end"] == 25.0 and got[0]["end"] == 20.0  # its own endTime, else the next start
    assert got[2]["end"] == 59.5  # the last ends with the episode (its last cue)
    res = update(cli, server, feed(server, {"ep-1": "/ch.json"}), "--json")
    assert json.loads(res.stdout)["metadata_updated"] == []  # same document: not fetched again
    text = cli("chapters", "ep-1")
    assert text.output.splitlines() == ["00:00 Intro [31m", "00:20 Nyhedsbreve", "00:30 Kurven"]
    # the tag dropped: back to the found chapters
    res = update(cli, server, feed(server, {"ep-1": None}))
    assert res.exit_code == 0, res.output
    assert chapters_json(cli, "ep-1", "found") == found_before


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[" * 100_000,
        b'{"chapters": {"startTime": 0}}',
        doc({"startTime": "0", "title": "text time"}, {"startTime": -1}, {"startTime": float("inf")}),
        b"\xff\xfe",
        b'{"chapters": [{"startTime": 1' + b"0" * 400 + b', "endTime": 1' + b"0" * 400 + b"}]}",
    ],
    ids=["not-json", "nested", "no-list", "no-usable-time", "binary", "huge-integer"],
)
def test_a_broken_chapters_document_is_said_and_fails_nothing(cli, server, body, monkeypatch) -> None:
    monkeypatch.setenv("HMSEARCH_RAISE_ERRORS", "1")  # a traceback would fail the test
    server.routes["/ch.json"] = (200, "application/json", body, None)
    res = update(cli, server, feed(server, {"ep-1": "/ch.json"}))
    assert res.exit_code == 0, res.output
    assert "the feed's chapters not read" in res.output and "Traceback" not in res.output
    assert len(chapters_json(cli, "ep-1")) >= 1  # the found ones
    assert [e["episode"] for e in json.loads(cli("episodes", "--json").stdout)] == ["ep-1"]  # indexed


def test_a_missing_or_huge_chapters_document_fails_nothing(cli, server) -> None:
    server.routes["/big.json"] = (200, "application/json", b" " * (600 * 1024) + doc({"startTime": 0}), None)
    res = update(cli, server, feed(server, {"ep-1": "/gone.json", "ep-2": "/big.json"}))
    assert res.exit_code == 0, res.output
    assert res.output.count("the feed's chapters not read") == 2
    assert chapters_json(cli, "ep-1") and chapters_json(cli, "ep-2")


def test_reading_a_chapters_document_caps_and_cleans() -> None:
    many = doc(*({"startTime": i, "title": "x" * 10_000} for i in range(5_000)))
    got = read_podcast_chapters(many, duration=10_000.0)
    assert len(got) == MAX_FEED_CHAPTERS and all(len(c.title) == MAX_FEED_CHAPTER_TITLE for c in got)
    # past the end, duplicates, untitled, an endTime after the next start
    odd = doc({"startTime": 5, "endTime": 99}, {"startTime": 5, "title": "twice"}, {"startTime": 8}, {"startTime": 50})
    got = read_podcast_chapters(odd, duration=40.0)
    assert [(c.start, c.end, c.title) for c in got] == [(5.0, 8.0, "Chapter 1"), (8.0, 40.0, "Chapter 2")]
    with pytest.raises(ValueError, match="no chapter"):
        read_podcast_chapters(doc({"startTime": 50}), duration=40.0)


def test_only_a_clean_http_chapters_url_is_taken() -> None:
    def item(url: str, kind: str = "application/json+chapters") -> bytes:
        return (
            f'<rss version="2.0" {NS}><channel><item><guid>g</guid><enclosure url="https://x.example/a.mp3" '
            f'type="audio/mpeg"/><podcast:chapters url="{url}" type="{kind}"/></item></channel></rss>'
        ).encode()

    assert parse_feed(item("https://x.example/c.json"), name="f")[0][0].chapters == "https://x.example/c.json"
    for bad in ("javascript:alert(1)", "file:///etc/passwd", "https://x.example/a b.json", "https://", "http://[::1"):
        assert parse_feed(item(bad), name="f")[0][0].chapters is None, bad
    assert parse_feed(item("https://x.example/c.psc", "application/psc+xml"), name="f")[0][0].chapters is None


def test_persons_and_chapters_added_at_once_list_the_episode_once(cli, server) -> None:
    assert update(cli, server, feed(server, {"ep-1": None})).exit_code == 0
    guest = '<podcast:person role="guest">Bo Jensen</podcast:person>'
    res = update(cli, server, feed(server, {"ep-1": "/ch.json"}, extra=guest), "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["metadata_updated"] == ["ep-1"]
    assert chapters_json(cli, "ep-1", "feed")
