"""The transcript store: Whisper's output kept per audio content hash and transcriber, so Whisper
never runs twice on the same audio (it is the slow part of indexing)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ..audio import decode_audio
from ..errors import HmsearchError
from ..formats import format_json, parse_whisper_json
from ..fsutil import atomic_write
from ..types import Transcript
from . import ProgressFn, Transcriber

log = logging.getLogger(__name__)


def store_path(folder: Path, audio_sha256: str, transcriber: Transcriber) -> Path:
    return folder / f"{audio_sha256[:24]}-{transcriber.cache_key()}.json"


def load_stored(folder: Path, audio_sha256: str, transcriber: Transcriber) -> Transcript | None:
    """The stored transcript of this audio by this transcriber, or None (a damaged one is redone)."""
    path = store_path(folder, audio_sha256, transcriber)
    if not path.is_file():
        return None
    try:
        return parse_whisper_json(json.loads(path.read_bytes()), name=str(path))
    except (HmsearchError, ValueError, RecursionError) as exc:
        log.warning("stored transcript %s is damaged (%s): transcribing again", path, exc)
        return None


def save_stored(folder: Path, audio_sha256: str, transcriber: Transcriber, transcript: Transcript) -> None:
    atomic_write(store_path(folder, audio_sha256, transcriber), format_json(transcript).encode("utf-8"))


def transcribe_cached(
    audio: Path,
    audio_sha256: str,
    transcriber: Transcriber,
    folder: Path | None,
    *,
    samples: np.ndarray | None = None,
    show_progress: bool = False,
    on_progress: ProgressFn | None = None,
    store: bool = True,
) -> Transcript:
    """Transcribe ``audio``, reusing a stored transcript of the same audio bytes, model and language
    (and storing a new one, unless ``store`` is False: a worker returns it to the writer instead)."""
    if folder is not None:
        stored = load_stored(folder, audio_sha256, transcriber)
        if stored is not None:
            return stored
    if samples is None:
        samples = decode_audio(audio)
    transcript = transcriber.transcribe(samples, show_progress=show_progress, on_progress=on_progress)
    if folder is not None and store:
        save_stored(folder, audio_sha256, transcriber, transcript)
    return transcript
