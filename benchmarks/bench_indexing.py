"""Indexing throughput: hmsearch's whole index path against bare sentence-transformers, same passages.

    .venv/bin/python benchmarks/bench_indexing.py                 # 2000 passages, 3 repeats, + ONNX int8
    .venv/bin/python benchmarks/bench_indexing.py -n 500 --repeats 2 --no-onnx

Passages are produced by hmsearch's own chunker (formats.read_transcript + chunk.chunk_transcript
with the index encoder's tokenizer limits) from real Talk Python VTTs in ../shared/data/talkpython,
taking whole episodes (spread across the catalogue) until at least N passages.

Per precision (fp32, bf16; embed.load_encoder(MODEL, role="index", precision=...)):

  ours  hmsearch.ingest.index_paths(those VTT files) into a fresh index.IndexStore: parse, chunk,
        embed, write segments + manifest, build the FAISS and BM25 caches (store.finish)
  raw   SentenceTransformer(path).encode(texts, batch_size=32) on exactly the same passage texts

both in this process, with the model loaded and warmed before the clock starts, alternating which
goes first. Reported: passages/s (median of repeats), ratio ours/raw (target >= 0.9), where our time
goes, cosine bf16 vs fp32. Optionally an int8 dynamically quantised ONNX export of MiniLM
(onnxruntime), speed and cosine against torch fp32 on a subset.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_util import TALKPYTHON_VTT, WORK, load, log, median, write_results

MODEL = "all-MiniLM-L6-v2"


def pick_episodes(n: int, count_tokens, max_tokens) -> tuple[list[Path], list[str], float]:
    """Whole episodes spread across the catalogue until >= n passages; their passage texts in
    the order hmsearch indexes them (by file stem)."""
    from hmsearch.chunk import ChunkSettings, chunk_transcript
    from hmsearch.formats import read_transcript

    files = sorted(TALKPYTHON_VTT.glob("*.vtt"))
    if not files:
        raise SystemExit(f"no VTT files in {TALKPYTHON_VTT}")
    order = sorted(range(len(files)), key=lambda i: (i % 10, i))  # 0, 10, 20, ... then 1, 11, ...
    chosen, total = [], 0
    for i in order:
        tr = read_transcript(files[i])
        total += len(chunk_transcript(tr, count_tokens=count_tokens, max_tokens=max_tokens, settings=ChunkSettings()))
        chosen.append(files[i])
        if total >= n:
            break
    chosen.sort(key=lambda p: p.stem)
    t = time.perf_counter()
    texts = []
    for f in chosen:
        tr = read_transcript(f)
        texts.extend(
            p.text
            for p in chunk_transcript(tr, count_tokens=count_tokens, max_tokens=max_tokens, settings=ChunkSettings())
        )
    return chosen, texts, time.perf_counter() - t


def cosines(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    c = np.sum(a * b, axis=1)
    return {
        "min": round(float(c.min()), 5),
        "mean": round(float(c.mean()), 5),
        "p01": round(float(np.percentile(c, 1)), 5),
    }


def padded_tokens(texts: list[str], tokens: list[int], batch: int, global_sort: bool) -> int:
    """Word pieces the model computes, padding included: each batch is padded to its longest text.
    sentence-transformers sorts one encode() call's texts by character length; the TorchEncoder
    cuts its batches of 32 from the texts sorted the same way (embed.batching.encode_by_length)."""
    n = len(texts)
    order = sorted(range(n), key=lambda i: -len(texts[i])) if global_sort else list(range(n))
    total = 0
    for i in range(0, n, batch):
        idx = order[i : i + batch]
        total += len(idx) * (max(tokens[j] for j in idx) + 2)  # + [CLS] and [SEP]
    return total


def run_ours(files: list[Path], precision: str, root: Path) -> tuple[float, dict[str, float], np.ndarray, list[str]]:
    """index_paths into a fresh store; returns (seconds, phase seconds, vectors, passage texts).

    Where the time goes comes from the run's own IndexEvents (per-episode phases: chunk, embed,
    commit = segment files + manifest; the transcript parse is in "other"), plus store.finish()
    timed on this store (the FAISS and BM25 caches, once per run)."""
    from hmsearch.asr import TranscriberSpec
    from hmsearch.embed import export_query_encoder, load_encoder
    from hmsearch.index import IndexStore
    from hmsearch.ingest import IndexEvent, IndexOptions, index_paths

    encoder = load_encoder(MODEL, role="index", precision=precision)
    encoder.encode_documents(["warm up the model " * 20] * 32)  # load + first-call costs off the clock
    shutil.rmtree(root, ignore_errors=True)
    store = IndexStore(root)
    phases = {"chunk": 0.0, "embed": 0.0, "store_write": 0.0, "finish_faiss_bm25": 0.0}
    parse = 0.0

    def on_event(event: IndexEvent) -> None:
        nonlocal parse
        if event.kind in ("added", "replaced"):
            phases["chunk"] += event.phases.get("chunk", 0.0)
            phases["embed"] += event.phases.get("embed", 0.0)
            phases["store_write"] += event.phases.get("commit", 0.0)
            parse += event.phases.get("decode", 0.0) + event.phases.get("transcribe", 0.0)

    finish = store.finish

    def timed_finish() -> None:
        t = time.perf_counter()
        try:
            finish()
        finally:
            phases["finish_faiss_bm25"] += time.perf_counter() - t

    store.finish = timed_finish  # ingest.commit.finish calls it on this store
    options = IndexOptions(transcriber=TranscriberSpec("turbo"))  # never loaded: every file is a VTT
    # The ONNX query encoder is exported once per index, like loading the model: reported apart,
    # not counted against passages/s. It is held off during the run and exported (timed) after it.
    engine = os.environ.get("HMSEARCH_QUERY_ENGINE")
    os.environ["HMSEARCH_QUERY_ENGINE"] = "torch"
    try:
        t = time.perf_counter()
        with store.writing():
            report = index_paths(files, store, encoder=encoder, options=options, on_event=on_event)
        seconds = time.perf_counter() - t
    finally:
        if engine is None:
            os.environ.pop("HMSEARCH_QUERY_ENGINE", None)
        else:
            os.environ["HMSEARCH_QUERY_ENGINE"] = engine
    if report.failed:
        raise SystemExit(f"indexing failed: {report.failed}")
    phases["other"] = seconds - sum(phases.values())
    phases["parse_transcripts_in_other"] = parse
    t = time.perf_counter()
    export_query_encoder(encoder, store.model_cache)
    phases["onnx_export_once"] = time.perf_counter() - t
    check = IndexStore(root)
    vecs = np.concatenate([np.asarray(check.vectors(e.id)) for e in check.episodes()])
    texts = [t for t, _ in check.passage_texts()]
    return seconds, phases, vecs, texts


def run_raw(model, texts: list[str]) -> tuple[float, np.ndarray]:
    t = time.perf_counter()
    out = model.encode(texts, batch_size=32)
    return time.perf_counter() - t, np.asarray(out, dtype=np.float32)


# ---- ONNX int8 ---------------------------------------------------------------------------
def onnx_models(st_path: str, folder: Path) -> dict[str, Path]:
    """Export MiniLM (+ mean pooling + L2 norm) to ONNX, optimise for BERT, quantise int8 dynamically."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from sentence_transformers import SentenceTransformer

    folder.mkdir(parents=True, exist_ok=True)
    fp32, opt, int8 = folder / "minilm-fp32.onnx", folder / "minilm-opt.onnx", folder / "minilm-int8.onnx"
    st = SentenceTransformer(st_path, device="cpu")
    bert = st[0].auto_model.eval()

    class Pooled(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            h = self.m(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(h.dtype)
            emb = (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(emb, p=2.0, dim=-1)

    enc = st.tokenizer(["a sample passage for export"] * 2, padding=True, return_tensors="pt")
    args = (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with torch.no_grad():
        torch.onnx.export(
            Pooled(bert),
            args,
            str(fp32),
            input_names=names,
            output_names=["embedding"],
            dynamic_axes={**{n: {0: "batch", 1: "seq"} for n in names}, "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    src = fp32
    try:  # fuse attention/layernorm/gelu like onnxruntime's BERT optimiser does (optional)
        from onnxruntime.transformers.optimizer import optimize_model

        cfg = bert.config
        optimize_model(
            str(fp32), model_type="bert", num_heads=cfg.num_attention_heads, hidden_size=cfg.hidden_size
        ).save_model_to_file(str(opt))
        src = opt
    except Exception as exc:  # fall back to the plain export
        log(f"onnx optimiser unavailable ({type(exc).__name__}: {exc}); quantising the plain export")
    import onnx

    # Per-channel weight scales are what keeps MiniLM close to fp32 (per-tensor int8 gave cosine
    # 0.90-0.95 here, per-channel 0.987-0.994); only MatMuls are quantised. The fused
    # (com.microsoft) ops of the optimised graph defeat shape inference: name the default type.
    quantize_dynamic(
        str(src),
        str(int8),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    return {"fp32": src, "int8": int8}


class OnnxEncoder:
    """Tokenise like sentence-transformers (length-sorted batches of 32, max 256), run ORT."""

    def __init__(self, path: Path, tokenizer, threads: int) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.tok = tokenizer
        self.inputs = {i.name for i in self.sess.get_inputs()}

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for i in range(0, len(texts), batch_size):
            idx = order[i : i + batch_size]
            enc = self.tok([texts[j] for j in idx], padding=True, truncation=True, max_length=256, return_tensors="np")
            feed = {k: v.astype(np.int64) for k, v in enc.items() if k in self.inputs}
            out[idx] = self.sess.run(None, feed)[0]
        return out


def onnx_bench(st_path: str, texts: list[str], repeats: int, raw_fp32, raw_bf16) -> dict:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return {
            "skipped": "onnxruntime is not installed (.venv/bin/uv pip install --python .venv/bin/python "
            "onnxruntime onnx)"
        }
    import torch

    t = time.perf_counter()
    try:
        paths = onnx_models(st_path, WORK / "bench_indexing" / "onnx")
    except Exception as exc:
        return {"skipped": f"ONNX export/quantisation failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"}
    export_s = time.perf_counter() - t
    threads = torch.get_num_threads()
    encoders = {name: OnnxEncoder(p, raw_fp32.tokenizer, threads) for name, p in paths.items()}
    runs: dict[str, list[float]] = {"torch_fp32": [], "torch_bf16": [], "onnx_fp32": [], "onnx_int8": []}
    fns = {
        "torch_fp32": lambda: raw_fp32.encode(texts, batch_size=32),
        "torch_bf16": lambda: raw_bf16.encode(texts, batch_size=32),
        "onnx_fp32": lambda: encoders["fp32"].encode(texts),
        "onnx_int8": lambda: encoders["int8"].encode(texts),
    }
    for enc in encoders.values():
        enc.encode(texts[:32])  # warm-up (ORT allocates its arenas on the first runs)
    vecs = {}
    for r in range(repeats):
        names = list(fns) if r % 2 == 0 else list(reversed(fns))
        for name in names:
            t = time.perf_counter()
            v = fns[name]()
            runs[name].append(time.perf_counter() - t)
            vecs[name] = np.asarray(v, dtype=np.float32)
        log(f"onnx repeat {r + 1}: " + ", ".join(f"{k} {len(texts) / v[-1]:.1f}/s" for k, v in runs.items()))
    base = median(runs["torch_fp32"])
    return {
        "passages": len(texts),
        "export_and_quantise_s": round(export_s, 1),
        "threads": threads,
        "optimised_graph": paths["fp32"].name == "minilm-opt.onnx",
        "quantisation": "quantize_dynamic, QInt8 weights per channel, MatMul only, uint8 activations",
        "passages_per_s": {k: round(len(texts) / median(v), 2) for k, v in runs.items()},
        "speed_vs_torch_fp32": {k: round(base / median(v), 3) for k, v in runs.items()},
        "cosine_vs_torch_fp32": {
            k: cosines(vecs[k], vecs["torch_fp32"]) for k in ("torch_bf16", "onnx_fp32", "onnx_int8")
        },
        "model_bytes": {k: p.stat().st_size for k, p in paths.items()},
        "runs_s": {k: [round(x, 3) for x in v] for k, v in runs.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--passages", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--no-onnx", action="store_true")
    parser.add_argument("--onnx-passages", type=int, default=500)
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    from hmsearch.embed import card_for, load_encoder
    from hmsearch.embed.torch_st import cpu_has_bf16, resolve_model_path

    load_start = load()
    st_path, _ = resolve_model_path(MODEL, card_for(MODEL))
    probe = load_encoder(MODEL, role="index", precision="fp32")
    files, texts, chunk_s = pick_episodes(args.passages, probe.count_tokens, probe.max_tokens)
    tokens = probe.count_tokens(texts)
    log(
        f"{len(files)} episodes, {len(texts)} passages (mean {np.mean(tokens):.0f} word pieces), chunked in {chunk_s:.1f} s"
    )

    raw = {"fp32": SentenceTransformer(st_path, device="cpu")}
    raw["bf16"] = SentenceTransformer(st_path, device="cpu").to(torch.bfloat16)
    for m in raw.values():
        m.encode(["warm up the model " * 20] * 32, batch_size=32)

    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    results: dict[str, dict] = {}
    vectors: dict[str, np.ndarray] = {}
    for precision in precisions:
        ours_s, raw_s, phases_all = [], [], []
        for r in range(args.repeats):
            root = WORK / "bench_indexing" / f"index-{precision}"
            first_ours = r % 2 == 0
            for which in ("ours", "raw") if first_ours else ("raw", "ours"):
                if which == "ours":
                    s, phases, v, stored_texts = run_ours(files, precision, root)
                    if stored_texts != texts:
                        raise SystemExit("the index holds other passages than the chunker gave: benchmark invalid")
                    ours_s.append(s)
                    phases_all.append(phases)
                    vectors[f"ours_{precision}"] = v
                else:
                    s, v = run_raw(raw[precision], texts)
                    raw_s.append(s)
                    vectors[f"raw_{precision}"] = v
            log(
                f"{precision} repeat {r + 1}: ours {len(texts) / ours_s[-1]:.1f}/s, raw {len(texts) / raw_s[-1]:.1f}/s, "
                f"load {load()[0]}"
            )
        n = len(texts)
        results[precision] = {
            "ours_passages_per_s": round(n / median(ours_s), 2),
            "raw_passages_per_s": round(n / median(raw_s), 2),
            "ratio_ours_over_raw": round(median(raw_s) / median(ours_s), 3),
            "ratio_per_repeat": [round(b / a, 3) for a, b in zip(ours_s, raw_s)],
            "ours_s": [round(x, 2) for x in ours_s],
            "raw_s": [round(x, 2) for x in raw_s],
            "ours_phases_s": {k: round(median([p[k] for p in phases_all]), 2) for k in phases_all[0]},
            "load": load(),
        }
    agreement = {}
    if "ours_fp32" in vectors and "raw_fp32" in vectors:
        agreement["ours_fp32_vs_raw_fp32"] = cosines(vectors["ours_fp32"], vectors["raw_fp32"])
    if "raw_bf16" in vectors and "raw_fp32" in vectors:
        agreement["raw_bf16_vs_raw_fp32"] = cosines(vectors["raw_bf16"], vectors["raw_fp32"])
    if "ours_bf16" in vectors and "raw_fp32" in vectors:
        agreement["ours_bf16_vs_raw_fp32"] = cosines(vectors["ours_bf16"], vectors["raw_fp32"])

    onnx = (
        {"skipped": "--no-onnx"}
        if args.no_onnx
        else onnx_bench(st_path, texts[: args.onnx_passages], args.repeats, raw["fp32"], raw["bf16"])
    )

    padding = {
        "embedder_batches_of_32": padded_tokens(texts, tokens, 32, True),
        "one_encode_call": padded_tokens(texts, tokens, 32, True),
        "unpadded": sum(t + 2 for t in tokens),
    }
    padding["ratio_embedder_over_one_call"] = round(padding["embedder_batches_of_32"] / padding["one_encode_call"], 3)
    data = {
        "passages": len(texts),
        "episodes": len(files),
        "episode_files": [f.name for f in files],
        "padded_tokens": padding,
        "mean_word_pieces": round(float(np.mean(tokens)), 1),
        "repeats": args.repeats,
        "torch_threads": torch.get_num_threads(),
        "auto_precision_here": "bf16" if cpu_has_bf16() else "fp32",
        "load_at_start": load_start,
        "precisions": results,
        "cosine": agreement,
        "onnx": onnx,
    }
    write_results("bench_indexing", data, markdown(data))
    print(markdown(data))


def markdown(d: dict) -> str:
    lines = [
        f"# Indexing throughput ({d['passages']} passages from {d['episodes']} Talk Python episodes, "
        f"mean {d['mean_word_pieces']} word pieces; median of {d['repeats']}; torch threads {d['torch_threads']})",
        "",
        "| precision | hmsearch index_paths (passages/s) | raw ST encode (passages/s) | ratio ours/raw (target ≥ 0.9) "
        "| our time: chunk / embed / store / FAISS+BM25 / other (s) | once per index: ONNX query encoder export (s, not counted) | load 1/5/15 |",
        "|---|---|---|---|---|---|---|",
    ]
    for p, r in d["precisions"].items():
        ph = r["ours_phases_s"]
        lines.append(
            f"| {p} | {r['ours_passages_per_s']} | {r['raw_passages_per_s']} | **{r['ratio_ours_over_raw']}** "
            f"({', '.join(map(str, r['ratio_per_repeat']))}) | {ph['chunk']} / {ph['embed']} / {ph['store_write']} / "
            f"{ph['finish_faiss_bm25']} / {ph['other']} | {ph.get('onnx_export_once', '')} | {' '.join(map(str, r['load']))} |"
        )
    pt = d["padded_tokens"]
    lines += [
        "",
        f"`auto` precision on this CPU = {d['auto_precision_here']}. Word pieces computed incl. padding: "
        f"TorchEncoder (length-sorted batches of 32; in bf16 also padded to a multiple of 32) {pt['embedder_batches_of_32']:,} before that rounding vs one length-sorted "
        f"encode() {pt['one_encode_call']:,} (×{pt['ratio_embedder_over_one_call']}; unpadded {pt['unpadded']:,}).",
        "",
        "| vectors | cosine min | mean | 1st pct |",
        "|---|---|---|---|",
    ]
    for k, c in d["cosine"].items():
        lines.append(f"| {k} | {c['min']} | {c['mean']} | {c['p01']} |")
    o = d["onnx"]
    lines.append("")
    if "skipped" in o:
        lines.append(f"ONNX: skipped ({o['skipped']}).")
    else:
        lines += [
            f"ONNX on {o['passages']} of the passages (onnxruntime, {o['threads']} threads, BERT-optimised graph: "
            f"{o['optimised_graph']}; export+quantise {o['export_and_quantise_s']} s):",
            "",
            "| engine | passages/s | speed vs torch fp32 | cosine vs torch fp32 min / mean |",
            "|---|---|---|---|",
        ]
        for k, v in o["passages_per_s"].items():
            c = o["cosine_vs_torch_fp32"].get(k)
            cos = f"{c['min']} / {c['mean']}" if c else "—"
            lines.append(f"| {k} | {v} | {o['speed_vs_torch_fp32'][k]} | {cos} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
