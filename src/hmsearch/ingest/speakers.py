"""`hmsearch speakers EPISODE --detect`: speaker turns for an episode indexed without them, from
its audio and the timed words the index already holds (no Whisper). The episode's passages are
cut again (a sentence never spans two speakers) and embedded, written as a new file pair, and
committed by one manifest rename, as ``reindex`` does for every episode."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

from ..audio import decode_audio
from ..chunk import ChunkSettings, chunk_transcript, transcript_from_passages
from ..embed import Encoder
from ..errors import InputError
from ..index import IndexStore
from ..index.store import segment_key
from ..types import Turn


def detect_episode_speakers(store: IndexStore, encoder: Encoder, episode_id: str) -> list[Turn]:
    """Diarize ``episode_id``'s audio and commit its passages with speakers; the turns found.
    The caller holds the write lock; ``encoder`` is the index's own model."""
    from ..speakers import assign_speakers, diarize

    manifest = copy.deepcopy(store.require())  # committed whole at the end, or not at all
    record = manifest.episodes.get(episode_id) or store.record(episode_id)
    audio = record.episode.audio
    if not audio or not Path(audio).is_file():
        raise InputError(
            f"{episode_id}: its audio is not on this machine ({audio or 'a transcript-only episode'}); "
            "speaker turns are found from the audio"
        )
    if encoder.name != manifest.embedding_model:
        raise InputError(f"the index uses {manifest.embedding_model}, not {encoder.name}")
    transcript = transcript_from_passages(store.passages(episode_id), language=record.episode.language)
    transcript = replace(transcript, segments=tuple(replace(s, speaker=None) for s in transcript.segments))
    turns = diarize(decode_audio(Path(audio)))
    transcript = assign_speakers(transcript, turns)
    settings = ChunkSettings.from_dict(manifest.chunking) or encoder.card.chunking
    passages = chunk_transcript(
        transcript, count_tokens=encoder.count_tokens, max_tokens=encoder.max_tokens, settings=settings
    )
    vectors = encoder.encode_documents([p.text for p in passages])
    episode = replace(record.episode, n_passages=len(passages))
    # A new file pair (the old one stays valid for readers of the old manifest until the rename).
    key = segment_key(episode_id, f"{episode.content_hash}|speakers|{len(turns)}|{turns[0].end if turns else 0}")
    new_record = replace(record, episode=episode, segment=key)
    store.write_episode_files(manifest, new_record, passages, vectors)
    manifest.episodes[episode_id] = new_record
    store.replace_all(manifest)
    store.finish()
    return turns


def name_from_feed(store: IndexStore, episode_id: str) -> dict[str, str]:
    """Names for the episode's speakers from its feed's ``<podcast:person>`` tags (the rule is
    speakers/persons.py's), saved beside the names given (``speakers.json``; a name given is never
    replaced); the names added. The host's voice, when the registry knows it, decides first.
    The caller holds the write lock."""
    from ..chunk import sentences_from_passages
    from ..speakers import speakers_available, turns_from_sentences
    from ..speakers.names import is_detected, read_names, save_names
    from ..speakers.persons import names_from_persons, persons_from_dicts
    from ..speakers.voices import read_voices, recognise_episode

    record = store.record(episode_id)
    feed = record.feed
    persons = persons_from_dicts(feed.get("persons") if isinstance(feed, dict) else None)
    if not persons:
        return {}
    sentences = sentences_from_passages(store.passages(episode_id))
    if not any(s.speaker for s in sentences):
        return {}  # a transcript-only import without voices: the persons are listed, no one named
    given = read_names(store.root).get(episode_id, {})
    recognised: dict[str, str] = {}
    if any(p.is_host for p in persons) and speakers_available() and read_voices(store.root):
        turns = [t for t in turns_from_sentences(sentences) if is_detected(t.speaker) and t.speaker not in given]
        recognised = recognise_episode(store.root, record.episode.audio, turns)
    names = names_from_persons(sentences, persons, given, recognised)
    if names:
        save_names(store.root, episode_id, names)
    return names
