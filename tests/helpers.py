"""Paths and helpers the tests share (imported as a module; conftest.py holds the fixtures).

``nearest`` and ``put_episode`` are the store-level helpers several tests need: the nearest
passages to a vector through the store's own FAISS search, and one episode written by hand.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SAMPLE_AUDIO = REPO / "audio" / "hm-sample-001.mp3"
SAMPLE_TRANSCRIPT = REPO / "audio" / "hm-sample-001.json"


def require_tool(name: str) -> str:
    """The tool's path; skip when it is missing, except on CI, where its absence is a failure."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required on CI (scripts/setup.sh --test installs it)")
        pytest.skip(f"{name} not installed")
    return path


def shared_data(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} not present (the shared corpora live beside the repo)")
    return path


def espeak(text: str, path: Path, *, voice: str = "da") -> Path:
    """Danish (by default) speech for ``text`` as a WAV file, from espeak-ng."""
    exe = require_tool("espeak-ng")
    subprocess.run([exe, "-v", voice, "-s", "160", "-w", str(path), text], check=True, capture_output=True)
    return path


def nearest(store, query: np.ndarray, k: int) -> list[tuple[float, str, int]]:
    """(score, episode id, passage index) of the k passages nearest ``query``, best first."""
    scores, rows = store.dense().search(query, k)
    table = store.rows()
    return [(float(s), *table.location(int(r))) for s, r in zip(scores, rows)]


def passages_of(texts: list[str], *, start: float = 0.0, step: float = 10.0, length: float = 9.0):
    """One single-sentence passage per text, ``step`` seconds apart."""
    from hmsearch.types import Passage, Sentence

    return [
        Passage(
            start + i * step, start + i * step + length, (Sentence(start + i * step, start + i * step + length, t),)
        )
        for i, t in enumerate(texts)
    ]


class HashingEncoder:
    """A stand-in for an embedding model, for tests of planning, storage and the query service that
    must not load one: each word is hashed into one of ``dim`` buckets (bag of words, L2-normalised).
    It satisfies the Encoder protocol and proves plumbing, never search quality."""

    name = "test/hashing-encoder"
    dim = 64
    max_tokens = 200

    def __init__(self) -> None:
        from hmsearch.embed.cards import ModelCard

        self.card = ModelCard(id=self.name, query_prefix="", passage_prefix="")
        self.calls = 0  # texts embedded, so a test can tell that no work was done

    def count_tokens(self, texts):
        return [len(t.split()) for t in texts]

    def _vectors(self, texts):
        import zlib

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, zlib.crc32(word.strip(".,?!").encode()) % self.dim] += 1.0
        self.calls += len(texts)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1)

    def encode_documents(self, texts, *, progress=None):
        vecs = self._vectors(list(texts))
        if progress:
            progress(len(texts))
        return vecs

    def encode_queries(self, texts):
        return self._vectors(list(texts))


def write_srt(path: Path, lines: list[str], *, seconds: float = 5.0) -> Path:
    """An SRT file with one cue per line, ``seconds`` apart."""

    def stamp(t: float) -> str:
        ms = round(t * 1000)
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    cues = [
        f"{i + 1}\n{stamp(i * seconds)} --> {stamp(i * seconds + seconds - 0.5)}\n{line}\n"
        for i, line in enumerate(lines)
    ]
    path.write_text("\n".join(cues), encoding="utf-8")
    return path


def index_sample(root: Path, *, extra: dict[str, list[str]] | None = None):
    """The bundled sample episode (its transcript beside it, so Whisper never runs), plus an SRT
    episode per ``extra`` item (stem -> lines), indexed with the HashingEncoder into ``root/ix``;
    the store as a reader opens it afterwards."""
    from hmsearch.asr import TranscriberSpec
    from hmsearch.index import IndexStore
    from hmsearch.ingest import IndexOptions, index_paths

    folder = root / "audio"
    folder.mkdir()
    shutil.copy(SAMPLE_AUDIO, folder)
    shutil.copy(SAMPLE_TRANSCRIPT, folder)
    for stem, lines in (extra or {}).items():
        write_srt(folder / f"{stem}.srt", lines)
    store = IndexStore(root / "ix")
    with store.writing():
        index_paths([folder], store, encoder=HashingEncoder(), options=IndexOptions(TranscriberSpec("turbo")))
    return IndexStore(root / "ix")
