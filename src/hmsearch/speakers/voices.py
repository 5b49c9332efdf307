"""A voice registry: a named speaker's voice (the mean of resemblyzer vectors over their turns),
kept in the index folder's ``voices.json``, so the host is recognised in every later episode.

Recognition compares each speaker of an episode with every registered voice: cosine similarity of
the mean vectors, at least ``RECOGNISE_SIMILARITY``, one name per speaker and one speaker per name
(the most similar pairs first). Tuned in benchmarks/bench_diarization.py (``host`` section)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import IndexStateError
from ..fsutil import atomic_write
from ..types import Turn
from .detect import DiarizeSettings, window_embeddings

VOICES_FILE = "voices.json"
RECOGNISE_SIMILARITY = 0.8


def speaker_vectors(
    samples: np.ndarray, turns: Sequence[Turn], settings: DiarizeSettings = DiarizeSettings()
) -> dict[str, np.ndarray]:
    """Each speaker's voice: the unit mean of the window vectors inside their turns."""
    regions = [(t.start, t.end) for t in turns]
    centres, vectors = window_embeddings(samples, regions, settings)
    out: dict[str, np.ndarray] = {}
    for speaker in dict.fromkeys(t.speaker for t in turns):
        mine = np.zeros(len(centres), dtype=bool)
        for t in turns:
            if t.speaker == speaker:
                mine |= (centres >= t.start) & (centres <= t.end)
        if mine.any():
            v = vectors[mine].mean(axis=0)
            out[speaker] = v / max(float(np.linalg.norm(v)), 1e-9)
    return out


def recognise(
    vectors: dict[str, np.ndarray], voices: dict[str, np.ndarray], *, threshold: float = RECOGNISE_SIMILARITY
) -> dict[str, str]:
    """{speaker id: registered name} for the speakers whose voice matches one in ``voices``."""
    pairs = sorted(
        ((float(v @ voices[name]), sid, name) for sid, v in vectors.items() for name in voices),
        reverse=True,
    )
    out: dict[str, str] = {}
    for sim, sid, name in pairs:
        if sim < threshold:
            break
        if sid not in out and name not in out.values():
            out[sid] = name
    return out


def read_voices(index_dir: Path) -> dict[str, np.ndarray]:
    """{name: unit voice vector} (empty when no voice was ever registered)."""
    path = Path(index_dir) / VOICES_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(k): np.asarray(v["vector"], dtype=np.float32) for k, v in data["voices"].items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexStateError(f"{path}: unreadable voice registry ({exc}); fix or delete the file") from None


def register_voice(index_dir: Path, name: str, vector: np.ndarray) -> None:
    """Add or renew ``name``'s voice (the caller holds the write lock): a voice heard again is
    averaged with what was kept, so it settles over episodes."""
    voices = read_voices(index_dir)
    old = voices.get(name)
    v = vector if old is None else old + vector
    voices[name] = (v / max(float(np.linalg.norm(v)), 1e-9)).astype(np.float32)
    payload = {"voices": {k: {"vector": [round(float(x), 6) for x in v]} for k, v in sorted(voices.items())}}
    atomic_write(Path(index_dir) / VOICES_FILE, json.dumps(payload).encode("utf-8"))


def _episode_vectors(audio: str | None, turns: Sequence[Turn]) -> dict[str, np.ndarray] | None:
    if not audio or not Path(audio).is_file() or not turns:
        return None
    from ..audio import decode_audio

    return speaker_vectors(decode_audio(Path(audio)), turns)


def register_named(index_dir: Path, audio: str | None, turns: Sequence[Turn], names: dict[str, str]) -> list[str]:
    """Register the voices of the speakers just named (their episode's audio must be local);
    the names registered. The caller holds the write lock."""
    vectors = _episode_vectors(audio, [t for t in turns if t.speaker in names])
    if not vectors:
        return []
    for sid, name in names.items():
        if sid in vectors:
            register_voice(index_dir, name, vectors[sid])
    return [names[s] for s in names if s in vectors]


def recognise_episode(index_dir: Path, audio: str | None, turns: Sequence[Turn]) -> dict[str, str]:
    """{speaker id: name} for the episode's speakers whose voice is in the registry."""
    voices = read_voices(index_dir)
    if not voices:
        return {}
    vectors = _episode_vectors(audio, turns)
    return recognise(vectors, voices) if vectors else {}
