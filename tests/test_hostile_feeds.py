"""Hostile feeds (issue 12): a local HTTP server on 127.0.0.1 whose feed names file:// URLs, makes
up file extensions, trickles, never ends, stops short, lies about lengths and reuses GUIDs. Each
test names the finding it guards; each failed before its fix. Model-free: items carry transcripts
(indexed with the HashingEncoder stand-in) or audio that fails before any model would load."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hmsearch.asr import TranscriberSpec
from hmsearch.errors import IndexLockedError, InputError
from hmsearch.index import IndexStore
from hmsearch.ingest import IndexOptions, index_paths
from hmsearch.ingest.feeds import FeedError, fetch_feed
from hmsearch.ingest.update import DOWNLOAD_LOCK, update_feed

from helpers import HashingEncoder, write_srt

OPTIONS = IndexOptions(TranscriberSpec("turbo"))
SRT = b"1\n00:00:00,500 --> 00:00:04,500\nVi taler om nyhedsbreve i dag.\n"


class HostileServer:
    """Routes: path -> (content type, body, fault). Faults: None; "trickle" (a byte every 0.2 s,
    the whole length promised); "endless" (no length, never ends); "short" (promises the whole
    body, sends a third, hangs up); "lie" (promises a length far beyond the body)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[str, bytes, str | None]] = {}
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.hits.append(self.path)
                if self.path not in server.routes:
                    self.send_error(404)
                    return
                ctype, body, fault = server.routes[self.path]
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                if fault == "lie":
                    self.send_header("Content-Length", str(1 << 40))
                elif fault != "endless":
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    if fault == "trickle":
                        for i in range(len(body)):
                            self.wfile.write(body[i : i + 1])
                            self.wfile.flush()
                            time.sleep(0.2)
                    elif fault == "endless":
                        # "endless" to a client capped at a few MB; a finite 256 MB so that a cap
                        # that regresses fails the test instead of filling the disk
                        for _ in range(4096):
                            self.wfile.write(b"\0" * 65536)
                    elif fault == "short":
                        self.wfile.write(body[: len(body) // 3])
                        self.wfile.flush()
                        self.connection.shutdown(2)
                    else:
                        self.wfile.write(body)
                except OSError:
                    pass  # the client gave up: what the test wants

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def feed(self, items: list[dict], path: str = "/feed.xml") -> str:
        parts = []
        for item in items:
            enclosure = (
                f'<enclosure url="{self._url(item["audio"])}" type="{item.get("type", "audio/mpeg")}"/>'
                if item.get("audio")
                else ""
            )
            transcript = (
                f'<podcast:transcript url="{self._url(item["srt"])}" type="application/x-subrip"/>'
                if item.get("srt")
                else ""
            )
            parts.append(
                f"<item><title>{item.get('title', item['guid'])}</title>"
                f'<guid isPermaLink="false">{item["guid"]}</guid>{enclosure}{transcript}</item>'
            )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
            'xmlns:podcast="https://podcastindex.org/namespace/1.0"><channel><title>Hostile</title>'
            + "".join(parts)
            + "</channel></rss>"
        ).encode()
        self.routes[path] = ("application/rss+xml", body, None)
        return self.url + path

    def _url(self, target: str) -> str:
        return target if "://" in target else self.url + target

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hostile():
    server = HostileServer()
    yield server
    server.close()


def update(feed: str, tmp_path: Path, **kw):
    store = IndexStore(tmp_path / "index")
    return update_feed(
        feed, store, audio_dir=tmp_path / "audio", encoder=HashingEncoder(), options=OPTIONS, **kw
    ), store


def audio_files(tmp_path: Path) -> list[Path]:
    """What a run left in the audio folder (partial downloads included), but the download lock."""
    folder = tmp_path / "audio"
    return sorted(p for p in folder.iterdir() if p.name != DOWNLOAD_LOCK) if folder.is_dir() else []


# ---- 1: file:// URLs, private permissions, no outside text quoted -------------------------------
def test_1_file_urls_in_a_feed_are_never_fetched(hostile, tmp_path):
    secret = tmp_path / "secret.srt"
    secret.write_bytes(b"1\n00:00:00,000 --> 00:00:01,000\nTOP SECRET LINE\n")
    feed = hostile.feed(
        [
            {"guid": "t", "srt": f"file://{secret}"},
            {"guid": "a", "audio": f"file://{secret}"},
            {"guid": "f", "audio": "ftp://example.invalid/a.mp3"},
        ]
    )
    report, store = update(feed, tmp_path)
    assert sorted(g for g, _ in report.failed) == ["a", "f", "t"]
    assert all("http or https" in reason for _, reason in report.failed), report.failed
    assert audio_files(tmp_path) == []
    assert store.manifest is None or not store.manifest.episodes
    assert not any("SECRET" in reason for _, reason in report.failed)


def test_1_downloads_are_private(hostile, tmp_path):
    hostile.routes["/t.srt"] = ("application/x-subrip", SRT, None)
    report, _ = update(hostile.feed([{"guid": "t", "srt": "/t.srt"}]), tmp_path)
    assert report.index.added == ["t"]
    (saved,) = audio_files(tmp_path)
    assert saved.stat().st_mode & 0o077 == 0, oct(saved.stat().st_mode)


def test_1_a_servers_words_are_quoted_short_and_escaped(hostile, tmp_path):
    hostile.routes["/t.srt"] = ("text/html\x1b[31m" + "x" * 500, b"<html>", None)
    report, _ = update(hostile.feed([{"guid": "t", "srt": "/t.srt"}]), tmp_path)
    (reason,) = [r for _, r in report.failed]
    assert "\x1b" not in reason and len(reason) < 400, reason


# ---- 2: the feed does not choose the extension; failed items leave nothing ---------------------
def test_2_saved_files_get_an_audio_or_transcript_extension(hostile, tmp_path):
    hostile.routes["/evil.sh"] = ("audio/mpeg", b"#!/bin/sh\necho owned\n" * 50, None)
    hostile.routes["/page.html"] = ("application/x-subrip", SRT, None)
    feed = hostile.feed([{"guid": "a", "audio": "/evil.sh"}, {"guid": "t", "srt": "/page.html"}])
    report, _ = update(feed, tmp_path)
    assert report.index.added == ["t"]
    names = [p.name for p in audio_files(tmp_path)]
    assert all(n.endswith(".srt") for n in names), names  # the .sh "audio" failed and is gone


def test_2_failed_items_files_are_removed(hostile, tmp_path):
    hostile.routes["/a.mp3"] = ("audio/mpeg", b"this is not audio at all" * 100, None)
    hostile.routes["/t.srt"] = ("application/x-subrip", b"not a transcript\n", None)
    report, _ = update(hostile.feed([{"guid": "a", "audio": "/a.mp3"}, {"guid": "t", "srt": "/t.srt"}]), tmp_path)
    assert len(report.failed) == 2
    assert audio_files(tmp_path) == []


# ---- 11: caps, an overall deadline, no lock while downloading ------------------------------------
def test_11_a_trickling_server_meets_the_overall_deadline(hostile, tmp_path, monkeypatch):
    monkeypatch.setenv("HMSEARCH_DOWNLOAD_DEADLINE", "2")
    hostile.routes["/t.srt"] = ("application/x-subrip", SRT * 10, "trickle")
    start = time.monotonic()
    report, _ = update(hostile.feed([{"guid": "t", "srt": "/t.srt"}]), tmp_path)
    assert time.monotonic() - start < 10
    (reason,) = [r for _, r in report.failed]
    assert "download_deadline" in reason


def test_11_an_endless_enclosure_is_capped_and_not_kept(hostile, tmp_path, monkeypatch):
    monkeypatch.setenv("HMSEARCH_DOWNLOAD_MAX_MB", "1")
    hostile.routes["/a.mp3"] = ("audio/mpeg", b"", "endless")
    hostile.routes["/b.mp3"] = ("audio/mpeg", b"x" * 100, "lie")
    report, _ = update(hostile.feed([{"guid": "a", "audio": "/a.mp3"}, {"guid": "b", "audio": "/b.mp3"}]), tmp_path)
    assert len(report.failed) == 2 and all("larger than 1 MB" in r for _, r in report.failed), report.failed
    leftovers = list((tmp_path / "audio").glob(".*")) if (tmp_path / "audio").exists() else []
    assert sum(p.stat().st_size for p in leftovers) == 0


def test_11_a_feed_beyond_the_cap_is_refused(hostile, monkeypatch):
    monkeypatch.setenv("HMSEARCH_FEED_MAX_MB", "1")
    hostile.routes["/big.xml"] = ("application/rss+xml", b"", "endless")
    with pytest.raises(FeedError, match="larger than 1 MB"):
        fetch_feed(hostile.url + "/big.xml")


def test_11_the_write_lock_is_not_held_while_downloading(hostile, tmp_path, monkeypatch):
    hostile.routes["/t.srt"] = ("application/x-subrip", SRT[:20], "trickle")  # ~4 s
    feed = hostile.feed([{"guid": "t", "srt": "/t.srt"}])
    result = {}
    job = threading.Thread(target=lambda: result.update(report=update(feed, tmp_path)[0]))
    job.start()
    time.sleep(1.0)
    other = IndexStore(tmp_path / "index")
    try:
        with other.writing():
            locked = False
    except IndexLockedError:
        locked = True
    job.join(30)
    assert not locked


# ---- 18: a body shorter than its Content-Length ----------------------------------------------------
def test_18_a_feed_body_shorter_than_its_length_is_a_feed_error(hostile, tmp_path):
    hostile.routes["/short.xml"] = ("application/rss+xml", b"<rss>" + b" " * 3000 + b"</rss>", "short")
    with pytest.raises(FeedError, match="cannot fetch feed") as err:
        fetch_feed(hostile.url + "/short.xml")
    assert "\n" not in str(err.value)
    hostile.routes["/t.srt"] = ("application/x-subrip", SRT * 20, "short")
    report, _ = update(hostile.feed([{"guid": "t", "srt": "/t.srt"}]), tmp_path)
    assert [g for g, _ in report.failed] == ["t"]


# ---- 8: GUIDs that collide with episodes the feed does not own ---------------------------------------
def test_8_a_feed_replaces_only_what_it_owns(hostile, tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    write_srt(local / "ep1.srt", ["A local episode that the feed must not replace."])
    store = IndexStore(tmp_path / "index")
    with store.writing():
        index_paths([local], store, encoder=HashingEncoder(), options=OPTIONS)
    hostile.routes["/t.srt"] = ("application/x-subrip", SRT, None)
    first = hostile.feed([{"guid": "ep1", "srt": "/t.srt"}, {"guid": "g", "srt": "/t.srt"}], "/one.xml")
    report, _ = update(first, tmp_path)
    assert report.index.added == ["g"] and [g for g, _ in report.failed] == ["ep1"]
    second = hostile.feed([{"guid": "g", "srt": "/t.srt"}], "/two.xml")
    report, _ = update(second, tmp_path)
    assert [g for g, _ in report.failed] == ["g"]
    records = IndexStore(tmp_path / "index").manifest.episodes
    assert records["ep1"].feed is None and records["g"].feed["url"].endswith("/one.xml")


def test_8_a_local_file_does_not_replace_a_feed_episode(hostile, tmp_path):
    hostile.routes["/t.srt"] = ("application/x-subrip", SRT, None)
    update(hostile.feed([{"guid": "ep1", "srt": "/t.srt"}]), tmp_path)
    write_srt(tmp_path / "ep1.srt", ["A local file of the same name."])
    store = IndexStore(tmp_path / "index")
    with store.writing():
        report = index_paths([tmp_path / "ep1.srt"], store, encoder=HashingEncoder(), options=OPTIONS)
    assert report.added == report.replaced == [] and len(report.failed) == 1
    assert IndexStore(tmp_path / "index").manifest.episodes["ep1"].feed is not None


def test_feed_path_that_is_a_folder_is_one_error(tmp_path):
    with pytest.raises(InputError):
        fetch_feed(str(tmp_path))


def test_11_two_jobs_do_not_download_into_one_folder_at_once(hostile, tmp_path):
    hostile.routes["/t.srt"] = ("application/x-subrip", SRT[:15], "trickle")  # ~3 s
    feed = hostile.feed([{"guid": "t", "srt": "/t.srt"}])
    job = threading.Thread(target=lambda: update(feed, tmp_path))
    job.start()
    time.sleep(1.0)
    with pytest.raises(IndexLockedError, match="downloading into this folder"):
        update_feed(
            feed,
            IndexStore(tmp_path / "index2"),
            audio_dir=tmp_path / "audio",
            encoder=HashingEncoder(),
            options=OPTIONS,
        )
    job.join(30)


def test_27_a_run_refused_by_the_lock_downloads_nothing(hostile, tmp_path):
    """Issue 27: `update` refused by another writer's lock (exit 5) left its downloads behind; now it
    is refused before it downloads (with --wait it queues, as before)."""
    hostile.routes["/t.srt"] = ("application/x-subrip", SRT, None)
    feed = hostile.feed([{"guid": "t", "srt": "/t.srt"}])
    other = IndexStore(tmp_path / "index")
    with other.writing(), pytest.raises(IndexLockedError):
        update(feed, tmp_path)
    assert audio_files(tmp_path) == []
