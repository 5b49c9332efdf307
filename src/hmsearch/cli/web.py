"""Commands that serve the index to others: web (the page and the JSON API), mcp (for assistants)."""

from __future__ import annotations

import click

from ..errors import HmsearchError
from . import cli
from ._common import err, service_of


def _require_extra(module: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise HmsearchError(f"{module} is not installed: pip install 'hmsearch[web]' (or run scripts/setup.sh)")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every one).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option(
    "--rate-limit",
    default=300,
    show_default=True,
    type=click.IntRange(0, 1_000_000),
    help="Requests per minute one client may make (after a burst of 60); 0: no limit.",
)
@click.pass_context
def web(ctx: click.Context, host: str, port: int, rate_limit: int) -> None:
    """Serve the search page, the episode pages and the JSON API (Ctrl-C stops it).

    Ask in the box; click a result and the episode plays from that second; the episode page
    shows the whole transcript and follows along while it plays. The model and index stay
    loaded, and an `hmsearch index`/`update` by another process is picked up by itself.

    \b
    JSON API (the shapes of --json): /api/search?q=..., /api/ask?q=..., /api/episodes,
    /api/episodes/ID/transcript; described at /api/openapi.json.

    \b
    Examples:
      hmsearch web                      # then open http://127.0.0.1:8000
      hmsearch --index-dir index-dk web --port 8080
      curl 'http://127.0.0.1:8000/api/ask?q=hvor+hurtigt+skal+man+svare'
    """
    _require_extra("starlette")
    _require_extra("uvicorn")
    from ..web.app import WebLimits, create_app, create_service
    from ..web.server import is_loopback, listen, serve

    service_of(ctx).check_index()  # no index: one line and exit 4, before anything loads
    sock = listen(host, port)  # a port in use fails now, before the model loads
    service = create_service(ctx.obj["index_dir"])
    if not ctx.obj["quiet"]:
        err("loading the index and the model ...")
    service.warm()
    app = create_app(service, WebLimits(rate_per_minute=float(rate_limit)))
    if not ctx.obj["quiet"]:
        bound = sock.getsockname()
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        err(f"serving {ctx.obj['index_dir']} on http://{shown}:{bound[1]}/ (Ctrl-C stops)")
        if not is_loopback(host):
            err(
                f"note: listening on {host}: anyone who can reach this port can search the index and play "
                "its audio (the page has no login); keep 127.0.0.1 behind a reverse proxy to restrict it"
            )
    serve(app, sock)


@cli.command()
@click.option(
    "--web-url",
    metavar="URL",
    default=None,
    help="Link to a running `hmsearch web` at URL (its episode pages play from the second) "
    "instead of the episode's own page, enclosure or file.",
)
@click.pass_context
def mcp(ctx: click.Context, web_url: str | None) -> None:
    """Serve the index to an assistant over the Model Context Protocol (stdio).

    Tools: search, ask, episodes, transcript. Every result carries episode, title, start,
    end and a link that plays from there, so the assistant can cite the moment.

    \b
    Example (an MCP client's server entry):
      {"command": "hmsearch", "args": ["--index-dir", "/path/to/index", "mcp"]}
    """
    _require_extra("mcp")
    from ..mcp_server import serve_stdio

    service_of(ctx).check_index()
    serve_stdio(ctx.obj["index_dir"], web_url=web_url)
