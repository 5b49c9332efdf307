"""`hmsearch mcp`: a Model Context Protocol server on stdio, so an assistant can search the podcast
and cite the moment. Tools: ``search``, ``ask``, ``episodes`` and ``transcript``; every passage,
sentence and episode they return carries episode, title, start, end (seconds) and a link that
plays from there. Over the same warm ``QueryService`` as the CLI and the web page.

Needs the ``mcp`` SDK (the ``web`` extra). Errors reach the assistant as a tool error with the
one-line message and its class ("NotFoundError: episode 'x' is not in the index ...").
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .errors import HmsearchError, InputError, one_line
from .query import AskRequest, Filters, QueryService, SearchRequest
from .query.links import LinkFn, playback_link, web_link
from .types import Episode

T = TypeVar("T")
MAX_K = 50
MAX_QUERY_CHARS = 1000


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

    def checked(query: str, k: int) -> None:
        if not query.strip():
            raise InputError("the query is empty")
        if len(query) > MAX_QUERY_CHARS:
            raise InputError(f"the query is {len(query)} characters long: at most {MAX_QUERY_CHARS}")
        if not 1 <= k <= MAX_K:
            raise InputError(f"k must be between 1 and {MAX_K}, not {k}")

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
        k: int = 5,
        episode: str | None = None,
        since: str | None = None,
        until: str | None = None,
        mode: str = "hybrid",
    ) -> dict[str, Any]:
        """The passages that match `query`, best first: {query, hits: [{episode, title, start, end, text,
        score, link, ...}]}. A query in double quotes finds that exact phrase and returns its own start
        and end. `since`/`until` are YYYY-MM-DD (publication date); mode is hybrid, semantic or lexical."""

        def go() -> dict[str, Any]:
            checked(query, k)
            request = SearchRequest(query, k=k, mode=mode, filters=Filters(episode, since, until))
            return service.search(request).to_dict()

        return run(go)

    @server.tool()
    def ask(
        question: str,
        k: int = 3,
        episode: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> dict[str, Any]:
        """The sentences that answer `question` (Danish or English), each with its own time and link,
        and the passages they come from: {question, answer: [{text, episode, title, start, end, score,
        link}], hits: [...]}."""

        def go() -> dict[str, Any]:
            checked(question, k)
            return service.ask(AskRequest(question, k=k, filters=Filters(episode, since, until))).to_dict()

        return run(go)

    @server.tool()
    def episodes() -> dict[str, Any]:
        """What is indexed: {episodes: [{episode, title, start, end (its length), link, published,
        language, passages, page}]}."""
        return run(lambda: {"episodes": [episode_dict(e) for e in service.episodes()]})

    @server.tool()
    def transcript(episode: str, start: float = 0.0, end: float | None = None) -> dict[str, Any]:
        """An episode's transcript, sentence by sentence, from `start` to `end` seconds (the whole
        episode by default): {episode, title, start, end, link, sentences: [{start, end, text, link}]}."""

        def go() -> dict[str, Any]:
            text = service.transcript(episode)
            ep = text.episode
            if start < 0 or (end is not None and end < start):
                raise InputError(f"start and end must satisfy 0 <= start <= end, not {start} and {end}")
            sentences = text.between(start, end)
            return {
                "episode": ep.id,
                "title": ep.title,
                "start": round(sentences[0].start, 3) if sentences else start,
                "end": round(sentences[-1].end, 3) if sentences else start,
                "link": link(ep, sentences[0].start if sentences else start),
                "sentences": [
                    {"start": round(s.start, 3), "end": round(s.end, 3), "text": s.text, "link": link(ep, s.start)}
                    for s in sentences
                ],
            }

        return run(go)

    return server


def serve_stdio(index_dir: Path, *, web_url: str | None = None) -> None:
    service = QueryService(index_dir, link=link_fn(web_url))
    service.episodes()  # a missing or damaged index fails now, before the client connects
    build_server(service, link=service.link).run("stdio")
