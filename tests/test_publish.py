"""`hmsearch publish`: an episode's transcript (WebVTT with <v> names, JSON with word times), its
chapters JSON and the Podcasting 2.0 tags of its <item>, read back by independent parsers
(webvtt-py, feedparser, ElementTree). The index is the sample episode's, with the HashingEncoder."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import feedparser
import pytest
import webvtt

from hmsearch.host.publish import PODCAST_NS, Soundbite, publish, transcript_json
from hmsearch.index import IndexStore
from hmsearch.types import Episode, Sentence

from helpers import index_sample


@dataclass(frozen=True)
class SpokenSentence(Sentence):
    speaker: str | None = None


@pytest.fixture
def sample_index(tmp_path: Path) -> IndexStore:
    return index_sample(tmp_path)


def _feed(snippet: str) -> str:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0" xmlns:podcast="{PODCAST_NS}"><channel>'
        f"<title>T</title><item><title>E</title><guid>g1</guid>{snippet}</item></channel></rss>"
    )


def test_publish_writes_what_a_feed_can_carry(sample_index, cli, tmp_path) -> None:
    out = tmp_path / "public"
    r = cli(
        "--index-dir", str(sample_index.root), "publish", "hm-sample-001", "--out", str(out),
        "--base-url", "https://example.com/pod/",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in out.iterdir())
    stem = "hm-sample-001"
    assert names == sorted(f"{stem}{s}" for s in (".vtt", ".transcript.json", ".chapters.json", ".item.xml"))
    captions = webvtt.read(str(out / f"{stem}.vtt")).captions
    assert captions and "svare inden for 2 timer" in " ".join(c.text.replace("\n", " ") for c in captions)
    doc = json.loads((out / f"{stem}.transcript.json").read_text())
    assert doc["version"] == "1.0.0" and doc["segments"][0].keys() >= {"startTime", "endTime", "body"}
    assert all(s["startTime"] <= s["endTime"] for s in doc["segments"])
    chapters = json.loads((out / f"{stem}.chapters.json").read_text())
    assert chapters["version"] == "1.2.0" and chapters["chapters"][0]["startTime"] == 0
    # the tags, read back by ElementTree and by feedparser
    snippet = (out / f"{stem}.item.xml").read_text()
    assert r.stdout == snippet
    item = ET.fromstring(_feed(snippet)).find("channel/item")
    assert item is not None
    ns = {"podcast": PODCAST_NS}
    transcripts = item.findall("podcast:transcript", ns)
    assert {t.get("type") for t in transcripts} == {"text/vtt", "application/json"}
    assert {t.get("url") for t in transcripts} == {
        f"https://example.com/pod/{stem}.vtt",
        f"https://example.com/pod/{stem}.transcript.json",
    }
    assert item.find("podcast:chapters", ns).get("type") == "application/json+chapters"  # type: ignore[union-attr]
    bites = item.findall("podcast:soundbite", ns)
    assert len(bites) == 3 and all(float(b.get("duration", 0)) > 0 and b.text for b in bites)
    parsed = feedparser.parse(_feed(snippet))
    assert not parsed.bozo
    entry = parsed.entries[0]
    assert entry["podcast_chapters"]["url"] == f"https://example.com/pod/{stem}.chapters.json"
    assert entry["podcast_transcript"]["url"].startswith("https://example.com/pod/")
    assert float(entry["podcast_soundbite"]["starttime"]) >= 0


def test_publish_refuses_a_base_url_that_is_not_http(sample_index, cli, tmp_path) -> None:
    r = cli("--index-dir", str(sample_index.root), "publish", "hm-sample-001", "--out", str(tmp_path / "o"),
            "--base-url", "file:///srv")  # fmt: skip
    assert r.exit_code == 2 and not (tmp_path / "o").exists()
    assert cli("--index-dir", str(sample_index.root), "publish", "nope", "--out", str(tmp_path / "o"),
               "--base-url", "https://x.org").exit_code == 6  # fmt: skip


def test_speakers_are_vtt_voices_json_speakers_and_persons() -> None:
    ep = Episode(id="a b/c", title="Ep <1>", duration=20.0, n_passages=1, source="s", language="en")
    sentences = [
        SpokenSentence(0.0, 3.0, "Welcome to the show everyone.", speaker="Ada Lovelace"),
        SpokenSentence(3.5, 6.0, "Thanks for having me here.", speaker="Grace"),
    ]
    result = publish(ep, sentences, [], [Soundbite(0.0, 3.0, "Welcome & hello")], base_url="https://x.org/p")
    vtt = result.files["a-b-c.vtt"]
    assert "<v Ada Lovelace>Welcome" in vtt and "<v Grace>Thanks" in vtt
    assert transcript_json(sentences)["segments"][0]["speaker"] == "Ada Lovelace"  # type: ignore[index]
    item = ET.fromstring(_feed(result.snippet)).find("channel/item")
    assert item is not None
    persons = [p.text for p in item.findall("podcast:person", {"podcast": PODCAST_NS})]
    assert persons == ["Ada Lovelace", "Grace"]
    assert 'url="https://x.org/p/a-b-c.vtt"' in result.snippet and "Welcome &amp; hello" in result.snippet


def test_soundbites_the_host_picked(sample_index, cli, tmp_path) -> None:
    root = str(sample_index.root)
    r = cli("--index-dir", root, "publish", "hm-sample-001", "--out", str(tmp_path / "o"),
            "--base-url", "https://x.org", "--soundbite", "2:22.8-2:27.4")  # fmt: skip
    assert r.exit_code == 0, r.output
    item = ET.fromstring(_feed(r.stdout)).find("channel/item")
    assert item is not None
    bites = item.findall("podcast:soundbite", {"podcast": PODCAST_NS})
    assert len(bites) == 1 and bites[0].get("startTime") == "142.800" and bites[0].get("duration") == "4.600"
    assert "svare inden for 2 timer" in (bites[0].text or "")
    bad = cli("--index-dir", root, "publish", "hm-sample-001", "--out", str(tmp_path / "o"),
              "--base-url", "https://x.org", "--soundbite", "2:30-2:20")  # fmt: skip
    assert bad.exit_code == 2
