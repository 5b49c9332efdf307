"""The index on disk (one writer, many readers): persistence in ``store``, typed records in
``manifest``, and the derived indexes (rows, FAISS, BM25) built through one load-or-rebuild helper."""

from .store import IndexStore

__all__ = ["IndexStore"]
