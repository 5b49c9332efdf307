"""`hmsearch mcp`: a Model Context Protocol server on stdio, so an assistant can search the podcast
and cite the moment. Tools: ``search``, ``ask``, ``episodes`` and ``transcript``; every passage,
sentence and episode they return carries episode, title, start, end (seconds) and a link that
plays from there. Over the same warm ``QueryService`` as the CLI and the web page.

Needs the ``mcp`` SDK (the ``web`` extra). Errors reach the assistant as a tool error with the
one-line message and its class ("NotFoundError: episode 'x' is not in the index ...").
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import Strict

from .errors import HmsearchError, InputError, one_line
from .query import AskRequest, Filters, QueryService, SearchRequest
from .query.links import LinkFn, playback_link, web_link
from .types import Episode

T = TypeVar("T")
MAX_K = 50
MAX_QUERY_CHARS = 1000


def text_arg(value: str | None) -> None:
    """An argument must be text that can be written back as UTF-8 (a JSON "\\ud800" escape is a lone
    surrogate): refused without echoing it, so the reply itself can always be written."""
    if value is None:
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("an argument is not valid UTF-8 text (a lone surrogate)") from None


def day(value: str | None) -> str | None:
    """A YYYY-MM-DD date argument, checked (as the web's ?since=)."""
    if not value:
        return None
    text_arg(value)
    try:
        return datetime.date.fromisoformat(value).isoformat()
    except ValueError:
        raise InputError(f"{value[:40]!r} is not a date (use YYYY-MM-DD)") from None


def link_fn(web_url: str | None) -> LinkFn:
    """Links into a running `hmsearch web` (its episode page from that second) when its address is
    given, else the CLI's playback links (the episode page, the enclosure or the local file)."""
    if not web_url:
        return playback_link
    return web_link(web_url)


def build_server(service: QueryService, *, link: LinkFn = playback_link) -> Any:
    """The MCP server object (``.run("stdio")`` serves it)."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer(
        "hmsearch",
        instructions=(
            "Search every word said on the indexed podcast episodes. Use `ask` for a question (it returns the "
            "sentences that answer it, each with its time and a playback link), `search` for passages or a "
            '"quoted phrase", `episodes` for what is indexed and `transcript` to read an episode around a moment. '
            "Cite the episode title, the time and the link."
        ),
    )

    def run(fn: Callable[[], T]) -> T:
        try:
            return fn()
        except HmsearchError as exc:
            raise ToolError(f"{type(exc).__name__}: {one_line(exc)}") from None

    def checked(query: str, k: int, *texts: str | None) -> None:
        for text in (query, *texts):
            text_arg(text)
        if not query.strip():
            raise InputError("the query is empty")
        if len(query) > MAX_QUERY_CHARS:
            raise InputError(f"the query is {len(query)} characters long: at most {MAX_QUERY_CHARS}")
        if isinstance(k, bool) or not 1 <= k <= MAX_K:
            raise InputError(f"k must be a whole number between 1 and {MAX_K}, not {k!r}")

    def episode_dict(ep: Episode) -> dict[str, Any]:
        return {
            "episode": ep.id,
            "title": ep.title,
            "start": 0.0,
            "end": round(ep.duration, 3),
            "link": link(ep, 0.0),
            "published": ep.published,
            "language": ep.language,
            "passages": ep.n_passages,
            "page": ep.url,
        }

    @server.tool()
    def search(
        query: str,
        k: Annotated[int, Strict()] = 5,  # strict: true is no number
        episode: str | None = None,
        since: str | None = None,
        until: str | None = None,
        mode: str = "hybrid",
    ) -> dict[str, Any]:
        """The passages that match `query`, best first: {query, hits: [{episode, title, start, end, text,
        score, link, ...}]}. A query in double quotes finds that exact phrase and returns its own start
        and end. `since`/`until` are YYYY-MM-DD (publication date); mode is hybrid, semantic or lexical."""

        def go() -> dict[str, Any]:
            checked(query, k, episode, mode)
            request = SearchRequest(query, k=k, mode=mode, filters=Filters(episode, day(since), day(until)))
            return service.search(request).to_dict()

        return run(go)

    @server.tool()
    def ask(
        question: str,
        k: Annotated[int, Strict()] = 3,
        episode: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> dict[str, Any]:
        """The sentences that answer `question` (Danish or English), each with its own time and link,
        and the passages they come from: {question, answer: [{text, episode, title, start, end, score,
        link}], hits: [...]}."""

        def go() -> dict[str, Any]:
            checked(question, k, episode)
            return service.ask(AskRequest(question, k=k, filters=Filters(episode, day(since), day(until)))).to_dict()

        return run(go)

    @server.tool()
    def episodes() -> dict[str, Any]:
        """What is indexed: {episodes: [{episode, title, start, end (its length), link, published,
        language, passages, page}]}."""
        return run(lambda: {"episodes": [episode_dict(e) for e in service.episodes()]})

    @server.tool()
    def transcript(episode: str, start: float = 0.0, end: float | None = None) -> dict[str, Any]:
        """An episode's transcript, sentence by sentence, from `start` to `end` seconds (the whole
        episode by default): {episode, title, start, end, link, sentences: [{start, end, text, link,
        speaker (when known)}]}."""

        def go() -> dict[str, Any]:
            text_arg(episode)
            if not all(
                isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) for t in (start, end or 0)
            ):
                raise InputError(f"start and end must be times in seconds, not {start!r} and {end!r}")
            if start < 0 or (end is not None and end < start):
                raise InputError(f"start and end must satisfy 0 <= start <= end, not {start} and {end}")
            text = service.transcript(episode)
            ep = text.episode
            names = service.speaker_names(episode)
            sentences = text.between(start, end)
            return {
                "episode": ep.id,
                "title": ep.title,
                "start": round(sentences[0].start, 3) if sentences else start,
                "end": round(sentences[-1].end, 3) if sentences else start,
                "link": link(ep, sentences[0].start if sentences else start),
                "sentences": [
                    {
                        "start": round(s.start, 3),
                        "end": round(s.end, 3),
                        "text": s.text,
                        "link": link(ep, s.start),
                        **({"speaker": names.get(s.speaker, s.speaker)} if s.speaker else {}),
                    }
                    for s in sentences
                ],
            }

        return run(go)

    return server


def serve_stdio(index_dir: Path, *, web_url: str | None = None) -> None:
    import anyio

    service = QueryService(index_dir, link=link_fn(web_url))
    service.episodes()  # a missing or damaged index fails now, before the client connects
    anyio.run(_serve, build_server(service, link=service.link))


def _unreadable(exc: Exception) -> tuple[int | str | None, int, str]:
    """The reply to a line the SDK could not read: (request id when it can be recovered, code,
    message). Python's json reads what the SDK's strict parser refuses, such as a lone surrogate
    escape: such a request gets "invalid params" under its own id."""
    import mcp_types as types

    raw = None
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            raw = errors()[0].get("input")
        except (IndexError, TypeError, AttributeError):
            raw = None
    try:
        obj = json.loads(raw) if isinstance(raw, (str, bytes)) else None
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        request_id = obj.get("id")
        if isinstance(request_id, (int, str)) and not isinstance(request_id, bool):
            safe_id = request_id if isinstance(request_id, int) else request_id.encode("utf-8", "replace").decode()
            return safe_id, types.INVALID_PARAMS, "Invalid params: not valid UTF-8 text (a lone surrogate?)"
    return None, types.PARSE_ERROR, "Parse error: not a JSON-RPC message"


async def _serve(server: Any) -> None:
    """The SDK's stdio transport, with one change: a line that is not a JSON-RPC message gets the
    JSON-RPC parse error (id null) as its reply, where the SDK would answer nothing and leave the
    client waiting."""
    import anyio
    import mcp_types as types
    from mcp.server.stdio import stdio_server
    from mcp.shared._context_streams import create_context_streams
    from mcp.shared.message import SessionMessage

    lowlevel = server._lowlevel_server
    async with stdio_server() as (read_stream, write_stream):
        forward, messages = create_context_streams[SessionMessage | Exception](0)

        async def pump() -> None:
            async with forward:
                async for item in read_stream:
                    if isinstance(item, Exception):
                        request_id, code, message = _unreadable(item)
                        error = types.JSONRPCError(
                            jsonrpc="2.0", id=request_id, error=types.ErrorData(code=code, message=message)
                        )
                        await write_stream.send(SessionMessage(error))
                        continue
                    await forward.send(item)

        async with anyio.create_task_group() as tg:
            tg.start_soon(pump)
            await lowlevel.run(messages, write_stream, lowlevel.create_initialization_options())
            tg.cancel_scope.cancel()
