"""Whisper -> Transcript (segments + word timestamps), and loading Whisper models with clear errors.

A model is a name Whisper knows ("turbo", "small", ...), downloaded to Whisper's cache on first
use, or a path to a checkpoint file (``{"dims": ..., "model_state_dict": ...}``, as Whisper's
own files are). Both go through ``whisper.load_model``.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from .errors import ModelUnavailableError, one_line
from .types import Segment, Transcript, Word

# Settings against Whisper's known failure modes on long audio:
# - condition_on_previous_text=False stops one hallucinated window from seeding the next
#   (the classic repetition loop);
# - compression_ratio_threshold / logprob_threshold send repetitive or unsure windows to a
#   higher temperature, and no_speech_threshold drops silent ones;
# - hallucination_silence_threshold skips long silences in which text was hallucinated
#   (needs word timestamps, which we always compute).
ANTI_LOOP_OPTIONS: dict[str, Any] = {
    "condition_on_previous_text": False,
    "compression_ratio_threshold": 2.4,
    "logprob_threshold": -1.0,
    "no_speech_threshold": 0.6,
    "hallucination_silence_threshold": 2.0,
}
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
NETWORK_PROBE_TIMEOUT = 5.0  # seconds; an offline machine should fail fast, not hang


def _whisper_cache_dir() -> Path:
    default = Path(os.path.expanduser("~")) / ".cache"
    return Path(os.getenv("XDG_CACHE_HOME", str(default))) / "whisper"


def _reachable(url: str, timeout: float = NETWORK_PROBE_TIMEOUT) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class WhisperSpec:
    """A resolved model: what to pass to whisper.load_model and a stable id for caching."""

    name: str  # as the user gave it
    load_arg: str  # a model name Whisper knows, or a checkpoint path
    model_id: str  # "turbo", or "file:<sha256 prefix>" for a checkpoint


def resolve_whisper_model(name: str) -> WhisperSpec:
    """Check that a Whisper model can be loaded, without loading it; raise a clear error if not."""
    import whisper  # lazy: torch is heavy

    path = Path(name).expanduser()
    if path.is_file():
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        return WhisperSpec(name, str(path), f"file:{digest.hexdigest()[:16]}")
    if name in whisper.available_models():
        url = whisper._MODELS[name]
        if (_whisper_cache_dir() / os.path.basename(url)).is_file():
            return WhisperSpec(name, name, name)
        if not _reachable(url):
            raise ModelUnavailableError(
                f"Whisper model '{name}' is not in {_whisper_cache_dir()} and cannot be downloaded "
                f"(no network): connect once to download it, or pass --whisper-model PATH to a "
                f"checkpoint file (also HMSEARCH_WHISPER_MODEL)")
        return WhisperSpec(name, name, name)
    if path.suffix or os.sep in name:
        raise ModelUnavailableError(f"{name}: no such Whisper checkpoint file")
    raise ModelUnavailableError(
        f"unknown Whisper model '{name}'; use one of {', '.join(whisper.available_models())} "
        f"or a checkpoint path")


def load_whisper_model(spec: WhisperSpec):
    """Load (downloading on first use) a Whisper model on the CPU."""
    import torch
    import whisper

    try:
        return whisper.load_model(spec.load_arg, device="cpu")
    except (OSError, RuntimeError, KeyError, TypeError, ValueError, EOFError,
            torch.serialization.pickle.UnpicklingError) as exc:  # type: ignore[attr-defined]
        reason = one_line(exc)
        raise ModelUnavailableError(f"{spec.name}: cannot load Whisper model ({reason})") from None


def transcribe_samples(
    model: Any,
    samples: np.ndarray,
    *,
    language: str | None = None,
    greedy: bool = False,
    show_progress: bool = False,
    model_id: str = "",
) -> Transcript:
    """Transcribe 16 kHz mono float32 samples with word timestamps.

    ``greedy`` decodes once at temperature 0 (fast; no fallback when a window looks like a loop).
    ``show_progress`` lets Whisper draw its own frame progress bar on stderr.
    """
    import whisper

    options = dict(ANTI_LOOP_OPTIONS)
    result = whisper.transcribe(
        model,
        samples,
        language=language,
        task="transcribe",
        temperature=0.0 if greedy else FALLBACK_TEMPERATURES,
        word_timestamps=True,
        fp16=False,
        verbose=False if show_progress else None,
        **options,
    )
    return transcript_from_whisper(result, source=f"whisper:{model_id}" if model_id else "whisper",
                                   duration=len(samples) / 16_000)


def transcript_from_whisper(result: dict[str, Any], *, source: str, duration: float | None) -> Transcript:
    """Whisper's result dict -> Transcript, dropping empty segments."""
    segments = []
    for seg in result.get("segments", []):
        text = str(seg.get("text", "")).strip()
        if not text:
            continue
        words = tuple(
            Word(start=float(w["start"]), end=float(w["end"]), text=str(w["word"]),
                 probability=float(w["probability"]) if w.get("probability") is not None else None)
            for w in seg.get("words", []) or []
            if str(w.get("word", "")).strip()
        )
        segments.append(Segment(start=float(seg["start"]), end=float(seg["end"]), text=text, words=words))
    return Transcript(segments=tuple(segments), language=result.get("language"), source=source,
                      duration=duration)


ProgressFn = Callable[[int], None]
