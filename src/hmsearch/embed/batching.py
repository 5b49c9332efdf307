"""What every engine does the same way: prefixes, length-sorted batches, unit vectors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Progress = Callable[[int], None]


def with_prefix(texts: Sequence[str], prefix: str) -> list[str]:
    """``texts`` as the model must see them (E5 reads "query: ..." and "passage: ...")."""
    return [prefix + t for t in texts] if prefix else list(texts)


def encode_by_length(
    texts: Sequence[str],
    dim: int,
    batch_size: int,
    encode_batch: Callable[[list[str]], Any],
    progress: Progress | None = None,
) -> np.ndarray:
    """Unit vectors of ``texts`` in input order, embedded by ``encode_batch`` in batches cut from
    the texts sorted by length (as one sentence-transformers encode() call does), so that little
    compute goes to padding; ``progress(n)`` after each batch of n texts."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    for i in range(0, len(texts), batch_size):
        idx = order[i : i + batch_size]
        out[idx] = encode_batch([texts[j] for j in idx])
        if progress:
            progress(len(idx))
    return unit(out)


def unit(x: np.ndarray) -> np.ndarray:
    """L2-normalise rows in float32 (a bf16 model normalises in bf16: norms off by up to ~0.5%).

    Unit vectors make FAISS inner product equal cosine similarity."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1)
