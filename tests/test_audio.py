"""Decoding: every common podcast format to 16 kHz mono float32, without a system ffmpeg."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from hmsearch.audio import SAMPLE_RATE, decode_audio, probe_audio
from hmsearch.errors import AudioError, InputError

from helpers import espeak

# container suffix -> (PyAV format name, codec, sample rate)
FORMATS = {
    ".mp3": ("mp3", "libmp3lame", 22050),
    ".m4a": ("ipod", "aac", 44100),
    ".ogg": ("ogg", "vorbis", 44100),
    ".opus": ("ogg", "libopus", 48000),
    ".flac": ("flac", "flac", 22050),
    ".wav": ("wav", "pcm_s16le", 22050),
}


def encode(wav: Path, target: Path, fmt: str, codec: str, rate: int, title: str | None = None) -> Path:
    """Re-encode a WAV with PyAV's bundled ffmpeg (no system ffmpeg on this machine)."""
    with av.open(str(wav)) as src, av.open(str(target), "w", format=fmt) as out:
        if title:
            out.metadata["title"] = title
        # FFmpeg's own Vorbis encoder is "experimental" and stereo-only; stereo also checks downmixing.
        layout = "stereo" if codec == "vorbis" else "mono"
        stream = out.add_stream(codec, rate=rate, layout=layout, options={"strict": "experimental"})
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=layout, rate=rate)
        for frame in src.decode(audio=0):
            frame.pts = None
            for f in resampler.resample(frame):
                for packet in stream.encode(f):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return target


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("speech")
    return espeak("Velkommen til en kort prøve på dansk tale om markedsføring og sociale medier.", folder / "src.wav")


@pytest.mark.parametrize("suffix", sorted(FORMATS))
def test_decodes_common_formats_to_16k_mono(speech, tmp_path, suffix):
    fmt, codec, rate = FORMATS[suffix]
    path = encode(speech, tmp_path / f"ep{suffix}", fmt, codec, rate, title="Afsnit 1")
    reference = decode_audio(speech)
    samples = decode_audio(path)
    assert samples.dtype == np.float32 and samples.ndim == 1
    # Same length within codec padding (Opus/AAC add up to a few tens of ms).
    assert abs(len(samples) - len(reference)) / SAMPLE_RATE < 0.1
    # And the same sound: the energy envelopes (10 ms frames) correlate strongly, allowing for
    # the encoder delay some codecs add (AAC primes with 1024 samples).
    n = min(len(samples), len(reference)) // 160 * 160
    env = lambda x: np.sqrt((x[:n].reshape(-1, 160) ** 2).mean(axis=1))
    a, b = env(samples), env(reference)
    best = max(np.corrcoef(a[lag:], b[: len(b) - lag])[0, 1] for lag in range(0, 8))
    assert best > 0.9
    info = probe_audio(path)
    if fmt != "ogg":  # Ogg durations come from granule positions, which this quick encoder leaves rough
        assert info.duration == pytest.approx(len(reference) / SAMPLE_RATE, abs=0.15)
    if suffix != ".wav":
        assert info.title == "Afsnit 1"


def test_bad_audio_errors_name_the_file(tmp_path, speech):
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp3"
    text.write_text("show notes\n" * 50)
    mp3 = encode(speech, tmp_path / "full.mp3", "mp3", "libmp3lame", 22050)
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(mp3.read_bytes()[: mp3.stat().st_size // 2])
    cases = {
        empty: "empty file",
        text: "not a decodable audio file",
        cut: "truncated audio",
        tmp_path / "missing.mp3": "no such file",
        tmp_path: "is a directory",
    }
    for path, needle in cases.items():
        with pytest.raises((AudioError, InputError)) as err:
            decode_audio(path)
        msg = str(err.value)
        assert str(path) in msg and needle in msg and "\n" not in msg, msg


def test_decoding_a_file_that_declares_less_than_it_holds_keeps_every_sample(tmp_path):
    """The sample buffer is reserved from the declared length and grows past it; the WAV below
    declares 1 s of frames in its header but holds 3 s (a header written before the end)."""
    pcm = (np.sin(np.arange(3 * SAMPLE_RATE) / 10.0) * 8000).astype("<i2").tobytes()
    header = bytearray(44)
    header[0:4], header[8:16] = b"RIFF", b"WAVEfmt "
    header[16:20] = (16).to_bytes(4, "little")
    header[20:22], header[22:24] = (1).to_bytes(2, "little"), (1).to_bytes(2, "little")
    header[24:28], header[28:32] = SAMPLE_RATE.to_bytes(4, "little"), (2 * SAMPLE_RATE).to_bytes(4, "little")
    header[32:34], header[34:36] = (2).to_bytes(2, "little"), (16).to_bytes(2, "little")
    header[36:40], header[40:44] = b"data", (2 * SAMPLE_RATE).to_bytes(4, "little")  # says 1 s
    header[4:8] = (36 + 2 * SAMPLE_RATE).to_bytes(4, "little")
    path = tmp_path / "long.wav"
    path.write_bytes(bytes(header) + pcm)
    samples = decode_audio(path)
    assert samples.dtype == np.float32
    # FFmpeg may stop at the declared data size or read on; either way nothing is lost or invented
    assert len(samples) in (SAMPLE_RATE, 3 * SAMPLE_RATE), len(samples)
    expected = np.frombuffer(pcm, "<i2")[: len(samples)].astype(np.float32) / 32768
    assert np.allclose(samples, expected, atol=1e-4)


def test_block_bounds_cover_the_audio_and_cut_in_pauses():
    from hmsearch.asr import block_bounds

    rng = np.random.default_rng(0)
    sr = SAMPLE_RATE
    # 50 s of "speech" (noise) with pauses of 0.6 s, one within the last 4 s of each 10 s block
    audio = rng.normal(0, 0.1, 50 * sr).astype(np.float32)
    pauses = [8.2, 17.5, 26.1, 33.0, 40.0]
    for p in pauses:
        audio[int(p * sr) : int((p + 0.6) * sr)] = 0
    bounds = block_bounds(audio, block=10.0, search=4.0)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(audio)
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))  # contiguous, no overlap
    assert all(0 < end - start <= 10 * sr for start, end in bounds)
    for _, end in bounds[:-1]:
        t = end / sr
        assert any(p <= t <= p + 0.6 for p in pauses), (t, pauses)
    # shorter than a block: one block; empty audio: one empty block
    assert block_bounds(audio[: 5 * sr], block=10.0, search=4.0) == [(0, 5 * sr)]
    assert block_bounds(np.zeros(0, np.float32)) == [(0, 0)]


def test_measure_audio_is_decode_audio_without_the_samples(speech, tmp_path):
    """Same length and same errors as decode_audio: what indexing runs when a transcript is beside
    the audio (constant memory however long the episode)."""
    from hmsearch.audio import measure_audio

    mp3 = encode(speech, tmp_path / "ep.mp3", *FORMATS[".mp3"])
    assert measure_audio(mp3) == pytest.approx(len(decode_audio(mp3)) / SAMPLE_RATE, abs=1e-9)
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(mp3.read_bytes()[: mp3.stat().st_size // 3])
    with pytest.raises(AudioError, match="truncated") as a:
        decode_audio(cut)
    with pytest.raises(AudioError, match="truncated") as b:
        measure_audio(cut)
    assert str(a.value) == str(b.value)
