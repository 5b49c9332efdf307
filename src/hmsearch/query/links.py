"""Playback links: where a listener clicks to hear a moment. Each presenter has its own; this is
the CLI's (the episode's page, its enclosure URL or the local file, from that second)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlencode

from ..types import Episode, LinkFn

__all__ = ["LinkFn", "episode_href", "playback_link", "web_link"]
_TIMED_PAGES = ("youtube.com", "youtu.be", "vimeo.com")  # pages that take a start time (?t=)


def playback_link(episode: Episode, start: float) -> str:
    """A link that starts playback at ``start``: the episode page where it takes a start time,
    else the audio (its URL or local file) with a media fragment (#t=), else the page."""
    seconds = max(0, int(start))
    if episode.url and any(host in episode.url for host in _TIMED_PAGES):
        return f"{episode.url}{'&' if '?' in episode.url else '?'}t={seconds}s"
    if episode.enclosure:
        return f"{episode.enclosure}#t={seconds}"
    if episode.audio:
        return f"{Path(episode.audio).resolve().as_uri()}#t={seconds}"
    return episode.url or ""


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
