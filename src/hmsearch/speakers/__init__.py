"""Speaker turns: who speaks when in an episode's audio, and which words are whose.

``diarize`` (audio -> turns) needs resemblyzer; ``assign_speakers`` (turns + transcript -> a
transcript whose segments each have one speaker) and ``turns_from_sentences`` are plain Python."""

from pathlib import Path

import numpy as np

from ..types import Transcript
from .assign import assign_speakers, turns_from_sentences
from .detect import DiarizeSettings, SpeakersUnavailable, diarize, speakers_available

__all__ = [
    "DiarizeSettings",
    "SpeakersUnavailable",
    "assign_speakers",
    "diarize",
    "speakers_available",
    "speakers_enabled",
    "transcript_with_speakers",
    "turns_from_sentences",
]


def speakers_enabled() -> bool:
    """The ``speakers`` setting: on, off, or auto (on when the speaker encoder is installed)."""
    from ..config import setting

    mode = setting("speakers")
    return bool(mode == "on" or (mode == "auto" and speakers_available()))


def transcript_with_speakers(transcript: Transcript, audio: Path, *, samples: np.ndarray | None = None) -> Transcript:
    """Whisper's transcript with a speaker on every segment (a segment split where the speaker
    changes); one that has speakers already is kept as it is."""
    if any(seg.speaker for seg in transcript.segments):
        return transcript
    if samples is None:
        from ..audio import decode_audio

        samples = decode_audio(audio)
    return assign_speakers(transcript, diarize(samples))
