"""Decode any audio file to 16 kHz mono float32, the input Whisper expects.

PyAV bundles its own ffmpeg libraries, so no system ``ffmpeg`` binary is needed (openai-whisper's
own ``load_audio`` shells out to one). Decoding errors become one-line ``AudioError``s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import AudioError, InputError, one_line
from .fsutil import sha256_file

SAMPLE_RATE = 16_000  # Hz, what Whisper's models were trained on
AUDIO_SUFFIXES = (".mp3", ".m4a", ".mp4", ".aac", ".ogg", ".oga", ".opus", ".wav", ".flac", ".webm", ".mka")
# A decode that stops this far short of the length the container declares is a truncated file.
TRUNCATION_TOLERANCE = 0.9
# Decoding reserves room for at most this much audio up front (a hostile header cannot make it
# reserve more); a longer file grows the buffer as it decodes.
MAX_RESERVE_SECONDS = 6 * 3600.0


@dataclass(frozen=True)
class AudioInfo:
    duration: float  # seconds, as the container declares it (0.0 when unknown)
    title: str | None
    codec: str


def _open(path: Path) -> Any:
    import av  # lazy: keeps `hmsearch --help` fast

    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise AudioError(f"{path}: not a decodable audio file ({_reason(exc)})") from None
    if not container.streams.audio:
        container.close()
        raise AudioError(f"{path}: contains no audio stream")
    return container


def _reason(exc: Exception) -> str:
    """FFmpeg's own words for what is wrong (its strerror), else the message's first line."""
    strerror = getattr(exc, "strerror", None)
    return str(strerror).splitlines()[0].strip() if strerror else one_line(exc)


def _declared_duration(stream: Any, container: Any) -> float:
    """The length the file declares: the stream's, else the container's (0.0 when unknown)."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / 1_000_000
    return 0.0


def probe_audio(path: Path) -> AudioInfo:
    """Container facts without decoding: declared duration, title tag, codec."""
    container = _open(path)
    try:
        stream = container.streams.audio[0]
        duration = _declared_duration(stream, container)
        # Ogg/Opus keep their tags (Vorbis comments) on the stream, MP3/M4A on the container.
        meta = {k.lower(): v for k, v in {**(stream.metadata or {}), **(container.metadata or {})}.items()}
        title = (meta.get("title") or "").strip() or None
        return AudioInfo(duration=duration, title=title, codec=stream.codec_context.name)
    finally:
        container.close()


def decode_audio(path: Path, *, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode the first audio stream of ``path`` to mono float32 at ``sample_rate``.

    Raises AudioError for empty, non-audio, undecodable and truncated files.
    """
    buffer = _Samples()
    _decode(path, sample_rate, buffer)
    return buffer.array()


def measure_audio(path: Path, *, sample_rate: int = SAMPLE_RATE) -> float:
    """Decode all of ``path`` as :func:`decode_audio` does (the same checks and errors) but keep
    nothing: its true length in seconds, in constant memory (indexing audio that has its
    transcript beside it needs no samples)."""
    counter = _Count()
    _decode(path, sample_rate, counter)
    return counter.n / sample_rate


def _decode(path: Path, sample_rate: int, sink: _Samples | _Count) -> None:
    import av

    container = _open(path)
    try:
        stream = container.streams.audio[0]
        declared = _declared_duration(stream, container)
        sink.reserve(int(min(declared, MAX_RESERVE_SECONDS) * sample_rate * 1.01) + sample_rate)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    sink.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                sink.append(out.to_ndarray().reshape(-1))
        except av.FFmpegError as exc:
            raise AudioError(f"{path}: audio data is damaged ({_reason(exc)})") from None
    finally:
        container.close()
    if sink.n == 0:
        raise AudioError(f"{path}: no audio could be decoded")
    decoded = sink.n / sample_rate
    if declared > 1.0 and decoded < TRUNCATION_TOLERANCE * declared:
        raise AudioError(f"{path}: truncated audio (decoded {decoded:.1f} s of the {declared:.1f} s the file declares)")


class _Count:
    """A sink that only counts samples."""

    def __init__(self) -> None:
        self.n = 0

    def reserve(self, n: int) -> None:
        pass

    def append(self, part: np.ndarray) -> None:
        self.n += len(part)


class _Samples:
    """A growing float32 array filled in place: decoding an hour (230 MB of samples) holds one
    copy, not a list of frames plus their concatenation. Reserved from the declared length (a
    file that declares none, or too little, grows by doubling; pages reserved but never written
    are never resident, so a file declaring more than it holds costs address space only)."""

    def __init__(self) -> None:
        self._data = np.zeros(0, dtype=np.float32)
        self._size = 0

    @property
    def n(self) -> int:
        return self._size

    def reserve(self, n: int) -> None:
        if n > len(self._data):
            grown = np.empty(n, dtype=np.float32)
            grown[: self._size] = self._data[: self._size]
            self._data = grown

    def append(self, part: np.ndarray) -> None:
        end = self._size + len(part)
        if end > len(self._data):
            self.reserve(max(end, 2 * len(self._data)))
        self._data[self._size : end] = part
        self._size = end

    def array(self) -> np.ndarray:
        return self._data[: self._size]


def file_hash(path: Path, *, chunk_size: int = 1 << 20) -> str:
    """sha256 of a file's bytes: the key that says an input is unchanged."""
    try:
        return sha256_file(path, block=chunk_size)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
