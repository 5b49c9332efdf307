"""The web app: a Starlette ASGI application over one warm ``QueryService``.

Routes (all GET, all read-only):
  /                         search page (?q=&episode=&since=&until=): answer, hits by episode
  /episodes                 the episodes list
  /episode/{id}             the whole transcript (?t=SECONDS&end=SECONDS: the passage asked for),
                            its chapters, a search within it, downloads
  /download/{fmt}/{id}      the transcript as a file: vtt, srt, json (Whisper's shape), txt
  /audio/{id}               a local episode's audio file, with HTTP Range (seeking)
  /static/{name}            app.js, app.css, icon.svg, manifest.webmanifest (a fixed set, read at start-up)
  /api/search, /api/ask     the CLI's --json shapes (?q=&k=&mode=&episode=&since=&until=)
  /api/episodes             [{episode, title, ...}] as `episodes --json`
  /api/episodes/{id}/transcript   {episode, sentences: [{start, end, text}]}
  /api/openapi.json         the API's OpenAPI 3.1 description

Safe by construction: no request path or parameter is ever joined to a file path. An episode id
is only a key looked up in the committed manifest; the audio path served is the one the index
recorded for that episode; static files are a dict built at start-up. Errors keep their class
(bad input 400, unknown episode 404, too many requests 429, damaged or missing index 503) and are
one line, as HTML or JSON; never a traceback.
"""

from __future__ import annotations

import datetime
import difflib
import json
import logging
import math
import mimetypes
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import HmsearchError, IndexStateError, InputError, ModelUnavailableError, NotFoundError, one_line
from ..formats import format_json, format_srt, format_txt, format_vtt
from ..query import AskRequest, Filters, QueryService, SearchRequest
from ..query.retrieve import MODES
from ..types import Episode, Segment, Sentence, Transcript, Word
from . import pages
from .openapi import openapi_spec

log = logging.getLogger(__name__)

_RANGE = re.compile(r"bytes=(?:\d+-\d*|-\d+)(?:\s*,\s*(?:\d+-\d*|-\d+))*")
STATIC_FILES = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
    "manifest.webmanifest": "application/manifest+json",  # installable on a phone's home screen
}
DOWNLOAD_TYPES = {
    "vtt": "text/vtt; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "json": "application/json",
    "txt": "text/plain; charset=utf-8",
}
PAGE_HITS = 10  # passages on the search page
ANSWER_HITS = 3  # passages its answer sentences are picked from (as `hmsearch ask`)


@dataclass(frozen=True)
class WebLimits:
    """What one request may ask for, and how often one client may ask."""

    max_query_chars: int = 500
    max_k: int = 50
    rate_per_minute: float = 300.0  # sustained requests per client (0: no limit)
    burst: int = 60  # requests a client may make at once before the rate applies


def csp(media_origins: frozenset[str] = frozenset()) -> str:
    """No inline script or style, nothing from another origin, except the audio of feed episodes
    from their enclosure's origin."""
    media = " ".join(["'self'", *sorted(media_origins)])
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; manifest-src 'self'; "
        f"media-src {media}; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds the security headers to every response (a page's own CSP, naming feed audio origins,
    wins over the default)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", csp().encode()))
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in names)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RateLimit:
    """A token bucket per client address, charged by what a request costs: ``burst`` plain requests
    at once, then ``per_minute``; a search costs SEARCH_COST of them and a question ASK_COST (it
    embeds the question and every sentence of its passages). A client also has at most
    ``in_flight`` costly requests running at once, so one client's burst of questions cannot make
    another's search wait behind it. Beyond either: 429 with Retry-After. Static files are free.

    The client is the connection's peer address; `hmsearch web` does not read X-Forwarded-For
    (uvicorn's proxy headers are off), so a header cannot buy a fresh bucket."""

    SEARCH_COST = 2.0
    ASK_COST = 5.0

    def __init__(self, app: ASGIApp, *, per_minute: float, burst: int, in_flight: int = 2) -> None:
        self.app = app
        self.rate = per_minute / 60.0
        self.burst = float(max(1, burst))
        self.in_flight = max(1, in_flight)
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, last time)
        self._running: dict[str, int] = {}  # client -> costly requests running
        self._lock = threading.Lock()

    @classmethod
    def cost(cls, scope: Scope) -> float:
        path = scope["path"]
        if path == "/api/ask" or (path == "/" and b"q=" in scope.get("query_string", b"")):
            return cls.ASK_COST
        if path == "/api/search":
            return cls.SEARCH_COST
        return 1.0

    def _take(self, client: str, cost: float) -> float:
        """0 when the request may go ahead, else the seconds until it could."""
        now = time.monotonic()
        cost = min(cost, self.burst)
        with self._lock:
            tokens, last = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if len(self._buckets) > 10_000:  # forget clients that are full again: memory stays flat
                full = self.burst / self.rate
                self._buckets = {c: v for c, v in self._buckets.items() if now - v[1] < full}
            if tokens >= cost:
                self._buckets[client] = (tokens - cost, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (cost - tokens) / self.rate

    def _start(self, client: str) -> bool:
        with self._lock:
            if self._running.get(client, 0) >= self.in_flight:
                return False
            self._running[client] = self._running.get(client, 0) + 1
            return True

    def _done(self, client: str) -> None:
        with self._lock:
            left = self._running.get(client, 1) - 1
            if left > 0:
                self._running[client] = left
            else:
                self._running.pop(client, None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.rate <= 0 or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        cost = self.cost(scope)
        wait = self._take(client, cost)
        if wait > 0:
            message = f"too many requests from {client}: try again in {math.ceil(wait)} s"
            await self._refuse(scope, receive, send, message, math.ceil(wait))
            return
        if cost <= 1.0:
            await self.app(scope, receive, send)
            return
        if not self._start(client):
            message = f"{self.in_flight} searches from {client} are still running: try again when they finish"
            await self._refuse(scope, receive, send, message, 1)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._done(client)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, message: str, retry_after: int) -> None:
        headers = {"Retry-After": str(retry_after)}
        response: Response
        if scope["path"].startswith("/api/"):
            response = JSONResponse(_error_body("RateLimited", message), status_code=429, headers=headers)
        else:
            q = Request(scope).query_params.get("q", "")
            response = HTMLResponse(pages.error_page(429, message, q=q), status_code=429, headers=headers)
        await response(scope, receive, send)


def _error_body(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"kind": kind, "message": message}}


def status_of(exc: HmsearchError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, InputError):
        return 400
    if isinstance(exc, (IndexStateError, ModelUnavailableError)):
        return 503
    return 500


def _json(obj: Any, status: int = 200) -> Response:
    body = json.dumps(obj, ensure_ascii=False, allow_nan=False).encode()
    return Response(body, status_code=status, media_type="application/json")


def _html(body: str, *, media_origins: frozenset[str] = frozenset()) -> HTMLResponse:
    return HTMLResponse(body, headers={"Content-Security-Policy": csp(media_origins)})


def _feed_origins(episodes: list[Episode]) -> frozenset[str]:
    found = (pages.origin(url) for ep in episodes if not ep.audio and (url := pages.http_url(ep.enclosure)))
    return frozenset(o for o in found if o is not None)


def web_link(episode: Episode, start: float) -> str:
    """The API's and the page's playback link: the episode page from that second."""
    return pages.episode_href(episode.id, start)


def episode_json(ep: Episode) -> dict[str, Any]:
    """`episodes --json`'s shape, without the server's file system: ``source`` is the file's name
    and ``audio`` the URL the app serves it at."""
    d = ep.to_dict()
    d["source"] = Path(ep.source).name if ep.source else ep.source
    d["audio"] = pages.audio_src(ep) if ep.audio else None
    return d


def transcript_file(episode: Episode, sentences: Sequence[Sentence], format_: str) -> bytes:
    """An episode's sentences as a transcript file, through formats.py's writers: one segment (cue)
    a sentence, its word times kept where Whisper gave them, its speaker when it has one."""
    segments = []
    for s in sentences:
        spans = s.word_spans() if s.word_times else []
        segments.append(
            Segment(
                start=s.start,
                end=s.end,
                text=s.text,
                words=tuple(Word(a, b, f" {w}") for w, a, b in spans),
                speaker=getattr(s, "speaker", None),
            )
        )
    transcript = Transcript(
        tuple(segments), language=episode.language, source=episode.transcript_source, duration=episode.duration
    )
    writers = {"vtt": format_vtt, "srt": format_srt, "json": format_json, "txt": format_txt}
    return writers[format_](transcript).encode("utf-8")


class WebApp:
    """The endpoints, over one service; ``app`` is the ASGI application."""

    def __init__(self, service: QueryService, limits: WebLimits = WebLimits()) -> None:
        self.service = service
        self.limits = limits
        package = resources.files("hmsearch.web") / "static"
        self.static = {name: (package / name).read_bytes() for name in STATIC_FILES}
        routes = [
            Route("/", self.home),
            Route("/episodes", self.episodes_page),
            Route("/episode/{episode_id:path}", self.episode_page),
            Route("/download/{format}/{episode_id:path}", self.download),
            Route("/audio/{episode_id:path}", self.audio),
            Route("/static/{name}", self.static_file),
            Route("/favicon.ico", lambda request: Response(status_code=204)),  # none: browsers ask anyway
            Route("/api/search", self.api_search),
            Route("/api/ask", self.api_ask),
            Route("/api/episodes", self.api_episodes),
            Route("/api/episodes/{episode_id:path}/transcript", self.api_transcript),
            Route("/api/openapi.json", self.api_openapi),
        ]
        app: ASGIApp = Starlette(
            routes=routes,
            exception_handlers={
                HmsearchError: self.on_error,
                HTTPException: self.on_http_error,
                Exception: self.on_crash,
            },
        )
        if limits.rate_per_minute > 0:
            app = RateLimit(app, per_minute=limits.rate_per_minute, burst=limits.burst)
        self.app: ASGIApp = SecurityHeaders(app)

    # ---- parameters ----------------------------------------------------------------------
    def _query(self, request: Request, *, required: bool) -> str:
        q = str(request.query_params.get("q", ""))
        if len(q) > self.limits.max_query_chars:
            raise InputError(f"the question is {len(q)} characters long: at most {self.limits.max_query_chars}")
        if "\x00" in q:
            raise InputError("the question holds a NUL character")
        if required and not q.strip():
            raise InputError("missing q: the question or phrase to search for")
        return q

    def _k(self, request: Request, default: int) -> int:
        raw = request.query_params.get("k")
        if raw is None or raw == "":
            return default
        try:
            k = int(raw)
        except ValueError:
            raise InputError(f"k must be a whole number, not {raw!r}") from None
        if not 1 <= k <= self.limits.max_k:
            raise InputError(f"k must be between 1 and {self.limits.max_k}, not {k}")
        return k

    @staticmethod
    def _mode(request: Request) -> str:
        mode = request.query_params.get("mode") or "hybrid"
        if mode not in MODES:
            raise InputError(f"unknown search mode {mode!r}: use one of {', '.join(MODES)}")
        return mode

    @staticmethod
    def _date(request: Request, name: str) -> str | None:
        raw = request.query_params.get(name) or None
        if raw is None:
            return None
        try:
            return datetime.date.fromisoformat(raw).isoformat()
        except ValueError:
            raise InputError(f"{name}={raw!r} is not a date (use YYYY-MM-DD)") from None

    def _filters(self, request: Request) -> Filters:
        return Filters(
            episode=request.query_params.get("episode") or None,
            since=self._date(request, "since"),
            until=self._date(request, "until"),
        )

    @staticmethod
    def _seconds(request: Request, name: str) -> float | None:
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            return None
        try:
            value = float(raw)
        except ValueError:
            raise InputError(f"{name} must be a time in seconds, not {raw!r}") from None
        if not math.isfinite(value) or value < 0:
            raise InputError(f"{name} must be a time in seconds, not {raw!r}")
        return value

    # ---- pages ---------------------------------------------------------------------------
    def home(self, request: Request) -> Response:
        q = self._query(request, required=False)
        filters = self._filters(request)
        episodes = self.service.episodes()
        form = pages.SearchForm(q, filters.episode or "", filters.since or "", filters.until or "")
        if not q.strip():
            return _html(pages.search_page(form, episodes, max_query=self.limits.max_query_chars))
        # One call: the results as `search -k 10`, the answer as `ask` gives it (sentences scored
        # within the 3 best passages: each passage's sentences are embedded, so 10 would cost 3x more).
        result = self.service.ask(AskRequest(q, k=PAGE_HITS, filters=filters, answer_from=ANSWER_HITS))
        answer, hits = result.answer, result.hits
        shown = {h.episode for h in hits} | {s.episode for s in answer}
        body = pages.search_page(
            form,
            episodes,
            answer=answer,
            hits=hits,
            max_query=self.limits.max_query_chars,
            asked=True,
        )
        return _html(body, media_origins=_feed_origins([e for e in episodes if e.id in shown]))

    def episodes_page(self, request: Request) -> Response:
        return _html(pages.episodes_page(self.service.episodes()))

    def episode_page(self, request: Request) -> Response:
        t, end = self._seconds(request, "t"), self._seconds(request, "end")
        episode_id = request.path_params["episode_id"]
        try:
            text = self.service.transcript(episode_id)
        except NotFoundError as exc:  # a mistyped or outdated link: offer the nearest ids
            episodes = self.service.episodes()
            near = difflib.get_close_matches(episode_id, [e.id for e in episodes], n=3, cutoff=0.6)
            if not near:
                raise
            by_id = {e.id: e for e in episodes}
            page = pages.error_page(404, self._public(one_line(exc)), suggest=[by_id[i] for i in near])
            return HTMLResponse(page, status_code=404)
        episode, sentences = text.episode, list(text.sentences)
        body = pages.episode_page(
            episode,
            sentences,
            t=t,
            end=end,
            chapters=self._chapters(episode.id),
            max_query=self.limits.max_query_chars,
        )
        return _html(body, media_origins=_feed_origins([episode]))

    def _chapters(self, episode_id: str) -> list[Any]:
        """The episode's chapters, or none when they cannot be made (the page shows the rest)."""
        try:
            return list(self.service.chapters(episode_id))
        except HmsearchError as exc:
            log.warning("no chapters for %s: %s", episode_id, one_line(exc))
            return []

    def download(self, request: Request) -> Response:
        """The transcript as a file (VTT, SRT, JSON as Whisper writes it, TXT), one cue a sentence."""
        format_ = request.path_params["format"]
        if format_ not in DOWNLOAD_TYPES:
            raise NotFoundError(f"no transcript format {format_!r}: use one of {', '.join(DOWNLOAD_TYPES)}")
        text = self.service.transcript(request.path_params["episode_id"])
        body = transcript_file(text.episode, text.sentences, format_)
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", text.episode.id).strip("._")[:80] or "transcript"
        headers = {"Content-Disposition": f'attachment; filename="{name}.{format_}"', "Cache-Control": "no-cache"}
        return Response(body, media_type=DOWNLOAD_TYPES[format_], headers=headers)

    def audio(self, request: Request) -> Response:
        episode = self.service.episode(request.path_params["episode_id"])
        if not episode.audio:
            raise NotFoundError(f"episode '{episode.id}' has no local audio file")
        path = Path(episode.audio)
        if not path.is_file():
            raise NotFoundError(f"the audio file of episode '{episode.id}' is no longer where it was indexed")
        wanted = request.headers.get("range")
        if wanted is not None and not _RANGE.fullmatch(wanted.strip()):
            # int() would read "bytes=1_0-2_0" as 10-20: a Range that is not RFC 9110's is refused
            size = path.stat().st_size
            raise HTTPException(
                416, "the Range header is not bytes=START-END", headers={"Content-Range": f"bytes */{size}"}
            )
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        # FileResponse answers Range requests: 206, Accept-Ranges, Content-Range, 416.
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-cache"})

    def static_file(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.static:
            raise NotFoundError(f"no static file {name!r}")
        return Response(self.static[name], media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})

    # ---- API -----------------------------------------------------------------------------
    def api_search(self, request: Request) -> Response:
        req = SearchRequest(
            self._query(request, required=True),
            k=self._k(request, 5),
            mode=self._mode(request),
            filters=self._filters(request),
        )
        return _json(self.service.search(req).to_dict())

    def api_ask(self, request: Request) -> Response:
        req = AskRequest(
            self._query(request, required=True),
            k=self._k(request, 3),
            mode=self._mode(request),
            filters=self._filters(request),
        )
        return _json(self.service.ask(req).to_dict())

    def api_episodes(self, request: Request) -> Response:
        return _json([episode_json(e) for e in self.service.episodes()])

    def api_transcript(self, request: Request) -> Response:
        text = self.service.transcript(request.path_params["episode_id"])
        return _json(
            {
                "episode": episode_json(text.episode),
                "sentences": [
                    {"start": round(s.start, 3), "end": round(s.end, 3), "text": s.text} for s in text.sentences
                ],
            }
        )

    def api_openapi(self, request: Request) -> Response:
        return _json(openapi_spec(self.limits.max_query_chars, self.limits.max_k))

    # ---- errors --------------------------------------------------------------------------
    def _error(self, request: Request, status: int, kind: str, message: str) -> Response:
        if request.url.path.startswith("/api/"):
            return _json(_error_body(kind, message), status)
        q = request.query_params.get("q", "")  # the question stays in the box, to fix and ask again
        page = pages.error_page(status, message, q=q, max_query=self.limits.max_query_chars)
        return HTMLResponse(page, status_code=status)

    def on_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HmsearchError)
        return self._error(request, status_of(exc), type(exc).__name__, self._public(one_line(exc)))

    def _public(self, message: str) -> str:
        """A message for the web: the server's own folders are not the client's business."""
        root = self.service.index_dir
        for path in sorted({str(root), str(root.resolve()), str(root.absolute())}, key=len, reverse=True):
            message = message.replace(f"the index {path}", "the index").replace(path, "the index")
        return message

    def on_http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        messages = {404: f"no page at {request.url.path}", 405: f"{request.method} is not allowed here (read-only)"}
        response = self._error(
            request, exc.status_code, "HTTPError", messages.get(exc.status_code, str(exc.detail or exc.status_code))
        )
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    def on_crash(self, request: Request, exc: Exception) -> Response:
        log.error("internal error on %s", request.url.path, exc_info=exc)
        return self._error(
            request, 500, "InternalError", self._public(f"internal error: {type(exc).__name__}: {one_line(exc)}")
        )


def create_app(service: QueryService, limits: WebLimits = WebLimits()) -> ASGIApp:
    return WebApp(service, limits).app


def create_service(index_dir: Path) -> QueryService:
    return QueryService(index_dir, link=web_link)
