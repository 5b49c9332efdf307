"""hmsearch.fetch: downloads from servers hmsearch does not trust. Here: only http(s), redirects
included, and safe file names; the size caps, deadline, content types and resumable part files
are tested against a hostile server in test_hostile_feeds.py and test_feeds.py."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hmsearch.fetch import DownloadError, download, fetch_bytes, safe_name
from hmsearch.ingest import feeds


@pytest.fixture
def ftp_listener():
    """A TCP port that records every connection (and closes it at once): the "FTP server" a
    redirect points at. Nothing may connect to it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    sock.settimeout(0.2)
    hits: list[str] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            hits.append("connected")
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield sock.getsockname()[1], hits
    stop.set()
    thread.join(2)
    sock.close()


@pytest.fixture
def redirecting(ftp_listener):
    """/ftp redirects to ftp://127.0.0.1:<listener>/, /file to file:///etc/passwd, /ok to /body."""
    port, hits = ftp_listener

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            target = {"/ftp": f"ftp://127.0.0.1:{port}/secret.mp3", "/file": "file:///etc/passwd", "/ok": "/body"}
            if self.path in target:
                self.send_response(302)
                self.send_header("Location", target[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = b"ID3 audio bytes"
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()
    httpd.server_close()


def test_a_redirect_to_ftp_is_refused_without_connecting(redirecting, tmp_path):
    url, hits = redirecting
    with pytest.raises(DownloadError, match="redirected to ftp://") as err:
        feeds.download(f"{url}/ftp", tmp_path / "a.mp3", expect=("audio/",))
    assert "\n" not in str(err.value)
    with pytest.raises(DownloadError, match="redirected to ftp://"):
        fetch_bytes(f"{url}/ftp")
    assert hits == [] and list(tmp_path.iterdir()) == []


def test_a_redirect_to_a_file_is_refused_and_one_to_http_followed(redirecting, tmp_path):
    url, _ = redirecting
    with pytest.raises(DownloadError, match="file:///etc/passwd"):  # urllib refuses it before asking us
        download(f"{url}/file", tmp_path / "a.mp3")
    assert download(f"{url}/ok", tmp_path / "b.mp3", expect=("audio/",)).read_bytes() == b"ID3 audio bytes"
    assert fetch_bytes(f"{url}/ok", max_bytes=1 << 20) == b"ID3 audio bytes"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x.mp3", "data:,hello"])
def test_only_http_urls_are_fetched(url, tmp_path):
    with pytest.raises(DownloadError, match="must be http or https"):
        download(url, tmp_path / "x.mp3")
    with pytest.raises(DownloadError, match="must be http or https"):
        fetch_bytes(url)


def test_a_size_cap_given_by_the_caller_is_named_without_a_setting(redirecting, tmp_path):
    url, _ = redirecting
    with pytest.raises(DownloadError, match=r"larger than 0 MB; not downloaded$"):
        fetch_bytes(f"{url}/ok", max_bytes=4)


def test_safe_names():
    assert safe_name("Ep 1: Hello/World?") == "ep-1-hello-world"
    assert safe_name("../../etc/passwd") == "etc-passwd"
    assert safe_name("?!") == "episode"
    assert len(safe_name("x" * 200)) == 60


def _trickling_headers_server():
    """A server that sends its status line and headers a byte every 0.2 s and never ends them."""
    import socket as socket_
    import threading
    import time as time_

    sock = socket_.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()

    def handle(conn) -> None:
        try:
            conn.recv(4096)
            for ch in b"HTTP/1.1 200 OK\r\nContent-Type: audio/mpeg\r\nX-Pad: " + b"a" * 10_000:
                conn.send(bytes([ch]))
                time_.sleep(0.2)
        except OSError:
            pass

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_the_deadline_covers_trickled_headers(tmp_path, monkeypatch) -> None:
    """Issue 27, finding 9: the deadline ran from the response headers on, so a server trickling
    them held a run for minutes; a feed now has its own short deadline (setting feed_deadline)."""
    import time as time_

    sock, base = _trickling_headers_server()
    try:
        start = time_.monotonic()
        with pytest.raises(DownloadError, match="took longer than 2 s"):
            download(f"{base}/a.mp3", tmp_path / "a.mp3", deadline=2, expect=("audio/",))
        assert time_.monotonic() - start < 6
        monkeypatch.setenv("HMSEARCH_FEED_DEADLINE", "2")
        start = time_.monotonic()
        with pytest.raises(DownloadError, match=r"took longer than 2 s; given up \(setting feed_deadline\)"):
            fetch_bytes(f"{base}/feed.xml")
        assert time_.monotonic() - start < 6
    finally:
        sock.close()
