"""Whisper engines on the CPU: openai-whisper (torch fp32) against faster-whisper (CTranslate2 int8, fp32).

    .venv/bin/python benchmarks/bench_whisper_engines.py                    # base, 300 s of audio
    .venv/bin/python benchmarks/bench_whisper_engines.py --sizes base,small --seconds 300

No Whisper weights can be downloaded here, so both engines get the SAME random weights at a real
size: an openai-whisper checkpoint (seed 0) and its conversion by hmsearch.asr.convert (int8 and
float32 CTranslate2 directories). Random weights transcribe nothing sensible, so every speed is
per unit of work: per 30 s encoder window and per generated token, plus an end-to-end run whose
time is divided by the windows decoded and tokens generated.

Each engine/precision runs in its own subprocess (its own peak RSS), 2 threads:

  encoder   one 30 s log-mel window (the same array for both engines) -> encoder output; median of 3
  decoder   greedy decoding from a fixed encoder output, all special tokens suppressed so that
            text tokens are generated until the length limit; the per-token cost is the slope
            between a short and a long run (prefill and cross-attention setup cancel out)
  e2e       the whole pipeline as hmsearch runs it with --greedy: the audio (hm-sample-001.mp3
            decoded with hmsearch.audio.decode_audio, looped to --seconds), temperature 0,
            condition_on_previous_text False and the other anti-loop options (asr.DecodeOptions), word timestamps,
            language detection; counted: encoder passes (openai-whisper runs the encoder again for
            word alignment, faster-whisper reuses its output), decoder calls (one per 30 s window
            decoded; the anti-hallucination seeks make the count differ between engines), tokens
            generated, words
  rss       peak resident memory of the subprocess (VmHWM), model loaded and all runs done
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_util import REPO, WORK, load, log, median, peak_rss_mb, write_results

SIZES = {  # n_state, n_head, n_layer (encoder = decoder), as openai-whisper's official models
    "tiny": (384, 6, 4),
    "base": (512, 8, 6),
    "small": (768, 12, 12),
    "medium": (1024, 16, 24),
}
ENGINES = (("openai-whisper", "float32"), ("faster-whisper", "int8"), ("faster-whisper", "float32"))
SAMPLE = REPO / "audio" / "hm-sample-001.mp3"
THREADS = 2
PROMPT = [50258, 50285, 50359, 50363]  # <|startoftranscript|><|da|><|transcribe|><|notimestamps|>
EOT = 50257
N_SHORT, N_LONG = 24, 200  # decoder runs: tokens requested


def make_checkpoint(size: str, work: Path) -> Path:
    import torch
    from whisper.model import ModelDimensions, Whisper

    path = work / f"{size}-random.pt"
    if path.is_file():
        return path
    n_state, n_head, n_layer = SIZES[size]
    torch.manual_seed(0)
    dims = ModelDimensions(
        n_mels=80,
        n_audio_ctx=1500,
        n_audio_state=n_state,
        n_audio_head=n_head,
        n_audio_layer=n_layer,
        n_vocab=51865,
        n_text_ctx=448,
        n_text_state=n_state,
        n_text_head=n_head,
        n_text_layer=n_layer,
    )
    model = Whisper(dims)
    with torch.no_grad():
        model.decoder.positional_embedding.normal_(0, 0.02)
    torch.save({"dims": asdict(dims), "model_state_dict": model.state_dict()}, path)
    return path


def prepare(sizes: list[str], seconds: float, work: Path) -> dict[str, Any]:
    from hmsearch.asr.convert import convert_openai_checkpoint
    from hmsearch.audio import decode_audio

    work.mkdir(parents=True, exist_ok=True)
    audio = work / f"audio-{int(seconds)}s.npy"
    if not audio.is_file():
        one = decode_audio(SAMPLE)
        looped = np.tile(one, int(np.ceil(seconds * 16_000 / len(one))))[: int(seconds * 16_000)]
        np.save(audio, looped.astype(np.float32))
    info: dict[str, Any] = {"audio": str(audio), "models": {}}
    for size in sizes:
        pt = make_checkpoint(size, work)
        dirs = {}
        for q in ("int8", "float32"):
            out = work / f"ct2-{size}-{q}"
            if not (out / "model.bin").is_file():
                t = time.perf_counter()
                convert_openai_checkpoint(pt, out, q, force=True)
                log(f"converted {size} -> {q} in {time.perf_counter() - t:.1f} s")
            dirs[q] = str(out)
        info["models"][size] = {
            "pt": str(pt),
            "ct2": dirs,
            "pt_mb": round(pt.stat().st_size / 1e6, 1),
            "ct2_mb": {q: round(Path(d, "model.bin").stat().st_size / 1e6, 1) for q, d in dirs.items()},
        }
    return info


# ---------------------------------------------------------------------------------------------
# One engine in a subprocess


def first_window_mel(samples: np.ndarray) -> np.ndarray:
    import whisper

    return whisper.log_mel_spectrogram(whisper.pad_or_trim(samples[: 30 * 16_000]), 80).numpy()[None]


def child_openai(pt: str, samples: np.ndarray) -> dict[str, Any]:
    import torch
    import whisper
    from whisper.decoding import DecodingOptions

    from hmsearch.asr import DecodeOptions

    torch.set_num_threads(THREADS)
    t = time.perf_counter()
    model = whisper.load_model(pt, device="cpu")
    load_s = time.perf_counter() - t
    mel = torch.from_numpy(first_window_mel(samples))
    times = []
    with torch.no_grad():
        model.encoder(mel)  # warm-up
        for _ in range(3):
            t = time.perf_counter()
            features = model.encoder(mel)
            times.append(time.perf_counter() - t)
    suppress = list(range(EOT, model.dims.n_vocab))  # every special token: text until the limit

    def decode(n: int) -> tuple[float, int]:
        opts = DecodingOptions(
            task="transcribe",
            language="da",
            without_timestamps=True,
            sample_len=n,
            suppress_tokens=suppress,
            suppress_blank=False,
            fp16=False,
        )
        t = time.perf_counter()
        result = whisper.decode(model, features[0], opts)  # encoder output in: decoder only
        return time.perf_counter() - t, len(result.tokens)

    decode(N_SHORT)  # warm-up
    short, long_ = decode(N_SHORT), decode(N_LONG)

    # End to end, counting the work: encoder windows (forward hook) and decoder calls / tokens.
    counts = {"windows": 0, "decode_calls": 0, "tokens": 0}
    model.encoder.register_forward_hook(lambda *_: counts.__setitem__("windows", counts["windows"] + 1))
    real_decode = model.decode

    def counting_decode(mel_segment, options):
        results = real_decode(mel_segment, options)
        for r in results if isinstance(results, list) else [results]:
            counts["decode_calls"] += 1
            counts["tokens"] += len(r.tokens)
        return results

    model.decode = counting_decode
    t = time.perf_counter()
    result = whisper.transcribe(
        model,
        samples,
        task="transcribe",
        temperature=0.0,
        word_timestamps=True,
        fp16=False,
        verbose=None,
        **DecodeOptions().anti_loop(),
    )
    e2e_s = time.perf_counter() - t
    words = sum(len(s.get("words") or []) for s in result["segments"])
    return {
        "load_s": load_s,
        "encoder_s": median(times),
        "encoder_runs": times,
        "decode_short": short,
        "decode_long": long_,
        "e2e_s": e2e_s,
        "words": words,
        "segments": len(result["segments"]),
        "language": result.get("language"),
        **counts,
    }


class _CountingCt2:
    """Stands in for faster-whisper's ctranslate2.models.Whisper and counts its calls."""

    def __init__(self, inner: Any) -> None:
        self._inner, self.windows, self.decode_calls, self.tokens = inner, 0, 0, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def encode(self, *args: Any, **kwargs: Any) -> Any:
        out = self._inner.encode(*args, **kwargs)
        self.windows += int(out.shape[0])
        return out

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        results = self._inner.generate(*args, **kwargs)
        for r in results:
            self.decode_calls += 1
            self.tokens += len(r.sequences_ids[0])
        return results


def child_ct2(model_dir: str, compute_type: str, samples: np.ndarray) -> dict[str, Any]:
    import ctranslate2

    from hmsearch.asr import DecodeOptions
    from hmsearch.asr import ctranslate2 as hm_ct2

    t = time.perf_counter()
    spec = hm_ct2.resolve(model_dir, compute_type=compute_type)
    fw = hm_ct2.load(spec, cpu_threads=THREADS)
    load_s = time.perf_counter() - t
    model = fw.model
    mel = ctranslate2.StorageView.from_array(np.ascontiguousarray(first_window_mel(samples)))
    model.encode(mel, to_cpu=False)  # warm-up
    times = []
    for _ in range(3):
        t = time.perf_counter()
        features = model.encode(mel, to_cpu=False)
        times.append(time.perf_counter() - t)
    suppress = list(range(EOT, 51865))

    def decode(n: int) -> tuple[float, int]:
        # ctranslate2 returns about max_length/2 tokens for Whisper (openai-whisper's sample_len is
        # n_text_ctx/2 too); ask for 2n and count what came back.
        t = time.perf_counter()
        r = model.generate(
            features, [PROMPT], beam_size=1, max_length=min(448, 2 * n), suppress_tokens=suppress, suppress_blank=False
        )
        return time.perf_counter() - t, len(r[0].sequences_ids[0])

    decode(N_SHORT)  # warm-up
    short, long_ = decode(N_SHORT), decode(N_LONG)

    counting = _CountingCt2(model)
    fw.model = counting
    t = time.perf_counter()
    transcript = hm_ct2.transcribe_samples(
        fw, samples, language=None, decode=DecodeOptions(greedy=True), model_id=spec.model_id
    )
    e2e_s = time.perf_counter() - t
    fw.model = model
    return {
        "load_s": load_s,
        "encoder_s": median(times),
        "encoder_runs": times,
        "decode_short": short,
        "decode_long": long_,
        "e2e_s": e2e_s,
        "words": sum(len(s.words) for s in transcript.segments),
        "segments": len(transcript.segments),
        "language": transcript.language,
        "windows": counting.windows,
        "decode_calls": counting.decode_calls,
        "tokens": counting.tokens,
    }


def child(args: argparse.Namespace) -> None:
    info = json.loads(Path(args.info).read_text())
    samples = np.load(info["audio"])
    model = info["models"][args.size]
    if args.engine == "openai-whisper":
        out = child_openai(model["pt"], samples)
    else:
        out = child_ct2(model["ct2"][args.precision], args.precision, samples)
    (ts, ns), (tl, nl) = out.pop("decode_short"), out.pop("decode_long")
    out.update(
        decode_tokens=[ns, nl],
        decode_s=[ts, tl],
        ms_per_token=1000 * (tl - ts) / max(1, nl - ns),
        peak_rss_mb=peak_rss_mb(),
    )
    print("RESULT " + json.dumps(out))


# ---------------------------------------------------------------------------------------------


def run_one(info_path: Path, size: str, engine: str, precision: str) -> dict[str, Any]:
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS), HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO / "src"))
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--info",
        str(info_path),
        "--size",
        size,
        "--engine",
        engine,
        "--precision",
        precision,
    ]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"{engine} {precision} {size} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(line[len("RESULT ") :])
    out.update(size=size, engine=engine, precision=precision, process_wall_s=wall, load_avg=load())
    return out


def table(rows: list[dict[str, Any]], seconds: float) -> str:
    head = (
        "| size | engine | weights | load (s) | encoder per 30 s window (s) | decoder per token (ms) "
        "| e2e (s) | e2e encoder passes / decoder calls / tokens / words | e2e per decoder call (s) | e2e per token (ms) "
        "| x realtime | peak RSS (MB) | load avg |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    ref: dict[str, dict[str, Any]] = {r["size"]: r for r in rows if r["engine"] == "openai-whisper"}
    for r in rows:
        base = ref.get(r["size"])
        enc_x = f" (×{base['encoder_s'] / r['encoder_s']:.2f})" if base and r is not base else ""
        tok_x = f" (×{base['ms_per_token'] / r['ms_per_token']:.2f})" if base and r is not base else ""
        per_call = r["e2e_s"] / max(1, r["decode_calls"])
        per_tok = 1000 * r["e2e_s"] / max(1, r["tokens"])
        lines.append(
            f"| {r['size']} | {r['engine']} | {r['precision']} | {r['load_s']:.1f} | {r['encoder_s']:.3f}{enc_x} "
            f"| {r['ms_per_token']:.1f}{tok_x} | {r['e2e_s']:.1f} | {r['windows']} / {r['decode_calls']} / "
            f"{r['tokens']} / {r['words']} | {per_call:.2f} | {per_tok:.1f} | {seconds / r['e2e_s']:.1f} "
            f"| {r['peak_rss_mb']:.0f} | {' '.join(map(str, r['load_avg']))} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="base", help="comma-separated: tiny, base, small, medium [base]")
    ap.add_argument("--seconds", type=float, default=300.0, help="audio length for the end-to-end run [300]")
    ap.add_argument("--work", type=Path, default=WORK / "whisper_engines", help="checkpoints, CT2 dirs, audio")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--info", help=argparse.SUPPRESS)
    ap.add_argument("--size", help=argparse.SUPPRESS)
    ap.add_argument("--engine", help=argparse.SUPPRESS)
    ap.add_argument("--precision", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        raise SystemExit(f"unknown size(s) {unknown}: use {', '.join(SIZES)}")
    t0 = time.perf_counter()
    info = prepare(sizes, args.seconds, args.work)
    info_path = args.work / "info.json"
    info_path.write_text(json.dumps(info))
    rows = []
    for size in sizes:
        for engine, precision in ENGINES:
            log(f"{size} {engine} {precision} ...")
            rows.append(run_one(info_path, size, engine, precision))
            r = rows[-1]
            log(
                f"  encoder {r['encoder_s']:.3f} s/window, decoder {r['ms_per_token']:.1f} ms/token, "
                f"e2e {r['e2e_s']:.1f} s ({r['windows']} windows, {r['tokens']} tokens), rss {r['peak_rss_mb']:.0f} MB"
            )
    import ctranslate2
    import faster_whisper
    import torch
    import whisper

    versions = {
        "torch": torch.__version__,
        "openai-whisper": whisper.__version__,
        "ctranslate2": ctranslate2.__version__,
        "faster-whisper": faster_whisper.__version__,
    }
    md = (
        f"# Whisper engines on the CPU ({THREADS} threads; random weights, same in both engines; "
        f"{args.seconds:.0f} s of hm-sample-001.mp3 looped)\n\n{table(rows, args.seconds)}\n\n"
        f"(×N) = speed-up over openai-whisper fp32 of the same size. Decoder per token: slope between "
        f"{N_SHORT}- and {N_LONG}-token greedy runs from a fixed encoder output, specials suppressed. "
        f"e2e: greedy (temperature 0), condition_on_previous_text False, anti-loop thresholds, word "
        f"timestamps, language detected; random weights emit garbage, so compare per window and per token, "
        f"not the totals. Load avg is the 1/5/15-minute load on 2 cores (above ~2: other work competed). Sizes on disk (MB): "
        + "; ".join(
            f"{s}: pt {m['pt_mb']}, ct2 int8 {m['ct2_mb']['int8']}, ct2 fp32 {m['ct2_mb']['float32']}"
            for s, m in info["models"].items()
        )
        + f". Versions: {', '.join(f'{k} {v}' for k, v in versions.items())}. "
        f"Total run {time.perf_counter() - t0:.0f} s.\n"
    )
    print(md)
    write_results(
        "bench_whisper_engines",
        {"threads": THREADS, "seconds": args.seconds, "versions": versions, "models": info["models"], "rows": rows},
        md,
    )


if __name__ == "__main__":
    main()
