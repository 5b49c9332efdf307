"""Whisper through the real code path, with a tiny randomly initialised checkpoint.

The checkpoint is built by the ``tiny_whisper`` fixture and loaded by whisper.load_model exactly
as a downloaded model is. Its text is gibberish: these tests prove decoding, timestamps,
transcript files, caching and errors, not accuracy.
"""

from __future__ import annotations

import json
import shutil

import pytest

from hmsearch.formats import read_transcript

from helpers import espeak

OPENAI = ("--whisper-engine", "openai")  # the tiny random checkpoint is an openai-whisper file


@pytest.fixture(scope="module")
def danish_wav(tmp_path_factory):
    folder = tmp_path_factory.mktemp("da")
    return espeak("Hej og velkommen. I dag taler vi om salg på sociale medier.", folder / "afsnit-1.wav")


def test_transcribe_writes_every_format_with_times_inside_the_audio(cli, tiny_whisper, danish_wav, tmp_path):
    out = tmp_path / "out"
    for fmt in ("json", "srt", "vtt", "txt"):
        res = cli(
            "transcribe",
            str(danish_wav),
            *OPENAI,
            "--whisper-model",
            str(tiny_whisper),
            "--greedy",
            "--language",
            "da",
            "--format",
            fmt,
            "--out-dir",
            str(out),
        )
        assert res.exit_code == 0, res.stderr
        assert (out / f"afsnit-1.{fmt}").is_file()
    data = json.loads((out / "afsnit-1.json").read_text())
    assert data["language"] == "da" and data["segments"]
    assert data["source"].startswith("whisper:file:")
    duration = data["duration"]
    assert duration == pytest.approx(3.6, abs=0.6)
    for seg in data["segments"]:
        assert 0 <= seg["start"] <= seg["end"] <= duration + 0.05
        assert seg["words"], "word timestamps are computed"
        for w in seg["words"]:
            assert seg["start"] - 0.05 <= w["start"] <= w["end"] <= seg["end"] + 0.05
    # The subtitle files say the same words as the JSON, in player-sized cues (host/subtitles.py)
    # that start where a word starts.
    words = [w for seg in data["segments"] for w in seg["words"]]
    for fmt in ("srt", "vtt"):
        t = read_transcript(out / f"afsnit-1.{fmt}")
        # (a cue line may break inside a long word: compare without whitespace)
        assert "".join(t.text.split()) == "".join("".join(w["word"] for w in words).split())
        starts = {round(w["start"], 2) for w in words} | {round(s["start"], 2) for s in data["segments"]}
        assert all(round(c.start, 2) in starts for c in t.segments), (t.segments, starts)


def test_transcribe_never_overwrites_without_force(cli, tiny_whisper, danish_wav, tmp_path):
    """A transcript beside the audio (say the exact one that came with the episode, which `index`
    prefers) is left alone; --force replaces it; the line says where it wrote."""
    folder = tmp_path / "ep"
    folder.mkdir()
    audio = shutil.copy(danish_wav, folder)
    mine = folder / "afsnit-1.srt"
    mine.write_text("1\n00:00:00,000 --> 00:00:02,000\nHej og velkommen.\n", encoding="utf-8")
    args = ("transcribe", str(audio), *OPENAI, "--whisper-model", str(tiny_whisper), "--greedy", "--format", "srt")
    res = cli(*args)
    assert res.exit_code == 2, res.output
    assert res.stderr.strip().splitlines()[-1] == f"Error: {mine} exists: pass --force to overwrite it, or --out-dir"
    assert mine.read_text(encoding="utf-8").endswith("Hej og velkommen.\n")
    res = cli(*args, "--force")
    assert res.exit_code == 0, res.output
    assert f"wrote {mine}" in res.stderr
    assert "Hej og velkommen." not in mine.read_text(encoding="utf-8")  # the random model's gibberish


def test_index_audio_transcribes_once_and_caches(cli, tiny_whisper, danish_wav, tmp_path, hermetic, monkeypatch):
    folder = tmp_path / "eps"
    folder.mkdir()
    shutil.copy(danish_wav, folder)
    args = ("index", str(folder), *OPENAI, "--whisper-model", str(tiny_whisper), "--greedy", "--language", "da")
    res = cli(*args)
    assert res.exit_code == 0, res.stderr
    assert res.stdout.startswith("1 added")
    assert res.stderr.count("loading Whisper model openai file:") == 1  # said once, before the episode
    cached = list((hermetic / "index" / "transcripts").glob("*.json"))
    assert len(cached) == 1
    ep = json.loads(cli("episodes", "--json").stdout)[0]
    assert ep["episode"] == "afsnit-1" and ep["duration"] == pytest.approx(3.6, abs=0.6)
    assert ep["transcript_source"].startswith("whisper:")

    import hmsearch.asr.openai as engine

    def no_whisper(*a, **k):
        raise AssertionError("Whisper ran again on unchanged audio")

    monkeypatch.setattr(engine, "transcribe_samples", no_whisper)
    assert "1 unchanged" in cli(*args).stdout
    forced = cli(*args, "--force")  # re-index from the stored transcript, still no Whisper
    assert forced.exit_code == 0 and "1 replaced" in forced.stdout


@pytest.mark.slow
def test_transcript_beside_audio_wins_over_whisper(cli, danish_wav, tmp_path, monkeypatch):
    import hmsearch.asr.ctranslate2
    import hmsearch.asr.openai

    def no_whisper(*a, **k):
        raise AssertionError("Whisper ran although a transcript is beside the audio")

    for engine in (hmsearch.asr.openai, hmsearch.asr.ctranslate2):
        monkeypatch.setattr(engine, "load", no_whisper)
        monkeypatch.setattr(engine, "transcribe_samples", no_whisper)
    folder = tmp_path / "eps"
    folder.mkdir()
    shutil.copy(danish_wav, folder)
    (folder / "afsnit-1.srt").write_text(
        "1\n00:00:00,100 --> 00:00:03,500\nHej og velkommen. I dag taler vi om salg på sociale medier.\n",
        encoding="utf-8",
    )
    res = cli("index", str(folder))
    assert res.exit_code == 0, res.stderr
    hit = json.loads(cli("search", "salg på sociale medier", "--json").stdout)["hits"][0]
    assert hit["episode"] == "afsnit-1" and hit["link"].endswith("afsnit-1.wav#t=0")


def test_named_model_offline_fails_fast_naming_the_fix(cli, danish_wav, monkeypatch):
    import hmsearch.asr.openai as engine

    # This machine has no route to Whisper's download host; make that certain, so the test never
    # starts a 500 MB download on a machine that has one (the engine's own name for the probe).
    monkeypatch.setattr(engine, "reachable", lambda url, timeout=5.0: False)
    res = cli("transcribe", str(danish_wav), *OPENAI, "--whisper-model", "small")
    assert res.exit_code == 3
    err = res.stderr.strip()
    assert "\n" not in err and "Whisper model 'small'" in err and "cannot be downloaded" in err
    assert "--whisper-model PATH" in err


def test_named_model_offline_fails_fast_with_the_default_engine(cli, danish_wav, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # certain, whatever the machine's network
    res = cli("transcribe", str(danish_wav), "--whisper-model", "small")
    assert res.exit_code == 3
    err = res.stderr.strip()
    assert "\n" not in err and "faster-whisper model 'small'" in err and "cannot be downloaded" in err


@pytest.mark.parametrize(
    "engine,spec,needle",
    [
        ("openai", "no-such-model", "unknown Whisper model"),
        ("openai", "/nowhere/model.pt", "no such Whisper checkpoint"),
        ("faster-whisper", "no-such-model", "unknown faster-whisper model"),
        ("faster-whisper", "/nowhere/model", "no such CTranslate2 model directory"),
    ],
)
def test_unknown_model_names(cli, danish_wav, engine, spec, needle):
    res = cli("transcribe", str(danish_wav), "--whisper-engine", engine, "--whisper-model", spec)
    assert res.exit_code == 3 and needle in res.stderr


def test_a_checkpoint_file_with_the_default_engine_names_both_ways_out(cli, danish_wav, tiny_whisper):
    res = cli("transcribe", str(danish_wav), "--whisper-model", str(tiny_whisper))
    assert res.exit_code == 3
    assert "hmsearch whisper-convert" in res.stderr and "--whisper-engine openai" in res.stderr


def test_damaged_checkpoint_is_a_clear_error(cli, danish_wav, tiny_whisper, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(tiny_whisper.read_bytes()[:5000])
    res = cli("transcribe", str(danish_wav), *OPENAI, "--whisper-model", str(bad), "--greedy")
    assert res.exit_code != 0
    assert "bad.pt: cannot load Whisper model" in res.stderr and "Traceback" not in res.stderr


def test_transcribe_bad_audio_is_one_line(cli, tiny_whisper, tmp_path):
    bad = tmp_path / "not-audio.mp3"
    bad.write_text("<html>404</html>")
    res = cli("transcribe", str(bad), *OPENAI, "--whisper-model", str(tiny_whisper))
    assert res.exit_code == 2
    assert res.stderr.strip() == f"Error: {bad}: not a decodable audio file (Invalid data found when processing input)"


def test_workers_transcribe_in_parallel_processes(cli, tiny_whisper, danish_wav, tmp_path, hermetic):
    folder = tmp_path / "eps"
    folder.mkdir()
    shutil.copy(danish_wav, folder / "a.wav")
    espeak("Nyhedsbreve virker stadig, hvis de er personlige.", folder / "b.wav")
    res = cli(
        "index",
        str(folder),
        *OPENAI,
        "--whisper-model",
        str(tiny_whisper),
        "--greedy",
        "--language",
        "da",
        "--workers",
        "2",
    )
    assert res.exit_code == 0, res.stderr
    assert res.stdout.startswith("2 added")
    assert len(list((hermetic / "index" / "transcripts").glob("*.json"))) == 2
