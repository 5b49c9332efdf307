"""The index on disk (one writer, many readers): persistence in ``store``, typed records in
``manifest``, and the derived indexes (rows, FAISS, BM25) built through one load-or-rebuild helper."""

from . import sentences as _sentences  # noqa: F401  registers its per-episode cache with the writer's sweep
from .store import IndexStore

__all__ = ["IndexStore"]
