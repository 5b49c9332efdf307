"""An episode's metadata from outside its transcript: a sidecar file beside an imported transcript
(``<stem>.meta.json``), or `hmsearch episodes EPISODE --set-title ...`. Both are validated here by
one set of rules, so nothing a hostile file or argument holds reaches the manifest, a terminal or
the web page: http(s) URLs only, ISO dates, lengths capped, control characters gone.

The sidecar's name ends in ``.json`` (editors know it) but never stands for a transcript: discovery
(ingest/sources.py) sets every ``*.meta.json`` aside as a sidecar before it looks at suffixes.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .text import one_line
from .types import is_clean_http_url

SIDECAR_SUFFIX = ".meta.json"
MAX_SIDECAR_BYTES = 64 * 1024  # a few fields; anything bigger is not a sidecar
MAX_TITLE = 300  # characters
MAX_URL = 2048
MAX_SPEAKERS = 50
MAX_NAME = 100  # a speaker's id or name
KEYS = ("title", "published", "url", "enclosure", "speakers")


@dataclass(frozen=True)
class EpisodeMeta:
    """What a sidecar says; None (or no speakers) where it says nothing."""

    title: str | None = None
    published: str | None = None
    url: str | None = None  # the episode's page
    enclosure: str | None = None  # the audio's URL
    speakers: dict[str, str] = field(default_factory=dict)  # speaker id or voice -> name
    sha256: str = ""  # of the sidecar's bytes: an unchanged sidecar is not applied again

    def episode_fields(self) -> dict[str, str]:
        """The Episode fields it sets."""
        values = {"title": self.title, "published": self.published, "url": self.url, "enclosure": self.enclosure}
        return {k: v for k, v in values.items() if v is not None}


def is_sidecar(path: Path) -> bool:
    return path.name.lower().endswith(SIDECAR_SUFFIX)


def sidecar_of(path: Path) -> Path:
    """The sidecar beside a transcript or audio file: ``ep.srt`` -> ``ep.meta.json``."""
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def _text(value: Any, key: str, limit: int) -> str:
    if not isinstance(value, str):
        raise InputError(f"'{key}' is not a string")
    text = one_line(value)
    if not text:
        raise InputError(f"'{key}' is empty")
    if len(text) > limit:
        raise InputError(f"'{key}' is longer than {limit} characters")
    return text


def clean_title(value: Any) -> str:
    return _text(value, "title", MAX_TITLE)


def clean_url(value: Any, key: str = "url") -> str:
    url = _text(value, key, MAX_URL)
    if not is_clean_http_url(url):
        raise InputError(f"'{key}' is not an http(s) URL: {url[:80]!r}")
    return url


def clean_published(value: Any) -> str:
    """An ISO date (2024-03-01) or date and time (2024-03-01T09:30:00Z, kept in UTC)."""
    text = _text(value, "published", 40)
    try:
        return datetime.date.fromisoformat(text).isoformat()
    except ValueError:
        pass
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"'published' is not an ISO date (YYYY-MM-DD): {text!r}") from None
    if when.tzinfo is None:
        return when.isoformat(timespec="seconds")
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def clean_speakers(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise InputError("'speakers' is not an object of speaker -> name")
    if len(value) > MAX_SPEAKERS:
        raise InputError(f"'speakers' names more than {MAX_SPEAKERS} speakers")
    return {_text(k, "speakers", MAX_NAME): _text(v, f"speakers.{k}"[:40], MAX_NAME) for k, v in value.items()}


def clean_meta(raw: Any, *, sha256: str = "") -> EpisodeMeta:
    """A sidecar's JSON object, validated whole: any bad field is an InputError (the caller then
    indexes the episode without it)."""
    if not isinstance(raw, dict):
        raise InputError("not a JSON object")
    unknown = sorted(str(k)[:40] for k in raw if k not in KEYS)
    if unknown:
        raise InputError(f"unknown key {', '.join(map(repr, unknown[:3]))} (known: {', '.join(KEYS)})")
    return EpisodeMeta(
        title=clean_title(raw["title"]) if raw.get("title") is not None else None,
        published=clean_published(raw["published"]) if raw.get("published") is not None else None,
        url=clean_url(raw["url"]) if raw.get("url") is not None else None,
        enclosure=clean_url(raw["enclosure"], "enclosure") if raw.get("enclosure") is not None else None,
        speakers=clean_speakers(raw["speakers"]) if raw.get("speakers") is not None else {},
        sha256=sha256,
    )


def read_sidecar(path: Path) -> EpisodeMeta:
    """The sidecar at ``path``; InputError naming the file when it cannot be used."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SIDECAR_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the sidecar ({exc.strerror or exc})") from None
    try:
        if len(data) > MAX_SIDECAR_BYTES:
            raise InputError(f"larger than {MAX_SIDECAR_BYTES // 1024} KB")
        try:
            raw = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise InputError(f"not valid JSON ({str(exc).splitlines()[0][:80]})") from None
        return clean_meta(raw, sha256=hashlib.sha256(data).hexdigest())
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
