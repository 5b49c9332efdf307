"""The dense index: FAISS over every passage vector, exact while that is fast, HNSW above, and a
compressed inverted file (IVF-PQ, re-ranked from 8-bit vectors) beyond what HNSW holds in memory.

Vectors are L2-normalised, so inner product is cosine similarity. The index kind follows the
size automatically: the cache is derived from the episode files and rebuilt in the right kind.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

# Exact (flat) search reads every vector per query: ~14 ms per 100k passages here, so past
# ~250k passages (setting exact_search_max) an HNSW graph (M=32, efSearch=128: recall@10 ~0.99
# vs exact; benchmarks/results/bench_query_ann_*.md) takes over.
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 80, 128
# HNSW keeps every float32 vector plus its graph (~1.8 KB a passage at 384-d: 18 GB at 10M) and
# builds slowly (~25 min a million here). Past ~1M passages (setting hnsw_max) the index becomes
# IVF-PQ: an OPQ rotation, ~sqrt(N) lists, 48 one-byte PQ codes a passage, the best
# IVF_K_FACTOR*k re-ranked from 8-bit scalar-quantised vectors (~440 B a passage in all: 4.4 GB at
# 10M). Chosen by measurement (benchmarks/bench_scale.py, README "Ten million passages"): at 300k
# realcov vectors, recall@10 0.78 without the rotation, 0.88 with it, at the same 1.7 ms.
IVF_PQ_M, IVF_NPROBE, IVF_K_FACTOR = 48, 64, 16  # nprobe: at least 64, and 1/32 of the lists
IVF_ADD_ROWS = 16_384  # vectors assigned to lists at a time (FAISS holds rows x lists distances)
IVF_TRAIN_PER_LIST = 64  # training vectors per list (FAISS asks for at least 39)
_THREADS = threading.Lock()  # FAISS's OpenMP thread count is process-wide

# Every dense index kind, smallest catalogue first: the one place they are named. index_kind()
# picks one, DenseIndex.build() makes it, and the cache's file name (and the pattern the writer's
# sweep deletes stale caches by) is built from this tuple, so a new kind cannot be forgotten there.
KINDS = ("flat", "hnsw", "ivfpq")
CACHE_PATTERN = "(?:" + "|".join(KINDS) + r")-[0-9a-f]{16}\.faiss"  # a regex of cache_name()'s names


def cache_name(kind: str, digest: str) -> str:
    """The dense cache's file name in cache/: ``<kind>-<16 hex digits of the episode list>.faiss``."""
    if kind not in KINDS:
        raise ValueError(f"unknown index kind {kind!r}")
    return f"{kind}-{digest}.faiss"


def index_kind(total: int, exact_max: int, hnsw_max: int | None = None) -> str:
    """The kind for ``total`` passages: the first of KINDS whose limit holds them (no limit: HNSW
    is the last)."""
    limits = (exact_max, hnsw_max)
    for kind, limit in zip(KINDS, limits, strict=False):
        if limit is None or total <= limit:
            return kind
    return KINDS[-1]


def ivf_nprobe(lists: int) -> int:
    """Lists searched per query: 64 up to 2,048 lists, 128 at 4,096 (10M passages: recall@10 0.87
    at 14 ms against 0.76 at 8 ms with 64; benchmarks/results/bench_scale.md)."""
    return max(IVF_NPROBE, lists // 32)


def ivf_lists(total: int) -> int:
    """Inverted lists for ``total`` vectors: ~sqrt(N), a power of two (1M: 1024, 10M: 4096)."""
    lists: int = 2 ** round(math.log2(math.sqrt(max(total, 1))))
    return max(64, lists)


def pq_codes(dim: int) -> int:
    """PQ sub-quantizers: IVF_PQ_M, or the largest count below it that divides ``dim``."""
    return next(m for m in range(min(IVF_PQ_M, dim), 0, -1) if dim % m == 0)


def ivf_factory(dim: int, total: int) -> str:
    m = pq_codes(dim)
    return f"OPQ{m},IVF{ivf_lists(total)},PQ{m}x8,Refine(SQ8)"


class DenseIndex:
    KINDS = KINDS

    def __init__(self, index: Any) -> None:
        import faiss

        self.faiss = index
        if hasattr(index, "hnsw"):
            index.hnsw.efSearch = HNSW_EF_SEARCH
        if isinstance(index, faiss.IndexRefine):
            index.k_factor = IVF_K_FACTOR
            ivf = faiss.extract_index_ivf(index)
            ivf.nprobe = ivf_nprobe(int(ivf.nlist))

    @property
    def kind(self) -> str:
        import faiss

        if isinstance(self.faiss, faiss.IndexRefine):
            return "ivfpq"
        return "hnsw" if hasattr(self.faiss, "hnsw") else "flat"

    @property
    def size(self) -> int:
        return int(self.faiss.ntotal)

    @property
    def dim(self) -> int:
        return int(self.faiss.d)

    @classmethod
    def build(cls, kind: str, dim: int, batches: Callable[[], Iterable[np.ndarray]], total: int = 0) -> DenseIndex:
        """An index of ``kind`` over the vectors ``batches()`` yields (in row order). IVF-PQ reads
        them twice, first for a training sample spread over all of them (``total`` of them)."""
        import faiss

        index: Any
        if kind == "flat":
            index = faiss.IndexFlatIP(dim)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        elif kind == "ivfpq":
            index = faiss.index_factory(dim, ivf_factory(dim, total), faiss.METRIC_INNER_PRODUCT)
            index.train(training_sample(batches(), total, ivf_lists(total) * IVF_TRAIN_PER_LIST))
        else:
            raise ValueError(f"unknown index kind {kind!r}")
        for vecs in batches():
            for start in range(0, len(vecs), IVF_ADD_ROWS):
                index.add(np.ascontiguousarray(vecs[start : start + IVF_ADD_ROWS], dtype=np.float32))
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


def training_sample(batches: Iterable[np.ndarray], total: int, want: int) -> np.ndarray:
    """Every ``ceil(total / want)``-th vector of the batches: a sample spread over the whole
    catalogue (not only its first episodes), at most ``want`` of them."""
    stride = max(1, math.ceil(total / max(want, 1)))
    parts, seen = [], 0
    for vecs in batches:
        first = (-seen) % stride  # the next multiple of stride, counted over all batches
        parts.append(np.asarray(vecs[first::stride], dtype=np.float32))
        seen += len(vecs)
    sample = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
    return np.ascontiguousarray(sample[:want])
