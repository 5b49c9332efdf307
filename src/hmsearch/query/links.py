"""Playback links: where a listener clicks to hear a moment. Each presenter has its own; this is
the CLI's (the episode's page, its enclosure URL or the local file, from that second)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

from ..types import Episode, LinkFn

__all__ = ["LinkFn", "episode_href", "http_url", "playback_link", "public_link", "web_link"]
_TIMED_PAGES = ("youtube.com", "youtu.be", "vimeo.com")  # pages that take a start time (?t=)


def http_url(url: str | None) -> str | None:
    """``url`` when it is an absolute http(s) URL (an enclosure or page from a feed), else None: no
    other scheme (javascript:, data:, file:, ftp:) a feed writes is ever handed out as a link."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def playback_link(episode: Episode, start: float) -> str:
    """A link that starts playback at ``start``: the episode page where it takes a start time,
    else the audio (its URL or local file) with a media fragment (#t=), else the page. Feed URLs
    count only when they are http(s)."""
    seconds = max(0, int(start))
    page, enclosure = http_url(episode.url), http_url(episode.enclosure)
    if page and any(host in page for host in _TIMED_PAGES):
        return f"{page}{'&' if '?' in page else '?'}t={seconds}s"
    if enclosure:
        return f"{enclosure}#t={seconds}"
    if episode.audio:
        return f"{Path(episode.audio).resolve().as_uri()}#t={seconds}"
    return page or ""


def public_link(episode: Episode, start: float) -> str:
    """A link anyone can open (for published show notes): as ``playback_link`` but never a local
    file; "" when the episode has no http(s) page or enclosure."""
    link = playback_link(episode, start)
    return link if http_url(link) else (http_url(episode.url) or "")


def episode_href(episode_id: str, start: float | None = None, end: float | None = None) -> str:
    """The web page's URL of an episode (shareable): /episode/ID?t=START&end=END."""
    path = f"/episode/{quote(episode_id, safe='')}"
    params: dict[str, str] = {}
    if start is not None:
        params["t"] = f"{max(0.0, start):.3f}".rstrip("0").rstrip(".")
    if end is not None:
        params["end"] = f"{max(0.0, end):.3f}".rstrip("0").rstrip(".")
    return path + ("?" + urlencode(params) if params else "")


def web_link(base: str = "") -> LinkFn:
    """Links into `hmsearch web` at ``base`` (its episode page from that second)."""
    root = base.rstrip("/")
    return lambda episode, start: root + episode_href(episode.id, start)
