"""Building one episode: its inputs in, passages and vectors out. Free of the index (it writes
nothing there but the transcript store, a cache), so a worker can run it and return the result."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..asr import ProgressFn, Transcriber
from ..asr.store import load_stored, transcribe_cached
from ..audio import SAMPLE_RATE, decode_audio, measure_audio, probe_audio
from ..chunk import ChunkSettings, chunk_transcript
from ..embed import Encoder
from ..errors import InputError
from ..formats import read_transcript
from ..speakers import speakers_enabled, transcript_with_speakers
from ..text import guess_language
from ..types import Episode, Passage, Transcript
from .plan import Job


@dataclass
class EpisodeBuild:
    job: Job
    episode: Episode
    passages: list[Passage]
    vectors: np.ndarray
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step
    worker: str = ""  # the backend worker that transcribed it ("" : this process)


def build_episode(
    job: Job,
    transcriber: Transcriber,
    encoder: Encoder,
    *,
    settings: ChunkSettings,
    transcript_dir: Path | None,
    transcript: Transcript | None = None,
    show_progress: bool = False,
    on_progress: ProgressFn | None = None,
    worker: str = "",
) -> EpisodeBuild:
    """Decode (to check the audio and measure it), transcribe or read the transcript, chunk, embed.

    ``transcript`` is one a worker already made for this job's audio."""
    source = job.source
    phases: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        phases[name] = phases.get(name, 0.0) + now - clock
        clock = now

    title = source.title or source.id
    duration = None
    samples = None
    if source.audio and not source.transcript and transcript is None and transcript_dir is not None:
        transcript = load_stored(transcript_dir, job.audio_sha256, transcriber)  # Whisper ran before
    if source.audio:
        info = probe_audio(source.audio)
        title = source.title or info.title or source.id
        # Decoding all of it rejects a damaged or truncated file even when a transcript is beside
        # it (a few seconds an hour of audio), and gives the true length; the samples are kept
        # only when Whisper needs them.
        if source.transcript or transcript is not None:
            duration = measure_audio(source.audio)
        else:
            samples = decode_audio(source.audio)
            duration = len(samples) / SAMPLE_RATE
        lap("decode")
    if source.transcript:
        transcript = read_transcript(source.transcript)
        transcript_source = transcript.source or source.transcript.suffix.lstrip(".").lower()
    else:
        assert source.audio is not None
        if transcript is None:
            transcript = transcribe_cached(
                source.audio,
                job.audio_sha256,
                transcriber,
                transcript_dir,
                samples=samples,
                show_progress=show_progress,
                on_progress=on_progress,
            )
        transcript_source = transcript.source
        duration = duration or transcript.duration
    lap("transcribe")
    if source.audio and not source.transcript and transcript.segments and speakers_enabled():
        # the transcript store keeps Whisper's output; turns are found anew from the audio
        transcript = transcript_with_speakers(transcript, source.audio, samples=samples)
        lap("speakers")
    del samples
    if not transcript.segments:
        raise InputError(f"{source.name}: no speech found in the transcript")
    passages = chunk_transcript(
        transcript, count_tokens=encoder.count_tokens, max_tokens=encoder.max_tokens, settings=settings
    )
    lap("chunk")
    vectors = encoder.encode_documents([p.text for p in passages])
    lap("embed")
    origin = source.transcript or source.audio
    episode = Episode(
        id=source.id,
        title=title,
        duration=float(duration or transcript.end),
        n_passages=len(passages),
        source=str(origin.resolve()) if origin else "",
        audio=str(source.audio.resolve()) if source.audio else None,
        url=source.url,
        enclosure=source.enclosure,
        published=source.published,
        language=transcript.language or guess_language(transcript.text),
        content_hash=job.content_hash,
        transcript_source=transcript_source,
    )
    return EpisodeBuild(job, episode, passages, vectors, phases, worker)
