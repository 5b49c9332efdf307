"""The dense index at 1M, 3M and 10M passages: which FAISS kind holds a network's catalogue.

    .venv/bin/python benchmarks/bench_scale.py                          # 1M, 3M, 10M (~40 min here)
    .venv/bin/python benchmarks/bench_scale.py --sizes 1000000 --hnsw   # also HNSW at 1M (the choice)

Synthetic "realcov" vectors (bench_query.py's Distribution: a Gaussian with the mean and covariance
of real MiniLM passage vectors plus topic clusters; needs bench_indexing.py's index once), 384-d,
generated in seeded chunks of 250,000, so no size is ever held whole as float32 (10M would be
15 GB). Per size, in a fresh process:

  build    hmsearch's own DenseIndex.build("ivfpq", ...) over the chunks (the code path the store
           uses: a training sample spread over all of them, then every vector added), its wall
           time, the file size, save and load time, and the process's peak RSS (VmHWM)
  exact    the true top-10 of every query by streaming the same chunks (the baseline: an exact
           flat index of 10M would need 15 GB; the streamed scan is exact and computed once)
  query    single-query latency through DenseIndex.search on one thread (as hmsearch runs it),
           p50/p95 ms, and recall@10 against the exact top-10, over a grid of nprobe and
           re-rank factor on the same index (the defaults are marked)
  ivfsq8   the comparison: IVF with 8-bit vectors and no PQ (same lists, same nprobe)
  hnsw     with --hnsw, the same for DenseIndex.build("hnsw", ...) (today's kind between
           250k and hnsw_max) at the sizes given

Results: benchmarks/results/bench_scale.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_util import WORK, write_results

CHUNK = 250_000
SEED = 11


def chunks(n: int, seed: int):
    """The n vectors, chunk by chunk, the same on every pass."""
    from bench_query import Distribution

    dist = Distribution("realcov", n, seed)
    for start in range(0, n, CHUNK):
        rng = np.random.default_rng([seed, start])
        yield dist.sample(rng, min(CHUNK, n - start))


def exact_top(n: int, seed: int, qv: np.ndarray, k: int = 10) -> np.ndarray:
    best_s = np.full((len(qv), k), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(qv), k), dtype=np.int64)
    offset = 0
    for x in chunks(n, seed):
        s = qv @ x.T
        top = np.argpartition(-s, k, axis=1)[:, :k]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, top, 1)], 1)
        cand_i = np.concatenate([best_i, top + offset], 1)
        order = np.argsort(-cand_s, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(cand_s, order, 1), np.take_along_axis(cand_i, order, 1)
        offset += len(x)
    return best_i


def vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def vm_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def latency(index, qv: np.ndarray, truth: np.ndarray) -> dict:
    index.search(qv[0], 10)  # warm
    ms, hits = [], 0
    for q, t in zip(qv, truth, strict=True):
        t0 = time.perf_counter()
        _, rows = index.search(q, 10)
        ms.append((time.perf_counter() - t0) * 1000)
        hits += len(set(rows.tolist()) & set(t.tolist()))
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "recall10": round(hits / truth.size, 4),
    }


def child(n: int, kind: str, nq: int) -> dict:
    import faiss
    from bench_query import Distribution

    from hmsearch.index.dense import (
        IVF_K_FACTOR,
        IVF_NPROBE,
        DenseIndex,
        ivf_factory,
        ivf_lists,
        ivf_nprobe,
        training_sample,
    )

    qv = Distribution("realcov", n, SEED).sample(np.random.default_rng(SEED + 2), nq)
    t0 = time.perf_counter()
    truth = exact_top(n, SEED, qv)
    exact_s = time.perf_counter() - t0
    rss0 = vm_rss_mb()
    t0 = time.perf_counter()
    if kind == "ivfsq8":  # the comparison: an inverted file of 8-bit vectors, no PQ
        ix = faiss.index_factory(qv.shape[1], f"IVF{ivf_lists(n)},SQ8", faiss.METRIC_INNER_PRODUCT)
        ix.train(training_sample(chunks(n, SEED), n, ivf_lists(n) * 64))
        for x in chunks(n, SEED):
            ix.add(x)
        ix.nprobe = IVF_NPROBE
        index = DenseIndex(ix)
    else:
        index = DenseIndex.build(kind, qv.shape[1], lambda: chunks(n, SEED), total=n)
    build_s = time.perf_counter() - t0
    build_hwm = vm_hwm_mb()
    path = WORK / "bench_scale" / f"{kind}-{n}.faiss"
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    index.save(path)
    save_s = time.perf_counter() - t0
    size_mb = path.stat().st_size / 1e6
    del index
    t0 = time.perf_counter()
    index = DenseIndex.load(path)
    load_s = time.perf_counter() - t0
    rss_loaded = vm_rss_mb()
    path.unlink()
    out = {
        "n": n,
        "kind": kind,
        "factory": {"ivfpq": ivf_factory(qv.shape[1], n), "ivfsq8": f"IVF{ivf_lists(n)},SQ8"}.get(kind, "HNSW32,Flat"),
        "exact_scan_s": round(exact_s, 1),
        "build_s": round(build_s, 1),
        "save_s": round(save_s, 1),
        "load_s": round(load_s, 1),
        "file_mb": round(size_mb, 1),
        "rss_before_build_mb": round(rss0, 1),
        "build_peak_rss_mb": round(build_hwm, 1),
        "rss_after_load_mb": round(rss_loaded, 1),
        "bytes_per_passage": round(size_mb * 1e6 / n, 1),
        "default": latency(index, qv, truth),
        "grid": [],
        "load_1_5_15": os.getloadavg(),
    }
    if kind == "ivfsq8":
        for nprobe in (32, 64, 128):
            index.faiss.nprobe = nprobe
            out["grid"].append(
                {"nprobe": nprobe, "k_factor": 1, **latency(index, qv, truth), "default": nprobe == IVF_NPROBE}
            )
    if kind == "ivfpq":
        ivf = faiss.extract_index_ivf(index.faiss)
        for nprobe in (16, 32, 64, 128):
            for k_factor in (1, 4, 8, 16):
                ivf.nprobe, index.faiss.k_factor = nprobe, k_factor
                r = latency(index, qv, truth)
                out["grid"].append(
                    {
                        "nprobe": nprobe,
                        "k_factor": k_factor,
                        **r,
                        "default": nprobe == ivf_nprobe(ivf.nlist) and k_factor == IVF_K_FACTOR,
                    }
                )
    return out


def markdown(results: list[dict]) -> str:
    L = [
        "# The dense index at scale (realcov synthetic vectors, 384-d, seeded; bench_scale.py)",
        "",
        "Build through hmsearch's DenseIndex.build; single-query latency on one thread through DenseIndex.search;",
        "recall@10 against the exact top-10 (a streamed exact scan of the same vectors).",
        "",
        "| N | kind | factory | build s | file MB | B/passage | build peak RSS MB | RSS after load MB | load s "
        "| p50 ms | p95 ms | recall@10 | exact scan s (200 q) | load 1/5/15 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        d = r["default"]
        L.append(
            f"| {r['n']:,} | {r['kind']} | {r['factory']} | {r['build_s']} | {r['file_mb']:,} | {r['bytes_per_passage']} "
            f"| {r['build_peak_rss_mb']:,} | {r['rss_after_load_mb']:,} | {r['load_s']} | {d['p50_ms']} | {d['p95_ms']} "
            f"| {d['recall10']} | {r['exact_scan_s']} | {' '.join(f'{x:.1f}' for x in r['load_1_5_15'])} |"
        )
    for r in results:
        if not r["grid"]:
            continue
        L += ["", f"{r['factory']} at {r['n']:,}: nprobe x re-rank factor (p50 ms / recall@10; **default**):", ""]
        ks = sorted({g["k_factor"] for g in r["grid"]})
        L.append("| nprobe | " + " | ".join(f"k_factor {k}" for k in ks) + " |")
        L.append("|---|" + "---|" * len(ks))
        for nprobe in sorted({g["nprobe"] for g in r["grid"]}):
            cells = []
            for k in ks:
                g = next(g for g in r["grid"] if g["nprobe"] == nprobe and g["k_factor"] == k)
                cell = f"{g['p50_ms']} / {g['recall10']}"
                cells.append(f"**{cell}**" if g["default"] else cell)
            L.append(f"| {nprobe} | " + " | ".join(cells) + " |")
    return "\n".join(L) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,3000000,10000000")
    parser.add_argument("--nq", type=int, default=200)
    parser.add_argument("--hnsw", action="store_true", help="also build HNSW at these sizes")
    parser.add_argument("--tag", default="")
    parser.add_argument("--child", nargs=2, metavar=("N", "KIND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(int(args.child[0]), args.child[1], args.nq)))
        return
    results = []
    for n in [int(s) for s in args.sizes.split(",")]:
        for kind in ["ivfpq", "ivfsq8", *(["hnsw"] if args.hnsw else [])]:
            print(f"bench_scale: {kind} at {n:,}", file=sys.stderr, flush=True)
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(n), kind, "--nq", str(args.nq)],
                check=True,
                stdout=subprocess.PIPE,
                text=True,
            ).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
            print(json.dumps(results[-1]["default"]), results[-1]["build_s"], file=sys.stderr, flush=True)
    write_results("bench_scale" + (f"_{args.tag}" if args.tag else ""), {"results": results}, markdown(results))


if __name__ == "__main__":
    main()
