"""The delta-BIC split rule of speaker clustering (stop="bic"): MFCC statistics per window from real
audio, and a cluster split in two only when its halves' frames are two different sources."""

from __future__ import annotations

import numpy as np
import pytest

from hmsearch.speakers.detect import (
    CEPSTRA,
    SAMPLE_RATE,
    DiarizeSettings,
    _in_runs,
    cluster,
    delta_bic,
    window_cepstra,
)

HOP = 0.75
PART = 30.0  # seconds per turn: A B A B


def _noise(rng: np.random.Generator, seconds: float, low: float, high: float) -> np.ndarray:
    """White noise kept between ``low`` and ``high`` Hz: a stationary source with its own spectrum."""
    spectrum = np.fft.rfft(rng.standard_normal(int(seconds * SAMPLE_RATE)))
    freqs = np.fft.rfftfreq(int(seconds * SAMPLE_RATE), 1 / SAMPLE_RATE)
    spectrum[(freqs < low) | (freqs > high)] *= 0.01
    x = np.fft.irfft(spectrum, n=int(seconds * SAMPLE_RATE))
    return (0.05 * x / np.std(x)).astype(np.float32)


def _close_voices(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Speaker vectors of two groups ~0.12 apart in cosine distance (a 0.25 threshold merges them),
    alternating every PART seconds, and which group each window is in."""
    a, b = rng.standard_normal((2, 256))
    a /= np.linalg.norm(a)
    b = a + 0.55 * b / np.linalg.norm(b)
    b /= np.linalg.norm(b)
    group = (np.arange(n) * HOP // PART).astype(int) % 2
    v = np.where(group[:, None] == 0, a, b) + 0.02 * rng.standard_normal((n, 256))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32), group


def _diarize_parts(audio: np.ndarray, vectors: np.ndarray, stop: str) -> np.ndarray:
    settings = DiarizeSettings(smooth_windows=1, stop=stop)
    regions = [(0.0, len(audio) / SAMPLE_RATE)]
    centres = HOP * (np.arange(len(vectors)) + 1)
    cepstra = window_cepstra(audio, regions, centres, settings)
    return cluster(vectors, settings, cepstra=cepstra)


def test_two_sources_the_speaker_vectors_merge_are_split_and_one_source_is_not() -> None:
    rng = np.random.default_rng(5)
    n = int(4 * PART / HOP) - 1
    vectors, group = _close_voices(rng, n)
    two = np.concatenate([_noise(rng, PART, *band) for band in [(100, 1500), (1500, 6000)] * 2])
    assert len(set(_diarize_parts(two, vectors, "threshold"))) == 1  # the vectors alone: one speaker
    found = _diarize_parts(two, vectors, "bic")
    assert len(set(found)) == 2
    assert all(len(set(found[group == k])) == 1 for k in (0, 1))  # split along the sources
    one = np.concatenate([_noise(rng, PART, 100, 1500) for _ in range(4)])
    assert len(set(_diarize_parts(one, vectors, "bic"))) == 1  # same vectors, one source: kept whole


def test_window_cepstra_give_each_window_its_hop_of_speech_frames() -> None:
    rng = np.random.default_rng(1)
    audio = _noise(rng, 20.0, 100, 4000)
    centres = np.delete(HOP * (np.arange(20) + 1), range(8, 12))  # no windows over 6-9 s: frames there go nowhere
    stats = window_cepstra(audio, [(2.0, 14.0)], centres, DiarizeSettings())
    assert stats.total.shape == (16, CEPSTRA) and stats.outer.shape == (16, CEPSTRA, CEPSTRA)
    inside = (centres - HOP / 2 >= 2.0) & (centres + HOP / 2 <= 14.0)
    assert np.all(np.abs(stats.count[inside] - HOP / 0.01) <= 1)  # 75 frames of 10 ms each
    assert np.all(stats.count[centres + HOP / 2 < 2.0] == 0)  # no speech, no frames
    assert stats.count.sum() == pytest.approx((14.0 - 2.0 - 4 * HOP) / 0.01, abs=3)


def test_delta_bic_favours_two_gaussians_only_for_two_sources() -> None:
    rng = np.random.default_rng(2)

    def pooled(x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        return float(len(x)), x.sum(axis=0), x.T @ x

    a, same = rng.standard_normal((2, 3000, CEPSTRA))
    moved = rng.standard_normal((3000, CEPSTRA)) * 1.5 + 0.5
    assert delta_bic(pooled(a), pooled(moved), 1.0) > 0
    assert delta_bic(pooled(a), pooled(same), 1.0) < 0


def test_the_bic_rule_needs_the_cepstra() -> None:
    vectors, _ = _close_voices(np.random.default_rng(0), 40)
    with pytest.raises(ValueError, match="cepstra"):
        cluster(vectors, DiarizeSettings(stop="bic"))


def test_the_windows_around_each_change_of_speaker_are_not_a_speaker() -> None:
    # The bundled sample: two espeak-ng voices taking turns with no pause between them. The windows
    # that straddle each change hear both voices and form a half of their own by MFCCs (without the
    # stretch rule the two voices came out as four, one of 18 s made of those windows); heard only
    # in blips, they never become a speaker.
    pytest.importorskip("resemblyzer")
    from dataclasses import replace

    from hmsearch.audio import decode_audio
    from hmsearch.speakers.detect import diarize

    from helpers import SAMPLE_AUDIO

    audio = decode_audio(SAMPLE_AUDIO)
    assert DiarizeSettings().stop == "bic"
    assert {t.speaker for t in diarize(audio)} == {"S1", "S2"}
    assert len({t.speaker for t in diarize(audio, replace(DiarizeSettings(), min_stretch_seconds=0.0))}) > 2
    assert _in_runs(np.array([0, 1, 2, 5, 6, 9, 10, 11, 12]), 3) == 7 and _in_runs(np.array([], dtype=int), 2) == 0
