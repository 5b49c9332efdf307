"""Episode metadata on the write side: sidecars read as `hmsearch index` finds them, and edits of
an indexed episode (`hmsearch episodes EPISODE --set-title ...`). A metadata change is written to
the manifest alone: nothing is embedded again."""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from ..index import IndexStore
from ..metadata import EpisodeMeta, clean_published, clean_title, clean_url, read_sidecar
from ..types import Episode
from .events import EventFn, IndexEvent, IndexReport
from .sources import Source

SIDECAR_INPUT = "sidecar"  # the record's inputs key: the sidecar applied last (path, sha256)


def read_sidecars(sources: list[Source], report: IndexReport, emit: EventFn) -> dict[str, EpisodeMeta]:
    """Each source's sidecar, its fields set on the source (so a build uses them); a sidecar that
    cannot be used is a warning, and its episode is indexed without it."""
    metas: dict[str, EpisodeMeta] = {}
    for source in sources:
        if source.sidecar is None or source.feed:
            continue
        try:
            meta = read_sidecar(source.sidecar)
        except InputError as exc:
            report.warn(f"{exc}; indexed without it", emit, episode=source.id)
            continue
        metas[source.id] = meta
        for key, value in meta.episode_fields().items():
            setattr(source, key, value)
    return metas


def sidecar_input(source: Source, meta: EpisodeMeta) -> dict[str, Any]:
    return {"path": str(source.sidecar.resolve()) if source.sidecar else "", "sha256": meta.sha256}


def apply_changed_sidecars(
    store: IndexStore,
    sources: list[Source],
    unchanged: list[str],
    metas: dict[str, EpisodeMeta],
    report: IndexReport,
    emit: EventFn,
) -> None:
    """Episodes whose transcript is unchanged but whose sidecar is new or changed: their metadata
    is updated in the manifest (no embedding). An unchanged sidecar is not applied again, so an
    edit made with `episodes --set-...` since stays. The caller holds the write lock."""
    by_id = {s.id: s for s in sources}
    for episode_id in unchanged:
        meta = metas.get(episode_id)
        if meta is None:
            continue
        record = store.record(episode_id)
        if (record.inputs.get(SIDECAR_INPUT) or {}).get("sha256") == meta.sha256:
            continue
        inputs = {**record.inputs, SIDECAR_INPUT: sidecar_input(by_id[episode_id], meta)}
        store.update_episode(episode_id, meta.episode_fields(), inputs=inputs)
        save_speaker_names(store, episode_id, meta)
        report.updated.append(episode_id)
        emit(IndexEvent("updated", episode_id, f"metadata from {by_id[episode_id].sidecar}"))


def save_speaker_names(store: IndexStore, episode_id: str, meta: EpisodeMeta) -> None:
    if meta.speakers:
        from ..speakers.names import save_names

        save_names(store.root, episode_id, meta.speakers)


def metadata_changes(
    *, title: str | None = None, published: str | None = None, url: str | None = None, enclosure: str | None = None
) -> dict[str, str | None]:
    """The changes the options ask for, validated as a sidecar is (InputError, exit 2); "" clears
    the date or a URL (not the title)."""
    asked = {"title": title, "published": published, "url": url, "enclosure": enclosure}
    clean = {"title": clean_title, "published": clean_published, "url": clean_url, "enclosure": clean_url}
    changes: dict[str, str | None] = {}
    for key, value in asked.items():
        if value is None:
            continue
        try:
            if key == "enclosure":
                changes[key] = clean_url(value, key) if value else None
            else:
                changes[key] = clean[key](value) if value or key == "title" else None
        except InputError as exc:
            raise InputError(f"--set-{key}: {exc}") from None
    return changes


def edit_episode(store: IndexStore, episode_id: str, changes: dict[str, str | None]) -> Episode:
    """Commit ``changes`` (from metadata_changes) to one episode; the caller holds the write lock."""
    store.record(episode_id)  # NotFoundError (exit 6) for an unknown episode
    return store.update_episode(episode_id, changes)
