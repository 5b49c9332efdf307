"""`hmsearch web` over HTTP without a browser: the pages, the JSON API, audio with Range, the
security properties (path traversal, escaping, limits, CSP, error classes) and reloading while
another process commits. A real uvicorn server on 127.0.0.1 in a thread, raw HTTP requests (so
nothing normalises `..` or encoded slashes on the way), a real index of the bundled sample
episode and of SRT files. The embedding model is the HashingEncoder stand-in (tests/helpers.py):
these tests prove the web layer, not search quality (tests/test_web_browser.py runs the real
model in Chromium)."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from hmsearch.asr import TranscriberSpec
from hmsearch.index import IndexStore
from hmsearch.ingest import IndexOptions, index_paths
from hmsearch.query import AskRequest, QueryService, SearchRequest, snippets
from hmsearch.types import AnswerSentence, Episode, Hit, Sentence
from hmsearch.web import pages
from hmsearch.web.app import WebLimits, create_app, web_link

from helpers import HashingEncoder, write_srt

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "audio"
OPTIONS = IndexOptions(TranscriberSpec("turbo"))  # never runs: every episode here has a transcript
EVIL_TITLE = 'evil <img src=x onerror="window.__pwned=1">'
EVIL_LINES = [
    "Velkommen til <script>window.__pwned=2</script> afsnittet om nyhedsbreve.",
    'Et billede <img src=x onerror="window.__pwned=3"> og en "citat" & mere.',
    "Hvor tit skal man sende et nyhedsbrev? En gang om ugen.",
]


class Server:
    """uvicorn serving the app on a free port of 127.0.0.1, in a thread, configured as `hmsearch web`
    configures it (web/server.py)."""

    def __init__(self, app) -> None:
        from hmsearch.web.server import listen, make_server

        sock = listen("127.0.0.1", 0)  # as `hmsearch web` serves: its socket, its limits
        self.port = sock.getsockname()[1]
        self.server = make_server(app)
        self.thread = threading.Thread(target=lambda: self.server.run(sockets=[sock]), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)

    def get(self, target: str, headers: dict[str, str] | None = None, method: str = "GET"):
        """One raw request: ``target`` goes on the request line exactly as written."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.putrequest(method, target, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body

    def json(self, target: str):
        status, _, body = self.get(target)
        return status, json.loads(body)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The sample episode and an SRT with markup in its title and text, indexed once."""
    root = tmp_path_factory.mktemp("web-index")
    folder = root / "eps"
    folder.mkdir()
    for name in ("hm-sample-001.mp3", "hm-sample-001.json"):
        shutil.copy(SAMPLE / name, folder / name)
    write_srt(folder / f"{EVIL_TITLE}.srt", EVIL_LINES)
    store = IndexStore(root / "ix")
    with store.writing():
        index_paths([folder], store, encoder=HashingEncoder(), options=OPTIONS)
    return root / "ix"


@pytest.fixture
def index(built, tmp_path):
    """A copy of it per test (some tests damage it or commit to it)."""
    shutil.copytree(built, tmp_path / "ix")
    return tmp_path / "ix"


def _serve(index_dir: Path, limits: WebLimits = WebLimits(rate_per_minute=0)):
    service = QueryService(index_dir, encoder=HashingEncoder(), link=web_link)
    return Server(create_app(service, limits)), service


@pytest.fixture
def server(index):
    srv, _ = _serve(index)
    yield srv
    srv.stop()


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    from html.parser import HTMLParser

    found: list[tuple[str, dict[str, str | None]]] = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, dict(attrs)))

    Parser().feed(html)
    return found


def _evil_id(index_dir: Path) -> str:
    return next(e.id for e in IndexStore(index_dir).episodes() if e.id != "hm-sample-001")


def test_search_page_answers_and_groups_results_by_episode(server):
    status, headers, body = server.get("/?q=salgsteam+sociale+medier")
    html = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert 'id="answer-h"' in html and 'class="episode-group"' in html
    # the passage's matching words are marked, its time shown as [mm:ss], the link shareable
    assert re.search(r"<mark>sociale</mark>", html)
    assert re.search(r'class="ts">\[\d\d:\d\d\]', html)
    assert 'href="/episode/hm-sample-001?t=' in html and 'data-audio="/audio/hm-sample-001"' in html
    # the form echoes the question and lists the episodes as a filter
    assert 'value="salgsteam sociale medier"' in html and '<option value="hm-sample-001">' in html


def test_home_without_a_question_lists_the_episodes(server):
    status, _, body = server.get("/")
    assert status == 200 and b"Indexed episodes" in body and b"/episode/hm-sample-001" in body
    assert server.get("/episodes")[2].count(b'<tr><td><a href="/episode/') == 2


def test_filters_narrow_the_results(server, index):
    evil = _evil_id(index)
    _, only = server.json(f"/api/search?q=nyhedsbrev+sociale&k=5&episode={pages.quote(evil, safe='')}")
    assert only["hits"] and {h["episode"] for h in only["hits"]} == {evil}
    # no episode has a publication date: a date range shows none of them, and says so
    status, _, body = server.get("/?q=nyhedsbrev&since=2020-01-01")
    assert status == 200 and b"No matches" in body


def test_api_has_the_cli_json_shapes(server, index):
    service = QueryService(index, encoder=HashingEncoder(), link=web_link)
    status, got = server.json("/api/search?q=LinkedIn+kanal&k=2")
    assert status == 200 and got == service.search(SearchRequest("LinkedIn kanal", k=2)).to_dict()
    status, got = server.json("/api/ask?q=hvor+hurtigt+skal+man+svare")
    assert status == 200 and got == service.ask(AskRequest("hvor hurtigt skal man svare")).to_dict()
    assert got["answer"] and set(got["answer"][0]) == {"text", "episode", "title", "start", "end", "score", "link"}
    status, eps = server.json("/api/episodes")
    assert status == 200 and {e["episode"] for e in eps} == {"hm-sample-001", _evil_id(index)}
    sample = next(e for e in eps if e["episode"] == "hm-sample-001")
    assert set(sample) == set(Episode("x", "t", 1.0, 1, "s").to_dict())
    assert sample["audio"] == "/audio/hm-sample-001" and "/" not in sample["source"]  # no server paths
    status, tr = server.json("/api/episodes/hm-sample-001/transcript")
    assert status == 200 and tr["episode"]["episode"] == "hm-sample-001"
    starts = [s["start"] for s in tr["sentences"]]
    assert len(starts) > 20 and starts == sorted(starts) and len(set(starts)) == len(starts)
    status, spec = server.json("/api/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.1")
    assert {"/api/search", "/api/ask", "/api/episodes", "/api/episodes/{episode}/transcript"} <= set(spec["paths"])


def test_episode_page_highlights_the_passage_asked_for(server):
    _, tr = server.json("/api/episodes/hm-sample-001/transcript")
    s = tr["sentences"][10]
    status, headers, body = server.get(f"/episode/hm-sample-001?t={s['start']}&end={tr['sentences'][12]['end']}")
    html = body.decode()
    assert status == 200
    asked = re.findall(r'<li id="s-(\d+)" class="sentence asked[^"]*"', html)
    assert asked == ["10", "11", "12"] and 'data-asked="s-10"' in html
    assert f'src="/audio/hm-sample-001#t={s["start"]:.3f}"' in html  # the player starts there without script
    assert html.count('class="sentence') == len(tr["sentences"])  # the whole transcript
    # a time alone highlights the sentence being said then
    _, _, body = server.get(f"/episode/hm-sample-001?t={(s['start'] + s['end']) / 2}")
    assert re.findall(r'<li id="s-(\d+)" class="sentence asked[^"]*"', body.decode()) == ["10"]


def test_audio_is_served_with_range_requests(server):
    data = (SAMPLE / "hm-sample-001.mp3").read_bytes()
    status, headers, body = server.get("/audio/hm-sample-001")
    assert status == 200 and body == data and headers["accept-ranges"] == "bytes"
    assert headers["content-type"] == "audio/mpeg"
    status, headers, body = server.get("/audio/hm-sample-001", {"Range": "bytes=1000-1999"})
    assert status == 206 and body == data[1000:2000]
    assert headers["content-range"] == f"bytes 1000-1999/{len(data)}" and headers["content-length"] == "1000"
    status, headers, body = server.get("/audio/hm-sample-001", {"Range": "bytes=-500"})  # the last 500 bytes
    assert status == 206 and body == data[-500:]
    status, headers, body = server.get("/audio/hm-sample-001", {"Range": "bytes=1500000-"})  # seeking near the end
    assert status == 206 and body == data[1500000:]
    status, headers, _ = server.get("/audio/hm-sample-001", {"Range": f"bytes={len(data) + 10}-"})
    assert status == 416 and headers["content-range"] == f"bytes */{len(data)}"


@pytest.mark.parametrize(
    "target",
    [
        "/audio/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/audio/../../../../etc/passwd",
        "/audio/%2Fetc%2Fpasswd",
        "/audio//etc/passwd",
        "/audio/hm-sample-001%00.json",
        "/audio/%00",
        "/audio/..",
        "/audio/%2E%2E%2Fhm-sample-001.json",
        "/episode/..%2F..%2Fetc%2Fpasswd",
        "/episode/%2Fetc%2Fpasswd",
        "/episode/hm-sample-001%2F..%2F..%2Fmanifest.json",
        "/api/episodes/..%2Fmanifest.json/transcript",
        "/api/episodes/%2Fetc%2Fpasswd/transcript",
        "/static/..%2Fapp.py",
        "/static/%2Fetc%2Fpasswd",
        "/static/../../pages.py",
        "/static/app.js%00.py",
        "/static/",
        "/manifest.json",
        "/segments/",
        "/?q=x&episode=..%2F..%2Fetc%2Fpasswd",
        "/?q=x&episode=%2Fetc%2Fpasswd",
        "/api/search?q=x&episode=%00",
    ],
)
def test_no_request_reaches_the_file_system(server, target):
    status, _, body = server.get(target)
    assert status in (400, 404), (target, status)
    assert b"root:" not in body and b"def " not in body and b'"episodes"' not in body
    assert b"Traceback" not in body


def test_transcript_and_title_text_is_escaped(server, index):
    evil = _evil_id(index)
    pages_html = [
        server.get("/?q=nyhedsbreve+billede")[2].decode(),
        server.get(f"/episode/{pages.quote(evil, safe='')}?t=0")[2].decode(),
        server.get("/episodes")[2].decode(),
    ]
    for html in pages_html:
        assert "__pwned" in html  # the text is shown ...
        assert "<script>window" not in html and "<img src=x" not in html  # ... never as markup
        assert "&lt;script&gt;" in html or "&lt;img src=x onerror=" in html
        # as the browser parses it: the only script is the app's own file; no handler or style attribute
        tags = _tags(html)
        assert [a for t, a in tags if t == "script"] == [{"src": "/static/app.js", "defer": None}]
        assert not [(t, a) for t, a in tags if t in ("img", "iframe", "object", "style")]
        assert not [(t, name) for t, a in tags for name in a if name.startswith("on") or name == "style"]
    status, got = server.json(f"/api/episodes/{pages.quote(evil, safe='')}/transcript")
    assert status == 200 and got["sentences"][0]["text"].startswith("Velkommen til <script>")  # JSON keeps the text


def test_content_security_policy_forbids_inline_script_and_remote_origins(server):
    for target in ("/", "/?q=sociale", "/episode/hm-sample-001", "/api/episodes", "/static/app.js", "/nope"):
        _, headers, body = server.get(target)
        policy = headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src 'self';" in policy
        assert "unsafe-inline" not in policy and "http" not in policy and "*" not in policy
        assert headers["x-content-type-options"] == "nosniff"
    for name in ("app.js", "app.css"):
        text = (ROOT / "src/hmsearch/web/static" / name).read_text()
        assert "http:" not in text and "https:" not in text and "@import" not in text and "url(" not in text


def test_feed_episode_plays_from_its_enclosure_and_the_policy_names_its_origin():
    from hmsearch.web.app import _feed_origins, csp

    feed = Episode("f1", "Feed", 60.0, 1, "f.mp3", enclosure="https://cdn.example.org/ep/1.mp3?x=1")
    html = pages.episode_page(feed, [Sentence(0.0, 5.0, "Hej.")], t=2.0, end=None)
    assert 'src="https://cdn.example.org/ep/1.mp3?x=1#t=2.000"' in html
    assert "media-src 'self' https://cdn.example.org;" in csp(_feed_origins([feed]))
    # a scheme other than http(s) never reaches a src or href
    bad = Episode("f2", "Bad", 60.0, 1, "f.mp3", enclosure="javascript:alert(1)", url="javascript:alert(2)")
    html = pages.episode_page(bad, [Sentence(0.0, 5.0, "Hej.")], t=None, end=None)
    assert "javascript:" not in html and "No audio for this episode" in html
    assert _feed_origins([bad]) == frozenset()


@pytest.mark.parametrize(
    ("target", "needle"),
    [
        ("/api/search?q=" + "a" * 501, "at most 500"),
        ("/?q=" + "a" * 501, "at most 500"),
        ("/api/search?q=x&k=0", "k must be between 1 and 50"),
        ("/api/search?q=x&k=51", "k must be between 1 and 50"),
        ("/api/ask?q=x&k=abc", "whole number"),
        ("/api/search?q=", "missing q"),
        ("/api/search?q=x&mode=fuzzy", "unknown search mode"),
        ("/api/search?q=x&since=yesterday", "not a date"),
        ("/?q=x&until=2024-13-01", "not a date"),
        ("/episode/hm-sample-001?t=-1", "time in seconds"),
        ("/episode/hm-sample-001?t=nan", "time in seconds"),
        ("/api/search?q=a%00b", "NUL"),
    ],
)
def test_bad_input_is_a_400_with_one_line(server, target, needle):
    status, headers, body = server.get(target)
    text = body.decode()
    assert status == 400 and needle in text and "Traceback" not in text
    if target.startswith("/api/"):
        error = json.loads(text)["error"]
        assert error["kind"] == "InputError" and "\n" not in error["message"]


def test_unknown_things_are_404_and_writes_are_refused(server):
    status, _, body = server.get("/api/episodes/nope/transcript")
    assert status == 404 and json.loads(body)["error"]["kind"] == "NotFoundError"
    status, _, body = server.get("/episode/nope")
    assert status == 404 and b"episode &#x27;nope&#x27; is not in the index" in body
    assert server.get("/no/such/page")[0] == 404
    assert server.get("/api/search?q=x&episode=nope")[0] == 404
    for method in ("POST", "PUT", "DELETE"):
        assert server.get("/api/episodes", method=method)[0] == 405


def test_damaged_or_missing_index_is_a_503_with_one_line(index, tmp_path):
    srv, _ = _serve(index)
    try:
        assert srv.get("/api/episodes")[0] == 200
        (index / "manifest.json").write_text("{ not json", encoding="utf-8")
        status, got = srv.json("/api/search?q=x")
        assert status == 503 and got["error"]["kind"] == "IndexStateError"
        assert "manifest" in got["error"]["message"] and "\n" not in got["error"]["message"]
        status, _, body = srv.get("/?q=x")
        assert status == 503 and b"Index unavailable" in body and b"Traceback" not in body
    finally:
        srv.stop()
    srv, _ = _serve(tmp_path / "empty")
    try:
        status, got = srv.json("/api/episodes")
        assert status == 503 and "no index in" in got["error"]["message"]
    finally:
        srv.stop()


def test_rate_limit_per_client_is_a_429(index):
    srv, _ = _serve(index, WebLimits(rate_per_minute=60, burst=5))
    try:
        codes = [srv.get("/api/episodes")[0] for _ in range(8)]
        assert codes[:5] == [200] * 5 and codes[5:] == [429] * 3
        status, headers, body = srv.get("/api/search?q=x")
        assert status == 429 and int(headers["retry-after"]) >= 1
        assert json.loads(body)["error"]["message"].startswith("too many requests")
        assert srv.get("/static/app.css")[0] == 200  # a page's own files do not count
        time.sleep(1.1)  # one request a second comes back
        assert srv.get("/api/episodes")[0] == 200
    finally:
        srv.stop()


def test_answers_from_the_new_index_while_another_process_commits(index, tmp_path):
    """A reader hammers the API while episodes are added one commit at a time: every answer is a
    whole index (200, never an error), and the new episodes show up without a restart."""
    srv, _ = _serve(index)
    new = tmp_path / "new"
    new.mkdir()
    for i in range(4):
        write_srt(new / f"ny-{i}.srt", [f"Afsnit {i} handler om podcast nummer {i}.", "Zebraer og giraffer i Vejle."])
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            status, eps = srv.json("/api/episodes")
            s2, hits = srv.json("/api/search?q=zebraer+giraffer&k=10&mode=lexical")
            seen.append((status, s2))
            if status == 200 and s2 == 200:
                # never a half-written index: every hit's episode is in the episodes list of its time or later
                assert {h["episode"] for h in hits["hits"]} <= {e["episode"] for e in srv.json("/api/episodes")[1]}

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for path in sorted(new.iterdir()):
            with IndexStore(index).writing() as writer:
                index_paths([path], writer, encoder=HashingEncoder(), options=OPTIONS)
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(30)
        srv_eps = srv.json("/api/episodes")[1]
        srv.stop()
    assert len(seen) > 5 and all(s == (200, 200) for s in seen), seen
    assert {f"ny-{i}" for i in range(4)} <= {e["episode"] for e in srv_eps}


def test_pages_are_usable_without_javascript(server):
    """Results are links to the episode page, whose player starts at the passage by itself."""
    _, _, body = server.get("/?q=hvor+hurtigt+skal+man+svare")
    html = body.decode()
    href = re.search(r'<a class="play" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    status, _, page = server.get(href)
    assert status == 200 and re.search(rb'class="sentence asked[^"]*"', page) and b"#t=" in page
    # labels for every form control
    for control in re.findall(r'<(?:input|select)[^>]* id="([^"]+)"', html):
        assert f'<label for="{control}"' in html or control == "follow"


def test_clock_and_helpers():
    assert pages.clock(9.9) == "00:09" and pages.clock(3725) == "1:02:05"
    assert pages.episode_href("a b/c", 1.5, 2.0) == "/episode/a%20b%2Fc?t=1.5&end=2"
    s = [Sentence(0, 2, "a."), Sentence(2, 4, "b."), Sentence(5, 7, "c.")]
    assert pages.asked_span(s, 4.5, None) == (2, 2) and pages.asked_span(s, 1, 5.5) == (0, 2)
    assert pages.asked_span(s, None, None) == (-1, -1)
    assert pages.highlight("Sociale <medier>", frozenset({"medi"}), "da") == "Sociale &lt;<mark>medier</mark>&gt;"


def _text(fragment: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", fragment).split())


def test_results_are_short_snippets_with_the_whole_passage_on_demand(server):
    status, _, body = server.get("/?q=salgsteam+sociale+medier")
    html = body.decode()
    shown = re.findall(r'<p class="snippet">(.*?)</p>', html)
    assert status == 200 and shown
    assert all(len(_text(s).split()) <= snippets.SNIPPET_WORDS + 2 for s in shown)  # + the ellipses
    assert any("<mark>" in s for s in shown)  # the matched words are marked in the snippet
    # the whole passage is there without script, folded (<details>), and longer than its snippet
    wholes = re.findall(r'<details class="whole"><summary>[^<]*</summary><p class="passage">(.*?)</p>', html)
    assert wholes and max(len(_text(w).split()) for w in wholes) > max(len(_text(s).split()) for s in shown)
    assert "matches your words" in html


def test_snippet_is_the_best_sentence_and_reads_a_speaker_when_there_is_one():
    sentences = tuple(
        Sentence(float(i), i + 1.0, t)
        for i, t in enumerate(["Hej og velkommen.", "Vi taler om nyhedsbreve i dag.", "Det var det."])
    )
    hit = Hit("e", "t", 0.0, 3.0, " ".join(s.text for s in sentences), 1.0, "", sentences=sentences)
    snip = snippets.snippet(hit, snippets.query_terms("nyhedsbreve", "da"), "da")
    assert snip.start == 1.0 and snip.text.startswith("Vi taler om nyhedsbreve") and snip.by_words
    assert snip.speaker is None
    long = "ord " * 200 + "nyhedsbreve " + "ord " * 200
    trimmed = snippets.trim_words(long, snippets.query_terms("nyhedsbreve", "da"), "da")
    assert "nyhedsbreve" in trimmed and len(trimmed.split()) <= snippets.SNIPPET_WORDS + 2
    nothing = snippets.snippet(hit, snippets.query_terms("zebra", "da"), "da")
    assert nothing.start == 0.0 and not nothing.by_words  # found by meaning: the first sentence
    # around the answer sentence it holds (the best-ranked first), whatever the words say
    said = [AnswerSentence("x", "other", "t", 0.0, 1.0, 1.0, ""), AnswerSentence("x", "e", "t", 2.0, 3.0, 1.0, "")]
    assert snippets.snippet(hit, snippets.query_terms("nyhedsbreve", "da"), "da", around=said).start == 2.0
    # an answer at the same second of another episode is not this passage's
    assert snippets.snippet(hit, snippets.query_terms("nyhedsbreve", "da"), "da", around=said[:1]).start == 1.0
    # the next sentence joins only when the same speaker says it
    said = tuple(
        Sentence(float(i), i + 1.0, t, speaker=w)
        for i, (w, t) in enumerate([("A", "Ja."), ("A", "Godt."), ("B", "Nej.")])
    )
    two = Hit("e", "t", 0.0, 3.0, "Ja. Godt. Nej.", 1.0, "", sentences=said)
    assert snippets.snippet(two, frozenset(), "da").text == "Ja. Godt."
    assert (
        snippets.snippet(two, frozenset(), "da", around=[AnswerSentence("G", "e", "t", 1.0, 2.0, 1.0, "")]).text
        == "Godt."
    )


def test_episode_page_lists_chapters_a_search_within_it_downloads_and_its_source(server, index):
    status, _, body = server.get("/episode/hm-sample-001")
    html = body.decode()
    assert status == 200
    service = QueryService(index, encoder=HashingEncoder(), link=web_link)
    chapters = service.chapters("hm-sample-001")
    assert chapters and html.count('class="chapter"') == len(chapters)
    first = chapters[-1]
    assert f'href="{pages.esc(pages.episode_href("hm-sample-001", first.start))}"' in html
    assert f'data-start="{first.start:.3f}"' in html and pages.esc(first.title) in html
    # a search within the episode: the search form with the episode filter set
    form = re.search(r'<form class="find".*?</form>', html).group(0)
    assert 'action="/"' in form and '<input type="hidden" name="episode" value="hm-sample-001">' in form
    assert "Transcribed by Whisper" in html or "transcript, from the file hm-sample-001" in html
    for fmt in ("vtt", "srt", "json", "txt"):
        assert f'href="/download/{fmt}/hm-sample-001"' in html


def test_transcript_downloads_in_four_formats(server, index):
    from hmsearch.formats import read_transcript_bytes

    _, tr = server.json("/api/episodes/hm-sample-001/transcript")
    texts = [s["text"] for s in tr["sentences"]]
    for fmt, media in (("vtt", "text/vtt"), ("srt", "application/x-subrip"), ("json", "application/json")):
        status, headers, body = server.get(f"/download/{fmt}/hm-sample-001")
        assert status == 200 and headers["content-type"].startswith(media), fmt
        assert headers["content-disposition"] == f'attachment; filename="hm-sample-001.{fmt}"'
        back = read_transcript_bytes(body, f".{fmt}")  # each reads back as the transcript it is
        assert [seg.text.strip() for seg in back.segments] == texts, fmt
        assert abs(back.segments[3].start - tr["sentences"][3]["start"]) < 0.002
    status, _, body = server.get("/download/txt/hm-sample-001")
    assert status == 200 and body.decode().splitlines()[0].endswith(texts[0])
    # markup in a transcript stays text in every format; an id with odd characters gets a safe name
    evil = _evil_id(index)
    status, headers, body = server.get(f"/download/vtt/{pages.quote(evil, safe='')}")
    assert status == 200 and b"<script>" not in body and b"&lt;script&gt;" in body
    assert re.fullmatch(r'attachment; filename="[A-Za-z0-9._-]+\.vtt"', headers["content-disposition"])
    assert server.get("/download/exe/hm-sample-001")[0] == 404
    assert server.get("/download/vtt/no-such-episode")[0] == 404
    assert server.get("/download/vtt/..%2F..%2Fetc%2Fpasswd")[0] == 404


def test_error_page_keeps_the_question_and_filters_fold_away(server):
    status, _, body = server.get("/?q=nyhedsbrev+%3Cb%3E&since=yesterday")
    html = body.decode()
    assert status == 400 and "is not a date" in html
    assert 'value="nyhedsbrev &lt;b&gt;"' in html and "<b>" not in html  # kept, and escaped
    # filters are folded away (a phone shows the answer first), and open when one is set
    html = server.get("/?q=nyhedsbrev")[2].decode()
    assert '<details class="filters-box"><summary>Filters</summary>' in html
    html = server.get("/?q=nyhedsbrev&episode=hm-sample-001")[2].decode()
    assert '<details class="filters-box" open><summary>Filters (on)</summary>' in html


def test_player_controls_are_hidden_until_script_can_work_them(server):
    for target in ("/?q=nyhedsbrev", "/episode/hm-sample-001"):
        html = server.get(target)[2].decode()
        assert '<div class="controls" id="controls" hidden>' in html, target
        assert all(i in html for i in ('id="back15"', 'id="fwd30"', 'id="speed"', 'id="share"')), target
    html = server.get("/?q=nyhedsbrev")[2].decode()
    assert 'data-episode="hm-sample-001"' in html  # what the share button links to


def test_a_mistyped_episode_id_offers_the_nearest(server):
    status, _, body = server.get("/episode/hm-sampel-001")
    html = body.decode()
    assert status == 404 and "Did you mean" in html and 'href="/episode/hm-sample-001"' in html
    status, _, body = server.get("/episode/zzzzzzzzzzzz")
    assert status == 404 and b"Did you mean" not in body


def test_the_page_can_be_installed_from_its_manifest(server):
    html = server.get("/")[2].decode()
    assert '<link rel="manifest" href="/static/manifest.webmanifest">' in html
    status, headers, body = server.get("/static/manifest.webmanifest")
    manifest = json.loads(body)
    assert status == 200 and headers["content-type"] == "application/manifest+json"
    assert manifest["start_url"] == "/" and manifest["icons"][0]["src"] == "/static/icon.svg"
    status, headers, _ = server.get("/static/icon.svg")
    assert status == 200 and headers["content-type"] == "image/svg+xml"
    assert "manifest-src 'self'" in headers["content-security-policy"]


def test_speaker_turns_and_dates_in_the_episode_page():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Spoken(Sentence):  # as Sentence will be once speakers arrive (issue 24)
        speaker: str | None = None

    ep = Episode("e", "Afsnit", 60.0, 1, "e.srt", published="2024-03-05")
    said = [Spoken(0.0, 2.0, "Hej.", speaker="Anna"), Spoken(2.0, 4.0, "Velkommen.", speaker="Anna")]
    said.append(Spoken(4.0, 6.0, "Tak.", speaker="<b>Bo</b>"))
    html = pages.episode_page(ep, said, t=None, end=None)
    assert html.count('<span class="speaker">') == 2  # where a turn begins, not every sentence
    assert '<span class="speaker">&lt;b&gt;Bo&lt;/b&gt;:</span>' in html
    assert '<time datetime="2024-03-05">2024-03-05</time>' in html
    plain = pages.episode_page(ep, [Sentence(0.0, 2.0, "Hej.")], t=None, end=None)
    assert 'class="speaker"' not in plain
