"""A warm query server: keeps the embedding model and the index loaded so that repeated
`hmsearch search` / `ask` from the shell answer in milliseconds instead of paying torch's and
sentence-transformers' import and load time on every call.

It listens on a Unix socket inside the index folder (only the index's owner can reach it); the
CLI uses it when it answers and falls back to in-process search when it does not. One JSON
line in, one JSON line out. The index is reloaded when its manifest changes.
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
from pathlib import Path
from typing import Any

from .errors import HmsearchError

SOCKET_NAME = ".serve.sock"
CLIENT_TIMEOUT = 120.0  # seconds: a first query may still be loading caches


def socket_path(index_dir: Path) -> Path:
    return Path(index_dir) / SOCKET_NAME


def query(store: Any, embedder: Any, request: dict[str, Any]) -> dict[str, Any]:
    """Run one search/ask request; the result is the same dict `--json` prints."""
    from .search import answer, search

    op = request.get("op")
    opts = {k: request.get(k) for k in ("mode", "episode", "since", "until")}
    opts["mode"] = opts["mode"] or "hybrid"
    if opts["episode"]:
        store.episode(opts["episode"])
    model = None if opts["mode"] == "lexical" else embedder
    if op == "search":
        hits = search(store, model, request["query"], k=int(request.get("k", 5)), **opts)
        return {"query": request["query"], "hits": [h.to_dict() for h in hits]}
    if op == "ask":
        sentences, hits = answer(store, embedder, request["question"], k=int(request.get("k", 3)), **opts)
        return {"question": request["question"], "answer": [s.to_dict() for s in sentences],
                "hits": [h.to_dict() for h in hits]}
    raise ValueError(f"unknown op {op!r}")


class _State:
    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        self.stamp: tuple[int, int] | None = None
        self.store: Any = None
        self.embedder: Any = None

    def current(self) -> tuple[Any, Any]:
        """The store, reloaded when the manifest changed since the last request."""
        from .search import embedder_for
        from .store import MANIFEST, IndexStore

        st = (self.index_dir / MANIFEST).stat()
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self.stamp:
            store = IndexStore(self.index_dir)
            store.require()
            if self.embedder is None or self.embedder.name != store.manifest.embedding_model:
                self.embedder = embedder_for(store)
            store.faiss_index()
            store.lexical_index()
            self.store, self.stamp = store, stamp
        return self.store, self.embedder


def serve(index_dir: Path, *, on_ready: Any = None) -> None:
    """Serve queries on the index folder's socket until interrupted."""
    state = _State(Path(index_dir))
    store, embedder = state.current()  # load everything before accepting queries
    embedder.encode_queries(["warm up"])
    path = socket_path(index_dir)

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline()
            try:
                store, embedder = state.current()
                reply = {"ok": True, "result": query(store, embedder, json.loads(line))}
            except HmsearchError as exc:
                reply = {"ok": False, "error": str(exc), "exit_code": exc.exit_code}
            except Exception as exc:  # keep serving; the client prints one line
                reply = {"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}", "exit_code": 70}
            self.wfile.write(json.dumps(reply, ensure_ascii=False).encode() + b"\n")

    if path.exists():
        if _alive(path):
            raise HmsearchError(f"{path}: a server is already running for this index")
        path.unlink()
    old_umask = os.umask(0o077)
    try:
        server = socketserver.UnixStreamServer(str(path), Handler)
    finally:
        os.umask(old_umask)
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
        return None  # a stale socket of a server that is gone: search in process
    reply = json.loads(data)
    if not reply.get("ok"):
        err = HmsearchError(reply.get("error", "server error"))
        err.exit_code = int(reply.get("exit_code", 1))
        raise err
    return reply["result"]
