"""Show notes fit to publish: quotes with who said them (where the transcript names a speaker) and
public links (the feed's page or enclosure with the time, or `hmsearch web` at --base-url); a local
file:// link only with --local-links."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from hmsearch.host.notes import show_notes
from hmsearch.index import IndexStore
from hmsearch.query.links import public_link, web_link
from hmsearch.types import Episode, Sentence

from helpers import index_sample


@dataclass(frozen=True)
class SpokenSentence(Sentence):
    """A sentence with a speaker, as Sentence.speaker (another branch) will carry."""

    speaker: str | None = None


FEED_EP = Episode(
    id="ep1",
    title="Ep 1",
    duration=900.0,
    n_passages=3,
    source="x.mp3",
    audio="/srv/audio/x.mp3",
    url="https://example.com/ep1",
    enclosure="https://cdn.example.com/ep1.mp3",
    language="en",
)
SENTENCES = [
    SpokenSentence(100.0 + 70 * i, 106.0 + 70 * i, text, speaker=who)
    for i, (text, who) in enumerate(
        [
            ("Rockets need a lot of fuel to reach orbit around the earth.", "Ada"),
            ("A reusable booster lands on a barge after every single launch.", None),
            ("Satellite payloads ride on top of the rocket booster stage.", "Grace"),
        ]
    )
]


def test_public_link_is_the_enclosure_with_the_time_never_a_file() -> None:
    assert public_link(FEED_EP, 123.7) == "https://cdn.example.com/ep1.mp3#t=123"
    yt = Episode(id="y", title="Y", duration=10, n_passages=1, source="s", url="https://youtube.com/watch?v=a")
    assert public_link(yt, 5) == "https://youtube.com/watch?v=a&t=5s"
    local = Episode(id="l", title="L", duration=10, n_passages=1, source="s", audio="/srv/a.mp3")
    assert public_link(local, 5) == ""


def test_quotes_carry_the_speaker_and_public_links() -> None:
    draft = show_notes(FEED_EP, list(SENTENCES), [], link=public_link, quotes=3)
    assert draft.quotes
    by_text = {q.text: q for q in draft.quotes}
    ada = by_text.get(SENTENCES[0].text)
    assert ada is not None and ada.speaker == "Ada" and ada.to_dict()["speaker"] == "Ada"
    assert all(q.link.startswith("https://cdn.example.com/ep1.mp3#t=") for q in draft.quotes)
    md = draft.markdown()
    assert "> — Ada, [" in md and "file://" not in md
    unnamed = [q for q in draft.quotes if q.text == SENTENCES[1].text]
    assert all(q.speaker is None for q in unnamed)


def test_base_url_links_to_the_web_pages() -> None:
    draft = show_notes(FEED_EP, list(SENTENCES), [], link=web_link("https://search.example.com/"), quotes=1)
    assert draft.quotes[0].link.startswith("https://search.example.com/episode/ep1?t=")


@pytest.fixture
def local_index(tmp_path: Path) -> IndexStore:
    return index_sample(tmp_path)


def test_cli_notes_links(local_index, cli) -> None:
    root = str(local_index.root)
    md = cli("--index-dir", root, "notes", "hm-sample-001").output
    assert "file://" not in md and "## Quotes" in md  # a local episode: times without links
    web = cli("--index-dir", root, "notes", "hm-sample-001", "--base-url", "http://localhost:8765", "--json")
    obj = json.loads(web.output)
    assert obj["quotes"] and all(
        q["link"].startswith("http://localhost:8765/episode/hm-sample-001?t=") for q in obj["quotes"]
    )
    assert all("speaker" in q for q in obj["quotes"])
    local = cli("--index-dir", root, "notes", "hm-sample-001", "--local-links").output
    assert "file://" in local
    assert cli("--index-dir", root, "notes", "hm-sample-001", "--base-url", "ftp://x").exit_code == 2
    assert cli("--index-dir", root, "notes", "hm-sample-001", "--base-url", "http://x", "--local-links").exit_code == 2
