"""A warm query server: keeps the embedding model and the index loaded so that repeated
`hmsearch search` / `ask` from the shell answer in milliseconds instead of paying the model's
import and load time on every call.

It listens on a Unix socket inside the index folder (only the index's owner can reach it); the
CLI uses it when it answers and falls back to in-process search when it does not. One JSON
line in, one JSON line out; an error keeps its class across the socket. It is a thin transport
over :class:`hmsearch.query.service.QueryService`, which reloads when the manifest changes.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import EXIT_INTERNAL, HmsearchError, error_from_wire

log = logging.getLogger(__name__)

SOCKET_NAME = ".serve.sock"
CLIENT_TIMEOUT = 120.0  # seconds: a first query may still be loading caches
CONNECTION_TIMEOUT = 10.0  # seconds a connected client may take to send its request line
MAX_REQUEST = 1 << 20  # bytes of one request line
_MAX_SOCKET_PATH = 108  # sun_path on Linux, with its terminating NUL


def socket_path(index_dir: Path) -> Path:
    return Path(index_dir) / SOCKET_NAME


def _reply_error(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, HmsearchError):
        return {"ok": False, "error": str(exc), "kind": type(exc).__name__, "exit_code": exc.exit_code}
    return {
        "ok": False,
        "error": f"internal error: {type(exc).__name__}: {exc}".splitlines()[0],
        "kind": "internal",
        "exit_code": EXIT_INTERNAL,
    }


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True  # one slow client never holds up the others, nor the shutdown


def serve(index_dir: Path, *, on_ready: Callable[[Path], None] | None = None) -> None:
    """Serve queries on the index folder's socket until interrupted."""
    from .query.service import QueryService

    service = QueryService(Path(index_dir))
    service.warm()  # load everything before accepting queries
    path = socket_path(index_dir)

    class Handler(socketserver.StreamRequestHandler):
        timeout = CONNECTION_TIMEOUT

        def handle(self) -> None:
            try:
                line = self.rfile.readline(MAX_REQUEST)
            except OSError:  # the client went quiet past the timeout, or left
                return
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("not a JSON object")
            except (ValueError, UnicodeDecodeError) as exc:
                reply = _reply_error(HmsearchError(f"malformed request ({type(exc).__name__})"))
            else:
                try:
                    reply = {"ok": True, "result": service.handle(request)}
                except Exception as exc:  # noqa: BLE001  keep serving; the client prints one line
                    reply = _reply_error(exc)
            try:
                self.wfile.write(json.dumps(reply, ensure_ascii=False).encode() + b"\n")
            except OSError:
                pass

    if len(os.fsencode(path)) >= _MAX_SOCKET_PATH:
        raise HmsearchError(
            f"{path}: the index path is too long for the server's socket ({len(os.fsencode(path))} bytes, "
            f"the limit is {_MAX_SOCKET_PATH - 1}); serve an index with a shorter path (a symlink will do)"
        )
    if path.exists():
        if _alive(path):
            raise HmsearchError(f"{path}: a server is already running for this index")
        path.unlink()
    old_umask = os.umask(0o077)
    try:
        server = _Server(str(path), Handler)
    finally:
        os.umask(old_umask)

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)  # unwinds serve_forever: the socket file is removed below

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)  # `kill`, systemd and test harnesses stop it cleanly too
    try:
        if on_ready:
            on_ready(path)
        server.serve_forever()
    finally:
        server.server_close()
        path.unlink(missing_ok=True)


def _alive(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            s.connect(str(path))
            return True
    except OSError:
        return False


def ask_server(index_dir: Path, request: dict[str, Any]) -> dict[str, Any] | None:
    """The server's reply to ``request``, or None when no server answers for this index."""
    path = socket_path(index_dir)
    if not path.exists():
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(CLIENT_TIMEOUT)
            s.connect(str(path))
            s.sendall(json.dumps(request, ensure_ascii=False).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                block = s.recv(1 << 16)
                if not block:
                    break
                data += block
    except OSError:
        log.info("no server answers on %s: searching in process", path)
        return None  # a stale socket of a server that is gone: search in process
    try:
        reply = json.loads(data)
        if not isinstance(reply, dict) or (reply.get("ok") and not isinstance(reply.get("result"), dict)):
            raise ValueError("not a reply object")
    except (ValueError, RecursionError):  # a server that died mid-reply, or is not ours
        log.warning("the server on %s sent a broken reply: searching in process", path)
        return None
    if not reply.get("ok"):
        raise error_from_wire(
            str(reply.get("kind", "")), str(reply.get("error", "server error")), reply.get("exit_code")
        )
    return reply["result"]  # type: ignore[no-any-return]
