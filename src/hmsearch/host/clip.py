"""Audio clips of a quote or a hit: the episode's audio cut between word times, re-encoded as MP3
or M4A (AAC) with short fades, and the clip's own SRT and WebVTT beside it (times from the
clip's start).

The cut is snapped outward to word boundaries: a start inside a word moves back to that word's
start, an end inside a word moves on to its end, so no word is cut in half; fades are short
(a click-free 30 ms in, 120 ms out) so they do not eat the first or last syllable. Decoding and
encoding go through PyAV, which bundles ffmpeg's libraries (no system ffmpeg).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AudioError, InputError, one_line
from ..types import Episode, Segment, Sentence, Transcript, Word

FADE_IN = 0.03
FADE_OUT = 0.12
LEAD = 0.05  # seconds of audio kept before the first word (Whisper's word starts run a little late)
MAX_CLIP_SECONDS = 600.0
CONTAINERS = {".mp3": ("mp3", "libmp3lame", 128_000), ".m4a": ("ipod", "aac", 128_000)}


@dataclass(frozen=True)
class ClipResult:
    audio: Path
    subtitles: tuple[Path, ...]
    start: float  # in the episode, after snapping
    end: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "audio": str(self.audio),
            "subtitles": [str(p) for p in self.subtitles],
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "duration": round(self.end - self.start, 3),
            "text": self.text,
        }


def snap(words: list[tuple[str, float, float]], start: float, end: float) -> tuple[int, int]:
    """The words [i, j) a cut from ``start`` to ``end`` keeps whole: every word that overlaps it."""
    inside = [k for k, (_, a, b) in enumerate(words) if b > start and a < end]
    if not inside:
        raise InputError(f"no words are said between {start:.2f} s and {end:.2f} s")
    return inside[0], inside[-1] + 1


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == Path(b).resolve() or (a.exists() and a.samefile(b))
    except OSError:
        return False


QUOTE_CLIP_MAX_SECONDS = 60.0  # a quote's clip, widened to its sentences, is cut back to this around the quote


def quote_range(
    sentences: Sequence[Sentence],
    start: float,
    end: float,
    *,
    pad: float = 0.0,
    max_seconds: float = QUOTE_CLIP_MAX_SECONDS,
    duration: float = 0.0,
) -> tuple[float, float]:
    """The range a quote's clip covers: the whole sentence(s) the quote (``start``-``end``) was said
    in, then ``pad`` seconds either side, at most ``max_seconds`` long (cut back evenly around the
    quote itself, which is always kept) and within the episode."""
    around = [s for s in sentences if s.end > start and s.start < end]
    a = min([start, *(s.start for s in around)])
    b = max([end, *(s.end for s in around)])
    a, b = a - max(0.0, pad), b + max(0.0, pad)
    if b - a > max_seconds:
        spare = max(0.0, max_seconds - (end - start))
        before = min(start - a, spare / 2)
        after = min(b - end, spare - before)
        before = min(start - a, spare - after)  # what the end could not use goes to the start
        a, b = start - before, end + after
    a = max(0.0, a)
    if duration:
        b = min(duration, b)
    return a, b


def check_range(start: float, end: float, duration: float) -> None:
    if start < 0 or end < 0:
        raise InputError(f"a clip cannot start or end before 0 s (got {start:g}-{end:g})")
    if end <= start:
        raise InputError(f"the clip's end ({end:g} s) must come after its start ({start:g} s)")
    if duration and start >= duration:
        raise InputError(f"the clip starts at {start:g} s, after the episode's end ({duration:.1f} s)")
    if end - start > MAX_CLIP_SECONDS:
        raise InputError(f"a clip is at most {MAX_CLIP_SECONDS:g} s long (asked for {end - start:g} s)")


def _decode_range(path: Path, start: float, end: float) -> tuple[np.ndarray, int, str]:
    """(channels, samples) float32 of ``path`` from ``start`` to ``end``, its rate and layout."""
    import av

    from ..audio import _open, _reason

    container = _open(path)
    try:
        stream = container.streams.audio[0]
        rate = int(stream.codec_context.sample_rate or 44_100)
        channels = int(stream.codec_context.channels or 1)
        layout = "stereo" if channels >= 2 else "mono"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        # Transcript times count from the first decoded sample (as decode_audio hands audio to
        # Whisper), frame times from the stream's start_time (an MP3's encoder delay, often 0.05 s).
        origin = (
            float(stream.start_time * stream.time_base) if stream.start_time is not None and stream.time_base else 0.0
        )
        if start > 2.0:
            container.seek(int((start - 1.0) * 1_000_000), any_frame=False)  # microseconds, AV_TIME_BASE
        parts: list[np.ndarray] = []
        first: float | None = None
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    t = float(out.time) if out.time is not None else None
                    if first is None:
                        first = t if t is not None else 0.0
                    parts.append(out.to_ndarray())
                if frame.time is not None and frame.time > end + 0.5:
                    break
        except av.FFmpegError as exc:
            raise AudioError(f"{path}: audio data is damaged ({_reason(exc)})") from None
    finally:
        container.close()
    if not parts:
        raise AudioError(f"{path}: no audio could be decoded at {start:.1f} s")
    samples = np.concatenate(parts, axis=1)
    offset = (first or 0.0) - origin
    a = max(0, round((start - offset) * rate))
    b = min(samples.shape[1], round((end - offset) * rate))
    if b <= a:
        raise AudioError(f"{path}: the audio ends before {start:.1f} s")
    return np.ascontiguousarray(samples[:, a:b], dtype=np.float32), rate, layout


def _fade(samples: np.ndarray, rate: int) -> np.ndarray:
    out = samples.copy()
    n_in = min(out.shape[1] // 4, round(FADE_IN * rate))
    n_out = min(out.shape[1] // 4, round(FADE_OUT * rate))
    if n_in:
        out[:, :n_in] *= np.linspace(0.0, 1.0, n_in, dtype=np.float32)
    if n_out:
        out[:, -n_out:] *= np.linspace(1.0, 0.0, n_out, dtype=np.float32)
    return out


def encode(samples: np.ndarray, rate: int, layout: str, out: Path) -> None:
    """Write (channels, samples) float32 as MP3 or M4A by ``out``'s extension, atomically."""
    import av

    from ..fsutil import atomic_file

    fmt, codec, bitrate = CONTAINERS[out.suffix.lower()]
    if codec == "aac" and rate not in (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000):
        raise AudioError(f"{out}: AAC cannot carry {rate} Hz audio; write an .mp3")
    try:
        with atomic_file(out) as tmp:
            container = av.open(str(tmp), "w", format=fmt)
            try:
                stream: Any = container.add_stream(codec, rate=rate, layout=layout)
                stream.bit_rate = bitrate
                step = 4096
                for i in range(0, samples.shape[1], step):
                    frame = av.AudioFrame.from_ndarray(samples[:, i : i + step], format="fltp", layout=layout)
                    frame.sample_rate = rate
                    frame.pts = i
                    for packet in stream.encode(frame):
                        container.mux(packet)
                for packet in stream.encode(None):
                    container.mux(packet)
            finally:
                container.close()
    except av.FFmpegError as exc:
        raise AudioError(f"{out}: cannot encode the clip ({one_line(exc)})") from None
    except OSError as exc:
        raise InputError(f"{out}: cannot write ({exc.strerror or exc})") from None


def make_clip(
    episode: Episode,
    words: list[tuple[str, float, float]],
    audio: Path | Callable[[], Path],
    start: float,
    end: float,
    out: Path,
    *,
    subtitles: tuple[str, ...] = ("srt", "vtt"),
    force: bool = False,
) -> ClipResult:
    """Cut ``audio`` (the episode's, whose ``words`` are its words with their times) from ``start``
    to ``end`` (snapped to whole words) into ``out`` (.mp3 or .m4a), with ``out``'s .srt and .vtt
    beside it. ``audio`` may be a function that finds (or downloads) the file: it is called only
    once the request has been checked. Files already there are kept unless ``force``; the
    episode's own audio never is overwritten."""
    from ..fsutil import atomic_write
    from .subtitles import make_cues, shift, subtitles_text

    out = Path(out)
    if out.suffix.lower() not in CONTAINERS:
        raise InputError(f"{out}: a clip is written as .mp3 or .m4a, not '{out.suffix or 'no extension'}'")
    if not out.parent.is_dir():
        raise InputError(f"{out.parent}: no such folder")
    check_range(start, end, episode.duration)
    i, j = snap(words, start, end)
    targets = [out, *(out.with_suffix(f".{fmt}") for fmt in subtitles)]
    if not force:
        for target in targets:
            if target.exists() or target.is_symlink():
                raise InputError(f"{target} exists: pass --force to overwrite it, or write the clip elsewhere")
    if callable(audio):
        audio = audio()
    for target in targets:
        if _same_file(target, audio):
            raise InputError(f"{target} is the episode's own audio: write the clip somewhere else")
    prev_end = words[i - 1][2] if i > 0 else 0.0
    cut_start = max(0.0, min(words[i][1], max(prev_end, words[i][1] - LEAD)))
    cut_end = words[j - 1][2]
    samples, rate, layout = _decode_range(audio, cut_start, cut_end)
    cut_end = cut_start + samples.shape[1] / rate
    encode(_fade(samples, rate), rate, layout, out)
    kept = words[i:j]
    clip = Transcript(
        segments=(
            Segment(
                start=kept[0][1] - cut_start,
                end=kept[-1][2] - cut_start,
                text=" ".join(w for w, _, _ in kept),
                words=tuple(Word(max(0.0, a - cut_start), min(b, cut_end) - cut_start, f" {w}") for w, a, b in kept),
            ),
        ),
        language=episode.language,
    )
    cues = shift(make_cues(clip), 0.0, until=cut_end - cut_start)  # none runs past the clip's end
    written = []
    for fmt in subtitles:
        path = out.with_suffix(f".{fmt}")
        try:
            atomic_write(path, subtitles_text(cues, fmt, language=episode.language).encode("utf-8"), make_parents=False)
        except OSError as exc:
            raise InputError(f"{path}: cannot write ({exc.strerror or exc})") from None
        written.append(path)
    return ClipResult(audio=out, subtitles=tuple(written), start=cut_start, end=cut_end, text=clip.segments[0].text)
