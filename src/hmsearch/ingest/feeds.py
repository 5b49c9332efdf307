"""Podcast feeds: fetching and parsing RSS/Atom, and naming the files of their items.

An item's id is its GUID. The network part (resumable downloads checked for size, time and
content type, never half-written under their final name, http(s) only) is ``hmsearch.fetch``'s.
What to do with the items is ``hmsearch.ingest.update``'s.
"""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import re
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ..audio import AUDIO_SUFFIXES
from ..config import setting
from ..errors import InputError, one_line
from ..fetch import DownloadError as DownloadError
from ..fetch import download as download
from ..fetch import excerpt, fetch_bytes, safe_name
from ..speakers.persons import MAX_PERSONS, Person, item_persons, make_person
from ..text import one_line as plain
from ..types import is_clean_http_url
from .events import IndexReport

if TYPE_CHECKING:
    from .failures import Failure

PODCAST_NS = "https://podcastindex.org/namespace/1.0"
CHAPTERS_TYPE = "application/json+chapters"
# Podcasting 2.0 transcript types we can read, best first (JSON carries word timestamps).
TRANSCRIPT_TYPES = {
    "application/json": ".json",
    "text/vtt": ".vtt",
    "application/x-subrip": ".srt",
    "application/srt": ".srt",
    "text/srt": ".srt",
}
from ..fetch import AUDIO_TYPES as AUDIO_TYPES  # noqa: E402  (where downloads are checked)

EXTENSIONS = {
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
    "audio/mp4": ".m4a",
    "audio/x-m4a": ".m4a",
    "audio/aac": ".aac",
    "audio/ogg": ".ogg",
    "audio/opus": ".opus",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/flac": ".flac",
    "video/mp4": ".mp4",
}


class FeedError(InputError):
    """A feed that cannot be fetched or parsed."""


@dataclass(frozen=True)
class FeedItem:
    guid: str
    title: str
    published: str | None  # ISO 8601, UTC
    link: str | None  # the episode's page
    enclosure: str | None
    enclosure_type: str | None
    enclosure_length: int | None
    transcripts: tuple[tuple[str, str], ...] = ()  # (url, type), best first
    language: str | None = None  # Whisper's code for the item's (else the channel's) <language>, when it names one
    # <podcast:person>: the item's, and the channel's in the roles the item lists none of (not fingerprinted)
    persons: tuple[Person, ...] = ()
    chapters: str | None = None  # <podcast:chapters>: the publisher's JSON chapters (not fingerprinted)

    def fingerprint(self) -> dict[str, Any]:
        """What, when it changes, means the episode must be indexed again."""
        return {
            "enclosure": self.enclosure,
            "length": self.enclosure_length,
            "transcript": self.transcripts[0][0] if self.transcripts else None,
            "title": self.title,
            "published": self.published,
            "link": self.link,
        }


@dataclass
class UpdateReport:
    index: IndexReport = field(default_factory=IndexReport)
    planned: list[tuple[str, str]] = field(default_factory=list)  # (guid, "new"|"changed"|"unchanged")
    pruned: list[str] = field(default_factory=list)
    skipped: int = 0  # outside --since / --limit
    # Items that failed on earlier runs and were not tried: (guid, when backoff lets them be
    # tried again), and those given up on (after max_tries); gave_up: those given up on in this run.
    waiting: list[tuple[str, float]] = field(default_factory=list)
    failing: list[str] = field(default_factory=list)
    gave_up: list[Failure] = field(default_factory=list)

    @property
    def failed(self) -> list[tuple[str, str]]:
        return self.index.failed

    def summary(self) -> str:
        r = self.index
        parts = [
            f"{len(r.added)} new",
            f"{len(r.replaced)} updated",
            f"{len(r.failed)} failed",
            f"{len(r.unchanged)} unchanged",
        ]
        if self.pruned:
            parts.append(f"{len(self.pruned)} pruned")
        if self.waiting:
            parts.append(f"{len(self.waiting)} waiting to retry")
        if self.failing:
            parts.append(f"{len(self.failing)} failing (skipped)")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        from .failures import iso

        return {
            **self.index.to_dict(),
            "new": self.index.added,
            "updated": self.index.replaced,  # the feed's word for a replaced episode (kept for scripts)
            "metadata_updated": self.index.updated,  # unchanged episodes whose record changed (persons)
            "pruned": self.pruned,
            "planned": [{"episode": g, "action": a} for g, a in self.planned],
            "waiting": [{"episode": g, "next_retry": iso(t)} for g, t in self.waiting],
            "failing": self.failing,
            "gave_up": [f.to_dict() for f in self.gave_up],
        }


# ---- fetching ----------------------------------------------------------------------------
def _is_url(s: str) -> bool:
    return urlparse(s).scheme in ("http", "https", "file")


def fetch_feed(source: str) -> bytes:
    """The feed's bytes, from a URL or a local file (at most setting feed_max_mb, within the
    download deadline)."""
    max_bytes = int(setting("feed_max_mb")) << 20
    if urlparse(source).scheme == "file":  # the user's own feed, named as a URL
        source = urllib.request.url2pathname(urlparse(source).path)
    elif _is_url(source):
        try:
            return fetch_bytes(source)
        except DownloadError as exc:
            raise FeedError(str(exc)) from None
    try:
        if Path(source).stat().st_size > max_bytes:
            raise FeedError(f"{source}: feed larger than {max_bytes >> 20} MB (setting feed_max_mb)")
        return Path(source).read_bytes()
    except FileNotFoundError:
        raise FeedError(f"{source}: no such feed file") from None
    except IsADirectoryError:
        raise FeedError(f"{source}: is a folder, not a feed file") from None
    except OSError as exc:
        raise FeedError(f"{source}: cannot read feed ({exc.strerror})") from None


def _xml_root(data: bytes) -> ET.Element | None:
    """The feed's XML tree, for the namespace tags feedparser keeps only in part (None when
    expat cannot read it: feedparser's lenient parse still gives the items)."""
    try:
        return ET.fromstring(data)
    except (ET.ParseError, ValueError):
        return None


def _all_transcripts(root: ET.Element | None) -> dict[str, list[tuple[str, str]]]:
    """guid -> every <podcast:transcript> (feedparser keeps only the last one per item)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for item in root.iter("item") if root is not None else ():
        guid = (item.findtext("guid") or "").strip()
        tags = item.findall(f"{{{PODCAST_NS}}}transcript")
        # The first item of a GUID is the one indexed (later duplicates are reported).
        out.setdefault(guid, [(t.get("url", ""), (t.get("type") or "").split(";")[0].strip().lower()) for t in tags])
    return out


def _persons(element: ET.Element) -> tuple[Person, ...]:
    """The ``<podcast:person>`` children of a channel or item: at most MAX_PERSONS, cleaned."""
    out: list[Person] = []
    for tag in element.iterfind(f"{{{PODCAST_NS}}}person"):
        person = make_person("".join(tag.itertext()), tag.attrib)
        if person is not None and person not in out:
            out.append(person)
            if len(out) == MAX_PERSONS:
                break
    return tuple(out)


def _item_key(item: ET.Element) -> str:
    """An item's id as feedparser names it: GUID, else enclosure URL, else link."""
    enclosure = item.find("enclosure")
    return (
        (item.findtext("guid") or "").strip()
        or (enclosure.get("url", "") if enclosure is not None else "").strip()
        or (item.findtext("link") or "").strip()
    )


def _all_chapters(root: ET.Element | None) -> dict[str, str]:
    """item id -> the URL of its ``<podcast:chapters>`` JSON document (the first one that is JSON
    chapters with a clean http(s) URL)."""
    out: dict[str, str] = {}
    for item in root.iter("item") if root is not None else ():
        for tag in item.iterfind(f"{{{PODCAST_NS}}}chapters"):
            url = tag.get("url", "").strip()
            kind = (tag.get("type") or CHAPTERS_TYPE).split(";")[0].strip().lower()
            if (
                kind in (CHAPTERS_TYPE, "application/json")
                and len(url) <= 2048
                and plain(url) == url
                and is_clean_http_url(url)
            ):
                out.setdefault(_item_key(item), url)
                break
    return out


def _all_persons(root: ET.Element | None) -> tuple[tuple[Person, ...], dict[str, tuple[Person, ...]]]:
    """The channel's persons, and item id (``_item_key``) -> an item's own."""
    channel = root.find("channel") if root is not None else None
    items: dict[str, tuple[Person, ...]] = {}
    for item in root.iter("item") if root is not None else ():
        key = _item_key(item)
        mine = _persons(item)
        if key and mine:
            items.setdefault(key, mine)
    return (_persons(channel) if channel is not None else ()), items


def parse_feed(data: bytes, *, name: str) -> tuple[list[FeedItem], list[tuple[str, str]]]:
    """Items of an RSS 2.0 or Atom feed, and (item, reason) for items that cannot be used."""
    import feedparser

    parsed = feedparser.parse(data)
    if not parsed.entries:
        reason = getattr(parsed, "bozo_exception", None)
        detail = f" ({excerpt(one_line(reason), 100)})" if reason else ""
        raise FeedError(f"{name}: not a podcast feed: no items found{detail}")
    root = _xml_root(data)
    extra = _all_transcripts(root)
    channel_persons, own_persons = _all_persons(root)
    chapters = _all_chapters(root)
    channel_language = feed_language_code(parsed.feed.get("language"))
    items, errors, seen = [], [], set()
    for n, entry in enumerate(parsed.entries, 1):
        enclosures = entry.get("enclosures") or []
        enclosure = enclosures[0] if enclosures else {}
        guid = (entry.get("id") or enclosure.get("href") or entry.get("link") or "").strip()
        title = (entry.get("title") or guid or f"item {n}").strip()
        if not guid:
            errors.append((f"item {n}", f"{name}: item {n} ('{title}') has no GUID, enclosure or link"))
            continue
        if guid in seen:
            errors.append((guid, f"{guid}: duplicate GUID in {name} (item {n}, '{title}'); only the first is indexed"))
            continue
        seen.add(guid)
        published = None
        when = entry.get("published_parsed") or entry.get("updated_parsed")
        if when:
            import datetime

            published = datetime.datetime.fromtimestamp(calendar.timegm(when), datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            )
        link = entry.get("link") if str(entry.get("link", "")).startswith(("http://", "https://")) else None
        found = extra.get(guid) or (
            [(entry["podcast_transcript"].get("url", ""), entry["podcast_transcript"].get("type", ""))]
            if entry.get("podcast_transcript")
            else []
        )
        usable = sorted(
            ((u, t) for u, t in found if u and t in TRANSCRIPT_TYPES),
            key=lambda ut: list(TRANSCRIPT_TYPES).index(ut[1]),
        )
        length = None
        with contextlib.suppress(TypeError, ValueError):
            length = int(enclosure.get("length") or 0) or None
        if not enclosure.get("href") and not usable:
            errors.append((guid, f"{guid}: item '{title}' has neither audio nor a transcript"))
            continue
        items.append(
            FeedItem(
                guid=guid,
                title=title,
                published=published,
                link=link,
                enclosure=enclosure.get("href"),
                enclosure_type=enclosure.get("type"),
                enclosure_length=length,
                transcripts=tuple(usable),
                language=feed_language_code(entry.get("language")) or channel_language,
                persons=item_persons(own_persons.get(guid, ()), channel_persons),
                chapters=chapters.get(guid),
            )
        )
    return items, errors


def feed_language_code(value: object) -> str | None:
    """Whisper's code for a feed's ``<language>`` ("da", "da-DK", "en-us"), or None when it names
    none Whisper knows (the episode's language is then detected)."""
    from ..asr.options import language_code

    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return language_code(re.split(r"[-_]", value.strip())[0])
    except InputError:
        return None


def local_name(item: FeedItem, suffix: str) -> str:
    """A stable file name for an item: readable title slug plus a hash of the GUID."""
    # 64 bits of the GUID's hash: two feeds sharing an audio folder never pick one name (issue 27, 4)
    return f"{safe_name(item.title)}-{hashlib.sha256(item.guid.encode()).hexdigest()[:16]}{suffix}"


def _audio_suffix(item: FeedItem) -> str:
    """The saved file's extension: one of the audio extensions hmsearch reads, never one the feed
    makes up (.html, .sh: issue 12, finding 2)."""
    path_suffix = Path(urlparse(item.enclosure or "").path).suffix.lower()
    if path_suffix in AUDIO_SUFFIXES:
        return path_suffix
    return EXTENSIONS.get((item.enclosure_type or "").lower(), ".mp3")
