"""The subtitles `hmsearch transcribe --format vtt` and `hmsearch publish` write, read by Chromium's
own <track> parser: every cue arrives, with the times, text and speaker names we wrote (headless Chromium from Debian, selenium, the
files served over HTTP on 127.0.0.1). Skips, saying why, where no browser can be had."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from test_feed_persons import (
    feed,
    server,  # noqa: F401  (the fixture: a loopback feed of voiced transcripts)
)
from test_web_browser import browser  # noqa: F401  (the fixture)

from helpers import SAMPLE_AUDIO, SAMPLE_TRANSCRIPT

pytestmark = pytest.mark.slow

PAGE = """<!doctype html><meta charset="utf-8"><title>track</title>
<audio id="a" src="ep.mp3" preload="auto"><track id="t" kind="subtitles" src="ep.vtt" srclang="da" default></audio>
"""


@pytest.fixture
def served(tmp_path: Path):
    from hmsearch.formats import read_transcript
    from hmsearch.host.subtitles import make_cues, write_subtitles

    transcript = read_transcript(SAMPLE_TRANSCRIPT)
    write_subtitles(transcript, tmp_path / "ep.vtt", "vtt")
    (tmp_path / "ep.mp3").write_bytes(SAMPLE_AUDIO.read_bytes())
    (tmp_path / "index.html").write_text(PAGE, encoding="utf-8")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/index.html", make_cues(transcript)
    httpd.shutdown()


def test_chromium_reads_every_cue_we_write(browser, served) -> None:  # noqa: F811
    from selenium.webdriver.support.ui import WebDriverWait

    url, cues = served
    browser.get(url)
    script = (
        "const t = document.getElementById('t').track; t.mode = 'hidden';"
        "return t.cues ? Array.from(t.cues, c => [c.startTime, c.endTime, c.getCueAsHTML().textContent, c.text]) : null;"
    )
    WebDriverWait(browser, 30).until(lambda b: (b.execute_script(script) or []) != [])
    got = browser.execute_script(script)
    assert len(got) == len(cues) > 10
    for (start, end, text, raw), cue in zip(got, cues):
        assert start == pytest.approx(cue.start, abs=0.001) and end == pytest.approx(cue.end, abs=0.001)
        assert text.split() == " ".join(cue.lines).split(), (text, cue)  # parsed: the voice tag is markup
        assert raw.startswith(f"<v {cue.speaker}>") if cue.speaker else "<v" not in raw


def test_chromium_reads_the_speaker_names_a_feed_gave(browser, cli, server, tmp_path: Path) -> None:  # noqa: F811
    """Issue 24: an episode whose speakers the feed's <podcast:person> tags named, published as
    WebVTT (`hmsearch publish`): Chromium's <track> has every cue, each a voice span with the name."""
    from selenium.webdriver.support.ui import WebDriverWait

    guest = '<podcast:person role="guest">Bo Jensen</podcast:person>'
    server.routes["/feed.xml"] = (200, "application/rss+xml", feed(server, [("ep-anon", "/anon.vtt", guest)]), None)
    assert cli("update", "--feed", f"{server.url}/feed.xml").exit_code == 0
    public = tmp_path / "public"
    res = cli("publish", "ep-anon", "--out", str(public), "--base-url", "https://hm.example/p", "--soundbites", "0")
    assert res.exit_code == 0, res.output
    written = (public / "ep-anon.vtt").read_text(encoding="utf-8")
    n_cues = written.count(" --> ")
    assert n_cues >= 5 and "<v Anne Hansen>" in written and "<v Bo Jensen>" in written
    (public / "ep.mp3").write_bytes(SAMPLE_AUDIO.read_bytes())
    (public / "index.html").write_text(PAGE.replace("ep.vtt", "ep-anon.vtt"), encoding="utf-8")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(public)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        browser.get(f"http://127.0.0.1:{httpd.server_address[1]}/index.html")
        script = (
            "const t = document.getElementById('t').track; t.mode = 'hidden';"
            "return t.cues ? Array.from(t.cues, c => { const v = c.getCueAsHTML().querySelector('span[title]');"
            " return [c.text, v ? v.title : null, v ? v.textContent : null]; }) : null;"
        )
        WebDriverWait(browser, 30).until(lambda b: (b.execute_script(script) or []) != [])
        got = browser.execute_script(script)
    finally:
        httpd.shutdown()
    assert len(got) == n_cues
    for raw, voice, text in got:
        assert voice in {"Anne Hansen", "Bo Jensen"} and raw.startswith(f"<v {voice}>"), raw
        assert text and "<" not in text  # the voice tag was markup, not text
    assert [v for _, v, _ in got[:2]] == ["Bo Jensen", "Anne Hansen"]  # the guest answers first, the host asks
