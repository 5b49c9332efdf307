"""Sentence vectors: each episode's sentences embedded once, at index time (issue 23).

``ask`` reads a question against single sentences, not passages. Embedding the candidate sentences
at query time cost ~95 % of a warm ``ask`` (1.5 s on two cores); stored here, an answer reads them
from disk. One file per episode version, in the model's cache folder:

    cache/sentences-<model digest>/<episode files' key>-<format digest>.npz
        starts   float64 [n]       each sentence's start (the episode's sentences in time order,
                                   as ``chunk.sentences_from_passages`` gives them)
        vectors  float16 [n, dim]  their L2-normalised document vectors

float16 keeps 3 significant digits of a cosine (what the answer stage reads) at half the bytes:
384 × 2 B = 768 B a sentence, ~7 sentences a passage after de-overlap. At 10M passages that is
~56 GB on disk, read one episode at a time (~1 MB for two hours), never held in RAM as a whole: an
``ask`` touches the few episodes of its top passages, so the 24 GB machine holds only FAISS and BM25. The files are derived (rebuilt by
``reindex``; a missing or damaged one makes ``ask`` embed what it needs, as before) and the
writer's sweep drops those of episode versions the index no longer holds.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np

from ..fsutil import atomic_write, sha256_text
from .store import IndexStore, register_episode_cache

log = logging.getLogger(__name__)

KIND = "sentences"
FORMAT = "sentences-v1-float16"  # change it when the file's content changes: old files are not read
register_episode_cache(KIND)


def path_for(store: IndexStore, segment: str, *, model: str | None = None) -> Path:
    return store.model_cache(KIND, model=model) / f"{segment}-{sha256_text(FORMAT)[:8]}.npz"


def save(store: IndexStore, segment: str, starts: list[float], vectors: np.ndarray, *, model: str) -> None:
    """Write one episode version's sentence vectors by embedding ``model`` (the caller holds the
    write lock)."""
    if vectors.shape[0] != len(starts):
        raise ValueError(f"{vectors.shape[0]} sentence vectors for {len(starts)} sentences")
    buf = io.BytesIO()
    np.savez(buf, starts=np.asarray(starts, dtype=np.float64), vectors=np.asarray(vectors, dtype=np.float16))
    atomic_write(path_for(store, segment, model=model), buf.getvalue())


def load(path: Path, dim: int) -> dict[float, np.ndarray] | None:
    """start (rounded to ms) -> float32 unit vector, from one episode version's file (``path_for``);
    None when there is no file, or it is damaged or of another shape (the caller embeds instead)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            starts, vectors = data["starts"], data["vectors"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as exc:
        log.warning("sentence vectors %s are damaged (%s): embedding instead", path.name, exc)
        return None
    if vectors.ndim != 2 or vectors.shape != (len(starts), dim) or not np.isfinite(vectors).all():
        log.warning("sentence vectors %s do not fit the index: embedding instead", path.name)
        return None
    return {round(float(s), 3): v.astype(np.float32) for s, v in zip(starts, vectors)}
