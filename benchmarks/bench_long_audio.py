"""An hour of real Danish speech through Whisper base: peak memory, speed, repetition loops.

The hour is the two LibriVox readings in ../shared/data/real_danish/librivox_dansk joined and
repeated to >= 60 minutes (an MP3 in benchmarks/.work/long_audio/, with the texts repeated the same
way as its approximate reference, so `hmsearch eval-asr` reads it like the LibriVox folder).

Parts, each in its own process (peak RSS is a process's high-water mark):
- ``frontend-whole``: what openai-whisper's ``transcribe()`` does before decoding when it is handed
  the whole hour (hmsearch before blocks): decode, load base, log-Mel of all of it at once;
- ``frontend-blocks``: the same with hmsearch's blocks (``hmsearch.asr.block_bounds``): the log-Mel
  of one block at a time;
- ``faster-whisper``: the whole hour transcribed end to end by `hmsearch eval-asr` with the default
  decode settings (faster-whisper int8, beam 5, VAD; blocks of 4 minutes): peak RSS, real-time
  factor, repetition loops, WER against the approximate reference;
- ``bare``: the same hour through faster-whisper's own ``WhisperModel.transcribe`` called directly
  (no hmsearch: no blocks, no progress, no conversion), same packaged weights, int8, threads,
  language and decode settings as the default: the ``faster-whisper`` part's time over this one is
  what hmsearch adds (issue 22: ratio <= 1.1). Both time the transcription alone (after decoding the
  audio and loading the model), CPU from the process's own clock.
- ``openai``: the same with openai-whisper fp32 (slow on 2 cores: ~4× real time; opt-in).

    .venv/bin/python benchmarks/bench_long_audio.py                  # frontends + faster-whisper
    .venv/bin/python benchmarks/bench_long_audio.py --parts faster-whisper,bare --language da
    .venv/bin/python benchmarks/bench_long_audio.py --parts openai   # add the openai-whisper hour
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench_util import PY, REPO, RESULTS, SHARED, WORK, eval_asr, load, write_results

LIBRIVOX = SHARED / "real_danish" / "librivox_dansk"
OUT = WORK / "long_audio"
HOUR = 3600.0


def build_hour(out: Path = OUT) -> Path:
    """<out>/hour.mp3 (+ hour.txt, all.csv): the readings repeated to at least an hour."""
    import av
    import numpy as np

    sys.path.insert(0, str(REPO / "src"))
    from hmsearch.audio import SAMPLE_RATE, decode_audio

    mp3 = out / "hour.mp3"
    if mp3.is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    readings = sorted(LIBRIVOX.glob("*.mp3"))
    audio = [decode_audio(p) for p in readings]
    texts = [p.with_suffix(".txt").read_text(encoding="utf-8") for p in readings]
    total = sum(len(a) for a in audio) / SAMPLE_RATE
    repeats = int(np.ceil(HOUR / total))
    samples = np.concatenate(audio * repeats)
    tmp = out / "hour.tmp.mp3"
    with av.open(str(tmp), "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=SAMPLE_RATE, layout="mono")
        stream.bit_rate = 64_000
        step = SAMPLE_RATE * 10
        for i in range(0, len(samples), step):
            frame = av.AudioFrame.from_ndarray(
                samples[None, i : i + step].astype(np.float32), format="flt", layout="mono"
            )
            frame.sample_rate = SAMPLE_RATE
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    (out / "hour.txt").write_text("\n".join(texts * repeats), encoding="utf-8")
    (out / "all.csv").write_text((LIBRIVOX / "all.csv").read_text(encoding="utf-8"), encoding="utf-8")
    os.replace(tmp, mp3)
    return out


FRONTEND = r"""
import sys, time
from pathlib import Path
sys.path.insert(0, {src!r})
import numpy as np, torch, whisper
from hmsearch.asr import block_bounds, openai as engine
from hmsearch.audio import decode_audio
torch.set_num_threads(1)
model = engine.load(engine.resolve("base"))
samples = decode_audio(Path({mp3!r}))
t = time.perf_counter()
if {whole!r}:
    mel = whisper.log_mel_spectrogram(samples, model.dims.n_mels, padding=whisper.audio.N_SAMPLES)
    frames = mel.shape[-1]
else:
    frames = 0
    for a, b in block_bounds(samples, block={block!r}):
        mel = whisper.log_mel_spectrogram(samples[a:b], model.dims.n_mels, padding=whisper.audio.N_SAMPLES)
        frames += mel.shape[-1]
        del mel
print(frames, time.perf_counter() - t, len(samples) / 16000)
"""


def frontend(whole: bool, folder: Path, block: float) -> dict[str, object]:
    code = FRONTEND.format(src=str(REPO / "src"), mp3=str(folder / "hour.mp3"), whole=whole, block=block)
    # each part in a fresh interpreter so RUSAGE_CHILDREN's maximum is this child's own
    wrapper = (
        "import resource, subprocess, sys\n"
        f"p = subprocess.run([sys.executable, '-c', {code!r}], capture_output=True, text=True)\n"
        "sys.stderr.write(p.stderr)\n"
        "print(p.stdout.strip(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)\n"
        "sys.exit(p.returncode)\n"
    )
    start = time.perf_counter()
    res = subprocess.run([PY, "-c", wrapper], capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "frontend failed")
    frames, mel_seconds, audio_seconds, peak = res.stdout.split()
    return {
        "part": "frontend-whole" if whole else f"frontend-blocks ({block:.0f} s)",
        "audio_seconds": round(float(audio_seconds), 1),
        "mel_frames": int(frames),
        "mel_seconds": round(float(mel_seconds), 2),
        "peak_rss_mb": round(float(peak)),
        "wall_seconds": round(time.perf_counter() - start, 1),
    }


BARE = r"""
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, {src!r})
from faster_whisper import WhisperModel
from hmsearch.asr.ctranslate2 import default_threads
from hmsearch.asr.options import DecodeOptions
from hmsearch.asr.packaged import packaged_ct2_model
from hmsearch.audio import decode_audio
model = WhisperModel(str(packaged_ct2_model("base")), device="cpu", compute_type="int8", cpu_threads=default_threads())
samples = decode_audio(Path({mp3!r}))
clock, cpu = time.perf_counter(), time.process_time()
segments, info = model.transcribe(samples, language={language!r}, task="transcribe", word_timestamps=True,
                                  **DecodeOptions().faster_whisper_kwargs())
words = sum(len(s.words or []) for s in segments)  # a generator: decoding happens here
seconds, cpu = time.perf_counter() - clock, time.process_time() - cpu
audio = len(samples) / 16000
print(json.dumps({{"audio_seconds": audio, "seconds": seconds, "cpu": cpu, "words": words, "language": info.language,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def bare(folder: Path, language: str | None) -> dict[str, object]:
    """faster-whisper on its own over the hour, with hmsearch's default settings (see the docstring)."""
    code = BARE.format(src=str(REPO / "src"), mp3=str(folder / "hour.mp3"), language=language)
    start = time.perf_counter()
    res = subprocess.run([PY, "-c", code], capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "bare faster-whisper failed")
    got = json.loads(res.stdout.strip().splitlines()[-1])
    return {
        "part": "bare faster-whisper",
        "audio_seconds": round(got["audio_seconds"], 1),
        "peak_rss_mb": round(got["peak_rss_mb"]),
        "rtf": round(got["seconds"] / got["audio_seconds"], 3),
        "cpu_rtf": round(got["cpu"] / got["audio_seconds"], 3),
        "words": got["words"],
        "language": got["language"],
        "wall_seconds": round(time.perf_counter() - start, 1),
    }


def full(engine: str, folder: Path, language: str | None = None) -> dict[str, object]:
    start = time.perf_counter()
    flags = ["--language", language] if language else []
    report = eval_asr(folder, folder / "index", "--whisper-model", "base", "--whisper-engine", engine, *flags)
    (RESULTS / f"long_audio_{engine}.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    return {
        "part": engine,
        "audio_seconds": report["audio_seconds"],
        "peak_rss_mb": report["peak_rss_mb"],
        "rtf": round(report["rtf"], 3),
        "cpu_rtf": round(report["cpu_rtf"], 3),
        "loops": report["loops"],
        "wer": round(report["wer"], 4),
        "wer_trimmed": round(report["wer_trimmed"], 4) if report["wer_trimmed"] is not None else None,
        "decode": report["spec"]["decode"],
        "load_average": report["load_average"],
        "wall_seconds": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="frontend-whole,frontend-blocks,faster-whisper")
    ap.add_argument("--block", type=float, default=None, help="block seconds [default: hmsearch's BLOCK_SECONDS]")
    ap.add_argument("--language", default=None, help="language for the full parts (bare needs one: default da)")
    args = ap.parse_args()
    if not LIBRIVOX.is_dir():
        raise SystemExit(f"{LIBRIVOX} not present: the LibriVox readings live in ../shared/data")
    folder = build_hour()
    sys.path.insert(0, str(REPO / "src"))
    from hmsearch.asr import BLOCK_SECONDS

    block = args.block or BLOCK_SECONDS
    rows = []
    for part in args.parts.split(","):
        before = load()
        if part.startswith("frontend"):
            row = frontend(part == "frontend-whole", folder, block)
        elif part == "bare":
            row = bare(folder, args.language or "da")
        else:
            row = full(part, folder, args.language)
        row["load_before"] = before
        rows.append(row)
        print(json.dumps(row), flush=True)
    lines = [
        "| part | audio | peak RSS | log-Mel time | RTF (wall / CPU) | loops | WER (trimmed) | load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['part']} | {r['audio_seconds'] / 60:.1f} min | {r['peak_rss_mb']:,.0f} MB | "
            f"{r.get('mel_seconds', '')} | {r.get('rtf', '')} / {r.get('cpu_rtf', '')} | {r.get('loops', '')} | "
            f"{r.get('wer', '')} ({r.get('wer_trimmed', '')}) | {r['load_before'][0]} |"
        )
    timed = {r["part"]: r for r in rows if "cpu_rtf" in r}
    if "faster-whisper" in timed and "bare faster-whisper" in timed:
        ours, theirs = timed["faster-whisper"], timed["bare faster-whisper"]
        lines.append(
            f"\nhmsearch / bare faster-whisper, same run: wall {ours['rtf'] / theirs['rtf']:.3f}, "
            f"CPU {ours['cpu_rtf'] / theirs['cpu_rtf']:.3f}"
        )
    write_results("long_audio", {"rows": rows}, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
