"""Which language Whisper hears: the feed's <language>, else the setting, else a vote over windows
spread across the episode (not the first 30 s alone)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hmsearch.asr import TranscriberSpec, language_windows, load_transcriber
from hmsearch.audio import SAMPLE_RATE
from hmsearch.ingest import IndexOptions
from hmsearch.ingest.feeds import feed_language_code, parse_feed
from hmsearch.ingest.sources import Source
from hmsearch.ingest.update import _with_feed_language


def _noise(seconds: float, level: float = 0.1) -> np.ndarray:
    return (np.random.default_rng(0).standard_normal(int(seconds * SAMPLE_RATE)) * level).astype(np.float32)


def test_windows_spread_over_the_episode_and_skip_silence() -> None:
    assert language_windows(_noise(45)) == []  # shorter than two windows: the engine detects it
    hour = _noise(3600)
    windows = language_windows(hour)
    size = 30 * SAMPLE_RATE
    assert len(windows) == 5 and all(e - s == size for s, e in windows)
    starts = [s / SAMPLE_RATE for s, _ in windows]
    assert starts[0] > 300 and starts[-1] > 3000  # not the first 30 s: across the whole hour
    hour[: len(hour) // 2] = 0.0  # the first half silent: the windows that reach into the second half
    assert language_windows(hour) == [(s, e) for s, e in windows if e > len(hour) // 2]
    assert len(language_windows(_noise(70))) == 2  # two windows fit


class _ScriptedEngine:
    """Stands in for an engine module: the real detect_language needs a real Whisper model, and a
    random one hears random languages. Answers in order."""

    def __init__(self, answers: list[tuple[str, float]]) -> None:
        self.answers = list(answers)

    def detect_language(self, model: object, samples: np.ndarray) -> tuple[str, float]:
        return self.answers.pop(0)


def test_the_language_most_windows_hear_wins() -> None:
    transcriber = load_transcriber(TranscriberSpec("base"))
    # a Danish episode with an English intro and one window misheard as German keeps Danish
    engine = _ScriptedEngine([("en", 0.9), ("da", 0.6), ("da", 0.7), ("de", 0.5), ("da", 0.8)])
    assert transcriber._vote_language(engine, _noise(600)) == "da"  # type: ignore[attr-defined]
    # a tie goes to the language heard with more confidence
    engine = _ScriptedEngine([("en", 0.9), ("da", 0.6)])
    assert transcriber._vote_language(engine, _noise(70)) == "en"  # type: ignore[attr-defined]
    assert transcriber._vote_language(engine, _noise(20)) is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("da", "da"),
        ("da-DK", "da"),
        ("en-us", "en"),
        ("EN_GB", "en"),
        ("Danish", "da"),
        ("", None),
        ("x-klingon", None),
    ],
)
def test_feed_language_codes(value: str, code: str | None) -> None:
    assert feed_language_code(value) == code


FEED = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Markedsf\xc3\xb8ring</title><language>da-DK</language>
<item><guid>ep-1</guid><title>Et</title><enclosure url="https://example.com/1.mp3" type="audio/mpeg"/></item>
</channel></rss>"""


def test_the_feed_names_the_language_whisper_hears(tmp_path: Path) -> None:
    items, errors = parse_feed(FEED, name="feed.xml")
    assert not errors and items[0].language == "da"
    assert parse_feed(FEED.replace(b"<language>da-DK</language>", b""), name="f")[0][0].language is None

    events: list = []
    options = IndexOptions(TranscriberSpec("base"))
    audio = Source("ep-1", audio=tmp_path / "1.mp3")
    chosen = _with_feed_language(options, items, [audio], events.append)
    assert chosen.transcriber.language == "da"
    assert [e.kind for e in events] == ["notice"] and "from the feed's <language>" in events[0].detail
    # a transcript-only run hears nothing: no notice; a feed without <language> keeps the setting
    events.clear()
    assert _with_feed_language(options, items, [Source("ep-1", transcript=tmp_path / "1.srt")], events.append)
    assert not events
    bare = parse_feed(FEED.replace(b"<language>da-DK</language>", b""), name="f")[0]
    assert _with_feed_language(options, bare, [audio], events.append) is options
