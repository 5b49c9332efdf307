"""Where transcription runs: in this process (``local``), in worker processes on this machine
(``processes``), or on a Ray cluster (``ray``, hmsearch.ingest.ray_backend). ``make_backend`` lives
beside its caller in hmsearch.ingest, so this base module never imports the Ray one.

A backend maps the transcriber over jobs and returns values (a transcript, or the one-line reason
it failed, and which worker did it); it never writes the index. The single writer builds and
commits, in plan order, as the results arrive.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..asr import TranscriberSpec, load_transcriber
from ..asr.store import transcribe_cached
from ..config import setting
from ..errors import HmsearchError, InputError
from ..types import Transcript
from .plan import Job

log = logging.getLogger(__name__)

Outcome = Transcript | str  # a transcript, or why there is none


@dataclass(frozen=True)
class Result:
    job: Job
    outcome: Outcome
    worker: str = ""  # which worker made it ("pid 123", "node 127.0.0.1 (1a2b3c4d), pid 123")
    phases: dict[str, float] = field(default_factory=dict)  # seconds: the worker's own, and the overhead


class Backend(Protocol):
    """Transcribes jobs elsewhere than in the writer. ``start`` connects and starts the workers (a
    one-line BackendError if it cannot, before anything is written); ``run`` yields one Result per
    job, in the order given, as each is ready; ``close`` stops the workers."""

    name: str

    def start(self) -> None: ...

    def run(self, jobs: Sequence[Job]) -> Iterator[Result]: ...

    def close(self) -> None: ...


def _transcribe_job(args: tuple[str, str, TranscriberSpec, str | None]) -> tuple[Outcome, str]:
    """One worker process's job: the transcript of one audio file (reading the transcript store,
    which the writer fills), or the reason it failed."""
    audio, sha, spec, cache_dir = args
    try:
        transcript: Outcome = transcribe_cached(
            Path(audio), sha, load_transcriber(spec), Path(cache_dir) if cache_dir else None, store=False
        )
    except HmsearchError as exc:
        transcript = str(exc)
    return transcript, f"{socket.gethostname()}, pid {os.getpid()}"


class ProcessBackend:
    """``workers`` processes on this machine, each with its own model (today's ``--workers``)."""

    name = "processes"

    def __init__(self, spec: TranscriberSpec, cache_dir: Path | None, *, workers: int) -> None:
        self.spec, self.cache_dir, self.workers = spec, cache_dir, workers
        self._pool: Any = None

    def start(self) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn: a forked copy of a process that has torch loaded is not safe.
        self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"))

    def run(self, jobs: Sequence[Job]) -> Iterator[Result]:
        assert self._pool is not None, "start() first"
        args = [
            (str(j.source.audio), j.audio_sha256, self.spec, str(self.cache_dir) if self.cache_dir else None)
            for j in jobs
        ]
        log.info("transcribing %d episodes in %d processes", len(jobs), self.workers)
        for job, (outcome, worker) in zip(jobs, self._pool.map(_transcribe_job, args), strict=True):
            yield Result(job, outcome, worker)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


def choose_backend(name: str | None, workers: int | None) -> str:
    """The backend in force: the flag, else the setting; ``auto`` is processes when more than one
    worker is asked for, else local."""
    chosen = str(setting("backend", name))
    if chosen == "auto":
        return "processes" if (workers or 1) > 1 else "local"
    if chosen == "local" and workers not in (None, 1):
        raise InputError("--workers needs --backend processes or ray (the local backend is this one process)")
    return chosen
