# ruff: noqa: F811  (the fixtures imported from test_web are parameters here)
"""Hostile round two against `hmsearch web` (issue 27): idle and trickling sockets, a forged
X-Forwarded-For, one client's burst of costly questions, episode ids that are URLs, error messages
that named the server's folders, and a port already in use. A real uvicorn server on 127.0.0.1 as
`hmsearch web` configures it (web/server.py), in a thread; the HashingEncoder stand-in for the model."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.parse
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from hmsearch.index import IndexStore
from hmsearch.query.links import episode_href
from hmsearch.web import server as web_server
from hmsearch.web.app import RateLimit, WebLimits
from test_web import _serve, built, index  # noqa: F401  (fixtures)

URL_ID = "https://example.com/feed/episode/42?x=1"


def _closed(sock: socket.socket, wait: float) -> bool:
    """Whether the server closes ``sock`` within ``wait`` seconds. What it still had to send (the
    rest of a response that came in more than one segment) is read on the way."""
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if sock.recv(65536) == b"":
                return True
        except TimeoutError:
            return False  # still open
        except OSError:  # reset by the server: closed too
            return True
    return False


def test_idle_and_trickling_connections_are_closed_and_others_are_served(index, monkeypatch) -> None:
    monkeypatch.setattr(web_server, "HEADER_SECONDS", 2.0)
    srv, _ = _serve(index)
    try:
        hostile = ("127.0.0.2", 0)  # another address than the well-behaved request below
        idle = [socket.create_connection(("127.0.0.1", srv.port), source_address=hostile) for _ in range(20)]
        trickle = socket.create_connection(("127.0.0.1", srv.port), source_address=hostile)
        trickle.sendall(b"GET /api/epis")  # a request line that never ends
        assert srv.get("/api/episodes")[0] == 200  # served while the others hang on
        time.sleep(2.0)
        # each closed within a generous margin of the 2 s deadline (a loaded machine runs timers late)
        assert all(_closed(s, 15.0) for s in [*idle, trickle])
        # a kept-alive connection gets the same deadline for its next request head
        keep = socket.create_connection(("127.0.0.1", srv.port))
        keep.sendall(b"GET /api/episodes HTTP/1.1\r\nHost: x\r\n\r\n")
        keep.settimeout(5)
        assert keep.recv(65536).startswith(b"HTTP/1.1 200")
        assert _closed(keep, 20.0)
    finally:
        srv.stop()


def test_one_client_cannot_take_every_connection(index) -> None:
    """Past MAX_CONNECTIONS_PER_CLIENT from one address, its further connections are closed at once;
    another address is still served (the soak: benchmarks/bench_web_soak.py)."""
    srv, _ = _serve(index)
    try:
        hostile = ("127.0.0.3", 0)
        held = [
            socket.create_connection(("127.0.0.1", srv.port), source_address=hostile)
            for _ in range(web_server.MAX_CONNECTIONS_PER_CLIENT + 8)
        ]
        time.sleep(0.5)
        closed = [s for s in held if _closed(s, 0.2)]
        assert len(closed) >= 8 and len(held) - len(closed) <= web_server.MAX_CONNECTIONS_PER_CLIENT
        assert srv.get("/api/episodes")[0] == 200
        for s in held:
            s.close()
    finally:
        srv.stop()


def test_forwarded_for_does_not_buy_a_fresh_bucket(index) -> None:
    srv, _ = _serve(index, WebLimits(rate_per_minute=60, burst=5))
    try:
        codes = [srv.get("/api/episodes", headers={"X-Forwarded-For": f"10.0.0.{i}"})[0] for i in range(8)]
        assert codes[:5] == [200] * 5 and codes[5:] == [429] * 3
    finally:
        srv.stop()


def test_questions_cost_more_and_one_client_runs_few_at_once() -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_app(scope, receive, send):
        started.set()
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    limit = RateLimit(slow_app, per_minute=6000, burst=60, in_flight=2)

    def scope(path: str, query: bytes = b"", client: str = "1.2.3.4") -> dict:
        return {"type": "http", "path": path, "query_string": query, "client": (client, 1), "headers": []}

    async def call(s: dict) -> int:
        sent: list[dict] = []

        async def send(message):
            sent.append(message)

        async def receive():
            return {"type": "http.request"}

        await limit(s, receive, send)
        return next(m["status"] for m in sent if m["type"] == "http.response.start")

    async def main() -> list[int]:
        asks = [asyncio.create_task(call(scope("/api/ask", b"q=x"))) for _ in range(2)]
        await started.wait()
        third = await call(scope("/api/ask", b"q=x"))  # refused at once, not queued behind the two
        other = asyncio.create_task(call(scope("/api/search", b"q=y", client="5.6.7.8")))
        await asyncio.sleep(0.05)
        release.set()
        return [*(await asyncio.gather(*asks)), third, await other]

    assert asyncio.run(main()) == [200, 200, 429, 200]
    assert RateLimit.cost(scope("/api/ask")) > RateLimit.cost(scope("/api/search")) > RateLimit.cost(scope("/x"))
    assert RateLimit.cost(scope("/", b"q=hej")) == RateLimit.ASK_COST


def _with_url_id(index_dir: Path) -> None:
    store = IndexStore(index_dir)
    with store.writing():
        manifest = store.require()
        rec = manifest.episodes["hm-sample-001"]
        manifest.episodes[URL_ID] = replace(rec, episode=replace(rec.episode, id=URL_ID))
        store._commit(manifest)


def test_an_episode_id_that_is_a_url_is_reachable(index) -> None:
    _with_url_id(index)
    srv, _ = _serve(index)
    try:
        href = episode_href(URL_ID, 12.5)
        assert "%2F" in href
        status, _, body = srv.get(href)
        assert status == 200 and "Sociale medier" in body.decode()
        quoted = urllib.parse.quote(URL_ID, safe="")
        status, got = srv.json(f"/api/episodes/{quoted}/transcript")
        assert status == 200 and got["episode"]["episode"] == URL_ID and got["sentences"]
        assert srv.get(f"/audio/{quoted}", headers={"Range": "bytes=0-9"})[0] == 206
        status, hits = srv.json("/api/search?q=sociale+medier&k=10")
        assert any(h["episode"] == URL_ID for h in hits["hits"])
        linked = [h["link"] for h in hits["hits"] if h["episode"] == URL_ID]
        assert all(srv.get(link)[0] == 200 for link in linked)  # every result link works
    finally:
        srv.stop()


def test_errors_do_not_name_the_servers_folders(index) -> None:
    srv, _ = _serve(index)
    try:
        status, _, body = srv.get("/episode/nope")
        assert status == 404 and str(index) not in body.decode() and "nope" in body.decode()
        status, got = srv.json("/api/episodes/nope/transcript")
        assert status == 404 and str(index) not in json.dumps(got)
    finally:
        srv.stop()


def test_a_port_in_use_is_one_line_before_anything_loads(index, cli) -> None:
    taken = web_server.listen("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        result = cli("--index-dir", str(index), "web", "--port", str(port))
        assert result.exit_code == 1
        assert "cannot listen on 127.0.0.1" in result.output and "pass --port" in result.output
        assert "serving" not in result.output and "Traceback" not in result.output
    finally:
        taken.close()


def test_listening_beyond_loopback_is_said() -> None:
    assert web_server.is_loopback("127.0.0.1") and web_server.is_loopback("::1") and web_server.is_loopback("localhost")
    assert not web_server.is_loopback("0.0.0.0") and not web_server.is_loopback("192.168.1.4")
