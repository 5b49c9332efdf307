"""Speakers of one episode as the read side shows them, and the names a host gave them.

Names live in ``speakers.json`` in the index folder ({"episodes": {episode: {"S1": "Anne Hansen"}}}),
written whole and renamed (the caller holds the index's write lock), so naming a speaker never
rewrites an episode's passages."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import IndexStateError, InputError
from ..fsutil import atomic_write
from ..types import Sentence
from .assign import turns_from_sentences

NAMES_FILE = "speakers.json"
_DETECTED = re.compile(r"S\d+")  # ids diarization gives; any other speaker is an imported voice's name


@dataclass(frozen=True)
class SpeakerTurn:
    start: float
    end: float
    speaker: str
    name: str | None
    quote: str = ""  # the turn's first sentence, for people (not in the JSON)

    def to_dict(self) -> dict[str, Any]:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "speaker": self.speaker, "name": self.name}


@dataclass(frozen=True)
class EpisodeSpeakers:
    """``hmsearch speakers EPISODE --json``: {"episode", "speakers": [{"id", "name"}], "turns": [...],
    "persons": [{"name", "role", "group", "href", "img"}]} (persons: the feed's ``<podcast:person>``)."""

    episode: str
    speakers: tuple[tuple[str, str | None], ...]  # (id, name) in order of first turn
    turns: tuple[SpeakerTurn, ...]
    persons: tuple[dict[str, Any], ...] = ()  # Person.to_dict() of each, as the feed lists them

    def to_dict(self) -> dict[str, Any]:
        return {
            "episode": self.episode,
            "speakers": [{"id": i, "name": n} for i, n in self.speakers],
            "turns": [t.to_dict() for t in self.turns],
            "persons": list(self.persons),
        }

    def seconds(self, speaker: str) -> float:
        return sum(t.end - t.start for t in self.turns if t.speaker == speaker)


def is_detected(speaker: str) -> bool:
    """Whether ``speaker`` is an id diarization gave (S1, S2, ...), not an imported voice's name."""
    return bool(_DETECTED.fullmatch(speaker))


def speaker_name(speaker: str, names: dict[str, str]) -> str | None:
    """A speaker's name: the one given, else an imported voice's own, else None."""
    return names.get(speaker) or (None if is_detected(speaker) else speaker)


def episode_speakers(
    episode: str,
    sentences: Sequence[Sentence],
    names: dict[str, str],
    persons: Sequence[dict[str, Any]] = (),
) -> EpisodeSpeakers:
    turns = turns_from_sentences(sentences)
    out = []
    for t in turns:
        quote = next((s.text for s in sentences if s.speaker == t.speaker and s.start >= t.start - 1e-6), "")
        out.append(SpeakerTurn(t.start, t.end, t.speaker, speaker_name(t.speaker, names), quote))
    ids = list(dict.fromkeys(t.speaker for t in turns))
    return EpisodeSpeakers(episode, tuple((i, speaker_name(i, names)) for i in ids), tuple(out), tuple(persons))


def read_names(index_dir: Path) -> dict[str, dict[str, str]]:
    """{episode: {speaker id: name}} (empty when no speaker was ever named)."""
    path = Path(index_dir) / NAMES_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise IndexStateError(f"{path}: unreadable speaker names ({exc}); fix or delete the file") from None
    episodes = data.get("episodes") if isinstance(data, dict) else None
    if not isinstance(episodes, dict):
        raise IndexStateError(f"{path}: not a speaker-names file; fix or delete it")
    return {
        str(e): {str(k): str(v) for k, v in names.items()} for e, names in episodes.items() if isinstance(names, dict)
    }


def parse_naming(text: str) -> tuple[str, str]:
    """``S1="Anne Hansen"`` (the shell has taken the quotes) -> ("S1", "Anne Hansen")."""
    speaker, sep, name = text.partition("=")
    speaker, name = speaker.strip(), " ".join(name.strip().strip("\"'").split())
    if not sep or not speaker or not name:
        raise InputError(f'--name {text!r}: write it as SPEAKER=NAME, e.g. --name S1="Anne Hansen"')
    return speaker, name


def save_names(index_dir: Path, episode: str, names: dict[str, str]) -> dict[str, str]:
    """Add ``names`` to the episode's (the caller holds the write lock); the episode's names after."""
    every = read_names(index_dir)
    mine = {**every.get(episode, {}), **names}
    every[episode] = mine
    payload = json.dumps({"episodes": every}, ensure_ascii=False, indent=1, sort_keys=True)
    atomic_write(Path(index_dir) / NAMES_FILE, payload.encode("utf-8"))
    return mine
