"""Rows: FAISS and BM25 number every passage of the index in manifest order; this maps a row to
(episode, passage) and back, and gives each row its episode's language."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .manifest import Manifest


@dataclass(frozen=True)
class RowTable:
    ids: list[str]  # episode ids in manifest (= row) order
    starts: np.ndarray  # the first row of each episode, then the total
    languages: np.ndarray  # each episode's language code ("" when unknown), aligned with ids

    @classmethod
    def of(cls, manifest: Manifest) -> RowTable:
        ids = list(manifest.episodes)
        counts = np.array([manifest.episodes[i].n_passages for i in ids], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        langs = np.array([manifest.episodes[i].language or "" for i in ids], dtype=object)
        return cls(ids, starts, langs)

    @property
    def total(self) -> int:
        return int(self.starts[-1])

    def location(self, row: int) -> tuple[str, int]:
        """Row -> (episode id, passage index)."""
        e = int(np.searchsorted(self.starts, row, side="right") - 1)
        return self.ids[e], int(row - self.starts[e])

    def positions(self, rows: np.ndarray) -> np.ndarray:
        """Rows -> positions of their episodes in ``ids`` (vectorised ``location``)."""
        return np.asarray(np.searchsorted(self.starts, np.asarray(rows, dtype=np.int64), side="right") - 1)

    def row_languages(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.languages[self.positions(rows)])

    def episode_rows(self, episode_id: str) -> range:
        e = self.ids.index(episode_id)
        return range(int(self.starts[e]), int(self.starts[e + 1]))
