"""`hmsearch update`: a feed -> what is new -> download -> (transcribe) -> index.

Where the feed publishes a transcript (Podcasting 2.0 ``<podcast:transcript>``: SRT, WebVTT or
JSON) it is indexed instead of running Whisper; otherwise the enclosure is downloaded into the
audio folder and transcribed. Items are planned by their feed fingerprint before anything is
downloaded (``plan.plan_feed_items``); a failed item is reported and, as nothing of it was
committed, retried on the next run.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ..embed import Encoder
from ..errors import HmsearchError
from ..index import IndexStore
from . import IndexOptions, index_sources
from .events import EventFn, IndexEvent, no_events
from .feeds import (
    AUDIO_TYPES,
    TRANSCRIPT_TYPES,
    DownloadError,
    FeedItem,
    UpdateReport,
    _audio_suffix,
    _is_url,
    download,
    fetch_feed,
    local_name,
    parse_feed,
)
from .plan import plan_feed_items
from .sources import Source


def update_feed(
    feed: str,
    store: IndexStore,
    *,
    audio_dir: Path,
    encoder: Encoder,
    options: IndexOptions,
    since: str | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    prune: bool = False,
    on_event: EventFn | None = None,
) -> UpdateReport:
    """Bring the index up to date with ``feed``. The caller holds the write lock (except for a dry run)."""
    emit = on_event or no_events
    report = UpdateReport()
    items, errors = parse_feed(fetch_feed(feed), name=feed)
    for guid, reason in errors:
        report.index.fail(guid, reason, emit)
    items.sort(key=lambda i: i.published or "", reverse=True)  # newest first
    if since:
        kept = [i for i in items if i.published and i.published[:10] >= since]
        report.skipped += len(items) - len(kept)
        items = kept
    if limit is not None:
        report.skipped += max(0, len(items) - limit)
        items = items[:limit]
    manifest = store.manifest
    feed_key = feed if _is_url(feed) else str(Path(feed).resolve())
    sources: list[Source] = []
    for item, action in plan_feed_items(items, manifest, force=options.force):
        report.planned.append((item.guid, action))
        if dry_run or action == "unchanged":
            if action == "unchanged":
                report.index.unchanged.append(item.guid)
                emit(IndexEvent("unchanged", item.guid))
            continue
        emit(IndexEvent("download", item.guid, item.title))
        try:
            sources.append(_fetch_item(item, feed_key, audio_dir))
        except HmsearchError as exc:
            report.index.fail(item.guid, f"{item.guid}: {exc}", emit)
    if prune and manifest is not None:
        listed = {i.guid for i in items} | {g for g, _ in errors}
        for episode_id, rec in list(manifest.episodes.items()):
            if (rec.feed or {}).get("url") == feed_key and episode_id not in listed and not since and limit is None:
                report.pruned.append(episode_id)
                if not dry_run:
                    store.remove_episode(episode_id)
                    emit(IndexEvent("pruned", episode_id))
    if dry_run or not sources:
        if report.pruned and not dry_run:
            store.finish()
        return report
    # Already planned by feed fingerprint above: every fetched item is (re)indexed.
    index_sources(
        sources, store, encoder=encoder, options=replace(options, force=True), on_event=emit, report=report.index
    )
    return report


def _fetch_item(item: FeedItem, feed_key: str, audio_dir: Path) -> Source:
    """Download what the index needs of one item: its transcript if the feed has one, else audio."""
    meta: dict[str, Any] = {
        "title": item.title,
        "published": item.published,
        "url": item.link,
        "enclosure": item.enclosure,
        "feed": {"url": feed_key, "item": item.fingerprint()},
    }
    if item.transcripts:
        url, ctype = item.transcripts[0]
        path = audio_dir / local_name(item, TRANSCRIPT_TYPES[ctype])
        download(
            url,
            path,
            expect=("text/", "application/json", "application/x-subrip", "application/srt", "application/octet-stream"),
        )
        return Source(id=item.guid, transcript=path, **meta)
    if not item.enclosure:
        raise DownloadError(f"item '{item.title}' has no enclosure")
    path = audio_dir / local_name(item, _audio_suffix(item))
    if not (path.is_file() and item.enclosure_length and path.stat().st_size == item.enclosure_length):
        download(item.enclosure, path, expect=AUDIO_TYPES, expected_length=item.enclosure_length)
    return Source(id=item.guid, audio=path, **meta)
