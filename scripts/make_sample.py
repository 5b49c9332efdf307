#!/usr/bin/env python3
"""Build the bundled SYNTHETIC sample episode: audio/hm-sample-001.mp3 + .json.

The speech is espeak-ng reading scripts/sample_script_da.txt (an original script
written for this project; not a real Help Marketing episode), one sentence at a time:
the host ("VÆRT") with ``-v da``, the guest ("GÆST") with ``-v da+f3``, both ``-s 160``.
Each sentence's WAV has espeak's leading/trailing silence trimmed, then the sentences
are laid end to end with fixed pauses (0.3 s between sentences, 0.7 s when the speaker
changes, 0.5 s lead-in, 1.0 s tail).  Because every sentence is placed by counting
samples, SENTENCE times in the JSON are exact.  WORD times are only ESTIMATED: each
sentence's span is split over its words in proportion to their character length.

    .venv/bin/python scripts/make_sample.py            # writes audio/hm-sample-001.*

Running it twice gives byte-identical JSON (the MP3 may differ between PyAV/LAME versions).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path
from typing import NamedTuple, Sequence

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
try:
    from hmsearch.types import Segment, Transcript, Word
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT / "src"))
    from hmsearch.types import Segment, Transcript, Word

SCRIPT = ROOT / "scripts" / "sample_script_da.txt"
OUT_DIR = ROOT / "audio"
STEM = "hm-sample-001"
TITLE = "HM-sample 001: Sociale medier i salg (syntetisk demo)"

VOICES = {"VÆRT": "da", "GÆST": "da+f3"}  # espeak-ng voice per speaker tag
SPEAKER_NAMES = {"VÆRT": "Vært", "GÆST": "Gæst"}
SPEED = 160  # espeak-ng -s, words per minute
PAUSE = 0.3  # seconds between two sentences by the same speaker
PAUSE_SPEAKER_CHANGE = 0.7  # seconds when the speaker changes
LEAD_IN = 0.5  # silence before the first sentence
TAIL = 1.0  # silence after the last sentence (also keeps MP3 padding off the speech)
TRIM_THRESHOLD = 330  # |int16| above this (~1 % of full scale) counts as speech
TRIM_MARGIN = 0.02  # seconds of espeak's own silence kept either side of the speech
BITRATE = 48_000


class Line(NamedTuple):
    speaker: str  # "VÆRT" or "GÆST", as written in the script
    text: str  # the sentence, without the speaker prefix


def read_script(path: Path = SCRIPT) -> list[Line]:
    """The script's sentences in order. Blank lines and ``#`` comments are skipped."""
    lines: list[Line] = []
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        raw = raw.strip()
        if not raw or raw.startswith("#"):
            continue
        speaker, sep, text = raw.partition(":")
        if not sep or speaker not in VOICES or not text.strip():
            raise ValueError(f"{path}:{n}: expected 'VÆRT: ...' or 'GÆST: ...', got {raw!r}")
        lines.append(Line(speaker, " ".join(text.split())))
    return lines


def speak(text: str, voice: str, wav_path: Path) -> tuple[np.ndarray, int]:
    """Synthesise one sentence with espeak-ng into ``wav_path``; return its int16 samples."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not on PATH (apt-get install espeak-ng)")
    subprocess.run([exe, "-v", voice, "-s", str(SPEED), "-w", str(wav_path), "--stdin"],
                   input=text.encode("utf-8"), check=True, capture_output=True)
    with wave.open(str(wav_path), "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise RuntimeError(f"unexpected WAV format from espeak-ng: {wav_path}")
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
    return samples, rate


def trim(samples: np.ndarray, rate: int) -> np.ndarray:
    """Cut espeak's leading/trailing silence, keeping TRIM_MARGIN either side."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > TRIM_THRESHOLD)
    if loud.size == 0:
        return samples
    margin = int(round(TRIM_MARGIN * rate))
    return samples[max(0, loud[0] - margin): min(len(samples), loud[-1] + 1 + margin)]


def synthesise(sentences: Sequence[Line]) -> tuple[np.ndarray, int, list[tuple[float, float]]]:
    """Speak ``sentences`` and lay them end to end with the fixed pauses.

    Returns (int16 mono samples, sample rate, [(start, end) seconds per sentence]).
    Times are exact: they are sample offsets into the returned track.
    """
    pieces: list[np.ndarray] = []
    timings: list[tuple[float, float]] = []
    rate: int | None = None
    offset = 0  # samples written so far
    with tempfile.TemporaryDirectory(prefix="hm-sample-") as tmp:
        for i, line in enumerate(sentences):
            audio, r = speak(line.text, VOICES[line.speaker], Path(tmp) / f"{i:03d}.wav")
            if rate is None:
                rate = r
                pieces.append(np.zeros(int(round(LEAD_IN * rate)), np.int16))
                offset = len(pieces[-1])
            elif r != rate:
                raise RuntimeError(f"espeak-ng sample rate changed: {r} != {rate}")
            else:
                gap = PAUSE_SPEAKER_CHANGE if line.speaker != sentences[i - 1].speaker else PAUSE
                pieces.append(np.zeros(int(round(gap * rate)), np.int16))
                offset += len(pieces[-1])
            audio = trim(audio, rate)
            timings.append((offset / rate, (offset + len(audio)) / rate))
            pieces.append(audio)
            offset += len(audio)
    if rate is None:
        raise ValueError("no sentences to synthesise")
    pieces.append(np.zeros(int(round(TAIL * rate)), np.int16))
    return np.concatenate(pieces), rate, timings


def estimate_words(text: str, start: float, end: float) -> tuple[Word, ...]:
    """ESTIMATED word times: the sentence span shared out by each word's character length."""
    words = text.split()
    weights = np.array([max(1, sum(c.isalnum() for c in w)) for w in words], dtype=float)
    bounds = start + (end - start) * np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])
    bounds = [round(float(b), 3) for b in bounds]
    bounds[0], bounds[-1] = round(start, 3), round(end, 3)
    return tuple(Word(bounds[k], bounds[k + 1], " " + w) for k, w in enumerate(words))


def build_transcript(sentences: Sequence[Line], timings: Sequence[tuple[float, float]],
                     duration: float) -> Transcript:
    segments = tuple(
        Segment(start=round(s, 3), end=round(e, 3), text=" " + line.text,
                words=estimate_words(line.text, s, e), speaker=SPEAKER_NAMES[line.speaker])
        for line, (s, e) in zip(sentences, timings, strict=True)
    )
    return Transcript(segments=segments, language="da", source="synthetic-script",
                      duration=round(duration, 3))


def encode_mp3(samples: np.ndarray, rate: int, path: Path, title: str = TITLE,
               bitrate: int = BITRATE) -> None:
    """Mono MP3 via PyAV's libmp3lame, with the container title set."""
    with av.open(str(path), "w", format="mp3") as out:
        out.metadata["title"] = title
        stream = out.add_stream("libmp3lame", rate=rate, layout="mono")
        stream.bit_rate = bitrate
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        frame.pts = 0
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def decoded_duration(path: Path) -> tuple[float, str | None]:
    """(seconds of audio the file decodes to, container title)."""
    with av.open(str(path)) as f:
        n, rate = 0, None
        for frame in f.decode(audio=0):
            n += frame.samples
            rate = frame.sample_rate
        return n / rate, f.metadata.get("title")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--script", type=Path, default=SCRIPT)
    ap.add_argument("--out-dir", type=Path, default=OUT_DIR)
    ap.add_argument("--bitrate", type=int, default=BITRATE)
    args = ap.parse_args(argv)

    sentences = read_script(args.script)
    samples, rate, timings = synthesise(sentences)
    duration = len(samples) / rate
    args.out_dir.mkdir(parents=True, exist_ok=True)
    mp3 = args.out_dir / f"{STEM}.mp3"
    js = args.out_dir / f"{STEM}.json"

    encode_mp3(samples, rate, mp3, TITLE, args.bitrate)
    got, title = decoded_duration(mp3)
    if title != TITLE:
        raise RuntimeError(f"MP3 title reads back as {title!r}, not {TITLE!r}")
    if abs(got - duration) > 0.1:
        raise RuntimeError(f"MP3 decodes to {got:.3f} s but the track is {duration:.3f} s")

    transcript = build_transcript(sentences, timings, duration)
    js.write_text(json.dumps(transcript.to_dict(), ensure_ascii=False, indent=2) + "\n",
                  encoding="utf-8")
    words = sum(len(s.text.split()) for s in sentences)
    print(f"{len(sentences)} sentences, {words} words, {duration:.3f} s "
          f"({int(duration // 60)}:{duration % 60:06.3f}) at {rate} Hz")
    print(f"{mp3}: {mp3.stat().st_size:,} bytes, decodes to {got:.3f} s, title {title!r}")
    print(f"{js}: {js.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
