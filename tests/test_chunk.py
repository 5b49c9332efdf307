"""Chunking: sentences across cues, exact times, overlap, and the model's token limit."""

from __future__ import annotations

from hmsearch.chunk import ChunkSettings, chunk_transcript, transcript_sentences
from hmsearch.formats import read_transcript
from hmsearch.types import Segment, Transcript, Word

from helpers import SAMPLE_TRANSCRIPT


def words_count(texts):
    return [len(t.split()) for t in texts]


def test_sentences_join_cues_and_keep_cue_times():
    t = Transcript(
        (
            Segment(10.0, 14.0, "Follow me on Twitter and listen to past"),
            Segment(14.0, 16.0, "episodes at the website. Then we start."),
            Segment(20.0, 22.0, "Dr. Smith agrees."),
        )
    )
    sentences = transcript_sentences(t)
    assert [s.text for s in sentences] == [
        "Follow me on Twitter and listen to past episodes at the website.",
        "Then we start.",
        "Dr. Smith agrees.",
    ]
    assert sentences[0].start == 10.0 and sentences[-1].end == 22.0
    assert sentences[1].end == 16.0  # the cue's own end


def test_sentences_use_word_timestamps_when_present():
    words = (
        Word(1.0, 1.4, " Hej"),
        Word(1.5, 2.0, " allesammen."),
        Word(3.2, 3.5, " Velkommen"),
        Word(3.6, 4.1, " til."),
    )
    t = Transcript((Segment(1.0, 4.1, "Hej allesammen. Velkommen til.", words=words),))
    s = transcript_sentences(t)
    assert [(x.start, x.end, x.text) for x in s] == [(1.0, 2.0, "Hej allesammen."), (3.2, 4.1, "Velkommen til.")]


def test_unpunctuated_speech_is_cut_at_max_sentence_length():
    segs = tuple(Segment(i * 5.0, i * 5.0 + 5, "og så videre uden punktum") for i in range(20))
    sentences = transcript_sentences(Transcript(segs))
    assert len(sentences) > 1
    assert all(s.end - s.start <= 30.0 + 5.0 for s in sentences)


def test_windows_overlap_follow_sentences_and_cover_everything():
    segs = tuple(Segment(i * 6.0, i * 6.0 + 5.5, f"Sentence number {i} is here.") for i in range(40))
    t = Transcript(segs)
    settings = ChunkSettings(target_seconds=30, overlap_seconds=10)
    chunks = chunk_transcript(t, count_tokens=words_count, max_tokens=256, settings=settings)
    assert len(chunks) > 5
    covered = {s.text for c in chunks for s in c.sentences}
    assert covered == {s.text for s in segs}
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end, "consecutive windows overlap"
        assert b.start > a.start, "and always move forward"
        assert not set(b.sentences) <= set(a.sentences), "a window never only repeats the previous one"
    for c in chunks:
        assert c.end - c.start <= 30.0
        assert c.start == c.sentences[0].start and c.end == max(s.end for s in c.sentences)


def test_over_long_sentence_is_split_not_truncated():
    long = " ".join(f"ord{i}" for i in range(100)) + "."
    t = Transcript((Segment(0.0, 50.0, long),))
    chunks = chunk_transcript(
        t, count_tokens=words_count, max_tokens=30, settings=ChunkSettings(target_seconds=600, overlap_seconds=0)
    )
    assert " ".join(c.text for c in chunks).split() == long.split()
    assert all(len(c.text.split()) <= 30 for c in chunks)
    assert chunks[0].start == 0.0 and abs(chunks[-1].end - 50.0) < 1e-6


def test_real_tokenizer_limit_on_danish_sample(embedder):
    """No passage exceeds what the model reads: Danish text costs MiniLM many word pieces."""
    transcript = read_transcript(SAMPLE_TRANSCRIPT)
    tight = ChunkSettings(target_seconds=600, overlap_seconds=15, max_tokens=64)
    for settings in (ChunkSettings(), tight):
        chunks = chunk_transcript(
            transcript, count_tokens=embedder.count_tokens, max_tokens=embedder.max_tokens, settings=settings
        )
        limit = min(embedder.max_tokens, settings.max_tokens)
        real = [
            len(ids)
            for ids in embedder.model.tokenizer([c.text for c in chunks], add_special_tokens=False)["input_ids"]
        ]
        assert max(real) <= limit
        assert max(real) > limit * 0.6, "windows are filled, not tiny"
    seg_texts = " ".join(s.text for s in transcript.segments).split()
    assert " ".join(c.text for c in chunks[:1]).split() == seg_texts[: len(chunks[0].text.split())]
