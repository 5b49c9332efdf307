"""Where transcription runs: in this process (``local``) or in worker processes (``processes``).

A backend maps the transcriber over jobs and returns values (a transcript, or the one-line reason
it failed); it never writes the index. The single writer builds and commits, in plan order.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..asr import TranscriberSpec, load_transcriber
from ..asr.store import transcribe_cached
from ..errors import HmsearchError
from ..types import Transcript
from .plan import Job

log = logging.getLogger(__name__)

Outcome = Transcript | str  # a transcript, or why there is none


def _transcribe_job(args: tuple[str, str, TranscriberSpec, str | None]) -> Outcome:
    """One worker process's job: the transcript of one audio file (reading the transcript store,
    which the writer fills), or the reason it failed."""
    audio, sha, spec, cache_dir = args
    try:
        return transcribe_cached(
            Path(audio), sha, load_transcriber(spec), Path(cache_dir) if cache_dir else None, store=False
        )
    except HmsearchError as exc:
        return str(exc)


def transcribe_in_processes(
    jobs: Sequence[Job], spec: TranscriberSpec, cache_dir: Path | None, *, workers: int
) -> Iterator[tuple[Job, Outcome]]:
    """Transcribe the jobs' audio in ``workers`` processes (each loads its own model), yielding
    each result in plan order as it is ready."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    args = [(str(j.source.audio), j.audio_sha256, spec, str(cache_dir) if cache_dir else None) for j in jobs]
    log.info("transcribing %d episodes in %d processes", len(jobs), workers)
    # spawn: a forked copy of a process that has torch loaded is not safe.
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from zip(jobs, pool.map(_transcribe_job, args))
