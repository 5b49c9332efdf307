"""Files and feeds -> the index, the batch job: plan (what is new) -> build (transcribe, chunk,
embed; a pure step a worker can run) -> commit (one writer, one commit per episode).

An episode whose inputs and settings hash the same as last time is skipped; one bad file is
reported and the rest go on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..asr import ProgressFn, Transcriber, TranscriberSpec, load_transcriber
from ..asr.store import save_stored, store_path
from ..audio import probe_audio
from ..chunk import ChunkSettings
from ..config import setting
from ..embed import Encoder
from ..errors import BackendError, HmsearchError
from ..index import IndexStore
from .backends import Backend, Outcome, ProcessBackend
from .build import build_episode
from .commit import commit_build, finish, trim_heap
from .events import EventFn, IndexEvent, IndexReport, no_events
from .metadata import SIDECAR_INPUT, apply_changed_sidecars, read_sidecars, save_speaker_names, sidecar_input
from .plan import Job, fail, plan_sources
from .sources import Source, discover

__all__ = ["IndexEvent", "IndexOptions", "IndexReport", "Source", "discover", "index_paths", "index_sources"]


@dataclass(frozen=True)
class IndexOptions:
    transcriber: TranscriberSpec
    settings: ChunkSettings | None = None  # None: the index's own, else the model's default
    force: bool = False  # re-index episodes whose inputs are unchanged
    workers: int | None = None  # transcription workers (processes or Ray actors; None: the backend's default)
    backend: str = "local"  # local, processes or ray (hmsearch.ingest.backends.choose_backend)
    ray_address: str | None = None  # None: the setting, else Ray's RAY_ADDRESS, else a local Ray
    show_progress: bool = False  # Whisper's own progress bar (`hmsearch index` reports "progress" events instead)


def make_backend(
    name: str,
    spec: TranscriberSpec,
    cache_dir: Path | None,
    *,
    workers: int | None,
    ray_address: str | None,
    emit: EventFn | None = None,
) -> Backend | None:
    """The backend called ``name`` (None for local: the writer transcribes itself). Here, beside
    its one caller, so that backends.py (the base) and ray_backend.py (built on it) form no circle."""
    if name == "local":
        return None
    if name == "processes":
        return ProcessBackend(spec, cache_dir, workers=workers or 2)
    from .ray_backend import RayBackend

    return RayBackend(spec, cache_dir, workers=workers, address=setting("ray_address", ray_address), emit=emit)


def index_paths(
    paths: Iterable[Path],
    store: IndexStore,
    *,
    encoder: Encoder,
    options: IndexOptions,
    on_event: EventFn | None = None,
) -> IndexReport:
    """Index every episode under ``paths`` that is new or changed. The caller holds the write lock."""
    emit = on_event or no_events
    report = IndexReport()
    sources, errors = discover(paths, exclude=[store.root])
    for name, reason in errors:
        report.fail(name, reason, emit)
    return index_sources(sources, store, encoder=encoder, options=options, on_event=emit, report=report)


def index_sources(
    sources: list[Source],
    store: IndexStore,
    *,
    encoder: Encoder,
    options: IndexOptions,
    on_event: EventFn | None = None,
    report: IndexReport | None = None,
) -> IndexReport:
    """Add or replace the sources that are new or changed; one writer, one episode per commit.

    With a backend other than local, audio that needs Whisper is transcribed by its workers (other
    processes, or a Ray cluster) while this process builds and commits the episodes in plan order
    as their transcripts arrive. A backend that cannot start fails before anything is written; one
    that goes away mid-run fails with the episodes committed so far kept.
    """
    emit = on_event or no_events
    report = report or IndexReport()
    emit(IndexEvent("plan", count=len(sources)))
    settings = chunk_settings(store, encoder, options.settings)
    store.check_settings(embedding_model=encoder.name, dim=None, chunking=settings.to_dict())
    transcriber = load_transcriber(options.transcriber)
    metas = read_sidecars(sources, report, emit)
    plan = plan_sources(
        sources,
        store.manifest,
        model=encoder.name,
        transcriber=transcriber,
        settings=settings,
        force=options.force,
        report=report,
        emit=emit,
    )
    # the sidecar is recorded beside the inputs but is not in the content hash: a metadata change
    # alone is a manifest update (below), not a rebuild
    for job in plan.jobs:
        if job.source.id in metas:
            job.inputs[SIDECAR_INPUT] = sidecar_input(job.source, metas[job.source.id])
    if plan.unchanged and metas and store.manifest is not None:
        apply_changed_sidecars(store, sources, plan.unchanged, metas, report, emit)
    if transcriber.notice and any(j.needs_whisper for j in plan.jobs):
        emit(IndexEvent("notice", detail=transcriber.notice))
    transcript_dir = store.root / "transcripts"
    need = [
        j
        for j in plan.jobs
        if j.needs_whisper and not store_path(transcript_dir, j.audio_sha256, transcriber).is_file()
    ]
    heard = {id(j): _audio_seconds(j) for j in need}
    if need:
        emit(IndexEvent("work", count=len(need), seconds=sum(heard.values())))
    backend = None
    if need and not (options.backend == "processes" and len(need) <= 1):
        backend = make_backend(
            options.backend,
            options.transcriber,
            transcript_dir,
            workers=options.workers,
            ray_address=options.ray_address,
            emit=emit,
        )
    try:
        if backend is not None:
            backend.start()
        elif need:
            emit(IndexEvent("loading", detail=f"{options.transcriber.engine} {transcriber.model_id}"))
            try:
                transcriber.load()  # before the first episode, so that its time is not the episode's
            except HmsearchError:
                pass  # each episode that needs it fails with the reason, as before
        _build_and_commit(plan.jobs, heard, backend, store, transcriber, encoder, settings, options, report, emit)
    except BackendError:
        # a backend gone mid-run (a Ray cluster that went away): what was committed is searchable
        if report.added or report.replaced:
            finish(store, encoder)
        raise
    finally:
        if backend is not None:
            backend.close()
    for episode_id in report.added + report.replaced:
        if episode_id in metas:
            save_speaker_names(store, episode_id, metas[episode_id])
    if report.added or report.replaced:
        finish(store, encoder)
    return report


def _audio_seconds(job: Job) -> float:
    """The audio's declared length (0.0 when the container does not say or cannot be read:
    the episode then fails, or is counted as it ends)."""
    assert job.source.audio is not None
    try:
        return probe_audio(job.source.audio).duration
    except HmsearchError:
        return 0.0


def _build_and_commit(
    jobs: list[Job],
    heard: dict[int, float],
    backend: Backend | None,
    store: IndexStore,
    transcriber: Transcriber,
    encoder: Encoder,
    settings: ChunkSettings,
    options: IndexOptions,
    report: IndexReport,
    emit: EventFn,
) -> None:
    """``heard``: the audio seconds of each job Whisper hears (by ``id``), for progress."""
    transcript_dir = store.root / "transcripts"
    need = [j for j in jobs if id(j) in heard]
    for job, outcome, worker, remote in _with_transcripts(jobs, need, backend):
        episode = job.source.id
        emit(IndexEvent("start", episode, job.source.name, seconds=heard.get(id(job), 0.0)))
        try:
            if isinstance(outcome, str):
                raise HmsearchError(outcome)
            if outcome is not None:
                save_stored(transcript_dir, job.audio_sha256, transcriber, outcome)
            build = build_episode(
                job,
                transcriber,
                encoder,
                settings=settings,
                transcript_dir=transcript_dir,
                transcript=outcome,
                show_progress=options.show_progress,
                on_progress=_progress(emit, episode),
                worker=worker,
            )
            build.phases.update(remote)
            commit_build(store, build, encoder, settings, report, emit)
            del build
            trim_heap()
        except HmsearchError as exc:
            fail(report, emit, job.source, exc)


def _progress(emit: EventFn, episode: str) -> ProgressFn:
    def report(seconds: float) -> None:
        emit(IndexEvent("progress", episode, seconds=seconds))

    return report


def chunk_settings(store: IndexStore, encoder: Encoder, requested: ChunkSettings | None = None) -> ChunkSettings:
    """How passages are cut: as asked, else as the index records, else the model's default."""
    if requested is not None:
        return requested
    manifest = store.manifest
    if manifest is not None:
        recorded = ChunkSettings.from_dict(manifest.chunking)
        if recorded is not None:
            return recorded
    return encoder.card.chunking


def _with_transcripts(
    jobs: list[Job], need: list[Job], backend: Backend | None
) -> Iterator[tuple[Job, Outcome | None, str, dict[str, float]]]:
    """Each job in plan order, with its transcript and worker when the backend made it (else None:
    the writer reads the stored one or transcribes it itself)."""
    if backend is None:
        yield from ((j, None, "", {}) for j in jobs)
        return
    results = backend.run(need)
    wanted = {id(j) for j in need}
    for job in jobs:
        if id(job) in wanted:
            result = next(results)
            assert result.job is job
            yield job, result.outcome, result.worker, result.phases
        else:
            yield job, None, "", {}
    for _ in results:  # nothing is left; this ends the backend's generator
        pass
