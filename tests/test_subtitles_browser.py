"""The subtitles `hmsearch transcribe --format vtt` writes, read by Chromium's own <track> parser:
every cue arrives, with the times and text we wrote (headless Chromium from Debian, selenium, the
files served over HTTP on 127.0.0.1). Skips, saying why, where no browser can be had."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

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
