"""What is new: fingerprints of the inputs, a content hash of inputs and settings, and the plan.

Planning reads files' sizes and times (and hashes what changed) but runs no model: what must be
transcribed, embedded and committed is known before any of it starts, and a model or chunking
mismatch with the index stops the run before any work.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ..asr import Transcriber
from ..audio import file_hash, probe_audio
from ..chunk import ChunkSettings
from ..errors import HmsearchError, InputError
from ..index.manifest import EpisodeRecord, Manifest
from .events import EventFn, IndexEvent, IndexReport
from .sources import Source

PIPELINE_VERSION = "2"  # bump when chunking or storage changes what an unchanged input produces
HASHED_WITH = "hashed_with"  # record key: the model and chunking an episode's content hash names


@dataclass(frozen=True)
class Job:
    """One episode to (re)build: its source, the fingerprints of its inputs, its content hash."""

    source: Source
    inputs: dict[str, Any]
    content_hash: str
    replaces: bool  # an earlier version of the episode is in the index

    @property
    def needs_whisper(self) -> bool:
        return self.source.transcript is None and self.source.audio is not None

    @property
    def audio_sha256(self) -> str:
        return str(self.inputs["audio"]["sha256"])


@dataclass
class Plan:
    jobs: list[Job] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def input_fingerprint(path: Path, previous: dict[str, Any] | None) -> dict[str, Any]:
    """Path, size, mtime and sha256; the hash is reused while size and mtime are unchanged, so a
    no-op run over a big archive only stats its files."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    fp = {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if previous and all(previous.get(k) == fp[k] for k in fp) and previous.get("sha256"):
        return {**fp, "sha256": previous["sha256"]}
    return {**fp, "sha256": file_hash(path)}


def content_hash(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def plan_sources(
    sources: Sequence[Source],
    manifest: Manifest | None,
    *,
    model: str,
    transcriber: Transcriber,
    settings: ChunkSettings,
    force: bool,
    report: IndexReport,
    emit: EventFn,
) -> Plan:
    """Which sources are new or changed (jobs) and which are unchanged; bad inputs are failed items."""
    plan = Plan()
    chunking = settings.to_dict()
    for source in sources:
        previous: EpisodeRecord | None = manifest.episodes.get(source.id) if manifest else None
        try:
            if previous is not None and previous.feed and not source.feed:
                # A feed's episode is the feed's: a local file of the same stem does not replace it.
                raise InputError(
                    f"{source.name}: episode id '{source.id}' belongs to a feed episode "
                    f"({previous.feed.get('url')}); rename the file or remove that episode first"
                )
            inputs: dict[str, Any] = {}
            prev_inputs = previous.inputs if previous else {}
            if source.audio:
                inputs["audio"] = input_fingerprint(source.audio, prev_inputs.get("audio"))
            if source.transcript:
                inputs["transcript"] = input_fingerprint(source.transcript, prev_inputs.get("transcript"))
            # An episode rebuilt by `reindex` keeps the hash of its inputs: it records the model and
            # chunking that hash was computed with (the index itself holds one model, checked apart).
            hashed = (previous.extra.get(HASHED_WITH) if previous else None) or {}
            parts: dict[str, Any] = {
                "pipeline": PIPELINE_VERSION,
                "embedding": hashed.get("embedding", model),
                "chunking": hashed.get("chunking", chunking),
                "inputs": {k: v["sha256"] for k, v in inputs.items()},
                "feed": (source.feed or {}).get("item"),
            }
            if not source.transcript and source.audio:
                if not previous:
                    probe_audio(source.audio)  # a bad file says so before any model talk
                parts["whisper"] = transcriber.content_key()
            digest = content_hash(parts)
            if previous and previous.content_hash == digest and not force:
                plan.unchanged.append(source.id)
                report.unchanged.append(source.id)
                emit(IndexEvent("unchanged", source.id))
                continue
            plan.jobs.append(Job(source, inputs, digest, replaces=previous is not None))
        except HmsearchError as exc:
            fail(report, emit, source, exc)
    return plan


class _Item(Protocol):
    @property
    def guid(self) -> str: ...

    def fingerprint(self) -> dict[str, Any]: ...


Item = TypeVar("Item", bound=_Item)


def plan_feed_items(items: Sequence[Item], manifest: Manifest | None, *, force: bool) -> list[tuple[Item, str]]:
    """(item, "new"|"changed"|"unchanged") for feed items, before anything is downloaded: an item
    whose feed fingerprint (enclosure, transcript, title, date, link) is the one recorded is
    unchanged without a download."""
    out = []
    for item in items:
        record = manifest.episodes.get(item.guid) if manifest else None
        unchanged = record is not None and (record.feed or {}).get("item") == item.fingerprint() and not force
        out.append((item, "unchanged" if unchanged else ("changed" if record else "new")))
    return out


def fail(report: IndexReport, emit: EventFn, source: Source, exc: Exception) -> None:
    reason = str(exc) if str(exc).startswith(source.name) else f"{source.name}: {exc}"
    report.fail(source.name, reason, emit, episode=source.id)
