"""Who speaks when: voice activity -> speaker embeddings over short windows -> clustering with an
automatic number of speakers -> turns.

The speaker encoder is resemblyzer's GE2E model (a 3-layer LSTM over 40-channel mel frames, its
weights inside the wheel, so it runs offline); voice activity is WebRTC's VAD. Audio is handled in
blocks of ``BLOCK_SECONDS`` so the mel frames of an hour never sit in memory at once; what grows
with the audio is one 256-float vector per window (4,800 an hour) and one byte per VAD frame.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import HmsearchError
from ..types import Turn

log = logging.getLogger("hmsearch.speakers")

SAMPLE_RATE = 16_000
VAD_FRAME_SECONDS = 0.03  # WebRTC's VAD takes 10, 20 or 30 ms frames
VAD_FRAME = int(SAMPLE_RATE * VAD_FRAME_SECONDS)
MEL_HOP_SECONDS = 0.01  # resemblyzer's mel frames: 25 ms windows every 10 ms
BLOCK_SECONDS = 60.0  # mel frames are computed this much audio at a time
MAX_CLUSTERED = 2_000  # windows clustered at once; the rest join their nearest cluster
TARGET_DBFS = -30.0  # resemblyzer's training loudness
BATCH = 32  # windows per encoder call


class SpeakersUnavailable(HmsearchError):
    """The speaker encoder (resemblyzer) is not installed."""


@dataclass(frozen=True)
class DiarizeSettings:
    """The knobs, tuned on the dev arrangements of benchmarks/bench_diarization.py."""

    window_seconds: float = 1.5
    hop_seconds: float = 0.75
    vad_mode: int = 2  # 0 (lenient) .. 3 (strict)
    min_speech_seconds: float = 0.3  # shorter bursts of speech are noise
    bridge_seconds: float = 0.3  # shorter pauses do not split speech
    method: str = "agglomerative"  # or "spectral" (spectralcluster)
    smooth_windows: int = 3  # clustering sees each window averaged with its neighbours (odd)
    # Agglomerative stopping rule: "threshold", "separation", "split", "silhouette" or "bic" (see
    # cluster). "separation" (smooth_windows 7) won on dev (DER 5.6 % against 7.1 %, 22 right counts
    # of 30 against 20) but not held aside (count 9 of 15 against 10, host 90.6 % against 95.5 %).
    # "bic" (the threshold, then delta-BIC splits on MFCCs) won on dev and held aside (below): the
    # default since stop 31.
    stop: str = "bic"
    threshold: float = 0.25  # "threshold", "split", "bic": cosine distance at which clusters stop merging
    separation: float = 2.0  # "separation", "split": centroid distance over spread; "silhouette": the least
    max_speakers: int = 10  # "separation", "silhouette", "split", "bic": the most speakers tried
    # "bic": lambda, the weight of the parameter count in delta-BIC. Chosen on dev as every setting
    # is (the most right counts within a point of the lowest DER; benchmarks/results/diarization.md
    # and diarization_bic.md): 4.0, DER 4.2 % against the threshold's 7.1 %, 24 right counts of 30
    # against 20; held aside 4.5 % against 10.0 %, 12 of 15 against 10; 60 min of two readers: 2
    # speakers. 1-2 cut real voices in two.
    bic_penalty: float = 4.0
    min_stretch_seconds: float = 3.0  # "bic", "split": a half counts only its speech in stretches this long
    bic_frames: float = 6000.0  # "bic": each half weighs at most this many 10 ms frames (60 s) in the test
    min_speaker_seconds: float = 10.0  # a cluster with less speech joins its nearest neighbour
    min_turn_seconds: float = 1.0  # a shorter turn between two turns of one speaker is theirs
    join_gap_seconds: float = 1.5  # one speaker's turns closer than this become one turn


def speakers_available() -> bool:
    """Whether the speaker encoder can be imported (without importing it)."""
    return all(importlib.util.find_spec(m) is not None for m in ("resemblyzer", "webrtcvad", "sklearn"))


def _require() -> None:
    if not speakers_available():
        raise SpeakersUnavailable(
            "speaker turns need resemblyzer (its speaker encoder ships inside the package): "
            "`uv pip install 'hmsearch[speakers]'`, or set HMSEARCH_SPEAKERS=off"
        )


_ENCODER: Any = None


def _encoder() -> Any:
    """resemblyzer's VoiceEncoder on the CPU, loaded once per process (~0.1 s)."""
    global _ENCODER
    if _ENCODER is None:
        _require()
        with warnings.catch_warnings():  # resemblyzer imports scipy.ndimage.morphology (deprecated)
            warnings.simplefilter("ignore", DeprecationWarning)
            from resemblyzer import VoiceEncoder

        _ENCODER = VoiceEncoder(device="cpu", verbose=False)
    return _ENCODER


def voice_activity(samples: np.ndarray, settings: DiarizeSettings = DiarizeSettings()) -> list[tuple[float, float]]:
    """Speech regions (start, end) in seconds: WebRTC's VAD per 30 ms frame, short pauses bridged
    and short bursts dropped."""
    _require()
    import webrtcvad

    vad = webrtcvad.Vad(settings.vad_mode)
    n = len(samples) // VAD_FRAME
    flags = np.zeros(n, dtype=bool)
    step = VAD_FRAME * 2  # bytes per frame
    per_block = int(BLOCK_SECONDS / VAD_FRAME_SECONDS)
    for first in range(0, n, per_block):  # 16-bit PCM a block at a time, not a copy of the hour
        last = min(n, first + per_block)
        raw = (np.clip(samples[first * VAD_FRAME : last * VAD_FRAME], -1.0, 1.0) * 32767).astype("<i2").tobytes()
        for i in range(last - first):
            flags[first + i] = vad.is_speech(raw[i * step : (i + 1) * step], SAMPLE_RATE)
    return _regions(flags, VAD_FRAME_SECONDS, settings)


def _regions(flags: np.ndarray, frame: float, settings: DiarizeSettings) -> list[tuple[float, float]]:
    regions: list[list[float]] = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2]):
        start, end = a * frame, b * frame
        if regions and start - regions[-1][1] < settings.bridge_seconds:
            regions[-1][1] = end
        else:
            regions.append([start, end])
    return [(a, b) for a, b in regions if b - a >= settings.min_speech_seconds]


N_FFT = 400  # 25 ms at 16 kHz
MEL_HOP = 160  # 10 ms
N_MELS = 40


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    mel = f / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log_part, mel)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp(np.log(6.4) / 27.0 * (m - 15.0)), m * (200.0 / 3))


_FILTERS: np.ndarray | None = None


def mel_filters() -> np.ndarray:
    """The (40, 201) mel filterbank resemblyzer's encoder was trained on: librosa.filters.mel with
    its defaults (Slaney scale and area norm), written out because librosa's first call compiles
    numba code for seconds."""
    global _FILTERS
    if _FILTERS is None:
        fft_freqs = np.linspace(0, SAMPLE_RATE / 2, 1 + N_FFT // 2)
        mel_f = _mel_to_hz(np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(SAMPLE_RATE / 2)), N_MELS + 2))
        fdiff = np.diff(mel_f)
        ramps = np.subtract.outer(mel_f, fft_freqs)
        lower = -ramps[:-2] / fdiff[:-1, None]
        upper = ramps[2:] / fdiff[1:, None]
        weights = np.maximum(0, np.minimum(lower, upper)) * (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
        _FILTERS = weights.astype(np.float32)
    return _FILTERS


def mel_frames(samples: np.ndarray) -> np.ndarray:
    """(frames, 40) mel power, as resemblyzer's ``wav_to_mel_spectrogram`` computes it (centred
    25 ms Hann windows every 10 ms, zero padded), in numpy."""
    padded = np.pad(np.asarray(samples, dtype=np.float32), N_FFT // 2)
    if len(padded) < N_FFT:
        return np.zeros((0, N_MELS), dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::MEL_HOP]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    return np.asarray(power @ mel_filters().T, dtype=np.float32)


def window_embeddings(
    samples: np.ndarray,
    regions: list[tuple[float, float]],
    settings: DiarizeSettings = DiarizeSettings(),
) -> tuple[np.ndarray, np.ndarray]:
    """(centres in seconds, unit speaker vectors) of the windows that are mostly speech."""
    import torch

    encoder = _encoder()
    win = round(settings.window_seconds / MEL_HOP_SECONDS)
    hop = round(settings.hop_seconds / MEL_HOP_SECONDS)
    speech = np.zeros(int(len(samples) / SAMPLE_RATE / MEL_HOP_SECONDS) + 1, dtype=bool)
    for a, b in regions:
        speech[int(a / MEL_HOP_SECONDS) : int(b / MEL_HOP_SECONDS)] = True
    # One gain for the whole episode, from its speech (resemblyzer was trained at -30 dBFS).
    power, count = 0.0, 0
    for a, b in regions or [(0.0, len(samples) / SAMPLE_RATE)]:  # region by region: no copy of the speech
        part = samples[int(a * SAMPLE_RATE) : int(b * SAMPLE_RATE)]
        power += float(np.dot(part, part))
        count += len(part)
    rms = float(np.sqrt(power / count)) if count else 0.0
    gain = 10 ** (TARGET_DBFS / 20) / rms if rms > 1e-6 else 1.0
    centres: list[float] = []
    vectors: list[np.ndarray] = []
    block = round(BLOCK_SECONDS / MEL_HOP_SECONDS)  # mel frames per block, a multiple of hop
    block -= block % hop
    total = len(speech) - 1
    for first in range(0, max(total - win, 0) + 1, block):
        # This block's windows start in [first, first + block); its audio runs one window further.
        a = first * int(SAMPLE_RATE * MEL_HOP_SECONDS)
        b = min(len(samples), (first + block + win) * int(SAMPLE_RATE * MEL_HOP_SECONDS))
        mel = mel_frames(samples[a:b] * gain)
        starts = [
            s
            for s in range(0, min(block, len(mel) - win + 1), hop)
            if speech[first + s : first + s + win].mean() >= 0.5
        ]
        if not starts:
            continue
        for i in range(0, len(starts), BATCH):
            batch = torch.from_numpy(np.stack([mel[s : s + win] for s in starts[i : i + BATCH]]))
            vectors.append(_one_thread(encoder, batch))
        centres.extend((first + s + win / 2) * MEL_HOP_SECONDS for s in starts)
    if not vectors:
        return np.zeros(0), np.zeros((0, 256), dtype=np.float32)
    emb = np.concatenate(vectors).astype(np.float32)
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-9)
    return np.asarray(centres), emb


def _one_thread(encoder: Any, batch: Any) -> np.ndarray:
    """The encoder on one thread: a small LSTM batch runs 5-15x slower on two threads of a busy
    machine (measured with the load at 7 on 2 cores: 0.9 s against 6.6 s for 190 windows)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            return np.asarray(encoder(batch).numpy())
    finally:
        torch.set_num_threads(threads)


def cluster(
    vectors: np.ndarray, settings: DiarizeSettings = DiarizeSettings(), *, cepstra: CepstralStats | None = None
) -> np.ndarray:
    """A speaker label per window, the number of speakers found by the clustering itself.

    Stopping rules of average-linkage clustering (cosine distance of smoothed window vectors):
    ``threshold`` stops merging at a fixed distance; ``separation`` cuts the tree into the most
    speakers (up to ``max_speakers``) whose every pair of centroids is at least ``separation``
    times their windows' own spread apart (a spread-relative rule: it tells apart two close but
    steady voices without cutting one varied voice); ``split`` stops at ``threshold`` and then
    splits a cluster in two while the halves are ``separation`` apart; ``silhouette`` takes the cut
    of the best mean silhouette when it reaches ``separation``; ``bic`` stops at ``threshold`` and
    then splits a cluster in two while a delta-BIC test on the halves' MFCCs (``cepstra``, from
    :func:`window_cepstra`) favours two voices. Measured in benchmarks/bench_diarization.py
    (``separation`` chosen on dev)."""
    if settings.stop == "bic" and cepstra is None:
        raise ValueError('stop="bic" needs the windows\' cepstra (window_cepstra)')
    n = len(vectors)
    if n < 3:
        return np.zeros(n, dtype=int)
    # Bounded work for long audio: cluster an even sample, then give every window its nearest centroid.
    step = -(-n // MAX_CLUSTERED)
    sample = smooth(vectors, settings.smooth_windows)[::step]
    window_seconds = step * settings.hop_seconds  # speech each clustered window stands for
    if settings.method == "spectral":
        # Google's spectral clustering with the ICASSP 2018 affinity refinement; measured, not the default
        from spectralcluster import SpectralClusterer, configs

        clusterer = SpectralClusterer(
            min_clusters=1, max_clusters=10, refinement_options=configs.icassp2018_refinement_options
        )
        labels = np.asarray(clusterer.predict(sample))
    elif settings.stop in ("threshold", "split", "bic"):
        from sklearn.cluster import AgglomerativeClustering

        labels = AgglomerativeClustering(
            n_clusters=None, metric="cosine", linkage="average", distance_threshold=settings.threshold
        ).fit_predict(sample)
    else:
        labels = _cut_tree(sample, window_seconds, settings)
    labels = _absorb_small(sample, labels, window_seconds, settings.min_speaker_seconds)
    if settings.method != "spectral" and settings.stop == "split":
        labels = _split_by_separation(sample, labels, window_seconds, settings)
    if settings.method != "spectral" and settings.stop == "bic" and cepstra is not None:
        labels = _split_by_bic(sample, cepstra.every(step), labels, window_seconds, settings)
    centroids = _centroids(vectors[::step], labels)  # of the windows themselves, not the smoothed ones
    return np.asarray(np.argmax(vectors @ centroids.T, axis=1))


def _absorb_small(sample: np.ndarray, labels: np.ndarray, window_seconds: float, min_seconds: float) -> np.ndarray:
    """Labels 0..k-1 of the clusters with at least ``min_seconds`` of speech, the windows of smaller
    ones (noise, crosstalk) given to their nearest big cluster."""
    labels = np.unique(labels, return_inverse=True)[1].reshape(-1)
    seconds = np.bincount(labels) * window_seconds
    keep = np.flatnonzero(seconds >= min_seconds)
    if len(keep) == 0:
        keep = np.array([int(np.argmax(seconds))])
    if len(keep) == len(seconds):
        return labels
    centroids = _centroids(sample, labels)[keep]
    out = np.searchsorted(keep, labels)
    small = ~np.isin(labels, keep)
    out[small] = np.argmax(sample[small] @ centroids.T, axis=1)
    return np.asarray(out)


def _separations(sample: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(k, k): cosine distance of two clusters' centroids over the mean spread of the two (a
    cluster's spread: the mean cosine distance of its windows to its centroid); inf on the diagonal."""
    k = int(labels.max()) + 1
    centroids = _centroids(sample, labels)
    spread = np.array([float(np.mean(1.0 - sample[labels == i] @ centroids[i])) for i in range(k)])
    distance = 1.0 - centroids @ centroids.T
    ratio = distance / np.maximum((spread[:, None] + spread[None, :]) / 2, 1e-6)
    np.fill_diagonal(ratio, np.inf)
    return np.asarray(ratio)


def _separation(sample: np.ndarray, labels: np.ndarray) -> float:
    """The least separation of two clusters (inf for one cluster)."""
    return float(_separations(sample, labels).min()) if labels.max() >= 1 else float("inf")


def _split_while(
    sample: np.ndarray,
    labels: np.ndarray,
    window_seconds: float,
    settings: DiarizeSettings,
    two_voices: Callable[[np.ndarray, np.ndarray], bool],
) -> np.ndarray:
    """Each cluster split in two (k-means on the speaker vectors) while both halves have a
    speaker's worth of speech and ``two_voices(windows, halves)`` says they are two voices. A voice
    is heard in stretches: windows in runs shorter than ``min_stretch_seconds`` (those around each
    change of speaker, which mix two voices) do not make a half a speaker."""
    from sklearn.cluster import KMeans

    labels = labels.copy()
    todo = list(range(int(labels.max()) + 1))
    run = max(1, int(np.ceil(settings.min_stretch_seconds / window_seconds)))
    while todo and labels.max() + 1 < settings.max_speakers:
        c = todo.pop()
        mine = np.flatnonzero(labels == c)
        if len(mine) * window_seconds < 2 * settings.min_speaker_seconds:
            continue
        halves = KMeans(n_clusters=2, n_init=4, random_state=0).fit_predict(sample[mine])
        if min(_in_runs(mine[halves == h], run) for h in (0, 1)) * window_seconds < settings.min_speaker_seconds:
            continue
        if not two_voices(mine, halves):
            continue
        new = int(labels.max()) + 1
        labels[mine[halves == 1]] = new
        todo += [c, new]
    return labels


def _split_by_separation(
    sample: np.ndarray, labels: np.ndarray, window_seconds: float, settings: DiarizeSettings
) -> np.ndarray:
    """Split while the halves are at least ``separation`` apart: two close voices that the
    threshold merged are steady enough to stand apart from their own spread, where the halves of
    one varied voice are not."""
    return _split_while(
        sample,
        labels,
        window_seconds,
        settings,
        lambda mine, halves: _separation(sample[mine], halves) >= settings.separation,
    )


def _split_by_bic(
    sample: np.ndarray, cepstra: CepstralStats, labels: np.ndarray, window_seconds: float, settings: DiarizeSettings
) -> np.ndarray:
    """Split while a delta-BIC test on the halves' MFCC frames favours two Gaussians over one
    (Chen & Gopalakrishnan 1998): a second signal beside the speaker vectors, for two voices the
    encoder places close together."""

    def two_voices(mine: np.ndarray, halves: np.ndarray) -> bool:
        one, two = (_at_most(cepstra.pooled(mine[halves == h]), settings.bic_frames) for h in (0, 1))
        return delta_bic(one, two, settings.bic_penalty) > 0

    return _split_while(sample, labels, window_seconds, settings, two_voices)


def _at_most(stats: tuple[float, np.ndarray, np.ndarray], frames: float) -> tuple[float, np.ndarray, np.ndarray]:
    """Pooled statistics weighed as at most ``frames`` frames (same mean and covariance): delta-BIC's
    evidence grows with the frames and its penalty only with their log, so without a cap an hour
    of one voice, whose sound drifts, splits where a few minutes would not."""
    n, total, outer = stats
    scale = min(1.0, frames / n) if n else 1.0
    return n * scale, total * scale, outer * scale


def _in_runs(positions: np.ndarray, length: int) -> int:
    """How many of the sorted window ``positions`` lie in runs of at least ``length`` consecutive
    windows."""
    if len(positions) == 0:
        return 0
    breaks = np.flatnonzero(np.diff(positions) != 1) + 1
    sizes = np.diff(np.concatenate(([0], breaks, [len(positions)])))
    return int(sizes[sizes >= length].sum())


def _cut_tree(sample: np.ndarray, window_seconds: float, settings: DiarizeSettings) -> np.ndarray:
    """The average-linkage tree cut into 2..``max_speakers`` clusters (small ones absorbed), the cut
    the stopping rule takes; one cluster when none passes."""
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(sample, method="average", metric="cosine")
    one = np.zeros(len(sample), dtype=int)
    cuts = []
    for k in range(min(settings.max_speakers, len(sample) - 1), 1, -1):
        labels = _absorb_small(
            sample, fcluster(tree, k, criterion="maxclust") - 1, window_seconds, settings.min_speaker_seconds
        )
        if labels.max() >= 1:
            cuts.append(labels)
    if settings.stop == "separation":
        return next((c for c in cuts if _separation(sample, c) >= settings.separation), one)
    if settings.stop == "silhouette":
        from sklearn.metrics import silhouette_score

        scores = [float(silhouette_score(sample, c, metric="cosine")) for c in cuts]
        if scores and max(scores) >= settings.separation:
            return cuts[int(np.argmax(scores))]  # on a tie, the most speakers
        return one
    raise ValueError(f"unknown stopping rule {settings.stop!r}")


CEPSTRA = 19  # MFCCs c1..c19 per frame; c0 (the loudness) is left out: a level is not a voice
CEPSTRA_FLOOR_DB = 40.0  # frames quieter than this below the block's loud speech are pauses


@dataclass(frozen=True)
class CepstralStats:
    """Per window, the MFCC frames of its share of speech (the ``hop_seconds`` round its centre,
    so windows do not share frames) as sufficient statistics: frame count, sum and sum of outer
    products. The full-covariance Gaussian of any set of windows is a sum of rows."""

    count: np.ndarray  # (windows,)
    total: np.ndarray  # (windows, CEPSTRA)
    outer: np.ndarray  # (windows, CEPSTRA, CEPSTRA)

    def every(self, step: int) -> CepstralStats:
        return CepstralStats(self.count[::step], self.total[::step], self.outer[::step])

    def pooled(self, rows: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        return float(self.count[rows].sum()), self.total[rows].sum(axis=0), self.outer[rows].sum(axis=0)


def _log_det_covariance(n: float, total: np.ndarray, outer: np.ndarray) -> float:
    mean = total / n
    covariance = outer / n - np.outer(mean, mean)
    sign, value = np.linalg.slogdet(covariance + 1e-6 * np.eye(len(mean)))
    return float(value) if sign > 0 else float("-inf")


def delta_bic(
    a: tuple[float, np.ndarray, np.ndarray], b: tuple[float, np.ndarray, np.ndarray], penalty: float
) -> float:
    """Delta-BIC of two full-covariance Gaussians (one per part) against one for both, from pooled
    (count, sum, sum of outer products): positive favours two. ``penalty`` is lambda, the weight
    of the extra parameters' cost (d + d(d+1)/2) * log(N) / 2."""
    (na, sa, oa), (nb, sb, ob) = a, b
    n = na + nb
    d = len(sa)
    if min(na, nb) <= d:
        return float("-inf")
    gain = 0.5 * (
        n * _log_det_covariance(n, sa + sb, oa + ob)
        - na * _log_det_covariance(na, sa, oa)
        - nb * _log_det_covariance(nb, sb, ob)
    )
    return gain - penalty * 0.5 * (d + d * (d + 1) / 2) * float(np.log(n))


def window_cepstra(
    samples: np.ndarray,
    regions: list[tuple[float, float]],
    centres: np.ndarray,
    settings: DiarizeSettings = DiarizeSettings(),
) -> CepstralStats:
    """MFCC statistics of each window's share of speech (see :class:`CepstralStats`): log mel
    power of the encoder's own 40-band frames, DCT-II (orthonormal, as librosa's mfcc, whose dB
    are a constant multiple that delta-BIC does not see; librosa itself would compile numba code
    for seconds), c1..c19, speech frames only (VAD, and within ``CEPSTRA_FLOOR_DB`` of the block's loud frames). Computed
    a block at a time like the window vectors: 2.3 s and 12 MB for an hour of audio."""
    from scipy.fft import dct

    d = CEPSTRA
    count = np.zeros(len(centres))
    total = np.zeros((len(centres), d))
    outer = np.zeros((len(centres), d, d))
    if len(centres) == 0:
        return CepstralStats(count, total, outer)
    n_frames = int(len(samples) / SAMPLE_RATE / MEL_HOP_SECONDS) + 1
    speech = np.zeros(n_frames, dtype=bool)
    for a, b in regions:
        speech[int(a / MEL_HOP_SECONDS) : int(b / MEL_HOP_SECONDS)] = True
    half = settings.hop_seconds / 2
    block = round(BLOCK_SECONDS / MEL_HOP_SECONDS)
    hop = int(SAMPLE_RATE * MEL_HOP_SECONDS)
    for first in range(0, n_frames, block):
        mel = mel_frames(samples[first * hop : min(len(samples), (first + block) * hop)])[:block]
        times = (first + np.arange(len(mel))) * MEL_HOP_SECONDS
        keep = speech[first : first + len(mel)].copy()
        energy = mel.sum(axis=1)
        if keep.any():
            loud = float(np.percentile(energy[keep], 95))
            keep &= energy > loud * 10 ** (-CEPSTRA_FLOOR_DB / 10)
        # each frame to the window whose centre is within half a hop of it
        nearest = np.clip(np.searchsorted(centres, times), 1, len(centres) - 1)
        nearest -= times - centres[nearest - 1] < centres[nearest] - times
        if len(centres) == 1:
            nearest[:] = 0
        keep &= np.abs(times - centres[nearest]) < half
        if not keep.any():
            continue
        x = dct(np.log(mel[keep].astype(np.float64) + 1e-10), type=2, norm="ortho", axis=1)[:, 1 : 1 + d]
        w = nearest[keep]  # ascending, as times are
        starts = np.flatnonzero(np.concatenate([[True], w[1:] != w[:-1]]))
        rows = w[starts]
        count[rows] += np.diff(np.append(starts, len(w)))
        total[rows] += np.add.reduceat(x, starts, axis=0)
        outer[rows] += np.add.reduceat(x[:, :, None] * x[:, None, :], starts, axis=0)
    return CepstralStats(count, total, outer)


def smooth(vectors: np.ndarray, width: int) -> np.ndarray:
    """Each window's vector averaged with its ``width // 2`` neighbours on each side (renormalised):
    one 1.5 s window is a noisy view of a voice, and neighbours are mostly the same speaker."""
    if width % 2 == 0:
        raise ValueError("smooth_windows must be odd")
    half = width // 2
    if half < 1 or len(vectors) < 2:
        return vectors
    padded = np.concatenate([np.repeat(vectors[:1], half, 0), vectors, np.repeat(vectors[-1:], half, 0)])
    summed = np.cumsum(np.concatenate([np.zeros((1, vectors.shape[1]), vectors.dtype), padded]), axis=0)
    out = summed[width:] - summed[:-width]
    return np.asarray(out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9), dtype=np.float32)


def _centroids(vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Unit mean vector per label 0..max (zero for a label without windows)."""
    k = int(labels.max()) + 1
    sums = np.zeros((k, vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, labels, vectors)
    return np.asarray(sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-9), dtype=np.float32)


def turns_from_labels(
    regions: list[tuple[float, float]],
    centres: np.ndarray,
    labels: np.ndarray,
    settings: DiarizeSettings = DiarizeSettings(),
) -> list[Turn]:
    """Speech regions cut where the nearest window's speaker changes; speakers named S1, S2, ...
    in order of first appearance."""
    raw: list[list[Any]] = []  # [start, end, label]
    step = MEL_HOP_SECONDS * 10  # label resolution: 0.1 s
    for a, b in regions:
        t = a
        while t < b:
            u = min(b, t + step)
            if len(centres):
                label = int(labels[int(np.argmin(np.abs(centres - (t + u) / 2)))])
            else:
                label = 0
            if raw and raw[-1][2] == label and t - raw[-1][1] < settings.join_gap_seconds:
                raw[-1][1] = u
            else:
                raw.append([t, u, label])
            t = u
    # A short turn between two turns of one speaker is that speaker's (a window straddling a change).
    changed = True
    while changed and len(raw) > 2:
        changed = False
        for i in range(1, len(raw) - 1):
            if raw[i][1] - raw[i][0] < settings.min_turn_seconds and raw[i - 1][2] == raw[i + 1][2]:
                raw[i - 1][1] = raw[i + 1][1]
                del raw[i : i + 2]
                changed = True
                break
    names: dict[int, str] = {}
    turns: list[Turn] = []
    for a, b, label in raw:
        speaker = names.setdefault(label, f"S{len(names) + 1}")
        if turns and turns[-1].speaker == speaker and a - turns[-1].end < settings.join_gap_seconds:
            turns[-1] = Turn(turns[-1].start, b, speaker)
        else:
            turns.append(Turn(a, b, speaker))
    return turns


def diarize(
    samples: np.ndarray,
    settings: DiarizeSettings = DiarizeSettings(),
    *,
    progress: Callable[[str], None] | None = None,
) -> list[Turn]:
    """Speaker turns of 16 kHz mono float32 audio."""
    _require()
    regions = voice_activity(samples, settings)
    if progress:
        progress(f"voice activity: {len(regions)} speech regions")
    centres, vectors = window_embeddings(samples, regions, settings)
    cepstra = window_cepstra(samples, regions, centres, settings) if settings.stop == "bic" else None
    labels = cluster(vectors, settings, cepstra=cepstra)
    turns = turns_from_labels(regions, centres, labels, settings)
    log.info(
        "diarized %.0f s: %d windows, %d speakers, %d turns",
        len(samples) / SAMPLE_RATE,
        len(vectors),
        len({t.speaker for t in turns}),
        len(turns),
    )
    return turns
