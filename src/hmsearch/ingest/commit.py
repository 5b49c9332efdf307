"""The single writer: each built episode is committed as it is ready, one commit per episode, then
the search caches and the query encoder are brought up to date."""

from __future__ import annotations

import ctypes
import logging
import time
from typing import Any

from ..chunk import ChunkSettings, sentences_from_passages
from ..embed import Encoder, export_query_encoder
from ..index import IndexStore
from ..index import sentences as sentence_vectors
from ..types import Passage
from .build import EpisodeBuild
from .events import EventFn, IndexEvent, IndexReport

log = logging.getLogger(__name__)


def commit_build(
    store: IndexStore,
    build: EpisodeBuild,
    encoder: Encoder,
    settings: ChunkSettings,
    report: IndexReport,
    emit: EventFn,
) -> None:
    start = time.perf_counter()
    store.ensure(embedding_model=encoder.name, dim=encoder.dim, chunking=settings.to_dict())
    source = build.job.source
    store.put_episode(build.episode, build.passages, build.vectors, inputs=build.job.inputs, feed=source.feed)
    phases = {**build.phases, "commit": time.perf_counter() - start}
    start = time.perf_counter()
    store_sentence_vectors(store, store.record(source.id).segment, build.passages, encoder)
    phases["sentences"] = time.perf_counter() - start
    (report.replaced if build.job.replaces else report.added).append(source.id)
    report.passages += len(build.passages)
    emit(
        IndexEvent(
            "replaced" if build.job.replaces else "added",
            source.id,
            f"{len(build.passages)} passages"
            + (f", transcribed by {build.episode.transcript_source}" if build.job.needs_whisper else "")
            + (f" on {build.worker}" if build.worker else ""),
            count=len(build.passages),
            seconds=sum(phases.values()),
            phases=phases,
        )
    )


def store_sentence_vectors(store: IndexStore, segment: str, passages: list[Passage], encoder: Encoder) -> None:
    """Embed an episode version's sentences once, for the answer stage (index/sentences.py). A
    derived file: one that cannot be written (disk full) is a warning, and ``ask`` embeds instead."""
    said = sentences_from_passages(passages)
    if not said:
        return
    vectors = encoder.encode_documents([s.text for s in said])
    try:
        sentence_vectors.save(store, segment, [s.start for s in said], vectors, model=encoder.name)
    except OSError as exc:
        log.warning("cannot save sentence vectors of %s (%s): answers embed them when asked", segment, exc)


def finish(store: IndexStore, encoder: Encoder) -> None:
    """After a batch of commits: build the search caches, export the query encoder once."""
    store.finish()
    export_query_encoder(encoder, store.model_cache)


_LIBC: Any = None


def trim_heap() -> None:
    """Give the heap that one episode's audio, tensors and text freed back to the OS (glibc keeps
    it otherwise: over a back catalogue the process crept up several MB an episode)."""
    global _LIBC
    if _LIBC is False:
        return
    try:
        if _LIBC is None:
            _LIBC = ctypes.CDLL("libc.so.6")
        _LIBC.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        _LIBC = False
