"""What hmsearch adds around Whisper on long audio, against Whisper's own cost per hour of audio.

    .venv/bin/python benchmarks/bench_transcribe.py                  # 1 h of audio; tiny, base, small, turbo
    .venv/bin/python benchmarks/bench_transcribe.py --hours 0.25 --sizes tiny,base

Audio: the bundled sample episode (audio/hm-sample-001.mp3, espeak-ng Danish) decoded and looped to
``--hours``, re-encoded as a typical podcast file (MP3, 44.1 kHz stereo, 128 kbit/s) in
benchmarks/.work/bench_transcribe/. Per hour of audio, median of ``--repeats``:

  ours      sha256 of the file (the "unchanged input" key), probe (container facts), decode to
            16 kHz mono float32 through PyAV with the truncation check (hmsearch.audio.decode_audio),
            writing the transcript store entry, chunking an hour's transcript with word times
  raw       a bare PyAV decode + resample loop of the same file (what decode_audio wraps)
  Whisper   log-Mel spectrogram of the hour (whisper.log_mel_spectrogram), the encoder on one 30 s
            window x windows per hour, and the decoder per token x tokens per hour, for real model
            sizes with random weights (the official weights cannot be downloaded here; compute per
            window and per token does not depend on the weights' values)
  e2e       hmsearch.asr.openai.transcribe_samples against a bare whisper.transcribe call with the
            same options on the same 60 s of audio and the same tiny random checkpoint (same work:
            the ratio is our wrapping, not the model)

The ratio that matters: ours / Whisper per hour, per model size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_util import PY, REPO, WORK, load, log, median, peak_rss_mb, rss_mb, write_results

HERE = WORK / "bench_transcribe"
SAMPLE = REPO / "audio" / "hm-sample-001.mp3"
SR = 16_000
WINDOW_S = 30
TOKENS_PER_HOUR = 9000 * 1.6  # ~150 spoken words a minute; Whisper's BPE takes ~1.6 tokens a Danish word
DIMS = {  # whisper.model.ModelDimensions of the published checkpoints
    "tiny": (384, 6, 4, 384, 6, 4, 80),
    "base": (512, 8, 6, 512, 8, 6, 80),
    "small": (768, 12, 12, 768, 12, 12, 80),
    "medium": (1024, 16, 24, 1024, 16, 24, 80),
    "turbo": (1280, 20, 32, 1280, 20, 4, 128),
    "large-v3": (1280, 20, 32, 1280, 20, 32, 128),
}


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return median(times), out


def make_audio(hours: float) -> Path:
    """The sample looped to ``hours``, as 44.1 kHz stereo 128 kbit/s MP3 (cached)."""
    import av

    from hmsearch.audio import decode_audio

    path = HERE / f"long-{hours:g}h.mp3"
    if path.is_file():
        return path
    HERE.mkdir(parents=True, exist_ok=True)
    base = av.open(str(SAMPLE))
    src = base.streams.audio[0]
    rate = 44_100
    resampler = av.AudioResampler(format="s16p", layout="stereo", rate=rate)
    one = []
    for frame in base.decode(src):
        one.extend(f.to_ndarray() for f in resampler.resample(frame))
    base.close()
    loop = np.concatenate(one, axis=1)
    need = int(hours * 3600 * rate)
    tmp = path.with_suffix(".tmp.mp3")
    out = av.open(str(tmp), "w")
    stream = out.add_stream("mp3", rate=rate, layout="stereo")
    stream.bit_rate = 128_000
    written, block = 0, 1152 * 100
    while written < need:
        n = min(block, need - written)
        idx = np.arange(written, written + n) % loop.shape[1]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(loop[:, idx]), format="s16p", layout="stereo")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        written += n
    for packet in stream.encode(None):
        out.mux(packet)
    out.close()
    tmp.rename(path)
    log(f"made {path} ({path.stat().st_size / 2**20:.0f} MB, {len(decode_audio(path)) / SR / 60:.1f} min)")
    return path


def reset_peak() -> None:
    """Start a new peak-RSS (VmHWM) measurement from the current RSS (Linux: clear_refs 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def raw_pyav_decode(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SR)
        parts = [o.to_ndarray().reshape(-1) for frame in container.decode(audio=0) for o in resampler.resample(frame)]
        parts += [o.to_ndarray().reshape(-1) for o in resampler.resample(None)]
    return np.concatenate(parts)


def fake_transcript(seconds: float):
    """An hour's worth of Whisper-shaped transcript: 5 s segments of ~12 timed words."""
    from hmsearch.types import Segment, Transcript, Word

    rng = np.random.default_rng(0)
    vocab = [
        "det",
        "er",
        "vi",
        "som",
        "har",
        "ikke",
        "til",
        "kunder",
        "salg",
        "sociale",
        "medier",
        "marketing",
        "indhold",
        "strategi",
    ]
    segs = []
    for s in np.arange(0, seconds - 5, 5.0):
        words = tuple(
            Word(float(s + i * 0.4), float(s + i * 0.4 + 0.35), " " + str(rng.choice(vocab)), 0.9) for i in range(12)
        )
        segs.append(Segment(float(s), float(s + 5), "".join(w.text for w in words).strip() + ".", words))
    return Transcript(segments=tuple(segs), language="da", source="whisper:bench", duration=seconds)


def child_ours(path: Path, repeats: int) -> dict:
    from hmsearch.audio import decode_audio, file_hash, probe_audio
    from hmsearch.chunk import chunk_transcript
    from hmsearch.formats import format_json
    from hmsearch.fsutil import atomic_write

    out: dict = {"rss_start_mb": round(rss_mb(), 1)}
    out["sha256_s"], _ = timed(lambda: file_hash(path), repeats)
    out["probe_s"], _ = timed(lambda: probe_audio(path), repeats)
    out["raw_pyav_decode_s"], raw = timed(lambda: raw_pyav_decode(path), repeats)
    reset_peak()
    out["ours_decode_s"], samples = timed(lambda: decode_audio(path), repeats)
    out["decode_peak_rss_mb"] = round(peak_rss_mb(), 1)
    assert len(samples) == len(raw)
    seconds = len(samples) / SR
    out["audio_s"] = round(seconds, 1)
    del raw
    transcript = fake_transcript(seconds)
    store = HERE / "transcript.json"
    out["transcript_store_write_s"], _ = timed(lambda: atomic_write(store, format_json(transcript).encode()), repeats)
    counter = lambda texts: [int(len(t.split()) * 1.3) for t in texts]  # noqa: E731  (MiniLM word pieces, roughly)
    out["chunk_s"], chunks = timed(lambda: chunk_transcript(transcript, count_tokens=counter, max_tokens=254), repeats)
    out["passages"] = len(chunks)
    import whisper

    reset_peak()
    out["whisper_log_mel_s"], mel = timed(lambda: whisper.log_mel_spectrogram(samples), max(1, repeats - 1))
    out["log_mel_peak_rss_mb"] = round(peak_rss_mb(), 1)
    out["samples_mb"] = round(samples.nbytes / 2**20, 1)
    out["mel_mb"] = round(mel.numel() * 4 / 2**20, 1)
    return out


def child_model(size: str, tokens: int) -> dict:
    import torch
    from whisper.model import ModelDimensions, Whisper

    a_state, a_head, a_layer, t_state, t_head, t_layer, mels = DIMS[size]
    dims = ModelDimensions(
        n_mels=mels,
        n_audio_ctx=1500,
        n_audio_state=a_state,
        n_audio_head=a_head,
        n_audio_layer=a_layer,
        n_vocab=51866 if mels == 128 else 51865,
        n_text_ctx=448,
        n_text_state=t_state,
        n_text_head=t_head,
        n_text_layer=t_layer,
    )
    torch.manual_seed(0)
    t = time.perf_counter()
    model = Whisper(dims).eval()
    with torch.no_grad():
        model.decoder.positional_embedding.normal_(0, 0.02)
    init_s = time.perf_counter() - t
    mel = torch.randn(1, mels, 3000)
    out = {"dims": asdict(dims), "init_s": round(init_s, 1), "threads": torch.get_num_threads()}
    with torch.no_grad():
        model.encoder(mel)  # warm
        t = time.perf_counter()
        feats = model.encoder(mel)
        out["encoder_per_window_s"] = round(time.perf_counter() - t, 3)
        cache, hooks = model.install_kv_cache_hooks()
        prompt = torch.tensor([[50258, 50273, 50360]])  # <|startoftranscript|><|da|><|transcribe|>
        per_token = []
        for _ in range(3):  # the first pass warms up; the median of the rest counts
            cache.clear()
            logits = model.decoder(prompt, feats, kv_cache=cache)
            t = time.perf_counter()
            for _ in range(tokens):
                nxt = logits[:, -1:].argmax(-1)
                logits = model.decoder(nxt, feats, kv_cache=cache)
            per_token.append((time.perf_counter() - t) / tokens)
        out["decoder_per_token_s"] = round(median(per_token[1:]), 5)
        for h in hooks:
            h.remove()
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return out


def child_e2e(path: Path, seconds: float, repeats: int) -> dict:
    import torch
    import whisper
    from whisper.model import ModelDimensions, Whisper

    from hmsearch.asr import DecodeOptions
    from hmsearch.asr.openai import load, resolve, transcribe_samples
    from hmsearch.audio import decode_audio

    torch.manual_seed(0)
    dims = ModelDimensions(
        n_mels=80,
        n_audio_ctx=1500,
        n_audio_state=64,
        n_audio_head=1,
        n_audio_layer=1,
        n_vocab=51865,
        n_text_ctx=448,
        n_text_state=64,
        n_text_head=1,
        n_text_layer=1,
    )
    m = Whisper(dims)
    with torch.no_grad():
        m.decoder.positional_embedding.normal_(0, 0.02)
    ckpt = HERE / "tiny-random.pt"
    torch.save({"dims": asdict(dims), "model_state_dict": m.state_dict()}, ckpt)
    model = load(resolve(str(ckpt)))
    samples = decode_audio(path)[: int(seconds * SR)]
    decode = DecodeOptions(greedy=True)  # temperature 0 and the anti-loop options
    opts = dict(
        language="da", task="transcribe", word_timestamps=True, fp16=False, verbose=None, **decode.openai_kwargs()
    )
    raw_t, ours_t = [], []
    for _ in range(repeats):  # interleaved, so machine load falls on both alike
        t = time.perf_counter()
        raw = whisper.transcribe(model, samples, **opts)
        raw_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        ours = transcribe_samples(model, samples, language="da", decode=decode)
        ours_t.append(time.perf_counter() - t)
    raw_s, ours_s = median(raw_t), median(ours_t)
    return {
        "audio_s": seconds,
        "raw_whisper_transcribe_s": round(raw_s, 3),
        "ours_transcribe_samples_s": round(ours_s, 3),
        "ratio": round(ours_s / raw_s, 3),
        "raw_segments": len(raw["segments"]),
        "ours_segments": len(ours.segments),
    }


def run_child(args: list[str]) -> dict:
    res = subprocess.run([PY, __file__, *args], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def markdown(data: dict) -> str:
    o = data["ours"]
    hours = o["audio_s"] / 3600
    per_h = lambda s: s / hours  # noqa: E731
    ours_keys = ("sha256_s", "probe_s", "ours_decode_s", "transcript_store_write_s", "chunk_s")
    ours_total = sum(o[k] for k in ours_keys)
    lines = [
        f"# Transcription: hmsearch's share around Whisper (per hour of audio; load at start {data['load_at_start']})",
        "",
        f"Audio: {o['audio_s'] / 60:.0f} min MP3, 44.1 kHz stereo 128 kbit/s; {o['passages']} passages from its transcript.",
        "",
        "| step (ours) | s per hour of audio |",
        "|---|---|",
    ]
    names = {
        "sha256_s": "sha256 of the file",
        "probe_s": "probe (container facts)",
        "ours_decode_s": "decode to 16 kHz mono (hmsearch.audio.decode_audio)",
        "transcript_store_write_s": "write the transcript store entry",
        "chunk_s": "chunk the transcript",
    }
    for k in ours_keys:
        lines.append(f"| {names[k]} | {per_h(o[k]):.2f} |")
    lines += [
        f"| **all of ours** | **{per_h(ours_total):.2f}** |",
        "",
        f"Decode against a bare PyAV decode + resample loop of the same file: "
        f"**{o['ours_decode_s'] / o['raw_pyav_decode_s']:.3f}×** ({per_h(o['ours_decode_s']):.2f} vs "
        f"{per_h(o['raw_pyav_decode_s']):.2f} s/h). Memory: the hour's samples are {o['samples_mb']} MB "
        f"float32 and Whisper's log-Mel of it {o['mel_mb']} MB. Peak RSS while decoding {o['decode_peak_rss_mb']} MB "
        f"(from {o['rss_start_mb']} MB at start); while Whisper computes the log-Mel of the whole hour "
        f"(whisper.transcribe does that up front) {o['log_mel_peak_rss_mb']} MB.",
        "",
        f"| Whisper size | encoder s / 30 s window | decoder ms / token | Whisper s per hour (log-Mel {per_h(o['whisper_log_mel_s']):.1f} + encoder x 120 + decoder x {TOKENS_PER_HOUR:.0f} tokens) | ours / Whisper | peak RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for size, m in data["models"].items():
        whisper_h = (
            per_h(o["whisper_log_mel_s"])
            + m["encoder_per_window_s"] * 3600 / WINDOW_S
            + m["decoder_per_token_s"] * TOKENS_PER_HOUR
        )
        lines.append(
            f"| {size} | {m['encoder_per_window_s']:.2f} | {m['decoder_per_token_s'] * 1000:.1f} | {whisper_h:.0f} "
            f"({whisper_h / 3600:.2f}× real time) | **{per_h(ours_total) / whisper_h:.4f}** | {m['peak_rss_mb']:.0f} |"
        )
    e = data.get("e2e")
    if e:
        lines += [
            "",
            f"End to end on the same {e['audio_s']:.0f} s with the same tiny random checkpoint: "
            f"hmsearch.asr.openai.transcribe_samples {e['ours_transcribe_samples_s']:.2f} s against a bare "
            f"whisper.transcribe with the same options {e['raw_whisper_transcribe_s']:.2f} s: **{e['ratio']:.3f}×**.",
        ]
    lines += [
        "",
        "Whisper's figures are a lower bound of a real run: one pass per window at temperature 0 (fallback "
        "re-decodes a window at higher temperatures when it looks like a loop) and no word-timestamp "
        "alignment pass. Random weights: speed per window and per token only, not accuracy.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--sizes", default="tiny,base,small,turbo")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64, help="decoder tokens timed per size")
    parser.add_argument("--e2e-seconds", type=float, default=30.0, help="0 skips the end-to-end comparison")
    parser.add_argument("--child", choices=["ours", "model", "e2e"])
    parser.add_argument("--size")
    parser.add_argument("--audio")
    args = parser.parse_args()
    if args.child == "ours":
        print(json.dumps(child_ours(Path(args.audio), args.repeats)))
        return
    if args.child == "model":
        print(json.dumps(child_model(args.size, args.tokens)))
        return
    if args.child == "e2e":
        print(json.dumps(child_e2e(Path(args.audio), args.e2e_seconds, args.repeats)))
        return
    data: dict = {"load_at_start": load(), "hours": args.hours, "tokens_per_hour_assumed": TOKENS_PER_HOUR}
    audio = make_audio(args.hours)
    log("ours: hash, probe, decode, store, chunk ...")
    data["ours"] = run_child(["--child", "ours", "--audio", str(audio), "--repeats", str(args.repeats)])
    data["models"] = {}
    for size in [s for s in args.sizes.split(",") if s]:
        log(f"Whisper {size} (random weights): encoder per window, decoder per token ...")
        data["models"][size] = run_child(["--child", "model", "--size", size, "--tokens", str(args.tokens)])
        write_results("bench_transcribe", data, markdown(data))
    if args.e2e_seconds > 0:
        log(f"end to end on {args.e2e_seconds:g} s, tiny random checkpoint ...")
        data["e2e"] = run_child(
            [
                "--child",
                "e2e",
                "--audio",
                str(audio),
                "--e2e-seconds",
                str(args.e2e_seconds),
                "--repeats",
                str(args.repeats),
            ]
        )
    write_results("bench_transcribe", data, markdown(data))
    print(markdown(data))


if __name__ == "__main__":
    main()
