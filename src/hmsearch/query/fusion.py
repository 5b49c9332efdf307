"""Fusing the dense and the lexical retriever: min-max normalised scores, weighted per passage by
how far the embedding model is trusted for the (query language, passage language) pair."""

from __future__ import annotations

import numpy as np


def minmax(x: np.ndarray) -> np.ndarray:
    if len(x) == 0:
        return x
    lo, hi = float(x.min()), float(x.max())
    return np.zeros_like(x) if hi - lo < 1e-9 else np.asarray((x - lo) / (hi - lo))


def fuse(dense: np.ndarray, lexical: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """weight * dense + (1 - weight) * lexical, each min-max normalised over the candidates."""
    return np.asarray(weights * minmax(dense) + (1 - weights) * minmax(lexical))
