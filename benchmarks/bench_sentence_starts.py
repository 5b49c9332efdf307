"""Where Whisper base says each sentence starts, against exact times: synthetic speech, both engines.

Two timed datasets, each an audio file with a Whisper-JSON reference whose sentence times are exact
(the sentences are placed by counting samples):
- ``sample``: the bundled Danish sample episode (audio/, espeak-ng voice da; scripts/make_sample.py);
- ``english``: the sentences below (original text), espeak-ng voice en, laid out the same way.
`hmsearch eval-asr` scores them: a sentence's start error is the first heard word's start minus
the true start (median and 90th percentile of |error|), alongside WER. Default decode settings,
the language forced (base detects espeak's Danish as other languages).

    .venv/bin/python benchmarks/bench_sentence_starts.py                          # both sets, both engines
    .venv/bin/python benchmarks/bench_sentence_starts.py --sets english --engines faster-whisper
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench_util import REPO, RESULTS, WORK, eval_asr, load, write_results

ENGLISH = (
    "Welcome back to the show about marketing for small companies.",
    "Today we look at how a local bakery found its first thousand customers online.",
    "The owner started with a simple newsletter sent every Friday morning.",
    "Each letter had one story, one photo and one offer.",
    "After three months, half of the readers opened every single issue.",
    "Social media came later, and it was mostly short videos from the kitchen.",
    "People liked seeing the bread come out of the oven at five in the morning.",
    "The lesson is that a small business should pick one channel and do it well.",
    "Our guest today runs an agency that helps shops write better product pages.",
    "She says most pages are too long and answer questions nobody asked.",
    "A good page says what the product is, who it is for and what it costs.",
    "Reviews from real customers matter more than clever slogans.",
    "We also talked about prices, and why a discount can hurt a brand.",
    "Finally, she shared three tools she uses to plan a month of content.",
    "Thank you for listening, and see you next week.",
)
PAUSE, LEAD, TAIL = 0.6, 0.5, 1.0  # seconds, as scripts/make_sample.py lays its sentences out


def build_english(out: Path) -> Path:
    """<out>/english.wav + english.json (one segment per sentence, exact start and end)."""
    import numpy as np

    sys.path.insert(0, str(REPO / "src"))
    from hmsearch.audio import SAMPLE_RATE, decode_audio
    from hmsearch.formats import write_transcript
    from hmsearch.types import Segment, Transcript

    if (out / "english.json").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SystemExit("espeak-ng is not installed (apt-get install espeak-ng)")
    parts, segments, t = [np.zeros(int(LEAD * SAMPLE_RATE), np.float32)], [], LEAD
    for i, text in enumerate(ENGLISH):
        wav = out / f".s{i}.wav"
        subprocess.run([exe, "-v", "en", "-s", "160", "-w", str(wav), text], check=True, capture_output=True)
        audio = decode_audio(wav)
        wav.unlink()
        voiced = np.nonzero(np.abs(audio) > 0.01 * np.abs(audio).max())[0]
        audio = audio[voiced[0] : voiced[-1] + 1]  # espeak's own silence trimmed: the times are the speech's
        segments.append(Segment(round(t, 3), round(t + len(audio) / SAMPLE_RATE, 3), text))
        parts += [audio, np.zeros(int(PAUSE * SAMPLE_RATE), np.float32)]
        t += len(audio) / SAMPLE_RATE + PAUSE
    parts.append(np.zeros(int(TAIL * SAMPLE_RATE), np.float32))
    import wave

    with wave.open(str(out / "english.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes((np.clip(np.concatenate(parts), -1, 1) * 32767).astype("<i2").tobytes())
    write_transcript(Transcript(tuple(segments), language="en", source="espeak-ng"), out / "english.json", "json")
    return out


def run(dataset: Path, engine: str, language: str) -> dict[str, object]:
    start = time.perf_counter()
    flags = ("--whisper-model", "base", "--whisper-engine", engine, "--language", language)
    report = eval_asr(dataset, WORK / "sentence_starts_index", *flags)
    return {
        "audio_seconds": report["audio_seconds"],
        "wer": round(report["wer"], 4),
        "rtf": round(report["rtf"], 3),
        **(report["sentence_start"] or {}),
        "wall_seconds": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="english,sample")
    ap.add_argument("--engines", default="faster-whisper,openai")
    args = ap.parse_args()
    sets = {"english": (build_english(WORK / "timed_english"), "en"), "sample": (REPO / "audio", "da")}
    rows = []
    for name in args.sets.split(","):
        folder, language = sets[name]
        for engine in args.engines.split(","):
            before = load()
            row = {"set": name, "engine": engine, "language": language, **run(folder, engine, language)}
            row["load_before"] = before
            rows.append(row)
            print(json.dumps(row), flush=True)
    # rows of an earlier run for the other sets and engines are kept (one run per engine is long)
    path = RESULTS / "sentence_starts.json"
    if path.is_file():
        done = {(r["set"], r["engine"]) for r in rows}
        rows = [r for r in json.loads(path.read_text())["rows"] if (r["set"], r["engine"]) not in done] + rows
    lines = [
        "| set | engine | audio | WER | sentences heard | median abs. start error | 90th percentile | mean (signed) | load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['set']} ({r['language']}) | {r['engine']} | {r['audio_seconds']:.0f} s | {r['wer']:.1%} | "
            f"{r['sentences'] - r['missed']}/{r['sentences']} | {r['median_abs']} s | {r['p90_abs']} s | "
            f"{r['mean_signed']} s | {r['load_before'][0]} |"
        )
    write_results("sentence_starts", {"rows": rows}, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
