"""Indexing throughput on a Ray cluster against the local backend, and the single writer's share.

    .venv/bin/python benchmarks/bench_ray.py                 # ~10 min here
    .venv/bin/python benchmarks/bench_ray.py --episodes 4 --no-tiny

English espeak-ng episodes (~25 s of speech each, made once), the packaged Whisper base (openai
engine, greedy, --language en), multilingual-e5-small embeddings. Each run indexes all of them into
a fresh index through hmsearch.ingest.index_paths in this process (which is Ray's driver and the
single writer), on a cluster from scripts/ray_local.py (nodes of one CPU on 127.0.0.1):

  local      the local backend, Whisper on one thread (OMP_NUM_THREADS=1, as a 1-CPU Ray worker)
  ray x1     one node, one worker         ray x2   two nodes, one worker each

and, to see where the writer would become the bottleneck with many workers (this machine has two
cores, so more real workers cannot be had), the same with a tiny randomly initialised Whisper
(fast, nonsense text: plumbing, not accuracy) on two nodes of 4 logical CPUs: local, ray x1, x8.

Per run: wall time, episodes/hour, the writer's seconds per episode (decode check, chunk, embed,
commit: what cannot be spread) and its share of the wall time, commit seconds per episode, and for
Ray the worker's own transcription time and Ray's overhead per episode (dispatch to result, minus
the worker's time: scheduling, shipping, the transcript's return). Results: results/bench_ray.*.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # a driver on 127.0.0.1 (scripts/ray_local.py)
# Ray runs its worker processes niced; the local run is not. The same priority for both, so that
# whatever else runs on the machine weighs on both alike.
os.environ.setdefault("RAY_worker_niceness", "0")

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import ray_local
from bench_util import WORK, write_results

TOPICS = (
    "email newsletters for small shops",
    "pricing a consulting project by its value",
    "microphones for recording a podcast",
    "search engine optimisation for local businesses",
    "customer service on social media",
    "video marketing on a small budget",
    "writing a good product page",
    "measuring what a campaign earned",
)
WRITER = ("decode", "chunk", "embed", "commit")


def episodes(n: int) -> Path:
    import subprocess

    folder = WORK / "bench_ray" / f"audio-{n}"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        path = folder / f"ep{i + 1:02d}.wav"
        if not path.exists():
            topic = TOPICS[i % len(TOPICS)]
            text = (
                f"Welcome to episode {i + 1}. Today we talk about {topic}. Our guest has worked on {topic} "
                f"for ten years, and explains what works, what does not, and what it costs. "
                f"Next week we come back to {topic} with questions from our listeners."
            )
            subprocess.run(["espeak-ng", "-v", "en", "-s", "160", "-w", str(path), text], check=True)
    return folder


def tiny_model(folder: Path) -> Path:
    path = folder / "tiny-whisper.pt"
    if path.exists():
        return path
    import torch
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    dims = ModelDimensions(
        n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=1, n_audio_layer=1,
        n_vocab=51865, n_text_ctx=448, n_text_state=64, n_text_head=1, n_text_layer=1,
    )  # fmt: skip
    model = Whisper(dims)
    torch.save({"dims": dims.__dict__, "model_state_dict": model.state_dict()}, path)
    return path


def index_once(audio: Path, backend: str, model: str, *, workers: int | None, address: str | None) -> dict:
    from hmsearch.asr import DecodeOptions, TranscriberSpec
    from hmsearch.embed import load_encoder
    from hmsearch.index import IndexStore
    from hmsearch.ingest import IndexOptions, index_paths

    events = []
    spec = TranscriberSpec(model=model, engine="openai", language="en", decode=DecodeOptions(greedy=True))
    options = IndexOptions(transcriber=spec, workers=workers, backend=backend, ray_address=address)
    encoder = load_encoder("intfloat/multilingual-e5-small", role="index")
    encoder.encode_documents(["warm up"])
    with tempfile.TemporaryDirectory() as tmp:
        store = IndexStore(Path(tmp) / "index")
        start = time.perf_counter()
        with store.writing():
            report = index_paths([audio], store, encoder=encoder, options=options, on_event=events.append)
        wall = time.perf_counter() - start
    added = [e for e in events if e.kind == "added"]
    assert len(added) == len(list(audio.glob("*.wav"))) and not report.failed, report.failed
    n = len(added)

    def mean(key: str) -> float:
        return sum(e.phases.get(key, 0.0) for e in added) / n

    writer = sum(mean(k) for k in WRITER)
    return {
        "backend": backend,
        "workers": workers or 1,
        "episodes": n,
        "wall_s": round(wall, 2),
        "episodes_per_hour": round(n / wall * 3600, 1),
        "writer_s_per_episode": round(writer, 3),
        "writer_share": round(writer * n / wall, 3),
        "commit_s_per_episode": round(mean("commit"), 4),
        "transcribe_s_per_episode": round(mean("transcribe") + mean("worker_transcribe"), 2),
        "ray_overhead_s_per_episode": round(mean("ray_overhead"), 3) if backend == "ray" else None,
        "nodes": sorted({e.detail.split("(")[1].split(")")[0] for e in added if "on node" in e.detail}),
    }


def with_cluster(nodes: int, cpus: int, fn):
    temp_dir = Path(tempfile.mkdtemp(prefix="hmray-bench-"))
    port = 6400 + os.getpid() % 500
    ray_local.start_head(port, cpus, temp_dir)
    try:
        for _ in range(nodes - 1):
            ray_local.add_node(port, cpus)
        return fn(f"127.0.0.1:{port}")
    finally:
        ray_local.stop(temp_dir)


def markdown(d: dict) -> str:
    L = [
        "# Indexing on a Ray cluster (bench_ray.py; nodes of scripts/ray_local.py on 127.0.0.1, this 2-core machine)",
        "",
        "| model | backend | workers | episodes | wall s | episodes/hour | vs local | writer s/episode | writer share "
        "| commit s/episode | Whisper s/episode | Ray overhead s/episode | nodes used |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, runs in d["runs"].items():
        base = next(r for r in runs if r["backend"] == "local")["episodes_per_hour"]
        for r in runs:
            L.append(
                f"| {model} | {r['backend']} | {r['workers']} | {r['episodes']} | {r['wall_s']} | {r['episodes_per_hour']:,} "
                f"| {r['episodes_per_hour'] / base:.2f}x | {r['writer_s_per_episode']} | {r['writer_share']:.0%} "
                f"| {r['commit_s_per_episode']} | {r['transcribe_s_per_episode']} "
                f"| {r['ray_overhead_s_per_episode'] if r['ray_overhead_s_per_episode'] is not None else '—'} | {len(r['nodes']) or '—'} |"
            )
    L += [
        "",
        "The writer's capacity (what one driver can commit, whatever the cluster): "
        + "; ".join(f"{m}: {3600 / c:,.0f} episodes/hour" for m, c in d["writer_capacity_s"].items())
        + " (3600 / writer s per episode).",
    ]
    return "\n".join(L) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--tiny-episodes", type=int, default=16)
    parser.add_argument("--no-tiny", action="store_true")
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {}
    audio = episodes(args.episodes)
    os.environ["OMP_NUM_THREADS"] = "1"  # the local run's Whisper on one thread, like a 1-CPU worker
    runs["base"] = [index_once(audio, "local", "base", workers=None, address=None)]
    print(runs["base"][-1], file=sys.stderr, flush=True)
    runs["base"].append(with_cluster(1, 1, lambda a: index_once(audio, "ray", "base", workers=1, address=a)))
    print(runs["base"][-1], file=sys.stderr, flush=True)
    runs["base"].append(with_cluster(2, 1, lambda a: index_once(audio, "ray", "base", workers=2, address=a)))
    print(runs["base"][-1], file=sys.stderr, flush=True)
    if not args.no_tiny:
        tiny = str(tiny_model(WORK / "bench_ray"))
        many = episodes(args.tiny_episodes)
        runs["tiny"] = [index_once(many, "local", tiny, workers=None, address=None)]
        for workers in (1, 8):
            runs["tiny"].append(
                with_cluster(2, 4, lambda a, w=workers: index_once(many, "ray", tiny, workers=w, address=a))
            )
            print(runs["tiny"][-1], file=sys.stderr, flush=True)
    capacity = {m: min(r["writer_s_per_episode"] for r in rs) for m, rs in runs.items()}
    data = {"runs": runs, "writer_capacity_s": capacity}
    write_results("bench_ray", data, markdown(data))


if __name__ == "__main__":
    main()
