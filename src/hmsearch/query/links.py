"""Playback links: where a listener clicks to hear a moment. Each presenter has its own; this is
the CLI's (the episode's page, its enclosure URL or the local file, from that second)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..types import Episode

LinkFn = Callable[[Episode, float], str]
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
