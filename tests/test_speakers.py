"""Speaker turns: words to turns, sentences that never span two speakers, the passage files that
keep the speaker (and old ones that have none), `hmsearch speakers`, and diarization of two real
espeak-ng voices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hmsearch.chunk import transcript_from_passages, transcript_sentences
from hmsearch.index.store import _passages_from_json, _passages_to_json
from hmsearch.speakers import assign_speakers, turns_from_sentences
from hmsearch.speakers.detect import DiarizeSettings, turns_from_labels
from hmsearch.speakers.names import episode_speakers, parse_naming, read_names, save_names
from hmsearch.types import Passage, Segment, Sentence, Transcript, Turn, Word

from helpers import espeak


def _words(*items: tuple[str, float]) -> tuple[Word, ...]:
    return tuple(Word(t, t + 0.4, f" {w}") for w, t in items)


def test_words_go_to_the_turn_covering_them_and_a_segment_splits_where_the_speaker_changes() -> None:
    seg = Segment(
        0.0,
        4.0,
        "Hvad synes du? Det er godt.",
        words=_words(("Hvad", 0.0), ("synes", 0.5), ("du?", 1.0), ("Det", 2.0), ("er", 2.5), ("godt.", 3.0)),
    )
    turns = [Turn(0.0, 1.6, "S1"), Turn(1.8, 4.0, "S2")]
    out = assign_speakers(Transcript((seg,)), turns)
    assert [(s.text, s.speaker) for s in out.segments] == [("Hvad synes du?", "S1"), ("Det er godt.", "S2")]
    assert out.segments[1].words[0].start == 2.0


def test_a_word_in_a_pause_goes_to_the_nearest_turn_and_no_turns_change_nothing() -> None:
    seg = Segment(5.0, 5.4, "ja", words=_words(("ja", 5.0)))
    out = assign_speakers(Transcript((seg,)), [Turn(0.0, 2.0, "S1"), Turn(6.0, 9.0, "S2")])
    assert out.segments[0].speaker == "S2"
    assert assign_speakers(Transcript((seg,)), []).segments[0].speaker is None


def test_a_sentence_never_spans_two_speakers() -> None:
    segs = (
        Segment(0.0, 1.0, "og så sagde", words=_words(("og", 0.0), ("så", 0.3), ("sagde", 0.6)), speaker="S1"),
        Segment(1.0, 2.0, "jeg ja.", words=_words(("jeg", 1.0), ("ja.", 1.5)), speaker="S2"),
    )
    sentences = transcript_sentences(Transcript(segs))
    assert [(s.text, s.speaker) for s in sentences] == [("og så sagde", "S1"), ("jeg ja.", "S2")]
    assert sentences[1].word_times == (1.0, 1.5)


def test_passage_files_keep_the_speaker_and_old_files_read_as_unknown() -> None:
    sentences = (Sentence(0.0, 1.0, "Hej.", (0.0,), speaker="Anne"), Sentence(1.0, 2.0, "Hej med dig.", speaker="S2"))
    back = _passages_from_json(json.loads(json.dumps(_passages_to_json([Passage(0.0, 2.0, sentences)]))))
    assert back[0].sentences == sentences
    old = [{"start": 0, "end": 1, "sentences": [[0, 1, "Hej.", [0.0]], [1, 2, "Ja."]]}]
    assert [s.speaker for s in _passages_from_json(old)[0].sentences] == [None, None]
    # reindex chunks the transcript read back from the passages: speakers survive
    again = transcript_sentences(transcript_from_passages(back, language="da"))
    assert [s.speaker for s in again] == ["Anne", "S2"]


def test_turns_from_sentences_and_names() -> None:
    sentences = [
        Sentence(0, 2, "Velkommen.", speaker="S1"),
        Sentence(2, 4, "Tak.", speaker="S1"),
        Sentence(4, 9, "Det var godt.", speaker="S2"),
        Sentence(9, 10, "Ja.", speaker="S1"),
        Sentence(10, 11, "uden stemme"),
    ]
    assert turns_from_sentences(sentences) == [Turn(0, 4, "S1"), Turn(4, 9, "S2"), Turn(9, 10, "S1")]
    found = episode_speakers("ep", sentences, {"S1": "Anne Hansen"})
    d = found.to_dict()
    assert d["speakers"] == [{"id": "S1", "name": "Anne Hansen"}, {"id": "S2", "name": None}]
    assert d["turns"][1] == {"start": 4.0, "end": 9.0, "speaker": "S2", "name": None}
    assert found.turns[1].quote == "Det var godt."
    # an imported voice is its own name
    assert episode_speakers("ep", [Sentence(0, 1, "Hej.", speaker="Bo")], {}).speakers == (("Bo", "Bo"),)


def test_names_are_stored_per_episode(tmp_path: Path) -> None:
    assert read_names(tmp_path) == {}
    assert parse_naming('S1="Anne Hansen"') == ("S1", "Anne Hansen")
    save_names(tmp_path, "ep1", {"S1": "Anne"})
    save_names(tmp_path, "ep1", {"S2": "Bo"})
    save_names(tmp_path, "ep2", {"S1": "Carl"})
    assert read_names(tmp_path) == {"ep1": {"S1": "Anne", "S2": "Bo"}, "ep2": {"S1": "Carl"}}
    with pytest.raises(Exception, match="SPEAKER=NAME"):
        parse_naming("Anne")


def test_turns_from_labels_joins_a_speaker_and_absorbs_a_blip() -> None:
    regions = [(0.0, 5.0), (5.5, 10.0)]
    centres = np.arange(0.375, 10.0, 0.75)
    labels = np.array([0 if c < 5 else 1 for c in centres])
    labels[3] = 1  # one stray window inside speaker 0's turn
    turns = turns_from_labels(regions, centres, labels, DiarizeSettings())
    assert [t.speaker for t in turns] == ["S1", "S2"]
    assert turns[0].start == 0.0 and abs(turns[1].end - 10.0) < 1e-6


@pytest.mark.slow  # loads resemblyzer's speaker encoder
def test_two_espeak_voices_are_told_apart(tmp_path: Path) -> None:
    pytest.importorskip("resemblyzer")
    from hmsearch.audio import SAMPLE_RATE, decode_audio
    from hmsearch.speakers import diarize

    a = "Det var så grueligt koldt, det sneede og det begyndte at blive mørk aften. " * 2
    # (a voice needs DiarizeSettings.min_speaker_seconds of speech to count as a speaker: ~16 s here)
    b = "Der var engang en prins, han ville have sig en prinsesse, men det skulle være en rigtig prinsesse. " * 3
    va = decode_audio(espeak(a, tmp_path / "a.wav", voice="da+m1"))
    vb = decode_audio(espeak(b, tmp_path / "b.wav", voice="da+f4"))
    pause = np.zeros(SAMPLE_RATE, dtype=np.float32)
    audio = np.concatenate([va, pause, vb, pause, va])
    turns = diarize(audio)
    assert len({t.speaker for t in turns}) == 2
    edge1 = len(va) / SAMPLE_RATE
    second = [t for t in turns if t.start > edge1 - 1 and t.end < edge1 + 1 + len(vb) / SAMPLE_RATE + 1]
    assert second and all(t.speaker == "S2" for t in second)
    assert turns[0].speaker == turns[-1].speaker == "S1"


@pytest.mark.slow  # indexes with the default embedding model
def test_speakers_command_lists_imported_voices_and_stores_names(cli, tmp_path: Path) -> None:
    vtt = tmp_path / "ep.vtt"
    vtt.write_text(
        "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\n<v Anne>Velkommen til podcasten om haven.\n\n"
        "00:00:04.500 --> 00:00:08.000\n<v Bo>Tak, jeg er glad for at være her.\n\n"
        "00:00:08.500 --> 00:00:11.000\n<v Anne>Lad os tale om tomater.\n\n"
        "00:00:11.500 --> 00:00:15.000\n<v Bo>Tomater skal vandes hver morgen, når det er varmt.\n",
        encoding="utf-8",
    )
    assert cli("index", str(vtt)).exit_code == 0
    res = cli("speakers", "ep", "--json")
    data = json.loads(res.stdout)
    assert data["episode"] == "ep"
    assert data["speakers"] == [{"id": "Anne", "name": "Anne"}, {"id": "Bo", "name": "Bo"}]
    assert [t["speaker"] for t in data["turns"]] == ["Anne", "Bo", "Anne", "Bo"]
    named = json.loads(cli("speakers", "ep", "--name", "Bo=Bo Jensen", "--json").stdout)
    assert named["speakers"][1] == {"id": "Bo", "name": "Bo Jensen"}
    text = cli("speakers", "ep").stdout
    assert "Bo Jensen: Tak, jeg er glad" in text
    hits = json.loads(cli("search", "tomater", "--json").stdout)["hits"]
    assert hits and hits[0]["speaker"] in {"Anne", "Bo Jensen"}  # Bo now says most of the passage
    # (not "what will we talk about?": a host's "let's talk about ..." is never an answer, issue 23)
    answer = json.loads(cli("ask", "hvornår skal tomater vandes?", "--json").stdout)["answer"]
    assert answer and all(a["speaker"] in {"Anne", "Bo Jensen"} for a in answer)
    only = json.loads(cli("search", "tomater", "--speaker", "bo jensen", "--json").stdout)["hits"]
    assert only and only[0]["episode"] == "ep"
    assert json.loads(cli("search", "tomater", "--speaker", "Nobody", "--json").stdout)["hits"] == []
    named_answer = json.loads(cli("ask", "hvem er glad?", "--speaker", "Bo", "--json").stdout)["answer"]
    assert named_answer and {a["speaker"] for a in named_answer} <= {"Anne", "Bo Jensen"}
    bad = cli("speakers", "ep", "--name", "S9=Carl")
    assert bad.exit_code != 0 and "no speaker S9" in bad.output


def test_hits_and_answer_sentences_carry_the_speaker_only_when_known() -> None:
    from hmsearch.types import AnswerSentence, Hit

    said = (Sentence(0, 2, "Hej.", speaker="S1"), Sentence(2, 9, "Det var en lang dag.", speaker="S2"))
    hit = Hit("ep", "T", 0, 9, "Hej. Det var en lang dag.", 1.0, "link", sentences=said)
    assert hit.speaker == "S2" and hit.to_dict()["speaker"] == "S2"
    assert Hit.from_dict(hit.to_dict()).speaker == "S2"
    plain = Hit("ep", "T", 0, 9, "x", 1.0, "link", sentences=(Sentence(0, 9, "x"),))
    assert "speaker" not in plain.to_dict()
    a = AnswerSentence("Hej.", "ep", "T", 0, 2, 1.0, "link")
    assert set(a.to_dict()) == {"text", "episode", "title", "start", "end", "score", "link"}
    from dataclasses import replace

    assert AnswerSentence.from_dict(replace(a, speaker="S1").to_dict()).speaker == "S1"


@pytest.mark.slow  # imports resemblyzer (torch, librosa)
def test_mel_frames_match_resemblyzers_librosa_frames() -> None:
    pytest.importorskip("librosa")
    from resemblyzer.audio import wav_to_mel_spectrogram

    from hmsearch.speakers.detect import mel_frames

    x = (np.random.default_rng(0).standard_normal(16000 * 2) * 0.1).astype(np.float32)
    want = wav_to_mel_spectrogram(x)
    assert mel_frames(x).shape == want.shape
    assert np.abs(mel_frames(x) - want).max() <= 1e-5 * want.max()


def test_a_registered_voice_is_recognised_once_and_only_when_close(tmp_path: Path) -> None:
    from hmsearch.speakers.voices import read_voices, recognise, register_voice

    rng = np.random.default_rng(1)
    host, guest = (v / np.linalg.norm(v) for v in rng.standard_normal((2, 256)))
    register_voice(tmp_path, "Anne", host)
    voices = read_voices(tmp_path)
    assert set(voices) == {"Anne"} and float(voices["Anne"] @ host) > 0.999
    near = host + 0.1 * guest
    near /= np.linalg.norm(near)
    # the closer of two speakers gets the name, a stranger none
    assert recognise({"S1": guest, "S2": near, "S3": host}, voices) == {"S3": "Anne"}
    assert recognise({"S1": guest}, voices) == {}
    register_voice(tmp_path, "Anne", near)  # heard again: averaged
    assert float(read_voices(tmp_path)["Anne"] @ host) < 0.9999


def _voice(rng: np.random.Generator, centre: np.ndarray, spread: float, n: int) -> np.ndarray:
    v = centre + spread * rng.standard_normal((n, len(centre)))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_spread_relative_rules_tell_apart_two_close_steady_voices_that_a_fixed_threshold_merges() -> None:
    from hmsearch.speakers.detect import cluster

    rng = np.random.default_rng(3)
    a, b, c = rng.standard_normal((3, 256))
    a, c = a / np.linalg.norm(a), c / np.linalg.norm(c)
    b = a + 0.55 * b / np.linalg.norm(b)  # cosine distance ~0.12 from a
    b /= np.linalg.norm(b)
    steady_a, steady_b = _voice(rng, a, 0.02, 60), _voice(rng, b, 0.02, 60)  # ~0.05 from their centres
    varied = _voice(rng, c, 0.025, 60)  # a voice whose windows wander more (~0.07)
    vectors = np.concatenate([steady_a, steady_b, varied, steady_a])
    truth = np.repeat([0, 1, 2, 0], 60)
    fixed = cluster(vectors, DiarizeSettings(smooth_windows=1, stop="threshold", threshold=0.25))
    assert len(set(fixed[truth == 0]) | set(fixed[truth == 1])) == 1  # the two close voices merge
    for stop in ("separation", "split"):
        found = cluster(vectors, DiarizeSettings(smooth_windows=1, stop=stop, separation=2.0))
        assert len(set(found)) == 3, stop
        assert all(len(set(found[truth == k])) == 1 for k in range(3)), stop
