"""Speech -> Transcript. One protocol for both Whisper engines, and a picklable spec of what to run.

A :class:`TranscriberSpec` says which engine, model, language, compute type and decode options; it
is frozen and picklable, so it is what a worker process (or a cluster node) receives.
:func:`load_transcriber` turns it into a :class:`Transcriber`, which resolves the model (failing
fast, in one line, when it cannot be had) and loads it on first use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..config import WHISPER_ENGINES
from ..errors import InputError
from ..types import Transcript
from .options import DecodeOptions, language_code

__all__ = ["DecodeOptions", "Transcriber", "TranscriberSpec", "language_code", "load_transcriber"]


@dataclass(frozen=True)
class TranscriberSpec:
    model: str  # a name ("turbo", "base") or a path
    engine: str = "openai"  # openai-whisper (torch), or faster-whisper (CTranslate2; optional extra)
    language: str | None = None  # None: Whisper detects it
    compute_type: str = "int8"  # faster-whisper only
    decode: DecodeOptions = field(default_factory=DecodeOptions)

    def __post_init__(self) -> None:
        if self.engine not in WHISPER_ENGINES:
            raise InputError(f"unknown Whisper engine '{self.engine}': use one of {', '.join(WHISPER_ENGINES)}")


class Transcriber(Protocol):
    spec: TranscriberSpec

    @property
    def model_id(self) -> str:
        """A stable id of the resolved model ("turbo", "file:<sha>", "base@int8")."""
        ...

    def resolve(self) -> None:
        """Check that the model can be had, without loading it (a clear error if not)."""
        ...

    def cache_key(self) -> str:
        """Names engine, model and language in the transcript store: engines never share entries."""
        ...

    def content_key(self) -> list[Any]:
        """What of the transcriber goes into an episode's content hash (a change re-indexes it)."""
        ...

    def transcribe(self, samples: np.ndarray, *, show_progress: bool = False) -> Transcript: ...


class _Whisper:
    """What both engines share: lazy resolution and loading, the keys. An engine is a module of
    this package with the same three functions: ``resolve(name, **options)``, ``load(resolved)``
    and ``transcribe_samples(model, samples, *, language, decode, show_progress, model_id)``."""

    engine_tag = ""  # prefix of the transcript-store key
    module = ""  # the engine's module, imported on first use (torch or ctranslate2 load only then)

    def __init__(self, spec: TranscriberSpec) -> None:
        self.spec = spec
        self._resolved: Any = None
        self._model: Any = None

    def _engine(self) -> Any:
        return importlib.import_module(self.module, __package__)

    def _resolve_options(self) -> dict[str, Any]:
        return {}

    def resolve(self) -> None:
        if self._resolved is None:
            self._resolved = self._engine().resolve(self.spec.model, **self._resolve_options())

    @property
    def model_id(self) -> str:
        self.resolve()
        return str(self._resolved.model_id)

    def cache_key(self) -> str:
        # Decode options (--greedy) are deliberately not in the key: a stored transcript of the
        # same audio, model and language is reused however it was decoded (Whisper is the slow part).
        raw = f"{self.engine_tag}{self.model_id}-{self.spec.language or 'auto'}"
        return "".join(c if c.isalnum() else "_" for c in raw)

    def content_key(self) -> list[Any]:
        return [self.model_id, self.spec.language, *([self.spec.engine] if self.spec.engine != "openai" else [])]

    def transcribe(self, samples: np.ndarray, *, show_progress: bool = False) -> Transcript:
        self.resolve()
        engine = self._engine()
        if self._model is None:
            self._model = engine.load(self._resolved)
        transcript: Transcript = engine.transcribe_samples(
            self._model,
            samples,
            language=self.spec.language,
            decode=self.spec.decode,
            show_progress=show_progress,
            model_id=self.model_id,
        )
        return transcript


class OpenaiWhisper(_Whisper):
    module = ".openai"


class FasterWhisper(_Whisper):
    engine_tag = "fw-"
    module = ".ctranslate2"

    def _resolve_options(self) -> dict[str, Any]:
        return {"compute_type": self.spec.compute_type}


def load_transcriber(spec: TranscriberSpec) -> Transcriber:
    """The engine for ``spec``: the only place a Whisper engine is chosen."""
    return FasterWhisper(spec) if spec.engine == "faster-whisper" else OpenaiWhisper(spec)
