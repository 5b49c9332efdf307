"""`hmsearch reindex`: the whole index rebuilt with another embedding model (or chunking) from what
it already holds — each episode's timed sentences — without Whisper and without the input files.

Every episode's new files are written first (invisible until named), then one new manifest
replaces the old by one atomic rename: searches see the old index until the switch, and a run
killed at any moment leaves the old index whole (the next writer sweeps the unnamed files).
"""

from __future__ import annotations

import time
from dataclasses import replace

from ..chunk import ChunkSettings, chunk_transcript, transcript_from_passages
from ..embed import Encoder
from ..index import IndexStore
from ..index.manifest import EpisodeRecord, Manifest, now
from ..index.store import segment_key
from .commit import finish, store_sentence_vectors, trim_heap
from .events import EventFn, IndexEvent, IndexReport, no_events
from .plan import HASHED_WITH


def reindex(
    store: IndexStore, encoder: Encoder, *, settings: ChunkSettings, on_event: EventFn | None = None
) -> IndexReport:
    """Rebuild every episode of ``store`` with ``encoder`` and ``settings``; one commit at the end.
    The caller holds the write lock."""
    emit = on_event or no_events
    report = IndexReport()
    old = store.require()
    emit(IndexEvent("plan", count=len(old.episodes)))
    new = Manifest(embedding_model=encoder.name, dim=encoder.dim, chunking=settings.to_dict(), created=now())
    for rec in old.episodes.values():
        start = time.perf_counter()
        emit(IndexEvent("start", rec.id, rec.episode.source))
        transcript = transcript_from_passages(store.passages(rec.id), language=rec.language)
        passages = chunk_transcript(
            transcript, count_tokens=encoder.count_tokens, max_tokens=encoder.max_tokens, settings=settings
        )
        vectors = encoder.encode_documents([p.text for p in passages])
        extra = dict(rec.extra)
        extra.setdefault(HASHED_WITH, {"embedding": old.embedding_model, "chunking": old.chunking})
        episode = replace(rec.episode, n_passages=len(passages))
        record = EpisodeRecord(
            episode=episode,
            segment=segment_key(rec.id, f"{episode.content_hash}|{encoder.name}"),
            inputs=rec.inputs,
            feed=rec.feed,
            extra=extra,
        )
        store.write_episode_files(new, record, passages, vectors)
        store_sentence_vectors(store, record.segment, passages, encoder)
        new.episodes[rec.id] = record
        report.replaced.append(rec.id)
        report.passages += len(passages)
        emit(
            IndexEvent(
                "replaced",
                rec.id,
                f"{len(passages)} passages",
                count=len(passages),
                seconds=time.perf_counter() - start,
            )
        )
        del passages, vectors
        trim_heap()
    store.replace_all(new)
    finish(store, encoder)
    return report
