"""The dense index: FAISS over every passage vector, exact while that is fast, HNSW above.

Vectors are L2-normalised, so inner product is cosine similarity. The index kind follows the
size automatically: the cache is derived from the episode files and rebuilt in the right kind.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

# Exact (flat) search reads every vector per query: ~14 ms per 100k passages here, so past
# ~250k passages (setting exact_search_max) an HNSW graph (M=32, efSearch=128: recall@10 ~0.99
# vs exact; benchmarks/results/bench_query_ann_*.md) takes over.
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 80, 128
_THREADS = threading.Lock()  # FAISS's OpenMP thread count is process-wide


def index_kind(total: int, exact_max: int) -> str:
    return "flat" if total <= exact_max else "hnsw"


class DenseIndex:
    def __init__(self, index: Any) -> None:
        self.faiss = index
        if hasattr(index, "hnsw"):
            index.hnsw.efSearch = HNSW_EF_SEARCH

    @property
    def size(self) -> int:
        return int(self.faiss.ntotal)

    @property
    def dim(self) -> int:
        return int(self.faiss.d)

    @classmethod
    def build(cls, kind: str, dim: int, batches: Iterable[np.ndarray]) -> DenseIndex:
        import faiss

        index: Any
        if kind == "flat":
            index = faiss.IndexFlatIP(dim)
        else:
            index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        for vecs in batches:
            if len(vecs):
                index.add(np.ascontiguousarray(vecs, dtype=np.float32))
        return cls(index)

    @classmethod
    def load(cls, path: Path) -> DenseIndex:
        import faiss

        return cls(faiss.read_index(str(path)))

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self.faiss, str(path))

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of the ``k`` nearest passages to one query vector, best first.

        On one thread: for a single query OpenMP's start-up costs more than it saves
        (benchmarks/results/bench_query.md: flat 100k, 16 ms on 1 thread against 41 ms on 2)."""
        import faiss

        k = min(k, self.size)
        if k <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        with _THREADS:
            threads = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(1)
            try:
                scores, rows = self.faiss.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k)
            finally:
                faiss.omp_set_num_threads(threads)
        keep = rows[0] >= 0
        return scores[0][keep], rows[0][keep].astype(np.int64)

    def scores(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Exact cosine of ``query`` with the passages at ``rows``."""
        if len(rows) == 0:
            return np.zeros(0, dtype=np.float32)
        vecs = self.faiss.reconstruct_batch(np.asarray(rows, dtype=np.int64))
        return np.asarray(vecs @ query.reshape(-1).astype(np.float32), dtype=np.float32)
