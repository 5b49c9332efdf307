"""Issue 24: a feed's Podcasting 2.0 ``<podcast:person>`` tags name an episode's speakers with no
manual step. A real HTTP server on 127.0.0.1 serves the feed and its transcripts (indexed with the
HashingEncoder stand-in, so no model runs), and espeak-ng audio for the diarized path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import hmsearch.cli.index as cli_index
from hmsearch.ingest.feeds import parse_feed
from hmsearch.speakers.persons import MAX_NAME_CHARS, MAX_PERSONS, Person, make_person, names_from_persons
from hmsearch.text import one_line
from hmsearch.types import Sentence, is_clean_http_url
from test_feeds import Server

from helpers import HashingEncoder

NS = 'xmlns:podcast="https://podcastindex.org/namespace/1.0"'
HOST = '<podcast:person role="host" href="https://hm.example/anne" img="https://hm.example/anne.jpg">Anne Hansen</podcast:person>'


def vtt(*cues: tuple[str, str]) -> bytes:
    out, t = ["WEBVTT", ""], 0.5
    for voice, text in cues:
        out += [f"00:00:{t:06.3f} --> 00:00:{t + 4:06.3f}", f"<v {voice}>{text}", ""]
        t += 5
    return "\n".join(out).encode()


def feed(server: Server, items: list[tuple[str, str, str]], channel: str = HOST) -> bytes:
    """RSS of (guid, transcript path, the item's own person tags), the channel's tags ``channel``."""
    parts = [
        f"<item><title>{guid}</title><guid>{guid}</guid><pubDate>Fri, 01 Mar 2024 06:00:00 GMT</pubDate>"
        f'<podcast:transcript url="{server.url}{path}" type="text/vtt"/>{tags}</item>'
        for guid, path, tags in items
    ]
    return f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" {NS}><channel><title>HM</title>{channel}{"".join(parts)}</channel></rss>'.encode()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(cli_index, "indexing_encoder", lambda store, name: HashingEncoder())
    s = Server()
    # anonymous voices (S1, S2: what diarization gives); the guest speaks first, the host asks
    s.routes["/anon.vtt"] = (
        200,
        "text/vtt",
        vtt(
            ("S1", "Tak fordi jeg måtte komme, jeg har glædet mig."),
            ("S2", "Hvad laver du til daglig? Og hvorfor nyhedsbreve?"),
            ("S1", "Jeg skriver nyhedsbreve for en webshop hver uge."),
            ("S2", "Hvor tit sender I dem ud?"),
            ("S1", "Hver tirsdag klokken syv om morgenen."),
        ),
        None,
    )
    s.routes["/voices.vtt"] = (
        200,
        "text/vtt",
        vtt(("Carla", "Velkommen til, Dan. Hvad med tomater?"), ("Dan", "Tomater skal vandes hver morgen.")),
        None,
    )
    s.routes["/plain.vtt"] = (
        200,
        "text/vtt",
        b"WEBVTT\n\n00:00:00.500 --> 00:00:04.000\nEn tekst uden stemmer.\n",
        None,
    )
    yield s
    s.close()


def update(cli, server: Server, body: bytes, *args: str):
    server.routes["/feed.xml"] = (200, "application/rss+xml", body, None)
    res = cli("update", "--feed", f"{server.url}/feed.xml", *args)
    assert res.exit_code == 0, res.output
    return res


def speakers_json(cli, episode: str) -> dict:
    res = cli("speakers", episode, "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_feed_persons_name_the_speakers_and_imported_voices_keep_theirs(cli, server, tmp_path: Path) -> None:
    guest = '<podcast:person role="guest">Bo Jensen</podcast:person>'
    items = [("ep-anon", "/anon.vtt", guest), ("ep-voices", "/voices.vtt", guest), ("ep-plain", "/plain.vtt", "")]
    res = update(cli, server, feed(server, items))
    assert "speakers named from the feed" in res.stderr
    anon = speakers_json(cli, "ep-anon")
    # the host asks the questions (S2), though the guest speaks first
    assert anon["speakers"] == [{"id": "S1", "name": "Bo Jensen"}, {"id": "S2", "name": "Anne Hansen"}]
    assert anon["persons"] == [
        {"name": "Bo Jensen", "role": "guest", "group": "cast", "href": None, "img": None},
        {
            "name": "Anne Hansen",
            "role": "host",
            "group": "cast",
            "href": "https://hm.example/anne",
            "img": "https://hm.example/anne.jpg",
        },
    ]
    # every surface: the text listing, a search hit, the published VTT
    assert "Anne Hansen: Hvad laver du til daglig?" in cli("speakers", "ep-anon").stdout
    out = tmp_path / "public"
    res = cli("publish", "ep-anon", "--out", str(out), "--base-url", "https://hm.example/p", "--soundbites", "0")
    assert res.exit_code == 0, res.output
    published = (out / "ep-anon.vtt").read_text(encoding="utf-8")
    assert "<v Anne Hansen>Hvad laver du" in published and "<v Bo Jensen>Tak" in published
    assert "<podcast:person>Anne Hansen</podcast:person>" in (out / "ep-anon.item.xml").read_text(encoding="utf-8")
    # an imported transcript's own voices keep their names; the persons are listed
    voices = speakers_json(cli, "ep-voices")
    assert voices["speakers"] == [{"id": "Carla", "name": "Carla"}, {"id": "Dan", "name": "Dan"}]
    assert [p["name"] for p in voices["persons"]] == ["Bo Jensen", "Anne Hansen"]
    # a transcript without voices: no turns, the channel's persons still listed
    plain = speakers_json(cli, "ep-plain")
    assert plain["speakers"] == [] and [p["name"] for p in plain["persons"]] == ["Anne Hansen"]


def test_a_name_the_user_gave_is_never_replaced(cli, server) -> None:
    guest = '<podcast:person role="guest">Bo Jensen</podcast:person>'
    body = feed(server, [("ep-anon", "/anon.vtt", guest)])
    update(cli, server, body)
    assert speakers_json(cli, "ep-anon")["speakers"][1] == {"id": "S2", "name": "Anne Hansen"}
    named = cli("speakers", "ep-anon", "--name", "S2=Anne H.", "--name", "S1=Bo J.", "--json")
    assert named.exit_code == 0, named.output
    # the feed changes (a new transcript URL): the episode is indexed again, the names stay
    server.routes["/anon2.vtt"] = server.routes["/anon.vtt"]
    update(cli, server, feed(server, [("ep-anon", "/anon2.vtt", guest)]))
    assert speakers_json(cli, "ep-anon")["speakers"] == [{"id": "S1", "name": "Bo J."}, {"id": "S2", "name": "Anne H."}]


def test_hostile_person_tags_are_capped_without_a_traceback(cli, server, monkeypatch) -> None:
    monkeypatch.setenv("HMSEARCH_RAISE_ERRORS", "1")  # a traceback would fail the test
    many = "".join(f'<podcast:person role="guest">Gæst {n}</podcast:person>' for n in range(10_000))
    huge = "<podcast:person>" + "Å" * 100_000 + "</podcast:person>"
    odd = (
        '<podcast:person role="\x85host\u2028" href="javascript:alert(1)" img="https://x.example/a b.jpg">'
        "Anne\x9b31m\n\tHansen\u2028 </podcast:person><podcast:person></podcast:person>"
        '<podcast:person role="guest"><b xmlns="">Bo</b> Jensen</podcast:person>'
    )
    body = feed(server, [("ep-many", "/anon.vtt", many), ("ep-huge", "/anon.vtt", huge + odd)], channel=odd)
    items, _ = parse_feed(body, name="feed")
    by = {i.guid: i for i in items}
    assert len(by["ep-many"].persons) == MAX_PERSONS
    assert len(by["ep-huge"].persons[0].name) == MAX_NAME_CHARS
    anne = by["ep-huge"].persons[1]
    assert anne == Person("Anne 31m Hansen", "host", "cast", None, None)  # control characters out, bad URLs dropped
    assert by["ep-huge"].persons[2].name == "Bo Jensen"
    update(cli, server, body)
    many_json = speakers_json(cli, "ep-many")
    assert len(many_json["persons"]) == MAX_PERSONS
    # 32 guests and no host: which guest is whom cannot be told, so no one is named
    assert {s["name"] for s in many_json["speakers"]} == {None}
    huge_json = speakers_json(cli, "ep-huge")
    assert all(len(p["name"]) <= MAX_NAME_CHARS for p in huge_json["persons"])
    # two hosts (the huge one and Anne): left for --name
    assert {s["name"] for s in huge_json["speakers"]} == {None}


def _said(*rows: tuple[str, str]) -> list[Sentence]:
    return [Sentence(i * 5.0, i * 5.0 + 4, text, speaker=who) for i, (who, text) in enumerate(rows)]


def test_the_naming_rule() -> None:
    host, guest = Person("Anne"), Person("Bo", role="guest")
    talk = _said(("S1", "Velkommen. Hvem er du?"), ("S2", "Jeg er Bo."), ("S1", "Og hvad laver du?"), ("S2", "Haver."))
    assert names_from_persons(talk, [host, guest], {}) == {"S1": "Anne", "S2": "Bo"}
    assert names_from_persons(talk, [host], {}) == {"S1": "Anne"}  # host only: the guest stays unnamed
    # no question marks (a transcript without punctuation): the first speaker is the host
    flat = _said(("S2", "velkommen til"), ("S1", "tak"))
    assert names_from_persons(flat, [host, guest], {}) == {"S2": "Anne", "S1": "Bo"}
    # the voice registry heard the host: that decides, the other speaker is the guest
    assert names_from_persons(talk, [host, guest], {}, {"S2": "Anne"}) == {"S2": "Anne", "S1": "Bo"}
    assert names_from_persons(talk, [host, guest], {}, {"S2": "Carl"}) == {"S1": "Anne", "S2": "Bo"}
    # a solo show; a name already given is kept and not given twice
    assert names_from_persons(_said(("S1", "Hej.")), [host], {}) == {"S1": "Anne"}
    assert names_from_persons(talk, [host, guest], {"S1": "Anne"}) == {}
    assert names_from_persons(talk, [host, guest], {"S2": "Bo"}) == {}
    # ambiguous: two hosts, three speakers
    assert names_from_persons(talk, [host, Person("Carl"), guest], {}) == {}
    three = [*talk, Sentence(30, 34, "Jeg er også her.", speaker="S3")]
    assert names_from_persons(three, [host, guest], {}) == {}


@pytest.mark.slow  # espeak-ng audio, the tiny random Whisper, resemblyzer's speaker encoder
def test_diarized_audio_from_a_feed_gets_the_persons_names(cli, server, tiny_whisper, hermetic, monkeypatch) -> None:
    pytest.importorskip("resemblyzer")
    from helpers import SAMPLE_AUDIO

    mp3 = SAMPLE_AUDIO.read_bytes()  # espeak-ng: a host and a guest voice, 4 minutes
    server.routes["/ep.mp3"] = (200, "audio/mpeg", mp3, None)
    item = (
        f"<item><title>Sociale medier</title><guid>ep-audio</guid>"
        f'<enclosure url="{server.url}/ep.mp3" length="{len(mp3)}" type="audio/mpeg"/>'
        '<podcast:person role="guest">Bo Jensen</podcast:person></item>'
    )
    body = f'<?xml version="1.0"?><rss version="2.0" {NS}><channel><title>HM</title>{HOST}{item}</channel></rss>'
    server.routes["/feed.xml"] = (200, "application/rss+xml", body.encode(), None)
    whisper = ("--whisper-engine", "openai", "--whisper-model", str(tiny_whisper), "--greedy", "--language", "da")
    monkeypatch.setenv("HMSEARCH_SPEAKERS", "on")
    res = cli("update", "--feed", f"{server.url}/feed.xml", *whisper, "--audio-dir", str(hermetic / "audio"))
    assert res.exit_code == 0, res.output
    found = speakers_json(cli, "ep-audio")
    assert {s["id"] for s in found["speakers"]} == {"S1", "S2"}
    names = {s["id"]: s["name"] for s in found["speakers"]}
    assert sorted(names.values()) == ["Anne Hansen", "Bo Jensen"]  # no manual step


def test_persons_added_to_an_indexed_episode_name_its_speakers(cli, server) -> None:
    """The host adds the guest's <podcast:person> after the episode was indexed: the next update
    names the speakers from it without indexing the episode again; a later removal is recorded too."""
    body = feed(server, [("ep-anon", "/anon.vtt", "")], channel="")
    update(cli, server, body)
    assert speakers_json(cli, "ep-anon")["persons"] == []
    before = speakers_json(cli, "ep-anon")["speakers"]
    assert all(s["name"] is None for s in before)
    guest = '<podcast:person role="guest">Bo Jensen</podcast:person>'
    res = update(cli, server, feed(server, [("ep-anon", "/anon.vtt", guest)]), "--json")
    report = json.loads(res.stdout)
    assert report["metadata_updated"] == ["ep-anon"] and report["unchanged"] == ["ep-anon"] and not report["replaced"]
    assert speakers_json(cli, "ep-anon")["speakers"] == [
        {"id": "S1", "name": "Bo Jensen"},
        {"id": "S2", "name": "Anne Hansen"},
    ]
    # the same feed again: nothing to do
    again = json.loads(update(cli, server, feed(server, [("ep-anon", "/anon.vtt", guest)]), "--json").stdout)
    assert again["metadata_updated"] == []
    # the tags removed: the record says so (the names given from them stay, as names do)
    gone = json.loads(update(cli, server, feed(server, [("ep-anon", "/anon.vtt", "")], channel=""), "--json").stdout)
    assert gone["metadata_updated"] == ["ep-anon"] and speakers_json(cli, "ep-anon")["persons"] == []


def test_person_links_and_names_are_cleaned_as_sidecars_are() -> None:
    # one rule for a link a person wrote (a sidecar's url, a feed's href/img): http(s), a host, no space
    for bad in (
        "https://",
        "http:///x",
        "https://x.example/a b",
        "ftp://x.example/a",
        "http://[::1",
        "https://[x/a.png",
    ):
        assert make_person("Anne", {"href": bad}).href is None, bad
        assert not is_clean_http_url(bad)
    assert make_person("Anne", {"href": "https://x.example/anne"}).href == "https://x.example/anne"
    # bidi overrides and zero-width marks cannot reorder or hide a name anywhere it is shown
    assert make_person("Anne\u202eHansen\u200b", {}).name == "Anne Hansen"
    assert one_line("a\u2066b\ufeffc\u200dd") == "a b c d"
