"""What ``--whisper-model auto`` runs: the most accurate Whisper this machine can afford, per language.

A :class:`Candidate` is one Whisper-architecture model: its hub id, the layout it is published in
(a CTranslate2 repo that faster-whisper loads as it is, or a transformers repo that
:mod:`hmsearch.asr.finetune` converts once, for either engine), its size and the published WER it
is ranked by. Each language has a table, best first (:data:`TABLES`; a language without one uses
:data:`GENERAL`). :func:`auto_plan` keeps the entries the machine can afford
(:func:`estimated_rtf` against :data:`MAX_RTF`), and the engine resolves them in order: the first
that is cached, packaged or downloadable wins, so offline the list ends at the packaged base.

Nothing here imports an engine; :func:`probe_hardware` asks ctranslate2 (or torch, for the
openai-whisper engine) how many CUDA devices there are.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field, replace

from ..errors import ModelUnavailableError

log = logging.getLogger(__name__)

CT2 = "ctranslate2"  # a CTranslate2 repo: faster-whisper loads it; openai-whisper by its name
TRANSFORMERS = "transformers"  # a transformers Whisper repo: converted once (asr.finetune)
# What of a transformers repo is fetched: config, weights (safetensors only: repos that also carry
# pytorch_model.bin would otherwise be downloaded twice), tokenizer and generation settings.
TRANSFORMERS_PATTERNS = [
    "config.json",
    "generation_config.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "*.safetensors",
    "model.safetensors.index.json",
]


@dataclass(frozen=True)
class Candidate:
    """One model ``auto`` may choose. ``name`` is what ``--whisper-model`` would say for it (a size
    name both engines know, or the hub id of a transformers repo); ``wer`` the published WER (%)
    per test set that ranks it; ``ram_gb`` what loading it (and converting a transformers repo
    once, in float32) needs."""

    name: str
    hub_id: str
    layout: str
    params_m: int  # millions of parameters: what its cost is estimated from (estimated_rtf)
    download_gb: float  # approximate
    ram_gb: float
    wer: dict[str, float] = field(default_factory=dict)

    @property
    def cost_class(self) -> str:
        """What it takes to run within MAX_RTF (see estimated_rtf)."""
        return "any machine" if self.name == FLOOR else f"a CUDA GPU or {cores_needed(self)}+ CPU cores"

    def describe_wer(self) -> str:
        return ", ".join(f"{test} {value:g} %" for test, value in self.wer.items()) or "no published WER"


_LARGE_V3 = Candidate("large-v3", "Systran/faster-whisper-large-v3", CT2, params_m=1550, download_gb=3.1, ram_gb=4.0)
_TURBO = Candidate(
    "turbo", "mobiuslabsgmbh/faster-whisper-large-v3-turbo", CT2, params_m=809, download_gb=1.6, ram_gb=3.0
)
_SMALL = Candidate("small", "Systran/faster-whisper-small", CT2, params_m=244, download_gb=0.48, ram_gb=1.5)
_BASE = Candidate("base", "Systran/faster-whisper-base", CT2, params_m=74, download_gb=0.15, ram_gb=1.0)


def _fine_tune(hub_id: str) -> Candidate:
    """A Whisper large-v3 (1.54 B parameters) fine-tune in the transformers layout: the download
    assumes float32 weights (4 bytes a parameter); converting it holds the float32 model in RAM once."""
    return Candidate(hub_id, hub_id, TRANSFORMERS, params_m=1540, download_gb=6.2, ram_gb=12.0)


def _da(fleurs: float, conversation: float) -> dict[str, float]:
    return {"FLEURS-da": fleurs, "CoRal conversation": conversation}


# Published Danish WER, from the Danish ASR leaderboard (2026) as quoted in issue 22: FLEURS-da
# (read sentences) and CoRal conversation (people talking, as in podcasts). The table is ranked by
# the conversation figure. The two fine-tunes (both trained on CoRal) are quoted as one range,
# 10-16 / 32-36; each is entered at the range's worse end.
DANISH: tuple[Candidate, ...] = (
    replace(_fine_tune("CoRal-project/roest-v3-whisper-1.5b"), wer=_da(16, 36)),
    replace(_fine_tune("syvai/hviske-v3-conversation"), wer=_da(16, 36)),
    replace(_LARGE_V3, wer=_da(12, 41)),
    replace(_TURBO, wer=_da(13, 54)),
    replace(_SMALL, wer=_da(33, 95)),
    replace(_BASE, wer=_da(64, 276)),
)
# Other languages: the Open ASR Leaderboard's faster-whisper rows (English average WER, January
# 2025: turbo 7.12, large-v3 7.19); small and base are not on it in their multilingual form and
# follow by size, as the Whisper paper finds in every language.
GENERAL: tuple[Candidate, ...] = (
    replace(_TURBO, wer={"Open ASR (English)": 7.12}),
    replace(_LARGE_V3, wer={"Open ASR (English)": 7.19}),
    _SMALL,
    _BASE,
)
TABLES: dict[str, tuple[Candidate, ...]] = {"da": DANISH}
FLOOR = "base"  # always tried last, whatever the budget: it is packaged (asr.packaged), so it runs offline


def known_transformers_repo(name: str) -> Candidate | None:
    """The table entry of a transformers repo named by its hub id (``--whisper-model
    CoRal-project/roest-v3-whisper-1.5b``), else None."""
    return next(
        (c for t in (*TABLES.values(), GENERAL) for c in t if c.layout == TRANSFORMERS and c.hub_id == name), None
    )


def table_for(language: str | None) -> tuple[Candidate, ...]:
    """The preference table for a language code (None: not known before transcribing)."""
    return TABLES.get(language or "", GENERAL)


# ----------------------------------------------------------------------------------------------
# What the machine can afford
#
# Speed is estimated, not measured: no model larger than base can be downloaded on the machine the
# figures come from. The one measured anchor is faster-whisper base, int8, beam 5, VAD on an
# hour-long recording: 0.161 CPU seconds per second of audio (benchmarks/results/long_audio.md;
# the NST clips cost more, 0.35, for their per-clip overhead). A model's CPU cost is taken to grow
# with its parameters. A rough check: splitting base's time per 30 s window into encoder (0.5 of
# ~2.4 s, bench_whisper_engines.md) and decoder, and scaling each by its matrix work, gives small
# 3.1x, turbo 9.5x, large 19x, against parameter ratios of 3.3x, 10.9x and 21x. CTranslate2 keeps
# all cores busy, so wall time is CPU time over cores. openai-whisper (float32, torch) took 5.2x
# faster-whisper's time end to end in the same benchmark. With a CUDA device: faster-whisper
# large-v3, float16, beam 5, 13 min of audio in 52 s on an RTX 2080 Ti (faster-whisper issue
# #1030), 0.067x real time, scaled by parameters as on the CPU (GPU memory is not checked).

BASE_CORE_SECONDS = 0.161  # CPU s per audio s, faster-whisper base int8 (long_audio.md)
BASE_PARAMS_M = 74
OPENAI_CPU_FACTOR = 5.2  # openai-whisper fp32 / faster-whisper int8, end to end (bench_whisper_engines.md)
GPU_RTF_LARGE = 0.067  # faster-whisper large-v3 fp16 on one GPU (faster-whisper issue #1030)
LARGE_PARAMS_M = 1550
# The most a default may cost: an hour of speech in 20 minutes (issue 22's target for this machine).
MAX_RTF = 1 / 3


@dataclass(frozen=True)
class Hardware:
    """What the budget looks at: the cores this process may use, the RAM, CUDA devices the engine sees."""

    cores: int
    ram_gb: float | None  # None: unknown (not checked)
    gpus: int = 0

    def describe(self) -> str:
        gpu = f"{self.gpus} CUDA GPU{'s' if self.gpus > 1 else ''}" if self.gpus else "no GPU"
        ram = f", {self.ram_gb:.0f} GB RAM" if self.ram_gb is not None else ""
        return f"{self.cores} core{'s' if self.cores != 1 else ''}{ram}, {gpu}"


def probe_hardware(engine: str = "faster-whisper") -> Hardware:
    """This machine's cores (those the process may run on: every worker on the machine sees the
    same), RAM, and the CUDA devices ``engine`` can use (ctranslate2's count for faster-whisper,
    torch's for openai-whisper; 0 when the library is missing or has no CUDA)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        ram_gb: float | None = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (AttributeError, ValueError, OSError):
        ram_gb = None
    return Hardware(max(1, cores), ram_gb, cuda_devices(engine))


def cuda_devices(engine: str = "faster-whisper") -> int:
    """How many CUDA devices ``engine`` can run on (0 on a CPU-only install)."""
    try:
        if engine == "openai":
            import torch

            return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count())
    except Exception as exc:  # noqa: BLE001 - a broken CUDA driver means: no GPU
        log.debug("no CUDA device for %s (%s)", engine, exc)
        return 0


def cpu_core_seconds(candidate: Candidate, *, engine: str = "faster-whisper") -> float:
    """Estimated CPU seconds per second of audio for ``candidate`` (see above)."""
    cost = BASE_CORE_SECONDS * candidate.params_m / BASE_PARAMS_M
    return cost * OPENAI_CPU_FACTOR if engine == "openai" else cost


def estimated_rtf(candidate: Candidate, hardware: Hardware, *, engine: str = "faster-whisper") -> float:
    """Estimated wall seconds per second of audio for ``candidate`` on ``hardware`` (see above)."""
    if hardware.gpus:
        return GPU_RTF_LARGE * candidate.params_m / LARGE_PARAMS_M
    return cpu_core_seconds(candidate, engine=engine) / hardware.cores


def affordable(candidate: Candidate, hardware: Hardware, *, engine: str = "faster-whisper") -> bool:
    """Within MAX_RTF and the RAM (the floor, base, always is: it is what runs when nothing else does)."""
    if candidate.name == FLOOR:
        return True
    if hardware.ram_gb is not None and hardware.ram_gb < candidate.ram_gb:
        return False
    return estimated_rtf(candidate, hardware, engine=engine) <= MAX_RTF


def cores_needed(candidate: Candidate, *, engine: str = "faster-whisper") -> int:
    """The fewest CPU cores (no GPU) on which ``candidate`` is within MAX_RTF."""
    return max(1, math.ceil(cpu_core_seconds(candidate, engine=engine) / MAX_RTF))


@dataclass(frozen=True)
class AutoPlan:
    """What ``auto`` tries, best first, and why: the language's table cut to what ``hardware`` affords."""

    language: str | None
    hardware: Hardware
    engine: str
    candidates: tuple[Candidate, ...]  # affordable, best first, ending with the floor
    better: Candidate | None  # the best one the machine cannot afford (None: it affords the best)

    @property
    def for_language(self) -> str:
        from .options import LANGUAGES

        return f"for {LANGUAGES[self.language].title()}" if self.language in LANGUAGES else "for any language"

    def chose(self, chosen: Candidate) -> str:
        """The line said once per run when ``chosen`` is what the machine affords best."""
        rtf = estimated_rtf(chosen, self.hardware, engine=self.engine)
        wer = f"published WER {chosen.describe_wer()}; " if chosen.wer else ""
        line = (
            f"Whisper {chosen.name} {self.for_language}: the most accurate this machine can run "
            f"({wer}est. {rtf:.2f}x real time on {self.hardware.describe()})"
        )
        if self.better is not None:
            line += f"; {self.better.name} would need a GPU or {cores_needed(self.better, engine=self.engine)}+ cores"
        return line

    def fell_back(self, wanted: Candidate, chosen: Candidate, cost: str | None = None) -> str:
        """The line said once per run when ``wanted`` could not be had and ``chosen`` runs instead
        (``cost``: what that costs, when measured; else the published figures say it)."""
        if chosen.wer and chosen.wer.keys() == wanted.wer.keys():
            tests = " / ".join(chosen.wer)
            mine, theirs = (" / ".join(f"{v:g}" for v in c.wer.values()) for c in (chosen, wanted))
            published = f"published WER ({tests}) {mine} % against {theirs} % for {wanted.name}"
            cost = f"{cost}; {published}" if cost else f"its {published}"
        else:
            cost = cost or f"it is less accurate than {wanted.name}"
        return (
            f"Whisper {wanted.name} (the most accurate {self.for_language} on {self.hardware.describe()}) is not "
            f"downloaded and cannot be downloaded now: transcribing with {chosen.name} instead; {cost}. "
            f"Connect once to download {wanted.name} (~{wanted.download_gb:g} GB), or choose with --whisper-model."
        )


def auto_plan(language: str | None, hardware: Hardware, *, engine: str = "faster-whisper") -> AutoPlan:
    """The candidates ``auto`` tries for ``language`` on ``hardware``, best first."""
    table = table_for(language)
    fits = tuple(c for c in table if affordable(c, hardware, engine=engine))
    better = None if fits[0] is table[0] else table[0]
    return AutoPlan(language, hardware, engine, fits, better)


def model_arg(candidate: Candidate) -> str:
    """What to hand the engine's ``resolve`` for ``candidate``: its size name (the engine finds it
    in its cache, the packages or the hub), or for a transformers repo its local folder: the
    Hugging Face cache's snapshot, else downloaded now (a ModelUnavailableError when the hub
    cannot be used; a cached copy counts as available offline)."""
    if candidate.layout != TRANSFORMERS:
        return candidate.name
    from ..models import cached_hub_snapshot, hub_unavailable_reason

    snapshot = cached_hub_snapshot(candidate.hub_id, allow_patterns=TRANSFORMERS_PATTERNS, required=("config.json",))
    if snapshot is not None:
        return snapshot
    why = hub_unavailable_reason()
    if why:
        raise ModelUnavailableError(
            f"Whisper model {candidate.hub_id} is not in the Hugging Face cache and cannot be downloaded "
            f"({why}): connect once to download it (~{candidate.download_gb:g} GB), or pass --whisper-model "
            f"FOLDER with a copy of it"
        )
    import huggingface_hub

    log.info("downloading the Whisper model %s (~%.1f GB, once)", candidate.hub_id, candidate.download_gb)
    try:
        return str(huggingface_hub.snapshot_download(candidate.hub_id, allow_patterns=TRANSFORMERS_PATTERNS))
    except Exception as exc:  # noqa: BLE001 - any hub failure means: not available now
        from ..errors import one_line

        raise ModelUnavailableError(f"Whisper model {candidate.hub_id}: download failed ({one_line(exc)})") from None
