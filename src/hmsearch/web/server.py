"""Serving the app: uvicorn with the limits a page open to strangers needs.

uvicorn closes a keep-alive connection that idles after a response, but not one that never sends
a request, nor one that trickles its request line and headers a byte at a time: a few hundred such
sockets held every worker slot and, past the process's file limit, filled the log with accept()
tracebacks (issue 27, finding 7). Here every connection has HEADER_SECONDS to deliver a whole
request head (its first one, and each next one on a kept-alive connection); the server takes at
most MAX_CONNECTIONS at once (beyond: 503 at once), raises its open-file limit to what the system
allows, takes at most MAX_CONNECTIONS_PER_CLIENT from one address (so one client's idle sockets
cannot fill the others' slots), does not trust X-Forwarded-For (the rate limit's client is the
peer), and repeats an accept() error in the log at most once a minute.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

from ..errors import HmsearchError, InputError

MAX_CONNECTIONS = 256
MAX_CONNECTIONS_PER_CLIENT = 32  # beyond: the connection is closed at once (a browser opens ~6)
HEADER_SECONDS = 10.0  # to send a request's line and headers, from connecting or from the last response
KEEP_ALIVE_SECONDS = 5  # an idle kept-alive connection is closed after this
MAX_HEAD_BYTES = 16 * 1024  # request line and headers


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything is printed or loaded: a port in use is one line."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        raise InputError(f"cannot listen on {host}: {getattr(exc, 'strerror', None) or exc}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise HmsearchError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (another server there? pass --port)"
        ) from None
    sock.set_inheritable(True)
    return sock


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _protocol() -> type:
    from uvicorn.protocols.http.h11_impl import H11Protocol

    header_seconds = HEADER_SECONDS  # read when the server is made (tests shorten it)
    max_per_client = MAX_CONNECTIONS_PER_CLIENT
    per_client: dict[str, int] = {}  # open connections per peer address (one event loop: no lock)

    class DeadlineH11Protocol(H11Protocol):
        """h11 with a deadline for each request head (see the module docstring)."""

        _head_timer: asyncio.TimerHandle | None = None

        _counted = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            peer = self.client[0] if self.client else ""
            if per_client.get(peer, 0) >= max_per_client:  # one client cannot take every slot
                transport.close()
                return
            per_client[peer] = per_client.get(peer, 0) + 1
            self._counted = True
            self._arm()

        def _arm(self) -> None:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(header_seconds, self._head_timeout)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timeout(self) -> None:
            self._head_timer = None
            if self.cycle is None or self.cycle.response_complete:  # no request head arrived in time
                self.transport.close()

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not None and not self.cycle.response_complete:
                self._disarm()  # a whole head arrived: the app has the request

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request's head has its own deadline

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._counted:
                peer = self.client[0] if self.client else ""
                left = per_client.get(peer, 1) - 1
                if left > 0:
                    per_client[peer] = left
                else:
                    per_client.pop(peer, None)
                self._counted = False
            super().connection_lost(exc)

    return DeadlineH11Protocol


class _OncePerMinute(logging.Filter):
    """Lets a repeated log message through once a minute (accept() errors under a socket flood)."""

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = str(record.msg)[:80]
        now = time.monotonic()
        if now - self._last.get(key, -1e9) < 60.0:
            return False
        self._last[key] = now
        record.exc_info = None  # one line, not a traceback per refused connection
        record.exc_text = None
        return True


def _raise_file_limit() -> None:
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = hard if hard != resource.RLIM_INFINITY else 65536
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, 65536), hard))
    except (ImportError, ValueError, OSError):
        pass


def make_server(app: Any) -> Any:
    """The uvicorn server for ``app`` with the limits above (``.run(sockets=[sock])`` serves)."""
    import uvicorn

    _raise_file_limit()
    once = _OncePerMinute()
    for name in ("asyncio", "uvicorn.error"):
        if not any(isinstance(f, _OncePerMinute) for f in logging.getLogger(name).filters):
            logging.getLogger(name).addFilter(once)
    config = uvicorn.Config(
        app,
        http=_protocol(),
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        limit_concurrency=MAX_CONNECTIONS,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
    )
    return uvicorn.Server(config)


def serve(app: Any, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` until Ctrl-C or SIGTERM."""
    make_server(app).run(sockets=[sock])
