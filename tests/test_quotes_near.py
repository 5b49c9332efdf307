"""Quotes remembered slightly wrong and quote clips a host would post: "No exact match; closest:"
with the places said most like the quote (query/quotes.py closest_quotes, rapidfuzz), in the CLI and
JSON; a quote's clip widened to its whole sentence(s), --pad, a length cap (host/clip.py quote_range).
The index is the sample episode's, built with the HashingEncoder stand-in (quotes need no model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import srt

from hmsearch.audio import probe_audio
from hmsearch.host.clip import quote_range
from hmsearch.index import IndexStore
from hmsearch.query import QueryService, SearchRequest
from hmsearch.query.service import SearchResult
from hmsearch.types import Sentence

from helpers import index_sample

MISREMEMBERED = (
    '"mit bedste råd er at man svarer indenfor to timer"'  # said: "Mit klare råd er at svare inden for 2 timer"
)


@pytest.fixture
def sample_index(tmp_path: Path) -> IndexStore:
    return index_sample(tmp_path)


def test_a_misremembered_quote_finds_the_right_place_as_closest(sample_index) -> None:
    result = QueryService(sample_index.root).search(SearchRequest(MISREMEMBERED, k=3))
    assert result.hits == []
    top = result.closest[0]
    assert "svare inden for 2 timer" in top.text and 142 < top.start < 144
    assert 0.6 <= top.score <= 1.0 and top.link
    # the JSON carries "closest" only then, and reads back
    d = result.to_dict()
    assert d["closest"][0]["text"] == top.text
    assert SearchResult.from_dict(json.loads(json.dumps(d))).closest[0].start == top.start
    exact = QueryService(sample_index.root).search(SearchRequest('"svare inden for to timer"', k=3))
    assert exact.hits and "closest" not in exact.to_dict()


def test_nothing_like_the_quote_has_no_closest(sample_index) -> None:
    assert QueryService(sample_index.root).search(SearchRequest('"zebra giraffe elephant"')).closest == []


def test_cli_says_no_exact_match_and_shows_the_closest(sample_index, cli, tmp_path) -> None:
    root = str(sample_index.root)
    r = cli("--index-dir", root, "search", MISREMEMBERED)
    assert r.exit_code == 0
    assert r.output.startswith("No exact match; closest:") and "svare inden for 2 timer" in r.output
    j = json.loads(cli("--index-dir", root, "search", MISREMEMBERED, "--json").output)
    assert j["hits"] == [] and "svare inden for 2 timer" in j["closest"][0]["text"]
    # a clip of a quote not said as such is refused with the closest to quote instead
    r = cli("--index-dir", root, "search", MISREMEMBERED, "--clip", str(tmp_path / "x.mp3"))
    assert r.exit_code == 6 and "closest:" in r.output and "quote it as said" in r.output
    assert not (tmp_path / "x.mp3").exists()


S = [
    Sentence(10.0, 14.0, "One two three."),
    Sentence(14.5, 20.0, "Four five six seven."),
    Sentence(21.0, 25.0, "Eight."),
]


def test_quote_range_is_the_whole_sentences_then_pad_then_the_cap() -> None:
    assert quote_range(S, 15.0, 16.0) == (14.5, 20.0)  # inside one sentence: that sentence
    assert quote_range(S, 13.0, 15.0) == (10.0, 20.0)  # across two: both
    assert quote_range(S, 15.0, 16.0, pad=1.0) == (13.5, 21.0)
    assert quote_range(S, 15.0, 16.0, pad=20.0, duration=30.0) == (0.0, 30.0)  # within the episode
    a, b = quote_range(S, 15.0, 16.0, pad=20.0, max_seconds=5.0)
    assert b - a == pytest.approx(5.0) and a <= 15.0 and b >= 16.0  # cut back around the quote
    a, b = quote_range(S, 15.0, 19.5, max_seconds=2.0)
    assert (a, b) == (15.0, 19.5)  # the quote itself is always kept
    assert quote_range([], 3.0, 4.0, pad=0.5) == (2.5, 4.5)


def test_cli_clip_pad_and_cap(sample_index, cli, tmp_path) -> None:
    root = str(sample_index.root)
    padded = tmp_path / "padded.mp3"
    r = cli("--index-dir", root, "search", '"svare inden for to timer"', "--clip", str(padded), "--pad", "1")
    assert r.exit_code == 0, r.output
    assert 6.0 < probe_audio(padded).duration < 7.5  # the 4.6 s sentence and a second either side
    capped = tmp_path / "capped.mp3"
    r = cli("--index-dir", root, "search", '"svare inden for to timer"', "--clip", str(capped), "--max-clip", "3")
    assert r.exit_code == 0, r.output
    assert probe_audio(capped).duration < 4.0  # 3 s, snapped outward to whole words
    said = " ".join(s.content for s in srt.parse(capped.with_suffix(".srt").read_text()))
    assert "svare inden for 2 timer" in said.replace("\n", " ")
