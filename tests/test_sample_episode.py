"""The bundled synthetic sample episode (audio/hm-sample-001.*) is consistent with its
script and its audio. Rebuild it with: .venv/bin/python scripts/make_sample.py"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "sample_script_da.txt"
MP3 = ROOT / "audio" / "hm-sample-001.mp3"
JSON = ROOT / "audio" / "hm-sample-001.json"
TITLE = "HM-sample 001: Sociale medier i salg (syntetisk demo)"
RATE = 16_000
SPEAKERS = {"VÆRT": "Vært", "GÆST": "Gæst"}


def script_lines() -> list[tuple[str, str]]:
    """(speaker, sentence) per script line, parsed independently of make_sample.py."""
    out = []
    for raw in SCRIPT.read_text(encoding="utf-8").splitlines():
        raw = raw.strip()
        if raw and not raw.startswith("#"):
            speaker, _, text = raw.partition(":")
            out.append((SPEAKERS[speaker], " ".join(text.split())))
    return out


@pytest.fixture(scope="module")
def doc() -> dict:
    return json.loads(JSON.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def audio() -> np.ndarray:
    """The MP3 decoded with PyAV to 16 kHz mono float32."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
    chunks = []
    with av.open(str(MP3)) as f:
        for frame in f.decode(audio=0):
            chunks += [r.to_ndarray().reshape(-1) for r in resampler.resample(frame)]
    chunks += [r.to_ndarray().reshape(-1) for r in resampler.resample(None)]
    return np.concatenate(chunks)


def test_json_has_the_transcript_shape(doc):
    assert set(doc) == {"text", "language", "source", "duration", "segments"}
    assert doc["language"] == "da"
    assert doc["source"] == "synthetic-script"
    assert doc["segments"]
    assert doc["text"] == " ".join(s["text"].strip() for s in doc["segments"])
    for i, seg in enumerate(doc["segments"]):
        assert seg["id"] == i
        assert seg["text"].startswith(" ") and seg["text"].strip() == seg["text"][1:]
        assert seg["speaker"] in SPEAKERS.values()
        words = seg["words"]
        assert [w["word"] for w in words] == [" " + w for w in seg["text"].split()]
        assert words[0]["start"] == seg["start"] and words[-1]["end"] == seg["end"]
        for a, b in zip(words, words[1:]):
            assert a["start"] < a["end"] == b["start"] < b["end"]
        for key in ("start", "end"):  # rounded to milliseconds
            assert all(round(v, 3) == v for v in [seg[key], *(w[key] for w in words)])


def test_segments_are_in_order_and_do_not_overlap(doc):
    segs = doc["segments"]
    assert segs[0]["start"] >= 0
    for s in segs:
        assert s["start"] < s["end"]
    for a, b in zip(segs, segs[1:]):
        assert a["end"] < b["start"]
    assert segs[-1]["end"] <= doc["duration"]


def test_segment_texts_are_the_script_sentences(doc):
    got = [(s["speaker"], s["text"].strip()) for s in doc["segments"]]
    assert got == script_lines()


def test_mp3_is_small_tagged_and_3_to_6_minutes(doc, audio):
    assert MP3.stat().st_size < 3 * 1024 * 1024
    with av.open(str(MP3)) as f:
        assert f.metadata.get("title") == TITLE
        assert f.streams.audio[0].codec_context.channels == 1
    seconds = len(audio) / RATE
    assert 180 <= seconds <= 360
    assert abs(seconds - doc["duration"]) < 0.25


def test_audio_has_speech_inside_segments_and_silence_between(doc, audio):
    def rms(start: float, end: float) -> float:
        part = audio[int(start * RATE) : int(end * RATE)]
        assert len(part) > 0.05 * RATE
        return float(np.sqrt(np.mean(part.astype(np.float64) ** 2)))

    segs = doc["segments"]
    speech = [rms(s["start"] + 0.05, s["end"] - 0.05) for s in segs]
    # The pauses are >= 0.3 s of digital silence; stay 80 ms clear of the speech either side.
    pauses = [rms(a["end"] + 0.08, b["start"] - 0.08) for a, b in zip(segs, segs[1:])]
    loudest_pause = max(pauses)
    assert loudest_pause < 0.005
    assert min(speech) > 0.02
    assert min(speech) > 10 * max(loudest_pause, 1e-4)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not on PATH")
def test_resynthesis_reproduces_the_first_timings(doc):
    spec = importlib.util.spec_from_file_location("make_sample", ROOT / "scripts" / "make_sample.py")
    make_sample = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_sample)
    first = make_sample.read_script(SCRIPT)[:3]
    samples, rate, timings = make_sample.synthesise(first)
    assert samples.ndim == 1 and len(samples) > 0 and rate > 0
    assert len(timings) == 3
    for (start, end), seg in zip(timings, doc["segments"][:3]):
        assert start == pytest.approx(seg["start"], abs=0.005)
        assert end == pytest.approx(seg["end"], abs=0.005)
