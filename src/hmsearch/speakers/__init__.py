"""Speaker turns: who speaks when in an episode's audio, and which words are whose.

``diarize`` (audio -> turns) needs resemblyzer; ``assign_speakers`` (turns + transcript -> a
transcript whose segments each have one speaker) and ``turns_from_sentences`` are plain Python."""

from .assign import assign_speakers, turns_from_sentences
from .detect import DiarizeSettings, SpeakersUnavailable, diarize, speakers_available

__all__ = [
    "DiarizeSettings",
    "SpeakersUnavailable",
    "assign_speakers",
    "diarize",
    "speakers_available",
    "turns_from_sentences",
]
