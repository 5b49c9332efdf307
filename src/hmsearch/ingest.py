"""Folders of audio and transcripts -> what is new -> transcribe -> chunk -> embed -> index.

An episode's id is its file's stem. An audio file with a transcript of the same stem beside it
(.json, .srt, .vtt) uses that transcript instead of running Whisper. An episode whose inputs and
settings hash the same as last time is skipped; one bad file is reported and the rest go on.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .audio import AUDIO_SUFFIXES, SAMPLE_RATE, decode_audio, file_hash, probe_audio
from .chunk import chunk_transcript
from .config import ChunkSettings
from .embed import Embedder
from .errors import HmsearchError, InputError
from .lexical import guess_language
from .formats import TRANSCRIPT_SUFFIXES, format_json, parse_whisper_json, read_transcript
from .store import IndexStore, atomic_write
from .types import Episode, Transcript

PIPELINE_VERSION = "2"  # bump when chunking or storage changes what an unchanged input produces


@dataclass
class Source:
    """One episode's input files: audio, a transcript, or both (same stem, same folder)."""

    id: str
    audio: Path | None = None
    transcript: Path | None = None
    # What a feed says about the episode (None for plain files).
    title: str | None = None
    published: str | None = None
    url: str | None = None  # the episode's page
    enclosure: str | None = None  # the audio's URL
    feed: dict[str, Any] | None = None  # feed URL and the item's fingerprint, recorded in the manifest

    @property
    def name(self) -> str:
        return str(self.transcript or self.audio) if (self.transcript or self.audio) else self.id


ENGINES = ("openai", "faster-whisper")


@dataclass
class WhisperOptions:
    model: str
    language: str | None = None
    greedy: bool = False
    show_progress: bool = False
    engine: str = "openai"  # openai-whisper (torch), or faster-whisper (CTranslate2, int8; optional extra)
    _spec: Any = None
    _model: Any = None

    def spec(self):
        if self._spec is None:
            if self.engine == "faster-whisper":
                from .ct2_whisper import resolve

                self._spec = resolve(self.model)
            elif self.engine == "openai":
                from .transcribe import resolve_whisper_model

                self._spec = resolve_whisper_model(self.model)
            else:
                raise InputError(f"unknown Whisper engine '{self.engine}': use one of {', '.join(ENGINES)}")
        return self._spec

    def loaded(self):
        if self._model is None:
            if self.engine == "faster-whisper":
                from .ct2_whisper import load
            else:
                from .transcribe import load_whisper_model as load
            self._model = load(self.spec())
        return self._model

    def transcribe(self, samples: Any) -> Transcript:
        if self.engine == "faster-whisper":
            from .ct2_whisper import transcribe_samples
        else:
            from .transcribe import transcribe_samples
        return transcribe_samples(self.loaded(), samples, language=self.language, greedy=self.greedy,
                                  show_progress=self.show_progress, model_id=self.spec().model_id)

    @property
    def cache_tag(self) -> str:
        """Names the model (and engine) in the transcript store: engines never share entries."""
        prefix = "" if self.engine == "openai" else "fw-"
        return "".join(c if c.isalnum() else "_" for c in f"{prefix}{self.spec().model_id}-{self.language or 'auto'}")


@dataclass
class IndexReport:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file, one-line reason)
    passages: int = 0

    def summary(self) -> str:
        parts = [f"{len(self.added)} added", f"{len(self.replaced)} replaced", f"{len(self.unchanged)} unchanged"]
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"added": self.added, "replaced": self.replaced, "unchanged": self.unchanged,
                "failed": [{"file": f, "error": e} for f, e in self.failed], "passages": self.passages}


def discover(paths: Iterable[Path]) -> tuple[list[Source], list[tuple[str, str]]]:
    """Group the audio and transcript files under ``paths`` into Sources, by folder and stem.

    Returns the sources and (path, reason) for paths that do not exist or hold nothing usable.
    """
    known = AUDIO_SUFFIXES + TRANSCRIPT_SUFFIXES
    groups: dict[tuple[Path, str], dict[str, Path]] = {}
    errors: list[tuple[str, str]] = []

    def consider(f: Path, explicit: bool) -> None:
        suffix = f.suffix.lower()
        if suffix not in known:
            if explicit:
                errors.append((str(f), f"{f}: not an audio or transcript file (known: {' '.join(known)})"))
            return
        kind = "audio" if suffix in AUDIO_SUFFIXES else "transcript"
        slot = groups.setdefault((f.parent.resolve(), f.stem), {})
        if kind in slot and slot[kind] != f:
            # Two transcripts of one stem: prefer Whisper JSON (it has word times), then VTT, then SRT.
            rank = {".json": 0, ".vtt": 1, ".srt": 2}
            if kind == "transcript" and rank[suffix] < rank[slot[kind].suffix.lower()]:
                slot[kind] = f
            return
        slot[kind] = f

    for path in paths:
        path = Path(path)
        if not path.exists():
            errors.append((str(path), f"{path}: no such file or folder"))
        elif path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith("."):
                        consider(Path(root) / name, explicit=False)
        else:
            consider(path, explicit=True)
            if path.suffix.lower() in known:  # an explicit file picks up its partner beside it
                for suffix in known:
                    partner = path.with_suffix(suffix)
                    if partner != path and partner.is_file():
                        consider(partner, explicit=False)
    sources: list[Source] = []
    seen: dict[str, Source] = {}
    for (_folder, stem), slot in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        source = Source(id=stem, audio=slot.get("audio"), transcript=slot.get("transcript"))
        if stem in seen:
            errors.append((source.name, f"{source.name}: duplicate episode id '{stem}' (also {seen[stem].name})"))
            continue
        seen[stem] = source
        sources.append(source)
    return sources, errors


def _input_fingerprint(path: Path, previous: dict[str, Any] | None) -> dict[str, Any]:
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


def _content_hash(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def whisper_transcript(audio: Path, audio_sha256: str, whisper: WhisperOptions, cache_dir: Path | None, *,
                       samples: Any = None) -> Transcript:
    """Transcribe ``audio`` with Whisper, reusing a stored transcript of the same audio bytes,
    model and language (Whisper is the slow part: never run it twice on the same input)."""
    cache_file = None
    if cache_dir is not None:
        cache_file = cache_dir / f"{audio_sha256[:24]}-{whisper.cache_tag}.json"
        if cache_file.is_file():
            try:
                return parse_whisper_json(json.loads(cache_file.read_bytes()), name=str(cache_file))
            except (HmsearchError, ValueError):
                pass  # a damaged cache entry is simply redone
    if samples is None:
        samples = decode_audio(audio)
    transcript = whisper.transcribe(samples)
    if cache_file is not None:
        atomic_write(cache_file, format_json(transcript).encode("utf-8"))
    return transcript


EventFn = Callable[[str, str, str], None]  # (kind, episode id, detail)


def index_paths(
    paths: Iterable[Path],
    store: IndexStore,
    *,
    embedder: Embedder,
    whisper: WhisperOptions,
    settings: ChunkSettings = ChunkSettings(),
    force: bool = False,
    workers: int = 1,
    on_event: EventFn | None = None,
) -> IndexReport:
    """Index every episode under ``paths`` that is new or changed. The caller holds the write lock."""
    report = IndexReport()
    sources, errors = discover(paths)
    for name, reason in errors:
        report.failed.append((name, reason))
        if on_event:
            on_event("failed", name, reason)
    return index_sources(sources, store, embedder=embedder, whisper=whisper, settings=settings, force=force,
                         workers=workers, on_event=on_event, report=report)


def index_sources(
    sources: list[Source],
    store: IndexStore,
    *,
    embedder: Embedder,
    whisper: WhisperOptions,
    settings: ChunkSettings = ChunkSettings(),
    force: bool = False,
    workers: int = 1,
    on_event: EventFn | None = None,
    report: IndexReport | None = None,
) -> IndexReport:
    """Add or replace the sources that are new or changed; one writer, one episode per commit.

    With ``workers`` > 1, audio that needs Whisper is transcribed first in that many processes
    (into the transcript store); chunking, embedding and index writes stay in this process.
    """
    emit = on_event or (lambda kind, episode, detail: None)
    report = report or IndexReport()
    emit("plan", "", str(len(sources)))
    manifest = store.manifest
    chunking = settings.to_dict()
    todo: list[tuple[Source, dict[str, Any], str, dict[str, Any] | None]] = []
    for source in sources:
        previous = manifest.episodes.get(source.id) if manifest else None
        try:
            inputs: dict[str, Any] = {}
            prev_inputs = (previous or {}).get("inputs", {})
            if source.audio:
                inputs["audio"] = _input_fingerprint(source.audio, prev_inputs.get("audio"))
            if source.transcript:
                inputs["transcript"] = _input_fingerprint(source.transcript, prev_inputs.get("transcript"))
            parts: dict[str, Any] = {
                "pipeline": PIPELINE_VERSION, "embedding": embedder.name, "chunking": chunking,
                "inputs": {k: v["sha256"] for k, v in inputs.items()},
                "feed": (source.feed or {}).get("item"),
            }
            if not source.transcript:
                if not previous:
                    probe_audio(source.audio)  # type: ignore[arg-type]  # a bad file says so before any model talk
                parts["whisper"] = [whisper.spec().model_id, whisper.language,
                                    *([whisper.engine] if whisper.engine != "openai" else [])]
            content_hash = _content_hash(parts)
            if previous and previous.get("content_hash") == content_hash and not force:
                report.unchanged.append(source.id)
                emit("unchanged", source.id, "")
                continue
            todo.append((source, inputs, content_hash, previous))
        except HmsearchError as exc:
            _fail(report, emit, source, exc)
    if workers > 1:
        need = [(s.audio, i["audio"]["sha256"]) for s, i, _, _ in todo if not s.transcript and s.audio]
        if len(need) > 1:
            pretranscribe(need, whisper, store.root / "transcripts", workers=workers)
    for source, inputs, content_hash, previous in todo:
        emit("start", source.id, source.name)
        try:
            episode, chunks, vectors = _build_episode(source, inputs, content_hash, store, embedder, whisper, settings)
            store.ensure(embedding_model=embedder.name, dim=embedder.dim, chunking=chunking)
            extra: dict[str, Any] = {"inputs": inputs}
            if source.feed:
                extra["feed"] = source.feed
            store.put_episode(episode, chunks, vectors, extra=extra)
            (report.replaced if previous else report.added).append(source.id)
            report.passages += len(chunks)
            emit("replaced" if previous else "added", source.id, f"{len(chunks)} passages")
            del chunks, vectors
            trim_heap()
        except HmsearchError as exc:
            _fail(report, emit, source, exc)
    if report.added or report.replaced:
        store.finish()
        export_query_encoder(store, embedder)
    return report


def export_query_encoder(store: IndexStore, embedder: Embedder) -> bool:
    """Export the index's model for torch-free queries once (a derived cache: failing is harmless)."""
    from .onnx_query import enabled, export

    folder = store.encoder_dir()
    if folder.is_dir() or not enabled() or embedder.name != store.require().embedding_model:
        return folder.is_dir()
    try:
        import onnxruntime  # noqa: F401  (without it there is nothing to export for)

        return export(embedder.model, embedder.name, folder)
    except Exception:  # noqa: BLE001  an exporter failure must never fail indexing: queries use torch
        return False


_LIBC: Any = None


def trim_heap() -> None:
    """Give the heap that one episode's audio, tensors and text freed back to the OS (glibc keeps
    it otherwise: over a back catalogue the process crept up several MB an episode)."""
    global _LIBC
    if _LIBC is False:
        return
    try:
        if _LIBC is None:
            import ctypes

            _LIBC = ctypes.CDLL("libc.so.6")
        _LIBC.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        _LIBC = False


def _fail(report: IndexReport, emit: EventFn, source: Source, exc: Exception) -> None:
    reason = str(exc) if str(exc).startswith(source.name) else f"{source.name}: {exc}"
    report.failed.append((source.name, reason))
    emit("failed", source.id, reason)


def _transcribe_job(job: tuple[str, str, dict[str, Any], str]) -> str | None:
    """One worker process's job: fill the transcript store for one audio file (None = ok)."""
    audio, sha, options, cache_dir = job
    try:
        whisper_transcript(Path(audio), sha, WhisperOptions(**options), Path(cache_dir))
        return None
    except HmsearchError as exc:
        return str(exc)


def pretranscribe(jobs: list[tuple[Path, str]], whisper: WhisperOptions, cache_dir: Path, *, workers: int) -> list[str | None]:
    """Transcribe several audio files in ``workers`` processes (each loads its own model); the
    results land in the transcript store, where the writer picks them up."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    options = {"model": whisper.model, "language": whisper.language, "greedy": whisper.greedy, "engine": whisper.engine}
    args = [(str(a), sha, options, str(cache_dir)) for a, sha in jobs]
    # spawn: a forked copy of a process that has torch loaded is not safe.
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(_transcribe_job, args))


def _build_episode(source: Source, inputs: dict[str, Any], content_hash: str, store: IndexStore,
                   embedder: Embedder, whisper: WhisperOptions, settings: ChunkSettings):
    title = source.title or source.id
    duration = None
    samples = None
    if source.audio:
        info = probe_audio(source.audio)
        title = source.title or info.title or source.id
        # Decoding all of it rejects a damaged or truncated file even when a transcript is beside
        # it (a few seconds an hour of audio), and gives the true length.
        samples = decode_audio(source.audio)
        duration = len(samples) / SAMPLE_RATE
    if source.transcript:
        transcript = read_transcript(source.transcript)
        transcript_source = transcript.source or source.transcript.suffix.lstrip(".").lower()
    else:
        assert source.audio is not None
        transcript = whisper_transcript(source.audio, inputs["audio"]["sha256"], whisper, store.root / "transcripts",
                                        samples=samples)
        transcript_source = transcript.source
        duration = duration or transcript.duration
    if not transcript.segments:
        raise InputError(f"{source.name}: no speech found in the transcript")
    chunks = chunk_transcript(transcript, source.id, count_tokens=embedder.count_tokens,
                              max_tokens=embedder.max_tokens, settings=settings)
    vectors = embedder.encode_documents([c.text for c in chunks])
    episode = Episode(
        id=source.id, title=title, duration=float(duration or transcript.end), chunks=len(chunks),
        source=str((source.transcript or source.audio).resolve()) if (source.transcript or source.audio) else "",
        audio=str(source.audio.resolve()) if source.audio else None,
        url=source.url, enclosure=source.enclosure, published=source.published,
        language=transcript.language or guess_language(transcript.text), content_hash=content_hash,
        transcript_source=transcript_source)
    return episode, chunks, vectors
