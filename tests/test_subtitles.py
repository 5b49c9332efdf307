"""Subtitles players accept: `transcribe --format srt|vtt` writes cues of common limits (two lines
of at most 42 characters, 1-7 s, split at word times) that independent parsers read without
complaint: `srt` and `webvtt-py` from PyPI."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import srt
import webvtt

from hmsearch.formats import read_transcript
from hmsearch.host.subtitles import (
    MAX_LINE,
    Cue,
    make_cues,
    segment_words,
    split_lines,
    subtitles_text,
    write_subtitles,
)
from hmsearch.types import Segment, Transcript, Word

from helpers import SAMPLE_TRANSCRIPT, shared_data


def check_limits(transcript: Transcript, cues: list[Cue]) -> None:
    words = [w for s in transcript.segments for w in segment_words(s)]
    # every word once, in order, nothing added
    assert " ".join(c.text for c in cues).split() == [w for w, _, _ in words]
    starts = {round(a, 3) for _, a, _ in words}
    for c in cues:
        assert 1 <= len(c.lines) <= 2
        assert all(len(line) <= MAX_LINE or " " not in line for line in c.lines), c.lines
        assert c.end - c.start <= 7.0 + 1e-6
        assert round(c.start, 3) in starts or c.start > 0  # cut at a word's start (moved on only by a gap)
    for a, b in zip(cues, cues[1:]):
        assert a.end < b.start  # never overlapping
        assert a.end - a.start >= 1.0 - 1e-6 or b.start - a.end < 0.1  # short only when the next cue follows


def parse_both(cues: list[Cue], language: str | None) -> None:
    subs = list(srt.parse(subtitles_text(cues, "srt"), ignore_errors=False))
    assert len(subs) == len(cues)
    assert [s.content.splitlines() for s in subs] == [list(c.lines) for c in cues]
    vtt = webvtt.from_buffer(io.StringIO(subtitles_text(cues, "vtt", language=language)))
    assert len(vtt.captions) == len(cues)


def test_sample_transcript_cues_keep_the_limits_and_parse() -> None:
    t = read_transcript(SAMPLE_TRANSCRIPT)
    cues = make_cues(t)
    check_limits(t, cues)
    parse_both(cues, t.language)
    # split at Whisper's word times: each cue starts at one of its words' own start
    word_starts = {round(w.start, 3) for s in t.segments for w in s.words}
    assert sum(round(c.start, 3) in word_starts for c in cues) >= 0.9 * len(cues)


@pytest.mark.parametrize("corpus", ["talkpython", "lexicap"])
def test_real_transcripts_cue_limits_and_parse(corpus: str) -> None:
    folder = shared_data(corpus) / "vtt"
    path = sorted(folder.glob("*.vtt"))[3]
    t = read_transcript(path)
    cues = make_cues(t)
    check_limits(t, cues)
    parse_both(cues, t.language)


def test_long_segment_is_split_and_speakers_never_share_a_cue() -> None:
    words = tuple(Word(i * 0.4, i * 0.4 + 0.35, f" word{i}") for i in range(60))
    t = Transcript(
        segments=(
            Segment(0.0, 24.0, " ".join(w.text.strip() for w in words), words=words, speaker="Ann"),
            Segment(24.5, 26.0, "Hej & <farvel>.", speaker="Bo"),
        )
    )
    cues = make_cues(t)
    assert len(cues) >= 4 and {c.speaker for c in cues} == {"Ann", "Bo"}
    assert all(c.speaker == "Bo" for c in cues if "farvel" in c.text)
    vtt = subtitles_text(cues, "vtt")
    assert "<v Bo>Hej &amp; &lt;farvel&gt;." in vtt
    parse_both(cues, None)


def test_lines_are_balanced() -> None:
    lines = split_lines(["Mit", "klare", "råd", "er", "at", "svare", "inden", "for", "to", "timer", "på", "hverdage"])
    assert len(lines) == 2 and abs(len(lines[0]) - len(lines[1])) <= 12
    assert split_lines(["kort"]) == ["kort"]


def test_sentence_ends_are_preferred_cut_points() -> None:
    text = (
        "Det er en kort sætning om salg. Her kommer så en lidt længere sætning med mange flere ord i sig end den første"
    )
    toks = text.split()
    words = tuple(Word(i * 0.3, i * 0.3 + 0.25, f" {w}") for i, w in enumerate(toks))
    cues = make_cues(Transcript(segments=(Segment(0.0, len(toks) * 0.3, text, words=words),)))
    assert cues[0].text.endswith("salg.") and cues[1].text.startswith("Her kommer")


def test_write_subtitles_writes_parseable_files(tmp_path: Path) -> None:
    t = read_transcript(SAMPLE_TRANSCRIPT)
    write_subtitles(t, tmp_path / "a.srt", "srt")
    write_subtitles(t, tmp_path / "a.vtt", "vtt")
    assert len(list(srt.parse((tmp_path / "a.srt").read_text()))) == len(make_cues(t))
    assert webvtt.read(str(tmp_path / "a.vtt")).captions
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.srt", "a.vtt"]  # no temp files left


@pytest.mark.slow  # resolves the packaged Whisper base (the transcript itself comes from the store)
@pytest.mark.parametrize("format_", ["srt", "vtt"])
def test_transcribe_cli_writes_player_ready_subtitles(cli, tmp_path: Path, format_: str) -> None:
    from hmsearch.asr import load_transcriber
    from hmsearch.asr.store import save_stored
    from hmsearch.audio import file_hash
    from hmsearch.cli._common import transcriber_spec

    from helpers import SAMPLE_AUDIO

    index = tmp_path / "ix"
    transcriber = load_transcriber(transcriber_spec("base", None, "da", False))
    # the sample's own transcript stands in for Whisper's, stored where `transcribe` reuses it
    save_stored(index / "transcripts", file_hash(SAMPLE_AUDIO), transcriber, read_transcript(SAMPLE_TRANSCRIPT))
    r = cli(
        "--index-dir",
        str(index),
        "transcribe",
        str(SAMPLE_AUDIO),
        "--format",
        format_,
        "--out-dir",
        str(tmp_path / "out"),
        "--whisper-model",
        "base",
        "--language",
        "da",
    )
    assert r.exit_code == 0, r.output
    text = (tmp_path / "out" / f"hm-sample-001.{format_}").read_text()
    cues = make_cues(read_transcript(SAMPLE_TRANSCRIPT))
    assert text == subtitles_text(cues, format_, language="da")
    if format_ == "srt":
        assert len(list(srt.parse(text))) == len(cues)
    else:
        assert len(webvtt.from_buffer(io.StringIO(text)).captions) == len(cues)
