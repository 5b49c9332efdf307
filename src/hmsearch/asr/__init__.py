"""Speech -> Transcript. One protocol for both Whisper engines, and a picklable spec of what to run.

A :class:`TranscriberSpec` says which engine, model, language, compute type and decode options; it
is frozen and picklable, so it is what a worker process (or a cluster node) receives.
:func:`load_transcriber` turns it into a :class:`Transcriber`, which resolves the model (failing
fast, in one line, when it cannot be had) and loads it on first use.
"""

from __future__ import annotations

import importlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from ..audio import SAMPLE_RATE
from ..config import AUTO_WHISPER_MODEL, DEFAULT_WHISPER_ENGINE, WHISPER_ENGINES
from ..errors import InputError, ModelUnavailableError
from ..types import Segment, Transcript
from .options import DecodeOptions, language_code

__all__ = ["DecodeOptions", "ProgressFn", "Transcriber", "TranscriberSpec", "language_code", "load_transcriber"]

ProgressFn = Callable[[float], None]  # called with the seconds of audio heard so far

log = logging.getLogger(__name__)


# Audio is handed to the engine in blocks of at most this many seconds (see _Whisper.transcribe),
# cut at the quietest QUIET_FRAME of the last BLOCK_SEARCH seconds of each.
BLOCK_SECONDS = 240.0
BLOCK_SEARCH = 15.0
QUIET_FRAME = 0.2

# An episode whose language is not given is heard in up to LANGUAGE_WINDOWS windows of Whisper's
# 30 s spread over its length, and the language most windows hear wins (not the first 30 s
# alone: a jingle, an English intro or one misheard window then decides nothing). Audio shorter
# than two windows is left to the engine's own detection.
LANGUAGE_WINDOWS = 5
WINDOW_SECONDS = 30.0
SILENT_RMS = 1e-3  # a window quieter than this (about -60 dBFS) has nothing to hear

# What the fallback to base costs for Danish, from `hmsearch eval-asr` on the NST clips (README, "The
# Whisper model offline"). What ``--whisper-model auto`` chooses, and why: asr/choice.py.
AUTO_FALLBACK_COST = "it misses about 4 in 10 words of Danish speech (NST read speech: 41 % WER with faster-whisper, 55 % with openai-whisper)"


@dataclass(frozen=True)
class TranscriberSpec:
    model: str  # a name ("auto", "turbo", "base") or a path
    engine: str = DEFAULT_WHISPER_ENGINE  # faster-whisper (CTranslate2), or openai-whisper (torch)
    language: str | None = None  # None: Whisper detects it
    compute_type: str = "int8"  # faster-whisper only
    decode: DecodeOptions = field(default_factory=DecodeOptions)

    def __post_init__(self) -> None:
        engine_class(self.engine)  # a clear error for an unknown engine


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

    @property
    def notice(self) -> str | None:
        """Something the user should hear once per run (set when ``auto`` fell back to a lesser
        model), else None."""
        ...

    def load(self) -> None:
        """Resolve and load the model now (else the first ``transcribe`` does)."""
        ...

    def transcribe(
        self, samples: np.ndarray, *, show_progress: bool = False, on_progress: ProgressFn | None = None
    ) -> Transcript:
        """``show_progress``: the engine's own bar; ``on_progress``: seconds heard, as they are."""
        ...


class _Whisper:
    """What both engines share: lazy resolution and loading, the keys. An engine is a module of
    this package with the same four functions: ``resolve(name, **options)``, ``load(resolved)``,
    ``detect_language(model, samples)`` and
    ``transcribe_samples(model, samples, *, language, decode, show_progress, model_id, on_segment)``."""

    name = ""  # as --whisper-engine names it (config.WHISPER_ENGINES)
    engine_tag = ""  # prefix of the transcript-store key
    module = ""  # the engine's module, imported on first use (torch or ctranslate2 load only then)
    compute_types: tuple[str, ...] = ()  # what --compute-type accepts; the first is what it runs by default
    vad = False  # whether it has a voice-activity filter (DecodeOptions.vad_filter)
    uses_torch = False  # whether its threads are torch's (a Ray worker sets them)

    def __init__(self, spec: TranscriberSpec) -> None:
        self.spec = spec
        self._resolved: Any = None
        self._model: Any = None
        self._notice: str | None = None

    @property
    def notice(self) -> str | None:
        return self._notice

    def _engine(self) -> Any:
        return importlib.import_module(self.module, __package__)

    def _resolve_options(self) -> dict[str, Any]:
        return {}

    def resolve(self) -> None:
        if self._resolved is None:
            if self.spec.model == AUTO_WHISPER_MODEL:
                self._resolved = self._resolve_auto()
            else:
                from .choice import known_transformers_repo, model_arg

                # a fine-tune of the tables named by its hub id: its cached (or downloaded) folder
                known = known_transformers_repo(self.spec.model)
                name = model_arg(known) if known else self.spec.model
                self._resolved = self._engine().resolve(name, **self._resolve_options())

    def _resolve_auto(self) -> Any:
        """The most accurate model of the language's table that this machine can afford and can
        have (cached, packaged or downloadable), best first (asr/choice.py); the notice says which
        and why, or what it fell back from."""
        from .choice import FLOOR, auto_plan, model_arg, probe_hardware

        engine, options = self._engine(), self._resolve_options()
        plan = auto_plan(self.spec.language, probe_hardware(self.name), engine=self.name)
        wanted, why = plan.candidates[0], None
        for candidate in plan.candidates:
            try:
                resolved = engine.resolve(model_arg(candidate), **options)
            except ModelUnavailableError as exc:
                log.info("--whisper-model auto: %s is not available (%s)", candidate.name, exc)
                why = why or exc
                continue
            if candidate is wanted:
                self._notice = plan.chose(candidate)
            else:
                danish_floor = candidate.name == FLOOR and self.spec.language == "da"
                self._notice = plan.fell_back(wanted, candidate, AUTO_FALLBACK_COST if danish_floor else None)
            return resolved
        names = ", ".join(c.name for c in plan.candidates)
        raise ModelUnavailableError(f"{why} (--whisper-model auto found none of {names})") from None

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
        # openai-whisper's key has no engine name: it was the only engine when the key was made
        return [self.model_id, self.spec.language, *([self.name] if self.engine_tag else [])]

    @classmethod
    def compute_type(cls, spec: TranscriberSpec) -> str:
        """The weights' type the engine computes with for ``spec``."""
        return spec.compute_type if spec.compute_type in cls.compute_types else cls.compute_types[0]

    def load(self) -> None:
        self.resolve()
        if self._model is None:
            self._model = self._engine().load(self._resolved)

    def transcribe(
        self, samples: np.ndarray, *, show_progress: bool = False, on_progress: ProgressFn | None = None
    ) -> Transcript:
        """Transcribe in blocks of about BLOCK_SECONDS cut at quiet moments, so that the engine
        never holds a whole episode's log-Mel at once (openai-whisper computes it for all the
        audio it is given: 1.4 GB of transient arrays an hour). Windows do not see each other's
        text anyway (condition_on_previous_text is off), so a cut between words changes nothing.
        Without a language in the spec, the one most windows across the episode hear is used for
        every block (for short audio: the one detected in the first block)."""
        self.load()
        engine = self._engine()
        language = self.spec.language or self._vote_language(engine, samples)
        segments: list[Segment] = []
        first: Transcript | None = None
        for start, end in block_bounds(samples, block=BLOCK_SECONDS, search=BLOCK_SEARCH):
            offset = start / SAMPLE_RATE
            part: Transcript = engine.transcribe_samples(
                self._model,
                samples[start:end],
                language=language,
                decode=self.spec.decode,
                show_progress=show_progress,
                model_id=self.model_id,
                on_segment=None if on_progress is None else lambda t, o=offset: on_progress(o + t),
            )
            if on_progress is not None:
                on_progress(end / SAMPLE_RATE)
            if first is None:
                first = part
                language = language or part.language
            segments.extend(_shifted(s, offset) for s in part.segments)
        assert first is not None
        return replace(
            first, segments=tuple(segments), language=language or first.language, duration=len(samples) / SAMPLE_RATE
        )

    def _vote_language(self, engine: Any, samples: np.ndarray) -> str | None:
        """The language most of the windows of ``language_windows`` hear, or None (too short to
        vote, or all silent: the engine detects it in each block then)."""
        votes: Counter[str] = Counter()
        weight: Counter[str] = Counter()
        for start, end in language_windows(samples):
            language, probability = engine.detect_language(self._model, samples[start:end])
            votes[language] += 1
            weight[language] += probability
        if not votes:
            return None
        best = max(votes, key=lambda code: (votes[code], weight[code]))
        log.info("language %s, heard in %d of %d windows (%s)", best, votes[best], votes.total(), dict(votes))
        return best


class OpenaiWhisper(_Whisper):
    name = "openai"
    module = ".openai"
    compute_types = ("float32",)  # on the CPU
    uses_torch = True


class FasterWhisper(_Whisper):
    name = "faster-whisper"
    engine_tag = "fw-"
    module = ".ctranslate2"
    # as asr.ctranslate2.COMPUTE_TYPES (not imported here: a test checks they agree)
    compute_types = ("int8", "int8_float32", "int8_bfloat16", "float32", "bfloat16", "float16", "default")
    vad = True

    def _resolve_options(self) -> dict[str, Any]:
        return {"compute_type": self.spec.compute_type}


def block_bounds(
    samples: np.ndarray, *, block: float = BLOCK_SECONDS, search: float = BLOCK_SEARCH
) -> list[tuple[int, int]]:
    """(start, end) sample indices of consecutive blocks of at most ``block`` seconds covering
    ``samples``; each cut is at the quietest ``QUIET_FRAME`` of the ``search`` seconds before the
    block's end (the middle of a pause, where there is one)."""
    n, size = len(samples), int(block * SAMPLE_RATE)
    frame, reach = int(QUIET_FRAME * SAMPLE_RATE), int(search * SAMPLE_RATE)
    bounds, start = [], 0
    while n - start > size:
        lo = start + size - reach
        window = samples[lo : start + size].astype(np.float32, copy=False)
        frames = len(window) // frame
        energy = np.square(window[: frames * frame]).reshape(frames, frame).mean(axis=1)
        cut = lo + int(np.argmin(energy)) * frame + frame // 2
        bounds.append((start, cut))
        start = cut
    bounds.append((start, n))
    return bounds


def language_windows(
    samples: np.ndarray, *, count: int = LANGUAGE_WINDOWS, window: float = WINDOW_SECONDS
) -> list[tuple[int, int]]:
    """(start, end) sample indices of up to ``count`` windows of ``window`` seconds spread evenly
    over ``samples`` (each centred in its share of the audio), silent ones left out; none when the
    audio is shorter than two windows."""
    size = int(window * SAMPLE_RATE)
    n = len(samples)
    if n < 2 * size:
        return []
    k = min(count, n // size)
    out = []
    for i in range(k):
        centre = int((i + 0.5) * n / k)
        start = min(max(0, centre - size // 2), n - size)
        part = samples[start : start + size].astype(np.float32, copy=False)
        if float(np.sqrt(np.mean(np.square(part)))) >= SILENT_RMS:
            out.append((start, start + size))
    return out


def _shifted(segment: Segment, offset: float) -> Segment:
    if not offset:
        return segment
    words = tuple(replace(w, start=w.start + offset, end=w.end + offset) for w in segment.words)
    return replace(segment, start=segment.start + offset, end=segment.end + offset, words=words)


ENGINES: dict[str, type[_Whisper]] = {cls.name: cls for cls in (FasterWhisper, OpenaiWhisper)}


def engine_class(name: str) -> type[_Whisper]:
    """The engine called ``name`` (what it accepts: ``compute_types``, ``vad``), or a clear error."""
    try:
        return ENGINES[name]
    except KeyError:
        raise InputError(f"unknown Whisper engine '{name}': use one of {', '.join(WHISPER_ENGINES)}") from None


def load_transcriber(spec: TranscriberSpec) -> Transcriber:
    """The engine for ``spec``: the only place a Whisper engine is chosen."""
    return engine_class(spec.engine)(spec)
