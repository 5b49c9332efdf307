"""Podcast feeds: fetching and parsing RSS/Atom, and downloading enclosures and transcripts.

An item's id is its GUID. Downloads are resumable, checked for size and content type, and never
half-written under their final name. What to do with the items is ``hmsearch.ingest.update``'s.
"""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import http.client
import os
import re
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..audio import AUDIO_SUFFIXES
from ..config import setting
from ..errors import InputError, one_line
from .events import IndexReport

TIMEOUT = 30.0  # seconds per network read (the whole download has setting download_deadline)
BLOCK = 1 << 16  # bytes read at a time
FEED_SCHEMES = ("http", "https")  # what a URL taken from a feed may be: never file:, ftp: ...
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
USER_AGENT = "hmsearch/0.1 (+podcast search)"
PODCAST_NS = "https://podcastindex.org/namespace/1.0"
# Podcasting 2.0 transcript types we can read, best first (JSON carries word timestamps).
TRANSCRIPT_TYPES = {
    "application/json": ".json",
    "text/vtt": ".vtt",
    "application/x-subrip": ".srt",
    "application/srt": ".srt",
    "text/srt": ".srt",
}
AUDIO_TYPES = ("audio/", "video/", "application/octet-stream", "binary/octet-stream", "application/ogg")
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


class DownloadError(InputError):
    """An enclosure or transcript that could not be downloaded as promised."""


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
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.index.to_dict(),
            "new": self.index.added,
            "updated": self.index.replaced,
            "pruned": self.pruned,
            "planned": [{"episode": g, "action": a} for g, a in self.planned],
        }


# ---- fetching ----------------------------------------------------------------------------
def _is_url(s: str) -> bool:
    return urlparse(s).scheme in ("http", "https", "file")


def excerpt(text: object, limit: int = 80) -> str:
    """Text from outside (a server's reason phrase, a URL from a feed) for an error message: at
    most ``limit`` characters, control characters escaped."""
    s = str(text)
    s = s if len(s) <= limit else s[:limit] + "..."
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", s)


def check_feed_url(url: str) -> None:
    """A URL named by a feed (enclosure, transcript) must be http(s): a remote feed must not make
    hmsearch read local files (file://) or speak other protocols (issue 12, finding 1)."""
    scheme = urlparse(url).scheme.lower()
    if scheme not in FEED_SCHEMES:
        raise DownloadError(f"{excerpt(url, 120)}: not fetched: a feed's URLs must be http or https, not {scheme!r}")


class _Budget:
    """The limits of one download: bytes at most and an overall deadline (a server trickling a
    byte every few seconds never times out a single read: issue 12, finding 11)."""

    def __init__(self, url: str, max_bytes: int, what: str) -> None:
        self.url, self.max_bytes, self.what = url, max_bytes, what
        self.seconds = float(setting("download_deadline"))
        self.deadline = time.monotonic() + self.seconds

    def check(self, size: int) -> None:
        if size > self.max_bytes:
            raise DownloadError(
                f"{excerpt(self.url, 120)}: {self.what} larger than {self.max_bytes >> 20} MB; not downloaded "
                f"(setting {'feed_max_mb' if self.what == 'feed' else 'download_max_mb'})"
            )
        if time.monotonic() > self.deadline:
            raise DownloadError(
                f"{excerpt(self.url, 120)}: {self.what} download took longer than {self.seconds:.0f} s; "
                f"given up (setting download_deadline)"
            )


def _read_block(response: Any) -> bytes:
    """What the server has sent, up to BLOCK bytes, without waiting for a whole block."""
    read1 = getattr(response, "read1", None)
    return bytes(read1(BLOCK) if read1 is not None else response.read(BLOCK))


def _open(url: str, headers: dict[str, str] | None = None) -> Any:
    # the user's own feed, and the URLs it names
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})  # noqa: S310
    return urllib.request.urlopen(request, timeout=TIMEOUT)  # noqa: S310


def _net_reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {excerpt(exc.reason, 60)}"
    if isinstance(exc, urllib.error.URLError):
        return f"network error ({excerpt(exc.reason, 80)})"
    if isinstance(exc, http.client.IncompleteRead):
        return f"connection closed after {len(exc.partial)} bytes, {exc.expected} short"
    return f"{type(exc).__name__}: {excerpt(exc, 80)}" if str(exc) else type(exc).__name__


def fetch_feed(source: str) -> bytes:
    """The feed's bytes, from a URL or a local file (at most setting feed_max_mb, within the
    download deadline)."""
    max_bytes = int(setting("feed_max_mb")) << 20
    if _is_url(source):
        budget = _Budget(source, max_bytes, "feed")
        try:
            with _open(source) as response:
                length = response.headers.get("Content-Length")
                if length and length.isdigit():
                    budget.check(int(length))
                parts, size = [], 0
                while block := _read_block(response):
                    parts.append(block)
                    size += len(block)
                    budget.check(size)
                if length and length.isdigit() and size < int(length):
                    raise http.client.IncompleteRead(b"".join(parts), int(length) - size)
                return b"".join(parts)
        except DownloadError as exc:
            raise FeedError(str(exc)) from None
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            raise FeedError(f"{source}: cannot fetch feed: {_net_reason(exc)}") from None
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


def _all_transcripts(data: bytes) -> dict[str, list[tuple[str, str]]]:
    """guid -> every <podcast:transcript> (feedparser keeps only the last one per item)."""
    out: dict[str, list[tuple[str, str]]] = {}
    with contextlib.suppress(ET.ParseError, ValueError):
        root = ET.fromstring(data)
        for item in root.iter("item"):
            guid = (item.findtext("guid") or "").strip()
            tags = item.findall(f"{{{PODCAST_NS}}}transcript")
            # The first item of a GUID is the one indexed (later duplicates are reported).
            out.setdefault(
                guid, [(t.get("url", ""), (t.get("type") or "").split(";")[0].strip().lower()) for t in tags]
            )
    return out


def parse_feed(data: bytes, *, name: str) -> tuple[list[FeedItem], list[tuple[str, str]]]:
    """Items of an RSS 2.0 or Atom feed, and (item, reason) for items that cannot be used."""
    import feedparser

    parsed = feedparser.parse(data)
    if not parsed.entries:
        reason = getattr(parsed, "bozo_exception", None)
        detail = f" ({excerpt(one_line(reason), 100)})" if reason else ""
        raise FeedError(f"{name}: not a podcast feed: no items found{detail}")
    extra = _all_transcripts(data)
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


def download(
    url: str,
    target: Path,
    *,
    expect: tuple[str, ...] | None = None,
    expected_length: int | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Download ``url`` (http or https) to ``target``: into ``.<name>.part`` first (resumed with a
    Range request when a previous run left one), checked for content type, length, size (setting
    download_max_mb) and time (download_deadline), then renamed. Files are private to the user."""
    check_feed_url(url)
    budget = _Budget(url, int(setting("download_max_mb")) << 20, "download")
    part = target.with_name(f".{target.name}.part")
    target.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        response = _open(url, headers)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the part is already whole
            response = None
        else:
            raise DownloadError(f"{url}: download failed: {_net_reason(exc)}") from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        raise DownloadError(f"{url}: download failed: {_net_reason(exc)}") from None
    total = None
    if response is not None:
        with response:
            ctype = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if expect and ctype and not ctype.startswith(expect):
                raise DownloadError(
                    f"{url}: served {excerpt(ctype, 40)}, not {' or '.join(e.rstrip('/') for e in expect)}"
                )
            length = response.headers.get("Content-Length")
            if response.status == 206:
                m = re.match(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
                if not m or int(m.group(1)) != have:
                    have, mode = 0, "wb"  # a range we did not ask for: start again
                else:
                    mode = "ab"
                total = int(m.group(2)) if m and m.group(2) != "*" else None
            else:
                have, mode = 0, "wb"  # the server ignored the range: start again
                total = int(length) if length and length.isdigit() else None
            if total:
                try:
                    budget.check(total)
                except DownloadError:
                    part.unlink(missing_ok=True)
                    raise
            try:
                fd = os.open(part, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "ab" else os.O_TRUNC), 0o600)
                os.fchmod(fd, 0o600)  # private, like everything downloaded (a part of an older run too)
                with os.fdopen(fd, mode) as fh:
                    while block := _read_block(response):
                        fh.write(block)
                        have += len(block)
                        if have > budget.max_bytes:
                            fh.close()
                            part.unlink(missing_ok=True)  # an endless body: nothing to resume
                            budget.check(have)
                        budget.check(0)  # the deadline; what came so far is kept for the next run
                        if progress:
                            progress(have, total)
                    fh.flush()
                    os.fsync(fh.fileno())
            except (OSError, ValueError, http.client.HTTPException) as exc:  # cut off, reset, timeout: keep the part
                raise DownloadError(
                    f"{url}: download interrupted after {have} bytes ({_net_reason(exc)}); the next run resumes it"
                ) from None
    size = part.stat().st_size if part.exists() else 0
    want = total or expected_length
    if total and size != total:
        raise DownloadError(f"{url}: truncated download ({size} of {total} bytes); the next run resumes it")
    if size == 0:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{url}: empty download")
    if want and not total and size < want * 0.9:
        # The feed's own length is often slightly off; far short is a cut-off file.
        raise DownloadError(f"{url}: truncated download ({size} bytes; the feed says {want})")
    os.replace(part, target)
    return target


def _slug(text: str, limit: int = 60) -> str:
    s = re.sub(r"[^\w-]+", "-", text.lower(), flags=re.UNICODE).strip("-")[:limit].strip("-")
    return s or "episode"


def local_name(item: FeedItem, suffix: str) -> str:
    """A stable file name for an item: readable title slug plus a hash of the GUID."""
    return f"{_slug(item.title)}-{hashlib.sha1(item.guid.encode()).hexdigest()[:8]}{suffix}"


def _audio_suffix(item: FeedItem) -> str:
    """The saved file's extension: one of the audio extensions hmsearch reads, never one the feed
    makes up (.html, .sh: issue 12, finding 2)."""
    path_suffix = Path(urlparse(item.enclosure or "").path).suffix.lower()
    if path_suffix in AUDIO_SUFFIXES:
        return path_suffix
    return EXTENSIONS.get((item.enclosure_type or "").lower(), ".mp3")
