"""`hmsearch update` against a real HTTP server on 127.0.0.1 that serves a feed, enclosures
(espeak-ng Danish speech, transcribed by the tiny random Whisper) and transcripts, broken ones
included. Runs are repeated, the feed changes between them, a run is SIGKILLed part-way, and two
jobs run at once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from helpers import espeak


class Server:
    """Routes: path -> (status, content type, body, fault). Faults: None, "truncate" (promise
    the whole body, send a third, hang up)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, str, bytes, str | None]] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                status, ctype, body, fault = server.routes.get(self.path, (404, "text/plain", b"not found", None))
                start = 0
                rng = self.headers.get("Range")
                if rng and status == 200 and fault is None:
                    start = int(rng.split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if fault == "truncate":
                    self.wfile.write(body[: len(body) // 3])
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def srt(*lines: str) -> bytes:
    out, t = [], 0.5
    for i, line in enumerate(lines, 1):
        out.append(f"{i}\n00:00:{t:06.3f} --> 00:00:{t + 4:06.3f}\n{line}\n".replace(".", ","))
        t += 5
    return "\n".join(out).encode()


def rss(server: Server, items: list[dict]) -> bytes:
    base = datetime(2024, 3, 1, 6, 0, tzinfo=timezone.utc)
    parts = []
    for n, item in enumerate(items):
        enclosure = (
            f'<enclosure url="{server.url}{item["audio"]}" length="{item.get("length", 0)}" type="audio/mpeg"/>'
            if item.get("audio")
            else ""
        )
        transcript = (
            f'<podcast:transcript url="{server.url}{item["srt"]}" type="application/x-subrip" language="da"/>'
            if item.get("srt")
            else ""
        )
        date = format_datetime(base + timedelta(days=item.get("day", 7 * n)))
        parts.append(
            f'<item><title>{item["title"]}</title><guid isPermaLink="false">{item["guid"]}</guid>'
            f"<pubDate>{date}</pubDate><link>https://hm.example/{item['guid']}</link>"
            f"{enclosure}{transcript}</item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:podcast="https://podcastindex.org/namespace/1.0"><channel><title>HM</title>'
        + "".join(parts)
        + "</channel></rss>"
    ).encode()


@pytest.fixture(scope="module")
def mp3(tmp_path_factory) -> bytes:
    from test_audio import encode

    folder = tmp_path_factory.mktemp("feedaudio")
    wav = espeak("Velkommen til afsnittet om sociale medier og salg.", folder / "a.wav")
    return encode(wav, folder / "a.mp3", "mp3", "libmp3lame", 22050).read_bytes()


def run(cli, server, items, *extra):
    server.routes["/feed.xml"] = (200, "application/rss+xml", rss(server, items), None)
    return cli("update", "--feed", f"{server.url}/feed.xml", *extra)


def test_update_cycle(cli, server, mp3, tiny_whisper, hermetic):
    s = server
    s.routes.update(
        {
            "/a.srt": (200, "application/x-subrip", srt("Vi taler om nyhedsbreve.", "Send dem hver tirsdag."), None),
            "/b.mp3": (200, "audio/mpeg", mp3, None),
            "/d.mp3": (200, "text/html", b"<html>Not here</html>", None),
            "/f.mp3": (200, "audio/mpeg", mp3, "truncate"),
        }
    )
    items = [
        {"guid": "hm-a", "title": "Nyhedsbreve", "srt": "/a.srt", "audio": "/a.mp3", "day": 0},
        {"guid": "hm-b", "title": "Salg", "audio": "/b.mp3", "length": len(mp3), "day": 7},
        {"guid": "hm-c", "title": "Forsvundet", "audio": "/c.mp3", "day": 14},  # 404
        {"guid": "hm-d", "title": "HTML", "audio": "/d.mp3", "day": 21},  # a web page served for audio
        {"guid": "hm-a", "title": "Dublet", "srt": "/a.srt", "day": 28},  # duplicate GUID
        {"guid": "hm-f", "title": "Afbrudt", "audio": "/f.mp3", "length": len(mp3), "day": 35},  # cut off
    ]
    whisper = ("--whisper-engine", "openai", "--whisper-model", str(tiny_whisper), "--greedy", "--language", "da")
    res = run(cli, s, items, *whisper, "--audio-dir", str(hermetic / "audio"))
    assert res.exit_code == 8
    assert res.stdout.strip() == "2 new, 0 updated, 4 failed, 0 unchanged"
    err = res.stderr
    assert "/c.mp3: download failed: HTTP 404" in err
    assert "/d.mp3: served text/html, not audio" in err
    assert "hm-a: duplicate GUID" in err
    assert "/f.mp3: download interrupted" in err or "/f.mp3: truncated download" in err
    assert "Traceback" not in err
    audio = hermetic / "audio"
    assert not [p for p in audio.iterdir() if "afbrudt" in p.name and not p.name.endswith(".part")], (
        "a cut-off download is never under its final name"
    )

    eps = {e["episode"]: e for e in json.loads(cli("episodes", "--json").stdout)}
    assert set(eps) == {"hm-a", "hm-b"}
    a = eps["hm-a"]
    assert (a["title"], a["url"], a["published"][:10]) == ("Nyhedsbreve", "https://hm.example/hm-a", "2024-03-01")
    assert a["transcript_source"] == "srt" and eps["hm-b"]["transcript_source"].startswith("whisper:")
    hit = json.loads(cli("search", "nyhedsbreve tirsdag", "--json", "--mode", "lexical").stdout)["hits"][0]
    assert hit["episode"] == "hm-a" and hit["page"] == "https://hm.example/hm-a"
    assert hit["link"] == f"{s.url}/a.mp3#t={int(hit['start'])}" and hit["published"].startswith("2024-03-01")
    dated = json.loads(cli("search", "nyhedsbreve", "--json", "--mode", "lexical", "--since", "2024-03-05").stdout)
    assert all(h["episode"] != "hm-a" for h in dated["hits"])

    # Second run: nothing new; the failed items wait for their backoff (issue 26), the feed's own
    # duplicate GUID is reported again.
    res = run(cli, s, items, *whisper, "--audio-dir", str(audio))
    assert res.stdout.strip() == "0 new, 0 updated, 1 failed, 2 unchanged, 3 waiting to retry"

    # The server recovers: the 404 appears and the cut-off download resumes where it stopped
    # (--retry-failed: now, not after the backoff).
    s.routes["/c.mp3"] = (200, "audio/mpeg", mp3, None)
    s.routes["/f.mp3"] = (200, "audio/mpeg", mp3, None)
    s.requests.clear()
    res = run(cli, s, items, *whisper, "--audio-dir", str(audio), "--retry-failed")
    assert res.stdout.strip() == "2 new, 0 updated, 2 failed, 2 unchanged"
    ranges = [r for p, r in s.requests if p == "/f.mp3"]
    assert ranges and ranges[0] and ranges[0].startswith("bytes=") and ranges[0] != "bytes=0-"

    # A new episode appears, one transcript changes, one item leaves the feed.
    s.routes["/g.srt"] = (200, "text/vtt", b"WEBVTT\n\n00:01.000 --> 00:04.000\nKundeservice hver dag.\n", None)
    s.routes["/a2.srt"] = (200, "application/x-subrip", srt("Vi taler om podcasts nu."), None)
    items = [i for i in items if i["guid"] not in ("hm-b", "hm-d")]
    items[0] = {**items[0], "srt": "/a2.srt"}
    items.append({"guid": "hm-g", "title": "Kundeservice", "srt": "/g.srt", "day": 42})
    dry = run(cli, s, items, "--dry-run", "--prune", "--audio-dir", str(audio))
    assert "would index (new): hm-g" in dry.stdout and "would index (changed): hm-a" in dry.stdout
    assert "would prune: hm-b" in dry.stdout
    assert len(json.loads(cli("episodes", "--json").stdout)) == 4, "a dry run changes nothing"
    res = run(cli, s, items, *whisper, "--audio-dir", str(audio))
    assert res.stdout.strip() == "1 new, 1 updated, 1 failed, 2 unchanged"  # hm-a duplicate still reported
    assert "hm-b" in {e["episode"] for e in json.loads(cli("episodes", "--json").stdout)}, "kept without --prune"
    res = run(cli, s, items, *whisper, "--audio-dir", str(audio), "--prune")
    assert "1 pruned" in res.stdout
    assert {e["episode"] for e in json.loads(cli("episodes", "--json").stdout)} == {"hm-a", "hm-c", "hm-f", "hm-g"}
    hit = json.loads(cli("search", "podcasts", "--json", "--mode", "lexical").stdout)["hits"][0]
    assert hit["episode"] == "hm-a" and "podcasts" in hit["text"]

    limited = run(cli, s, items, "--dry-run", "--limit", "1", "--audio-dir", str(audio))
    assert limited.stdout.strip().endswith("0 new, 0 changed, 1 unchanged")


def test_broken_feeds_are_one_line_errors(cli, server, tmp_path):
    server.routes["/html.xml"] = (200, "text/html", b"<html><body>Moved</body></html>", None)
    res = cli("update", "--feed", f"{server.url}/html.xml")
    assert res.exit_code == 2 and "not a podcast feed" in res.stderr and "Traceback" not in res.stderr
    res = cli("update", "--feed", f"{server.url}/missing.xml")
    assert res.exit_code == 2 and "HTTP 404" in res.stderr
    res = cli("update", "--feed", "http://127.0.0.1:9/feed.xml")  # nothing listens on port 9
    assert res.exit_code == 2 and "cannot fetch feed: network error" in res.stderr
    res = cli("update", "--feed", str(tmp_path / "nope.xml"))
    assert res.exit_code == 2 and "no such feed file" in res.stderr


def _hmsearch(*args: str) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("hmsearch")
    return subprocess.Popen([str(exe), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _generation(index: Path) -> int:
    try:
        return json.loads((index / "manifest.json").read_text())["generation"]
    except (FileNotFoundError, ValueError):
        return 0


@pytest.mark.slow
def test_killed_update_then_rerun_equals_uninterrupted(server, tmp_path):
    topics = ["nyhedsbreve", "LinkedIn", "kundeservice", "annoncer", "SEO", "podcasts", "events", "video"]
    items = []
    for n in range(16):
        server.routes[f"/{n}.srt"] = (
            200,
            "application/x-subrip",
            srt(*(f"Afsnit {n} handler om {topics[(n + i) % 8]} og punkt {i}." for i in range(12))),
            None,
        )
        items.append({"guid": f"ep-{n}", "title": f"Afsnit {n}", "srt": f"/{n}.srt"})
    server.routes["/feed.xml"] = (200, "application/rss+xml", rss(server, items), None)
    feed = f"{server.url}/feed.xml"

    def state(index: Path) -> dict:
        from hmsearch.index.store import IndexStore

        store = IndexStore(index)
        return {e.id: (e.n_passages, e.content_hash) for e in store.episodes() if store.passages(e.id) is not None}

    ref = tmp_path / "ref"
    p = _hmsearch("--index-dir", str(ref), "-q", "update", "--feed", feed, "--audio-dir", str(tmp_path / "a1"))
    assert p.wait(timeout=600) == 0, p.stderr.read()
    expected = state(ref)
    assert len(expected) == 16

    killed = tmp_path / "killed"
    args = ("--index-dir", str(killed), "-q", "update", "--feed", feed, "--audio-dir", str(tmp_path / "a2"))
    p = _hmsearch(*args)
    deadline = time.time() + 300
    while _generation(killed) < 3 and p.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)
    p.wait()
    partial = state(killed)
    assert 0 < len(partial) < 16 and all(partial[e] == expected[e] for e in partial)

    # A second job while a first holds the lock is refused with a clear message.
    first = _hmsearch(*args)
    while _generation(killed) <= 3 + 1 and first.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    second = _hmsearch(*args)
    _, err = second.communicate(timeout=300)
    out, _ = first.communicate(timeout=600)
    assert first.returncode == 0
    if second.returncode != 0:  # the first may have finished before the second started
        assert second.returncode == 5 and "another hmsearch job is writing this index" in err
    assert state(killed) == expected
    again = _hmsearch(*(a for a in args if a != "-q"))
    out, _ = again.communicate(timeout=600)
    assert out.strip() == "0 new, 0 updated, 0 failed, 16 unchanged"
    quiet = _hmsearch(*args)
    out, err = quiet.communicate(timeout=600)
    assert quiet.returncode == 0 and out == "" and err == ""  # -q: cron sees silence on success
