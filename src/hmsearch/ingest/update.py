"""`hmsearch update`: a feed -> what is new -> download -> (transcribe) -> index.

Where the feed publishes a transcript (Podcasting 2.0 ``<podcast:transcript>``: SRT, WebVTT or
JSON) it is indexed instead of running Whisper; otherwise the enclosure is downloaded into the
audio folder and transcribed. Items are planned by their feed fingerprint before anything is
downloaded (``plan.plan_feed_items``); a failed item is reported and, as nothing of it was
committed, retried on a later run: once its backoff has passed, and until it has failed
``max_tries`` times (``failures.py``: then it is skipped, and no longer fails the run).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..config import setting
from ..embed import Encoder
from ..errors import HmsearchError, IndexLockedError
from ..fetch import DownloadError, check_url, download, excerpt, fetch_bytes
from ..index import IndexStore
from ..index.manifest import Manifest
from . import IndexOptions, index_sources
from .events import EventFn, IndexEvent, no_events
from .failures import FailureRecord, fingerprint_key, load_failures
from .feeds import (
    AUDIO_TYPES,
    TRANSCRIPT_TYPES,
    FeedItem,
    UpdateReport,
    _audio_suffix,
    _is_url,
    fetch_feed,
    local_name,
    parse_feed,
)
from .plan import plan_feed_items
from .sources import Source

DOWNLOAD_LOCK = ".hmsearch-download.lock"  # in the audio folder, while a job downloads into it


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
    wait: bool = False,
    feed_language: bool = True,
    retry_failed: bool = False,
    max_tries: int | None = None,
    on_event: EventFn | None = None,
    clock: Callable[[], float] = time.time,
) -> UpdateReport:
    """Bring the index up to date with ``feed``.

    The feed and its items are fetched without the write lock (a slow server holds up no other
    job); the lock is taken (``wait``: waiting for it) only to index and prune. A dry run takes
    no lock. An item whose GUID is the id of an episode this feed does not own (a local file's
    stem, another feed's GUID) is a failed item: a feed replaces only its own episodes.

    ``feed_language``: Whisper hears the language the feed's ``<language>`` names, over the
    transcriber's own (the environment's or config's); the CLI passes False when ``--language`` was
    given on the command line. A feed that names none leaves the transcriber's language (None:
    detected per episode).

    An item that failed on an earlier run waits for its backoff, and after ``max_tries`` (None: the
    setting feed_max_tries) failed tries is skipped; ``retry_failed`` tries both kinds now. The
    record of failed items is written under the write lock; ``clock`` is its time (for tests)."""
    emit = on_event or no_events
    report = UpdateReport()
    max_tries = int(setting("feed_max_tries", max_tries))
    now = clock()
    if not dry_run:
        store.check_writable()  # before any download
    failures = load_failures(store.root)
    if failures.warning:
        emit(IndexEvent("notice", detail=failures.warning))
    items, errors = parse_feed(fetch_feed(feed), name=feed)
    in_feed = {i.guid for i in items} | {g for g, _ in errors}
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
    feed_key = feed if _is_url(feed) else str(Path(feed).resolve())
    items = _owned(items, store.manifest, feed_key, report, emit)
    sources: list[Source] = []
    tried: list[FeedItem] = []  # items downloaded (or tried) in this run
    listed_failures = len(report.index.failed)  # the feed's own (duplicate GUIDs ...): not tries
    if not wait and not dry_run:
        store.check_unlocked()  # refused now, before downloading what could not be indexed (exit 5)
    with contextlib.ExitStack() as downloading:
        locked = False
        for item, action in plan_feed_items(items, store.manifest, force=options.force):
            if (
                action != "unchanged"
                and not retry_failed
                and _held_back(failures, feed_key, item, now, max_tries, report)
            ):
                continue
            report.planned.append((item.guid, action))
            if dry_run or action == "unchanged":
                if action == "unchanged":
                    report.index.unchanged.append(item.guid)
                    emit(IndexEvent("unchanged", item.guid))
                continue
            if not locked:
                downloading.enter_context(_download_lock(audio_dir, wait=wait))
                locked = True
            emit(IndexEvent("download", item.guid, item.title))
            tried.append(item)
            try:
                sources.append(_fetch_item(item, feed_key, audio_dir))
            except HmsearchError as exc:
                report.index.fail(item.guid, f"{item.guid}: {exc}", emit)
    listed = {i.guid for i in items} | {g for g, _ in errors} | {g for g, _ in report.index.failed}
    if dry_run:
        if prune and store.manifest is not None and not since and limit is None:
            report.pruned.extend(_unlisted(store.manifest, feed_key, listed))
        return report
    with store.writing(wait=wait):
        manifest = store.manifest  # re-read under the lock: another job may have committed
        owned_ids = {i.guid for i in _owned(items, manifest, feed_key, report, emit)}
        sources = [s for s in sources if s.id in owned_ids]
        if prune and manifest is not None and not since and limit is None:
            for episode_id in _unlisted(manifest, feed_key, listed):
                report.pruned.append(episode_id)
                store.remove_episode(episode_id)
                emit(IndexEvent("pruned", episode_id))
        if sources:
            options = _with_feed_language(options, items, sources, emit) if feed_language else options
            # Already planned by feed fingerprint above: every fetched item is (re)indexed.
            index_sources(
                sources,
                store,
                encoder=encoder,
                options=replace(options, force=True),
                on_event=emit,
                report=report.index,
            )
            _name_speakers(store, sources, report, emit)
        elif report.pruned:
            store.finish()
        _refresh_persons(store, items, report, emit)
        _refresh_chapters(store, items, report, emit)
        failures = load_failures(store.root)  # re-read under the lock: another feed's job may have saved it
        outcomes = dict(report.index.failed[listed_failures:])
        _record_outcomes(
            failures, feed_key, tried, sources, in_feed, outcomes, report, now=clock(), max_tries=max_tries
        )
    _remove_failed(sources, report)
    return report


def _held_back(
    failures: FailureRecord, feed_key: str, item: FeedItem, now: float, max_tries: int, report: UpdateReport
) -> bool:
    """Whether an item that failed before is skipped this run: it has failed ``max_tries`` times
    ("failing"), or its backoff has not passed. An item the feed has changed since is tried now."""
    entry = failures.get(feed_key, item.guid)
    if entry is None or entry.fingerprint != fingerprint_key(item.fingerprint()):
        return False
    if entry.tries >= max_tries:
        report.failing.append(item.guid)
        return True
    if now < entry.next_try():
        report.waiting.append((item.guid, entry.next_try()))
        return True
    return False


def _record_outcomes(
    failures: FailureRecord,
    feed_key: str,
    tried: list[FeedItem],
    sources: list[Source],
    in_feed: set[str],
    reasons: dict[str, str],
    report: UpdateReport,
    *,
    now: float,
    max_tries: int,
) -> None:
    """Count this run's failed tries (``reasons``: failed name -> reason), forget the items that succeeded, are indexed unchanged or
    left the feed, and save the record (only when it changed)."""
    name_of = {s.id: s.name for s in sources}
    changed = False
    for item in tried:
        reason = reasons.get(item.guid) or reasons.get(name_of.get(item.guid, item.guid))
        if reason is None:
            changed |= failures.forget(feed_key, item.guid)
            continue
        before = failures.get(feed_key, item.guid)
        entry = failures.fail(
            feed_key,
            item.guid,
            title=item.title,
            reason=reason,
            now=now,
            fingerprint=fingerprint_key(item.fingerprint()),
            max_tries=max_tries,
        )
        if entry.gave_up and not (before is not None and before.gave_up and before.fingerprint == entry.fingerprint):
            report.gave_up.append(entry)
        changed = True
    for guid in report.index.unchanged:
        changed |= failures.forget(feed_key, guid)
    for feed, guid in list(failures.items):
        if feed == feed_key and guid not in in_feed:
            changed |= failures.forget(feed, guid)
    if changed or failures.warning:  # a damaged file is replaced by a sound one (or none)
        failures.save()


def _name_speakers(store: IndexStore, sources: list[Source], report: UpdateReport, emit: EventFn) -> None:
    """Names for the speakers of the episodes just indexed, from the feed's ``<podcast:person>``
    tags (ingest/speakers.py): no manual step. A names or voices file that cannot be read is said,
    and fails no episode (they are indexed already)."""
    done = set(report.index.added) | set(report.index.replaced)
    for source in sources:
        if source.id in done and (source.feed or {}).get("persons"):
            _name_from_feed(store, source.id, emit)


def _name_from_feed(store: IndexStore, episode_id: str, emit: EventFn) -> None:
    from .speakers import name_from_feed

    try:
        named = name_from_feed(store, episode_id)
    except HmsearchError as exc:
        emit(IndexEvent("notice", episode_id, detail=f"{episode_id}: speakers not named from the feed: {exc}"))
        return
    if named:
        who = ", ".join(f"{k}={v}" for k, v in named.items())
        emit(IndexEvent("notice", episode_id, detail=f"{episode_id}: speakers named from the feed: {who}"))


def _refresh_persons(store: IndexStore, items: list[FeedItem], report: UpdateReport, emit: EventFn) -> None:
    """An unchanged episode whose ``<podcast:person>`` tags the feed has changed since (a host adds
    the guest's name after publishing): the tags are written to its record — the manifest alone,
    nothing is heard or embedded again — and its speakers are named from them as a new episode's
    are (a name the user gave stays). The caller holds the write lock."""
    unchanged = set(report.index.unchanged)
    manifest = store.manifest
    if not unchanged or manifest is None:
        return
    for item in items:
        record = manifest.episodes.get(item.guid)
        if item.guid not in unchanged or record is None or not isinstance(record.feed, dict):
            continue
        persons = [p.to_dict() for p in item.persons]
        if persons == (record.feed.get("persons") or []):
            continue
        feed = {k: v for k, v in record.feed.items() if k != "persons"}
        if persons:
            feed["persons"] = persons
        store.update_episode(item.guid, {}, feed=feed)
        report.index.updated.append(item.guid)
        emit(IndexEvent("updated", item.guid, "the feed's <podcast:person> tags"))
        if persons:
            _name_from_feed(store, item.guid, emit)


def _refresh_chapters(store: IndexStore, items: list[FeedItem], report: UpdateReport, emit: EventFn) -> None:
    """The publisher's chapters (an item's ``<podcast:chapters>`` JSON) for each episode of the
    feed whose record does not hold that document yet: downloaded (size and time capped), read
    (host/chapters.py ``read_podcast_chapters``) and written to the record, where ``chapters``,
    notes and the web page take them instead of the ones hmsearch finds. A document that cannot be
    fetched or read is said once and fails nothing (the next run tries again); an item that drops
    the tag drops them. The caller holds the write lock."""
    from ..host.chapters import MAX_CHAPTERS_BYTES, read_podcast_chapters

    manifest = store.manifest
    if manifest is None:
        return
    fresh = set(report.index.added) | set(report.index.replaced)
    for item in items:
        record = manifest.episodes.get(item.guid)
        if record is None or not isinstance(record.feed, dict) or record.feed.get("chapters_url") == item.chapters:
            continue
        feed = {k: v for k, v in record.feed.items() if k not in ("chapters", "chapters_url")}
        if item.chapters:
            try:
                data = fetch_bytes(item.chapters, max_bytes=MAX_CHAPTERS_BYTES, what="chapters")
                chapters = read_podcast_chapters(data, record.episode.duration or None)
            except (DownloadError, ValueError, OverflowError) as exc:
                emit(
                    IndexEvent(
                        "notice", item.guid, detail=f"{item.guid}: the feed's chapters not read: {excerpt(exc, 160)}"
                    )
                )
                continue
            feed.update(chapters_url=item.chapters, chapters=[c.to_dict() for c in chapters])
        store.update_episode(item.guid, {}, feed=feed)
        if item.guid not in fresh:
            if item.guid not in report.index.updated:  # its persons may have changed too
                report.index.updated.append(item.guid)
            emit(IndexEvent("updated", item.guid, "the feed's <podcast:chapters>"))


def _with_feed_language(
    options: IndexOptions, items: list[FeedItem], sources: list[Source], emit: EventFn
) -> IndexOptions:
    """``options`` with the feed's language for Whisper, said once when audio will be heard in it."""
    language = next((i.language for i in items if i.language), None)
    spec = options.transcriber
    if language is None or language == spec.language:
        return options
    if any(s.audio and not s.transcript for s in sources):
        emit(IndexEvent("notice", detail=f"language {language}, from the feed's <language> (--language overrides it)"))
    return replace(options, transcriber=replace(spec, language=language))


@contextlib.contextmanager
def _download_lock(audio_dir: Path, *, wait: bool) -> Iterator[None]:
    """One job at a time downloads into a folder (two would write the same partial files); held
    only while downloading, not while indexing."""
    audio_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(audio_dir / DOWNLOAD_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise IndexLockedError(
                f"{audio_dir}: another hmsearch job is downloading into this folder; "
                f"wait for it to finish (or pass --wait)"
            ) from None
        yield
    finally:
        os.close(fd)


def _owned(
    items: list[FeedItem], manifest: Manifest | None, feed_key: str, report: UpdateReport, emit: EventFn
) -> list[FeedItem]:
    """The items this feed may (re)index: new ids, or episodes it owns. The others are failed items."""
    out = []
    for item in items:
        record = manifest.episodes.get(item.guid) if manifest else None
        if record is not None and (record.feed or {}).get("url") != feed_key:
            owner = (record.feed or {}).get("url") or record.episode.source or "a local file"
            report.index.fail(
                item.guid,
                f"{item.guid}: the GUID is the id of an episode this feed does not own ({excerpt(owner, 100)}); "
                f"not indexed (remove that episode first to let the feed have it)",
                emit,
            )
            continue
        out.append(item)
    return out


def _unlisted(manifest: Manifest, feed_key: str, listed: set[str]) -> list[str]:
    """Episodes of this feed that it no longer lists."""
    return [
        episode_id
        for episode_id, rec in manifest.episodes.items()
        if (rec.feed or {}).get("url") == feed_key and episode_id not in listed
    ]


def _remove_failed(sources: list[Source], report: UpdateReport) -> None:
    """Delete the downloaded files of items that failed (a web page saved as audio, a transcript
    that does not parse): nothing of a failed item stays behind (issue 12, finding 2). Interrupted
    downloads keep their hidden ``.part`` file, which the next run resumes."""
    failed = {name for name, _ in report.index.failed}
    for source in sources:
        if source.name in failed:
            for path in (source.audio, source.transcript):
                if path is not None:
                    with contextlib.suppress(OSError):
                        path.unlink()


def _fetch_item(item: FeedItem, feed_key: str, audio_dir: Path) -> Source:
    """Download what the index needs of one item: its transcript if the feed has one, else audio."""
    meta: dict[str, Any] = {
        "title": item.title,
        "published": item.published,
        "url": item.link,
        "enclosure": item.enclosure,
        "feed": {"url": feed_key, "item": item.fingerprint()},
    }
    if item.persons:  # <podcast:person>: names for the speakers (name_from_feed), `speakers --json`
        meta["feed"]["persons"] = [p.to_dict() for p in item.persons]
    if item.transcripts:
        url, ctype = item.transcripts[0]
        check_url(url)
        path = audio_dir / local_name(item, TRANSCRIPT_TYPES[ctype])
        download(
            url,
            path,
            expect=("text/", "application/json", "application/x-subrip", "application/srt", "application/octet-stream"),
        )
        return Source(id=item.guid, transcript=path, **meta)
    if not item.enclosure:
        raise DownloadError(f"item '{item.title}' has no enclosure")
    check_url(item.enclosure)
    path = audio_dir / local_name(item, _audio_suffix(item))
    if not (path.is_file() and item.enclosure_length and path.stat().st_size == item.enclosure_length):
        download(item.enclosure, path, expect=AUDIO_TYPES, expected_length=item.enclosure_length)
    return Source(id=item.guid, audio=path, **meta)
