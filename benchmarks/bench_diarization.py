"""Speaker turns: diarization error rate (DER, 0.25 s collar) and speaker count on conversations
laid out from real voices and espeak-ng voices, against two naive baselines; and the cost.

Voices: the two NST speakers and the two LibriVox readers of ../shared/data/real_danish (read from
there, never copied; the benchmark skips when the folder is absent) and four espeak-ng Danish
voices (different variants, pitches and speeds) reading the LibriVox texts. A conversation has 2-4
of them in turns of 3-40 s with pauses of 0.2-1.5 s and, now and then, 0.3-1 s of overlap.
Arrangements 0-29 are the dev part (the settings are tuned there); 30-44 are held aside and scored
once with the chosen settings.

The reference speech inside a turn is where the clean source is voiced (frame energy within 40 dB
of its loudest frame, pauses under 0.5 s bridged), so a reader's pause is no speech on either side.

Host recognition (--host) has its own split: two hosts' episodes (seeds from 500) tune the match,
other episodes of them and a third host (seeds from 2000) are held aside.

    PYTHONPATH=src python benchmarks/bench_diarization.py            # dev grid + held-aside check
    PYTHONPATH=src python benchmarks/bench_diarization.py --whisper  # also Whisper base on one conversation
    PYTHONPATH=src python benchmarks/bench_diarization.py --host     # host recognition, dev then held aside
    PYTHONPATH=src python benchmarks/bench_diarization.py --bic    # the delta-BIC split rule against the default
    PYTHONPATH=src python benchmarks/bench_diarization.py --host --bic  # host recognition with that rule
    ... --cache DIR  # keep VAD regions and window vectors between runs (cost figures: the first run's)
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from bench_util import SHARED, load, log, peak_rss_mb, write_results

from hmsearch.audio import SAMPLE_RATE, decode_audio
from hmsearch.speakers.detect import (
    CepstralStats,
    DiarizeSettings,
    cluster,
    turns_from_labels,
    voice_activity,
    window_cepstra,
    window_embeddings,
)
from hmsearch.types import Turn

REAL = SHARED / "real_danish"
FRAME = 0.01  # DER resolution, seconds
COLLAR = 0.25
DEV = range(0, 30)
# The baseline every rule is measured against: the fixed distance threshold, hmsearch's default
# until stop 31 ("bic" since, chosen by these benchmarks: --bic).
THRESHOLD = replace(DiarizeSettings(), stop="threshold")
HELD = range(30, 45)
BIC_PENALTIES = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)  # stop="bic": the dev grid's lambdas
ESPEAK_VOICES = {  # name: espeak-ng arguments
    "espeak_m1": ["-v", "da+m1", "-p", "35", "-s", "150"],
    "espeak_f2": ["-v", "da+f2", "-p", "60", "-s", "165"],
    "espeak_m3": ["-v", "da+m3", "-p", "50", "-s", "140"],
    "espeak_f4": ["-v", "da+f4", "-p", "75", "-s", "175"],
}


# ---- voices ---------------------------------------------------------------------------------
def _espeak(args: list[str], text: str, tmp: Path) -> np.ndarray:
    out = tmp / "espeak.wav"
    subprocess.run(["espeak-ng", *args, "-w", str(out), text], check=True, capture_output=True)
    return decode_audio(out)


def voices(tmp: Path) -> dict[str, np.ndarray]:
    """Each voice as one long stream of its speech (16 kHz mono float32)."""
    nst = REAL / "nst_danspeech"
    lv = REAL / "librivox_dansk"
    out = {
        "nst_u0013": decode_audio(nst / "u0013002.wav"),
        "nst_u0042": np.concatenate([decode_audio(p) for p in sorted(nst.glob("u0042*.wav"))]),
        "librivox_pige": decode_audio(lv / "den_lille_pige_med_svovlstikkerne.mp3")[30 * SAMPLE_RATE :],
        "librivox_aerten": decode_audio(lv / "prindsessen_paa_ærten.mp3")[20 * SAMPLE_RATE :],
    }
    words = " ".join(
        (lv / n).read_text(encoding="utf-8")
        for n in ("den_lille_pige_med_svovlstikkerne.txt", "prindsessen_paa_ærten.txt")
    ).split()
    for k, (name, args) in enumerate(ESPEAK_VOICES.items()):
        part = " ".join(words[k * 120 : k * 120 + 240])  # ~90 s of speech each, different text
        out[name] = _espeak(args, part, tmp)
    return out


def speech_mask(x: np.ndarray) -> np.ndarray:
    """Reference voicing of a clean single-voice clip, per FRAME."""
    n = len(x) // int(FRAME * SAMPLE_RATE)
    frames = x[: n * int(FRAME * SAMPLE_RATE)].reshape(n, -1)
    db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    voiced = db > db.max() - 40
    # bridge pauses shorter than 0.5 s
    gap = int(0.5 / FRAME)
    idx = np.flatnonzero(voiced)
    for a, b in itertools.pairwise(idx):
        if 1 < b - a <= gap:
            voiced[a:b] = True
    return voiced


# ---- arrangements ---------------------------------------------------------------------------
@dataclass
class Conversation:
    seed: int
    audio: np.ndarray
    reference: list[Turn]  # voiced stretches, one speaker each (may overlap)
    speakers: list[str]


def arrange(seed: int, pool: dict[str, np.ndarray], minutes: float = 2.5, host: str | None = None) -> Conversation:
    rng = np.random.default_rng(seed)
    n_speakers = int(rng.choice([2, 2, 3, 3, 4]))
    if host is None:
        names = list(rng.choice(sorted(pool), size=n_speakers, replace=False))
    else:  # the host in every episode, with guests
        names = [host, *rng.choice(sorted(set(pool) - {host}), size=n_speakers - 1, replace=False)]
    level = {n: 10 ** (rng.uniform(-26, -18) / 20) for n in names}
    cursor = dict.fromkeys(names, 0)
    pieces: list[tuple[float, str, np.ndarray]] = []
    t, last = 0.0, None
    count = dict.fromkeys(names, 0)
    while t < minutes * 60 or min(count.values()) < 2:
        choices = [n for n in names if n != last]
        who = str(rng.choice(choices))
        src = pool[who]
        length = float(rng.uniform(3, 40))
        k = int(length * SAMPLE_RATE)
        a = cursor[who] % len(src)
        clip = np.resize(np.roll(src, -a), min(k, len(src)))  # wraps round a short voice
        cursor[who] = a + len(clip)
        rms = float(np.sqrt(np.mean(clip.astype(np.float64) ** 2))) or 1.0
        clip = (clip * level[who] / rms).astype(np.float32)
        if last is not None and rng.random() < 0.15:
            start = t - float(rng.uniform(0.3, 1.0))  # a little overlap
        else:
            start = t + float(rng.uniform(0.2, 1.5))
        pieces.append((max(start, 0.0), who, clip))
        t = max(start, 0.0) + len(clip) / SAMPLE_RATE
        last = who
        count[who] += 1
    audio = np.zeros(int((t + 1) * SAMPLE_RATE), dtype=np.float32)
    reference: list[Turn] = []
    for start, who, clip in pieces:
        i = int(start * SAMPLE_RATE)
        audio[i : i + len(clip)] += clip
        mask = speech_mask(clip)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
        reference.extend(Turn(start + a * FRAME, start + b * FRAME, who) for a, b in zip(edges[::2], edges[1::2]))
    return Conversation(seed, np.clip(audio, -1, 1), sorted(reference, key=lambda r: r.start), names)


# ---- scoring --------------------------------------------------------------------------------
def der(reference: list[Turn], hypothesis: list[Turn], duration: float, collar: float = COLLAR) -> dict[str, float]:
    """Frame-based DER with the best one-to-one speaker mapping; frames within ``collar`` of a
    reference boundary are not scored. Overlapped reference speech counts both speakers."""
    from scipy.optimize import linear_sum_assignment

    n = int(duration / FRAME) + 1
    ref_names = sorted({r.speaker for r in reference})
    hyp_names = sorted({h.speaker for h in hypothesis})
    R = np.zeros((len(ref_names), n), dtype=bool)
    H = np.zeros((max(len(hyp_names), 1), n), dtype=bool)
    scored = np.ones(n, dtype=bool)
    for r in reference:
        R[ref_names.index(r.speaker), int(r.start / FRAME) : int(r.end / FRAME)] = True
        for edge in (r.start, r.end):
            scored[max(int((edge - collar) / FRAME), 0) : int((edge + collar) / FRAME)] = False
    for h in hypothesis:
        H[hyp_names.index(h.speaker), int(h.start / FRAME) : int(h.end / FRAME)] = True
    R, H = R[:, scored], H[:, scored]
    overlap = R.astype(np.int32) @ H.T.astype(np.int32)  # frames both say, per speaker pair
    rows, cols = linear_sum_assignment(-overlap)
    correct = overlap[rows, cols].sum()
    n_ref, n_hyp = R.sum(axis=0), H.sum(axis=0)
    total = float(n_ref.sum())
    miss = float(np.maximum(n_ref - n_hyp, 0).sum())
    fa = float(np.maximum(n_hyp - n_ref, 0).sum())
    errors = float(np.maximum(n_ref, n_hyp).sum() - correct)
    return {
        "der": errors / total if total else 0.0,
        "miss": miss / total if total else 0.0,
        "false_alarm": fa / total if total else 0.0,
        "confusion": (errors - miss - fa) / total if total else 0.0,
    }


# ---- runs -----------------------------------------------------------------------------------
@dataclass
class Prepared:
    conv: Conversation
    regions: list[tuple[float, float]]
    centres: np.ndarray
    vectors: np.ndarray
    seconds_vad_embed: float
    cepstra: CepstralStats | None = None  # MFCC statistics per window, made on first need (stop="bic")


CACHE: Path | None = None  # --cache: VAD regions and window vectors kept between runs


def prepare(conv: Conversation, settings: DiarizeSettings, tag: str = "") -> Prepared:
    """VAD and window vectors of ``conv`` (from the --cache folder when they are there: a run
    then re-times only clustering, and its cost figure is the first run's)."""
    key = (
        f"{tag}{conv.seed}_{len(conv.audio)}_{settings.window_seconds}_{settings.hop_seconds}_"
        f"{settings.vad_mode}_{settings.min_speech_seconds}_{settings.bridge_seconds}.npz"
    )
    if CACHE is not None and (CACHE / key).is_file():
        z = np.load(CACHE / key)
        regions = [(float(a), float(b)) for a, b in z["regions"]]
        return Prepared(conv, regions, z["centres"], z["vectors"], float(z["seconds"]))
    t0 = time.perf_counter()
    regions = voice_activity(conv.audio, settings)
    centres, vectors = window_embeddings(conv.audio, regions, settings)
    p = Prepared(conv, regions, centres, vectors, time.perf_counter() - t0)
    if CACHE is not None:
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(
            CACHE / key,
            regions=np.asarray(regions, dtype=np.float64).reshape(-1, 2),
            centres=centres,
            vectors=vectors,
            seconds=p.seconds_vad_embed,
        )
    return p


def run(p: Prepared, settings: DiarizeSettings, cepstra: CepstralStats | None = None) -> tuple[list[Turn], float]:
    """Turns of a prepared conversation and the seconds they took (the cepstra included when the
    rule needs them and they are not given)."""
    t0 = time.perf_counter()
    if settings.stop == "bic" and cepstra is None:
        if p.cepstra is None:
            p.cepstra = window_cepstra(p.conv.audio, p.regions, p.centres, settings)
        cepstra = p.cepstra
    labels = cluster(p.vectors, settings, cepstra=cepstra)
    turns = turns_from_labels(p.regions, p.centres, labels, settings)
    return turns, time.perf_counter() - t0


def score(p: Prepared, turns: list[Turn]) -> dict[str, Any]:
    duration = len(p.conv.audio) / SAMPLE_RATE
    out: dict[str, Any] = {k: round(v, 4) for k, v in der(p.conv.reference, turns, duration).items()}
    out["speakers_true"] = len(p.conv.speakers)
    out["speakers_found"] = len({t.speaker for t in turns})
    # the voices with a speaker's worth of speech: hmsearch gives a voice heard for less than
    # min_speaker_seconds in all no speaker of its own (it joins its nearest), by design
    said: dict[str, float] = {}
    for r in p.conv.reference:
        said[r.speaker] = said.get(r.speaker, 0.0) + r.end - r.start
    out["speakers_audible"] = int(sum(x >= DiarizeSettings().min_speaker_seconds for x in said.values()))
    return out


def found_voices(p: Prepared, turns: list[Turn]) -> list[str]:
    """Each speaker found, as the reference voices that make up at least a fifth of their speech
    ("espeak_m1+espeak_m3": two voices taken for one)."""
    out = []
    for who in sorted({t.speaker for t in turns}):
        said: dict[str, float] = {}
        for t in turns:
            if t.speaker == who:
                for r in p.conv.reference:
                    both = min(t.end, r.end) - max(t.start, r.start)
                    if both > 0:
                        said[r.speaker] = said.get(r.speaker, 0.0) + both
        total = sum(said.values())
        out.append("+".join(sorted(v for v, x in said.items() if x >= total / 5)) or "(no speech)")
    return sorted(out)


def baselines(p: Prepared) -> dict[str, list[Turn]]:
    return {
        "one speaker": [Turn(a, b, "S1") for a, b in p.regions],
        "new speaker at every pause": [Turn(a, b, f"S{i + 1}") for i, (a, b) in enumerate(p.regions)],
    }


def describe(st: DiarizeSettings) -> dict[str, Any]:
    keys = ("method", "stop", "smooth_windows", "threshold", "separation", "bic_penalty", "min_speaker_seconds")
    return {k: getattr(st, k) for k in keys}


def rule_text(st: DiarizeSettings) -> str:
    if st.stop == "threshold":
        return f"a distance threshold of {st.threshold}"
    if st.stop == "separation":
        return (
            f"the most speakers (up to {st.max_speakers}) whose centroids are all at least {st.separation}x "
            "their spread apart"
        )
    if st.stop == "split":
        return f"threshold {st.threshold}, then clusters split while the halves are {st.separation}x their spread apart"
    if st.stop == "bic":
        return f"threshold {st.threshold}, then clusters split while delta-BIC on MFCCs (penalty {st.bic_penalty}) favours two"
    return f"the best silhouette, at least {st.separation}"


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "der_mean": round(float(np.mean([r["der"] for r in rows])), 4),
        "der_max": round(float(np.max([r["der"] for r in rows])), 4),
        "confusion_mean": round(float(np.mean([r["confusion"] for r in rows])), 4),
        "speaker_count_right": sum(r["speakers_true"] == r["speakers_found"] for r in rows),
        "speaker_count_right_of_audible": int(sum(r["speakers_audible"] == r["speakers_found"] for r in rows)),
        "n": len(rows),
    }


def whisper_seconds(audio: np.ndarray) -> float | None:
    """Whisper base (faster-whisper int8, the offline engine) on the same audio, seconds."""
    try:
        from hmsearch.asr import TranscriberSpec, load_transcriber

        tr = load_transcriber(TranscriberSpec("base", engine="faster-whisper", language="da"))
        t0 = time.perf_counter()
        tr.transcribe(audio)
        return time.perf_counter() - t0
    except Exception as exc:
        log(f"whisper skipped: {exc}")
        return None


def hour(minutes: float) -> None:
    """Cost and peak memory of diarizing ``minutes`` of audio (two LibriVox readers alternating
    every 30 s, tiled): results/diarization_hour.json/.md."""
    from hmsearch.speakers import diarize

    audio = long_audio(minutes)
    diarize(audio[: 30 * SAMPLE_RATE])  # imports, model load and first-call compilation, not timed
    before = peak_rss_mb()
    t0 = time.perf_counter()
    turns = diarize(audio)
    seconds = time.perf_counter() - t0
    audio_minutes = len(audio) / SAMPLE_RATE / 60
    data = {
        "audio_minutes": round(audio_minutes, 1),
        "seconds": round(seconds, 1),
        "seconds_per_audio_minute": round(seconds / audio_minutes, 3),
        "samples_mb": round(audio.nbytes / 2**20, 1),
        "peak_rss_mb_before": round(before, 1),
        "peak_rss_mb_after": round(peak_rss_mb(), 1),
        "speakers_found": len({t.speaker for t in turns}),
        "speakers_true": 2,
        "turns": len(turns),
        "load": load(),
    }
    md = (
        f"# Diarization of {data['audio_minutes']} min\n\n"
        f"{data['seconds']} s ({data['seconds_per_audio_minute']} s per audio minute); peak RSS "
        f"{data['peak_rss_mb_before']} MB before (the samples are {data['samples_mb']} MB) and "
        f"{data['peak_rss_mb_after']} MB after; {data['speakers_found']} speakers found of 2, "
        f"{data['turns']} turns (the audio alternates every 30 s: ~{int(audio_minutes * 2)}). "
        f"Load average {data['load']}.\n\n`PYTHONPATH=src python benchmarks/bench_diarization.py --hour {minutes:g}`"
    )
    write_results("diarization_hour", data, md)


# Host recognition: the dev hosts' episodes tune the match; held aside, other episodes of the
# same hosts and a host never seen in dev are scored once with what dev chose.
HOSTS_DEV = ("librivox_pige", "nst_u0042")
HOSTS_HELD = ("librivox_pige", "nst_u0042", "librivox_aerten")
HOST_SEED_DEV = 500
HOST_SEED_HELD = 2000
HOST_EPISODES = 8
THRESHOLDS = (0.6, 0.7, 0.75, 0.8, 0.85, 0.9)
Episode = tuple[Conversation, list[Turn], dict[str, np.ndarray], Prepared]


def host_episodes(
    pool: dict[str, np.ndarray], settings: DiarizeSettings, minutes: float, host: str, seed0: int
) -> list[Episode]:
    """``HOST_EPISODES`` conversations of ``host`` with guests: diarized, with each speaker's voice."""
    from hmsearch.speakers.voices import speaker_vectors

    out = []
    for i in range(HOST_EPISODES):
        conv = arrange(seed0 + 37 * i + len(host), pool, minutes, host=host)
        p = prepare(conv, settings, tag=f"host-{host}-")
        turns, _ = run(p, settings)
        out.append((conv, turns, speaker_vectors(conv.audio, turns, settings), p))
    return out


def conversation_turns(reference: list[Turn]) -> list[Turn]:
    """The reference as a listener hears turns: a speaker's stretch until someone else speaks (the
    consecutive runs of one speaker joined). The reference itself holds each voice's speech runs,
    pauses cut out, down to single 30 ms frames: scored one by one, a run of no length counted as a
    turn the diarization "missed" (stop 30: every one of the 12 host misses on dev was 0.0-0.9 s)."""
    out: list[Turn] = []
    for r in sorted(reference, key=lambda r: r.start):
        if out and out[-1].speaker == r.speaker:
            out[-1] = Turn(out[-1].start, max(out[-1].end, r.end), r.speaker)
        else:
            out.append(r)
    return out


def host_score(
    host: str, episodes: list[Episode], threshold: float, level: str = "speaker", unit: str = "turn"
) -> dict[str, Any]:
    """The host named in episode 1 (their voice registered), recognised in the others: the host's
    reference turns whose speaker got the host's name, and guests' turns wrongly given it.
    ``level``: "speaker" names a speaker (the mean of their turns, what hmsearch does); "turn" names
    each turn by its own windows' mean (measured beside it). ``unit``: "turn" scores
    conversation_turns, "run" each speech run of the reference (how stop 28/29 counted)."""
    from hmsearch.speakers.assign import speaker_at
    from hmsearch.speakers.voices import recognise

    conv0, turns0, vectors0, _ = episodes[0]
    said: dict[str, float] = {}
    for r in conv0.reference:
        if r.speaker == host:
            who = speaker_at(turns0, r.start, r.end)
            if who:
                said[who] = said.get(who, 0.0) + r.end - r.start
    registry = {host: vectors0[max(said, key=lambda k: said[k])]}
    right = host_turns = wrong = guest_turns = 0
    for conv, turns, vectors, p in episodes[1:]:
        if level == "turn":
            renamed = []
            for k, t in enumerate(turns):
                mine = (p.centres >= t.start) & (p.centres <= t.end)
                v = p.vectors[mine].mean(axis=0) if mine.any() else np.zeros(p.vectors.shape[1])
                sim = float(v @ registry[host]) / max(float(np.linalg.norm(v)), 1e-9)
                renamed.append(Turn(t.start, t.end, host if sim >= threshold else f"T{k}"))
            turns, names = renamed, {host: host}
        else:
            names = recognise(vectors, registry, threshold=threshold)
        for r in conversation_turns(conv.reference) if unit == "turn" else conv.reference:
            named = names.get(speaker_at(turns, r.start, r.end) or "") == host
            if r.speaker == host:
                host_turns += 1
                right += named
            else:
                guest_turns += 1
                wrong += named
    return {"right": right, "host_turns": host_turns, "wrong": wrong, "guest_turns": guest_turns}


def host_rows(scores: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per host and pooled over hosts: shares of host turns named right and guest turns named host."""
    pooled = {k: sum(c[k] for c in scores.values()) for k in ("right", "host_turns", "wrong", "guest_turns")}
    rows = {}
    for host, c in [*scores.items(), ("all", pooled)]:
        rows[host] = {
            "host_turns_named_right": round(c["right"] / max(c["host_turns"], 1), 4),
            "guest_turns_named_host": round(c["wrong"] / max(c["guest_turns"], 1), 4),
            "host_turns": c["host_turns"],
            "guest_turns": c["guest_turns"],
        }
    return rows


def host_check(pool: dict[str, np.ndarray], settings: DiarizeSettings, minutes: float) -> dict[str, Any]:
    """Dev: the similarity threshold with the most host turns named right less guest turns named host
    (pooled over the dev hosts); held aside: that threshold, once."""
    dev_eps = {h: host_episodes(pool, settings, minutes, h, HOST_SEED_DEV) for h in HOSTS_DEV}
    grid = {}
    for th in THRESHOLDS:
        grid[str(th)] = host_rows({h: host_score(h, e, th) for h, e in dev_eps.items()})
        log("dev", th, grid[str(th)]["all"])
    turn_level = {  # measured beside it: each turn named by its own vector
        str(th): host_rows({h: host_score(h, e, th, level="turn") for h, e in dev_eps.items()})["all"]
        for th in THRESHOLDS
    }

    def merit(th: str) -> tuple[float, float]:
        a = grid[th]["all"]
        net = a["host_turns_named_right"] * a["host_turns"] - a["guest_turns_named_host"] * a["guest_turns"]
        return (round(net, 6), -abs(float(th) - 0.8))  # ties: nearest the old default

    chosen = max(grid, key=merit)
    held_eps = {h: host_episodes(pool, settings, minutes, h, HOST_SEED_HELD) for h in HOSTS_HELD}
    held = host_rows({h: host_score(h, e, float(chosen)) for h, e in held_eps.items()})
    log("held aside", chosen, held["all"])
    runs = {  # as stops 28/29 counted: every speech run of the reference a "turn"
        "dev": host_rows({h: host_score(h, e, float(chosen), unit="run") for h, e in dev_eps.items()})["all"],
        "held_aside": host_rows({h: host_score(h, e, float(chosen), unit="run") for h, e in held_eps.items()})["all"],
    }
    return {
        "dev": grid,
        "dev_turn_level": turn_level,
        "chosen_threshold": float(chosen),
        "held_aside": held,
        "speech_runs": runs,
    }


def long_audio(minutes: float) -> np.ndarray:
    """Two LibriVox readers alternating every 30 s, tiled to ``minutes`` (--hour's audio, and the
    split rule's check on long audio)."""
    lv = REAL / "librivox_dansk"
    a = decode_audio(lv / "den_lille_pige_med_svovlstikkerne.mp3")
    b = decode_audio(lv / "prindsessen_paa_ærten.mp3")
    step = 30 * SAMPLE_RATE
    parts, i = [], 0
    while sum(len(p) for p in parts) < minutes * 60 * SAMPLE_RATE:
        src = a if i % 2 == 0 else b
        k = (i // 2) * step % (len(src) - step)
        parts.append(src[k : k + step])
        i += 1
    return np.concatenate(parts)


def bic_check(pool: dict[str, np.ndarray], minutes: float) -> None:
    """The delta-BIC split rule (threshold, then MFCC delta-BIC splits) against hmsearch's default
    threshold rule: the penalty chosen on dev (as the main grid chooses), held aside
    scored once with it, beside the default in the same run: results/diarization_bic.json/.md."""
    base = THRESHOLD
    convs = {s: arrange(s, pool, minutes) for s in itertools.chain(DEV, HELD)}
    prepared = {s: prepare(c, base) for s, c in convs.items()}
    cepstra: dict[int, CepstralStats] = {}
    cepstra_seconds: dict[int, float] = {}
    for s, c in convs.items():
        t0 = time.perf_counter()
        cepstra[s] = window_cepstra(c.audio, prepared[s].regions, prepared[s].centres, base)
        cepstra_seconds[s] = time.perf_counter() - t0
    audio_minutes = {s: len(c.audio) / SAMPLE_RATE / 60 for s, c in convs.items()}
    candidates = [replace(base, stop="bic", bic_penalty=lam) for lam in BIC_PENALTIES]
    grid = [{**describe(base), **summary([score(prepared[s], run(prepared[s], base)[0]) for s in DEV])}]
    log(grid[-1])
    for st in candidates:
        rows = [score(prepared[s], run(prepared[s], st, cepstra[s])[0]) for s in DEV]
        grid.append({**describe(st), **summary(rows)})
        log(grid[-1])
    # the main grid's rule: the most right counts among penalties within a point of the lowest
    # mean DER (then the lower DER, then the lower penalty)
    lowest = min(grid[k + 1]["der_mean"] for k in range(len(candidates)))
    best = max(
        (k for k in range(len(candidates)) if grid[k + 1]["der_mean"] <= lowest + 0.01),
        key=lambda k: (grid[k + 1]["speaker_count_right"], -grid[k + 1]["der_mean"], -candidates[k].bic_penalty),
    )
    chosen = candidates[best]

    def table(seeds: range, st: DiarizeSettings) -> dict[str, Any]:
        per, cost, extra = [], [], []
        for s in seeds:
            cep = cepstra[s] if st.stop == "bic" else None
            turns, t_cluster = run(prepared[s], st, cep)
            t_cep = cepstra_seconds[s] if cep is not None else 0.0
            per.append(
                {
                    "seed": s,
                    "speakers": convs[s].speakers,
                    "found": found_voices(prepared[s], turns),
                    **score(prepared[s], turns),
                }
            )
            cost.append((prepared[s].seconds_vad_embed + t_cep + t_cluster) / audio_minutes[s])
            extra.append((t_cep + t_cluster) / audio_minutes[s])
        return {
            "diarization": summary(per),
            "per_conversation": per,
            "seconds_per_audio_minute": round(float(np.median(cost)), 3),
            "cepstra_and_clustering_seconds_per_audio_minute": round(float(np.median(extra)), 4),
        }

    results = {
        part: {"default": table(seeds, base), "bic": table(seeds, chosen)}
        for part, seeds in (("dev", DEV), ("held aside", HELD))
    }
    log("held aside", {k: v["diarization"] for k, v in results["held aside"].items()})

    # Long audio: does the split rule cut one voice heard for long (delta-BIC grows with the frames)?
    from hmsearch.speakers import diarize

    long_minutes = 60.0
    audio = long_audio(long_minutes)
    found = {}
    for name, st in (("default", base), ("bic", chosen)):
        t0 = time.perf_counter()
        found[name] = {
            "speakers_found": len({t.speaker for t in diarize(audio, st)}),
            "seconds": round(time.perf_counter() - t0, 1),
        }
    log("long audio", found)

    data = {
        "chosen": describe(chosen),
        "dev_grid": grid,
        **{part.replace(" ", "_"): r for part, r in results.items()},
        "long_audio": {"minutes": long_minutes, "speakers_true": 2, **found},
        "load": load(),
    }
    dv, hd = results["dev"], results["held aside"]
    summary_text = (
        f"Result: chosen on dev (penalty {chosen.bic_penalty}), the split rule has a mean DER of "
        f"{dv['bic']['diarization']['der_mean']:.1%} against the default's {dv['default']['diarization']['der_mean']:.1%} "
        f"and the right speaker count in {dv['bic']['diarization']['speaker_count_right']} of {len(DEV)} against "
        f"{dv['default']['diarization']['speaker_count_right']}; held aside, scored once, "
        f"{hd['bic']['diarization']['der_mean']:.1%} against {hd['default']['diarization']['der_mean']:.1%} and "
        f"{hd['bic']['diarization']['speaker_count_right']} of {len(HELD)} against "
        f"{hd['default']['diarization']['speaker_count_right']}. Cost after the speaker vectors: "
        f"{hd['bic']['cepstra_and_clustering_seconds_per_audio_minute']} s per audio minute against "
        f"{hd['default']['cepstra_and_clustering_seconds_per_audio_minute']} s (the MFCCs come from the "
        "encoder's own mel frames, recomputed). Host recognition with the rule: "
        "`PYTHONPATH=src python benchmarks/bench_diarization.py --host --bic` (results/diarization_host_bic.md)."
    )
    lines = [
        "# Speaker turns: a delta-BIC split rule on MFCCs",
        "",
        f"The conversations of bench_diarization.py ({len(DEV)} dev + {len(HELD)} held aside, ~{minutes} min, 2-4 voices). "
        f"Rule: average-linkage threshold {base.threshold} on window vectors averaged {base.smooth_windows} at a time (the default), "
        "then each cluster split in two (k-means on the vectors) while a delta-BIC test on the halves' MFCC frames "
        "(c1-c19, full covariance) favours two Gaussians with penalty lambda and both halves keep "
        f"{base.min_speaker_seconds} s. `PYTHONPATH=src python benchmarks/bench_diarization.py --bic`",
        "",
        summary_text,
        "",
        "Dev grid:",
        "",
        "| rule | dev DER mean | DER max | dev right speaker count |",
        "|---|---|---|---|",
        *(
            f"| {rule_text(st)} | {g['der_mean']:.1%} | {g['der_max']:.1%} | {g['speaker_count_right']}/{g['n']} |"
            for st, g in zip([base, *candidates], grid)
        ),
        "",
        f"Chosen on dev: penalty {chosen.bic_penalty}. Held aside scored once with it, beside the default:",
        "",
        "| part | rule | DER mean | DER max | confusion | right speaker count | right count of voices with >= 10 s | s per audio minute |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for part, r in results.items():
        for name, res in r.items():
            d = res["diarization"]
            lines.append(
                f"| {part} | {name} | {d['der_mean']:.1%} | {d['der_max']:.1%} | {d['confusion_mean']:.1%} | "
                f"{d['speaker_count_right']}/{d['n']} | {d['speaker_count_right_of_audible']}/{d['n']} | "
                f"{res['seconds_per_audio_minute']} "
                f"({res['cepstra_and_clustering_seconds_per_audio_minute']} after the vectors) |"
            )
    lines += [
        "",
        "Held-aside conversations:",
        "",
        "| seed | voices | default DER | found/true | default's speakers | bic DER | found/true | bic's speakers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for a, b in zip(
        results["held aside"]["default"]["per_conversation"], results["held aside"]["bic"]["per_conversation"]
    ):
        lines.append(
            f"| {a['seed']} | {', '.join(a['speakers'])} | {a['der']:.1%} | {a['speakers_found']}/{a['speakers_true']} | "
            f"{'; '.join(a['found'])} | {b['der']:.1%} | {b['speakers_found']}/{b['speakers_true']} | {'; '.join(b['found'])} |"
        )
    lines += [
        "",
        f"Long audio ({long_minutes:g} min, two LibriVox readers alternating every 30 s): default "
        f"{found['default']['speakers_found']} speakers, bic {found['bic']['speakers_found']} (of 2).",
    ]
    write_results("diarization_bic", data, "\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", action="store_true", help="only the host-recognition check")
    ap.add_argument("--hour", type=float, default=None, metavar="MINUTES", help="only the long-audio cost and memory")
    ap.add_argument(
        "--bic",
        action="store_true",
        help="only the delta-BIC split rule against the default (with --host: host check with it)",
    )
    ap.add_argument("--whisper", action="store_true", help="time Whisper base on the first held-aside conversation")
    ap.add_argument("--minutes", type=float, default=2.5)
    ap.add_argument("--cache", type=Path, default=None, help="keep VAD regions and window vectors here between runs")
    args = ap.parse_args()
    global CACHE
    CACHE = args.cache
    if not REAL.is_dir():
        print(f"skip: {REAL} is absent", file=sys.stderr)
        return
    if args.hour:
        hour(args.hour)
        return
    with tempfile.TemporaryDirectory() as tmp:
        pool = voices(Path(tmp))
    base = THRESHOLD
    if args.bic and not args.host:
        bic_check(pool, args.minutes)
        return
    if args.host:
        if args.bic:
            base = replace(base, stop="bic")
        res = host_check(pool, base, args.minutes)
        md = [
            "# Host recognition across episodes",
            "",
            f"The host named in episode 1 of {HOST_EPISODES}, recognised in the other {HOST_EPISODES - 1} "
            f"(conversations of 2-4 voices, ~{args.minutes} min): the share of the host's turns "
            "whose speaker gets the host's name, and of guests' turns wrongly given it. A turn is a "
            "speaker's stretch until another speaks (the reference's speech runs of one speaker joined; "
            "stops 28/29 scored each speech run, down to 0.0 s blips: below). Dev: hosts "
            f"{', '.join(HOSTS_DEV)} (episode seeds from {HOST_SEED_DEV}), the threshold chosen there; held "
            f"aside: other episodes of them and a host not seen in dev ({', '.join(HOSTS_HELD)}, seeds "
            f"from {HOST_SEED_HELD}). `PYTHONPATH=src python benchmarks/bench_diarization.py --host`",
            "",
            "| part | host | similarity threshold | host turns named right | guest turns named host |",
            "|---|---|---|---|---|",
        ]
        for th, rows in res["dev"].items():
            for host, r in rows.items():
                md.append(
                    f"| dev | {host} | {th} | {r['host_turns_named_right']:.1%} of {r['host_turns']} | {r['guest_turns_named_host']:.1%} of {r['guest_turns']} |"
                )
        for host, r in res["held_aside"].items():
            md.append(
                f"| held aside | {host} | {res['chosen_threshold']} | {r['host_turns_named_right']:.1%} of {r['host_turns']} | {r['guest_turns_named_host']:.1%} of {r['guest_turns']} |"
            )
        md += [
            "",
            "Measured beside it on dev, each turn named by the mean of its own windows (not its speaker's):",
            "",
            "| similarity threshold | host turns named right | guest turns named host |",
            "|---|---|---|",
            *(
                f"| {th} | {r['host_turns_named_right']:.1%} | {r['guest_turns_named_host']:.1%} |"
                for th, r in res["dev_turn_level"].items()
            ),
        ]
        md += [
            "",
            f"Scored by speech runs instead (how stops 28/29 counted), threshold {res['chosen_threshold']}:",
            "",
            "| part | host runs named right | guest runs named host |",
            "|---|---|---|",
            *(
                f"| {part} | {r['host_turns_named_right']:.1%} of {r['host_turns']} | "
                f"{r['guest_turns_named_host']:.1%} of {r['guest_turns']} |"
                for part, r in res["speech_runs"].items()
            ),
        ]
        if args.bic:
            md[0] += f" (rule: {rule_text(base)})"
        write_results(
            "diarization_host_bic" if args.bic else "diarization_host", {**res, "load": load()}, "\n".join(md)
        )
        return
    convs = {s: arrange(s, pool, args.minutes) for s in itertools.chain(DEV, HELD)}
    prepared = {s: prepare(c, base) for s, c in convs.items()}
    audio_minutes = {s: len(c.audio) / SAMPLE_RATE / 60 for s, c in convs.items()}
    log("prepared", {s: round(p.seconds_vad_embed, 2) for s, p in prepared.items()})

    # Dev grid: method x stopping rule x smoothing x smallest speaker.
    grid: list[dict[str, Any]] = []
    # (Ward linkage scored well on short conversations, but its merge distance grows with cluster
    # size, so a threshold tuned on 3-minute conversations would not carry to an hour: left out.
    # A smallest speaker of 6 s was measured too: one more right count on dev with the separation
    # rule, but it splits a host heard across recording sessions: the dev host episodes of --host
    # named 88.7 % of the host's turns against 94.4 % at 10 s.)
    candidates = (
        [replace(base, method="spectral", smooth_windows=w) for w in (1, 3)]
        + [
            replace(base, stop="threshold", smooth_windows=w, threshold=t, min_speaker_seconds=m)
            for w in (1, 3, 5)
            for t in (0.2, 0.25, 0.3, 0.35, 0.4)
            for m in (4.0, 10.0)
        ]
        + [
            replace(base, stop="separation", smooth_windows=w, separation=r, min_speaker_seconds=10.0)
            for w in (3, 5, 7)
            for r in (1.5, 1.75, 2.0, 2.25, 2.5)
        ]
        + [
            replace(base, stop="split", smooth_windows=3, threshold=0.25, separation=r, min_speaker_seconds=10.0)
            for r in (1.1, 1.3, 1.5)
        ]
        + [replace(base, stop="silhouette", smooth_windows=w, separation=0.1) for w in (3, 5)]
        + [replace(base, stop="bic", smooth_windows=3, threshold=0.25, bic_penalty=lam) for lam in BIC_PENALTIES]
    )
    for st in candidates:
        rows = [score(prepared[s], run(prepared[s], st)[0]) for s in DEV]
        grid.append({**describe(st), **summary(rows)})
        log(grid[-1])
    agg = [k for k, g in enumerate(grid) if g["method"] == "agglomerative"]
    # The most right speaker counts among settings within a point of the lowest mean DER (DER alone
    # prefers a spare speaker that takes a few seconds over a speaker merged away).
    lowest = min(grid[k]["der_mean"] for k in agg)
    best = max(
        (k for k in agg if grid[k]["der_mean"] <= lowest + 0.01),
        key=lambda k: (grid[k]["speaker_count_right"], -grid[k]["der_mean"]),
    )
    chosen = candidates[best]
    spectral_dev = [g for g in grid if g["method"] == "spectral"]
    spectral_best = min(spectral_dev, key=lambda g: g["der_mean"])
    rules = {}  # the best dev setting of each stopping rule, by the same order
    for g in grid:
        rule = g["method"] if g["method"] == "spectral" else g["stop"]
        if rule not in rules or (g["speaker_count_right"], -g["der_mean"]) > (
            rules[rule]["speaker_count_right"],
            -rules[rule]["der_mean"],
        ):
            rules[rule] = g

    # Held-aside check, once, with the chosen settings; baselines on every arrangement.
    def table(seeds: range, st: DiarizeSettings) -> dict[str, Any]:
        per: list[dict[str, Any]] = []
        base_rows: dict[str, list[dict[str, Any]]] = {}
        cost = []
        for s in seeds:
            turns, t_cluster = run(prepared[s], st)
            row = {
                "seed": s,
                "speakers": convs[s].speakers,
                "minutes": round(audio_minutes[s], 2),
                **score(prepared[s], turns),
            }
            per.append(row)
            cost.append((prepared[s].seconds_vad_embed + t_cluster) / audio_minutes[s])
            for name, hyp in baselines(prepared[s]).items():
                base_rows.setdefault(name, []).append(score(prepared[s], hyp))
        return {
            "diarization": summary(per),
            "baselines": {k: summary(v) for k, v in base_rows.items()},
            "per_conversation": per,
            "seconds_per_audio_minute": round(float(np.median(cost)), 3),
        }

    dev = table(DEV, chosen)
    held = table(HELD, chosen)
    default = {"dev": table(DEV, base)["diarization"], "held aside": table(HELD, base)["diarization"]}
    held_spectral = table(HELD, replace(base, method="spectral", smooth_windows=spectral_best["smooth_windows"]))
    whisper = None
    if args.whisper:
        s0 = HELD[0]
        secs = whisper_seconds(convs[s0].audio)
        if secs is not None:
            whisper = {
                "conversation": s0,
                "audio_minutes": round(audio_minutes[s0], 2),
                "whisper_base_ct2_int8_seconds": round(secs, 2),
                "diarization_seconds": round(held["seconds_per_audio_minute"] * audio_minutes[s0], 2),
            }
            whisper["diarization_share_of_whisper"] = round(whisper["diarization_seconds"] / secs, 3)
    data = {
        "chosen": describe(chosen),
        "dev_grid": grid,
        "dev_best_per_rule": rules,
        "dev": dev,
        "held_aside": held,
        "held_aside_spectral": held_spectral["diarization"],
        "hmsearch_default": {**describe(base), **default},
        "spectral_dev": spectral_dev,
        "whisper": whisper,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "load": load(),
    }
    lines = [
        "# Speaker turns (diarization)",
        "",
        f"Conversations of {len(DEV)} dev + {len(HELD)} held-aside arrangements, ~{args.minutes} min each, 2-4 voices",
        "(NST, LibriVox, espeak-ng); DER with a 0.25 s collar, overlap scored. `PYTHONPATH=src python benchmarks/bench_diarization.py`",
        "",
        f"Chosen on dev: agglomerative (cosine, average linkage) over window vectors averaged "
        f"{chosen.smooth_windows} at a time, stopping rule {rule_text(chosen)}, smallest speaker "
        f"{chosen.min_speaker_seconds} s. spectralcluster (ICASSP 2018 refinement, automatic count) "
        f"measured beside it: best dev DER {spectral_best['der_mean']:.1%}.",
        "",
        "Best dev setting of each stopping rule (most right counts, then lowest DER):",
        "",
        "| rule | setting | dev DER mean | dev right speaker count |",
        "|---|---|---|---|",
        *(
            f"| {rule} | smooth {g['smooth_windows']}, threshold {g['threshold']}, separation {g['separation']}, "
            + (f"penalty {g['bic_penalty']}, " if rule == "bic" else "")
            + f"smallest {g['min_speaker_seconds']} s | {g['der_mean']:.1%} | {g['speaker_count_right']}/{g['n']} |"
            for rule, g in rules.items()
        ),
        "",
        "| part | system | DER mean | DER max | confusion | right speaker count |",
        "|---|---|---|---|---|---|",
    ]
    for part, res in (("dev", dev), ("held aside", held)):
        d = res["diarization"]
        lines.append(
            f"| {part} | resemblyzer + agglomerative | {d['der_mean']:.1%} | {d['der_max']:.1%} | {d['confusion_mean']:.1%} | {d['speaker_count_right']}/{d['n']} "
            f"({d['speaker_count_right_of_audible']} of the voices with >= 10 s) |"
        )
        for name, b in res["baselines"].items():
            lines.append(
                f"| {part} | {name} | {b['der_mean']:.1%} | {b['der_max']:.1%} | {b['confusion_mean']:.1%} | {b['speaker_count_right']}/{b['n']} |"
            )
    for part, d in default.items():
        lines.append(
            f"| {part} | hmsearch's default ({rule_text(base)}, smooth {base.smooth_windows}) | {d['der_mean']:.1%} | {d['der_max']:.1%} | {d['confusion_mean']:.1%} | {d['speaker_count_right']}/{d['n']} |"
        )
    d = held_spectral["diarization"]
    lines.append(
        f"| held aside | resemblyzer + spectralcluster | {d['der_mean']:.1%} | {d['der_max']:.1%} | {d['confusion_mean']:.1%} | {d['speaker_count_right']}/{d['n']} |"
    )
    lines += [
        "",
        f"Cost: {held['seconds_per_audio_minute']} s per minute of audio (VAD + embeddings + clustering, median).",
    ]
    if whisper:
        lines.append(
            f"Whisper base (faster-whisper int8) on the same {whisper['audio_minutes']} min: {whisper['whisper_base_ct2_int8_seconds']} s; diarization {whisper['diarization_seconds']} s = {whisper['diarization_share_of_whisper']:.0%} of it."
        )
    lines += [
        "",
        "Held-aside conversations:",
        "",
        "| seed | voices | min | DER | speakers found/true |",
        "|---|---|---|---|---|",
    ]
    for r in held["per_conversation"]:
        lines.append(
            f"| {r['seed']} | {', '.join(r['speakers'])} | {r['minutes']} | {r['der']:.1%} | {r['speakers_found']}/{r['speakers_true']} |"
        )
    write_results("diarization", data, "\n".join(lines))


if __name__ == "__main__":
    main()
