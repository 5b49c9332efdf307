"""Query latency and memory at 10k / 100k / 1M passages, hmsearch against bare FAISS and bm25s.

    .venv/bin/python benchmarks/bench_query.py                       # 10k, 100k, 1M (1M: ~30-40 min)
    .venv/bin/python benchmarks/bench_query.py --sizes 10000,100000 --no-ann
    .venv/bin/python benchmarks/bench_query.py --ann-only --distribution realcov --tag ann_realcov
    .venv/bin/python benchmarks/bench_query.py --ann-only --distribution uniform --sizes 100000 --tag ann_uniform

Synthetic data, seeded: L2-normalised 384-d float32 vectors (default "clustered": points around
N/100 random centres, cosine to their centre ~0.6; "uniform" on the sphere, the worst case for
approximate indexes; "realcov": a Gaussian with the mean and covariance of real MiniLM vectors of
Talk Python passages (from bench_indexing.py's index) plus topic clusters, which matches the real
vectors' random-pair cosine, neighbour cosine and effective dimension; see Distribution) and one short sentence of
pseudo-words per passage (Zipf-distributed vocabulary of 20,000 words, 8-16 words), so that BM25
has work to do. They are written as 10 big fake episodes through hmsearch.index.IndexStore
(put_episode with Passage objects), then the FAISS and BM25 caches are built (store.dense(),
store.lexical()), exactly like `hmsearch index`.

Per size, in a fresh process that opens the index like the CLI does (warm: after one query):
  vec       store.dense().search(q, 10) + store.rows().location of each row (the old
            store.search_vectors)                    vs  bare .search(q, 10) on the same FAISS index object
            (IndexFlatIP; hmsearch switches to HNSW above HMSEARCH_EXACT_SEARCH_MAX, then that)
  semantic  query.search(mode="semantic", k=10)      vs  faiss search(q, 100)  (search asks FAISS for 100 candidates)
  lexical   store.lexical().scores(Query(text, store).terms)  (analysis + translation + BM25)
                                                     vs  bm25s get_scores(pre-analysed terms)
  hybrid    query.search(mode="hybrid", k=10)        vs  faiss search(q, 100) + bm25s get_scores   (target <= 1.5)
The query vector is injected through a stand-in encoder whose encode_queries returns it, so no
model runs (a real query adds ~10-30 ms of MiniLM). A separate exact IndexFlatIP over the same
segment vectors gives exact-search latency and the recall of hmsearch's own dense top-10. Then FAISS HNSW
(M=32, efConstruction 40 or --hnsw-efc; efSearch 64/128 or --ef-search)
and IVF-Flat (nlist = 4*sqrt(N), trained on min(N, 39*nlist) points; nprobe 8/16): build time,
p50 single-query latency, recall@10 against exact flat search, index bytes. RSS is recorded at
each step; each size's build and query run in their own processes.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_util import PY, WORK, load, log, median, pct, peak_rss_mb, rss_mb, write_results

DIM = 384
EPISODES = 10
VOCAB = 20_000
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
K = 10
HNSW_EFC = 40
EF_SEARCH = (64, 128)
NPROBES = (8, 16)


# ---- synthetic data ----------------------------------------------------------------------
def vocabulary(seed: int = 7) -> np.ndarray:
    """VOCAB distinct pronounceable pseudo-words of 2-3 syllables (never an English stopword)."""
    rng = np.random.default_rng(seed)
    cons, vows = list("bdfgklmnprstvz"), ["a", "e", "i", "o", "u", "ai", "ou"]
    seen: dict[str, None] = {}
    while len(seen) < VOCAB:
        n = int(rng.integers(2, 4))
        w = "".join(cons[rng.integers(len(cons))] + vows[rng.integers(len(vows))] for _ in range(n))
        if rng.random() < 0.5:
            w += cons[rng.integers(len(cons))]
        seen.setdefault(w, None)
    return np.array(list(seen), dtype=object)


def zipf_p() -> np.ndarray:
    p = 1.0 / (np.arange(VOCAB) + 2.7)
    return p / p.sum()


def sentences(rng: np.random.Generator, n: int, vocab: np.ndarray, p: np.ndarray) -> list[str]:
    lengths = rng.integers(8, 17, size=n)
    ids = rng.choice(VOCAB, size=int(lengths.sum()), p=p)
    words = vocab[ids]
    out, pos = [], 0
    for length in lengths.tolist():
        s = " ".join(words[pos : pos + length])
        out.append(s[0].upper() + s[1:] + ".")
        pos += length
    return out


def centres(n_total: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    c = rng.standard_normal((max(100, n_total // 100), DIM)).astype(np.float32)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def vectors(rng: np.random.Generator, n: int, c: np.ndarray | None) -> np.ndarray:
    x = rng.standard_normal((n, DIM), dtype=np.float32)
    if c is not None:  # noise of norm ~1.33: cosine ~0.6 to the centre, ~0.35 between neighbours
        x *= np.float32(0.068)
        x += c[rng.integers(len(c), size=n)]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


REAL_SOURCE = WORK / "bench_indexing" / "index-fp32"  # real MiniLM vectors of Talk Python passages
REALCOV_TOPIC = 0.5  # share of a passage's latent vector that comes from its topic (cluster of ~100)


def real_fit() -> tuple[np.ndarray, np.ndarray]:
    """Mean and Cholesky factor of the covariance of real MiniLM passage vectors (cached)."""
    cache = WORK / "bench_query" / "realcov.npz"
    if cache.is_file():
        z = np.load(cache)
        return z["mu"], z["L"]
    from hmsearch.index import IndexStore

    try:
        store = IndexStore(REAL_SOURCE)
        x = np.concatenate([np.asarray(store.vectors(e.id)) for e in store.episodes()]).astype(np.float64)
    except Exception as exc:
        raise SystemExit(
            f"--distribution realcov needs real vectors from {REAL_SOURCE} (run bench_indexing.py first): {exc}"
        ) from None
    mu, cov = x.mean(0), np.cov(x.T)
    chol = np.linalg.cholesky(cov + 1e-6 * np.eye(DIM))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, mu=mu.astype(np.float32), L=chol.astype(np.float32), n=len(x))
    return mu.astype(np.float32), chol.astype(np.float32)


class Distribution:
    """clustered: N/100 random centres, cosine ~0.6 to the centre (full 384-d noise: hard within a
    cluster, easy for IVF); uniform: on the sphere (worst case for any ANN index); realcov: a
    Gaussian with the mean and covariance of real MiniLM passage vectors, with topic clusters of ~100
    (random-pair cosine 0.22, top-10 neighbour 0.51, participation-ratio dimension ~60, against 0.215,
    0.55 and 64 measured on 2,049 real Talk Python passages)."""

    def __init__(self, kind: str, n_total: int, seed: int) -> None:
        self.kind = kind
        self.c = centres(n_total, seed) if kind == "clustered" else None
        if kind == "realcov":
            self.mu, self.L = real_fit()
            rng = np.random.default_rng(seed + 3)
            self.topics = rng.standard_normal((max(100, n_total // 100), DIM)).astype(np.float32)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.kind != "realcov":
            return vectors(rng, n, self.c)
        a = np.float32(REALCOV_TOPIC)
        z = rng.standard_normal((n, DIM), dtype=np.float32) * np.float32(np.sqrt(1 - a * a))
        z += a * self.topics[rng.integers(len(self.topics), size=n)]
        x = z @ self.L.T
        x += self.mu
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x


def queries(n_total: int, nq: int, seed: int, distribution: str) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed + 2)
    qv = Distribution(distribution, n_total, seed).sample(rng, nq)
    vocab, p = vocabulary(), zipf_p()
    p = p.copy()
    p[:20] = 0  # the 20 commonest words act like stopwords: a real question rarely rests on them
    p /= p.sum()
    texts = [" ".join(vocab[rng.choice(VOCAB, size=int(rng.integers(2, 6)), p=p)]) + "?" for _ in range(nq)]
    return qv, texts


def index_dir(n: int, distribution: str) -> Path:
    return WORK / "bench_query" / f"{distribution}-{n}"


# ---- child: build ------------------------------------------------------------------------
def child_build(n: int, seed: int, distribution: str) -> dict:
    from hmsearch.chunk import ChunkSettings
    from hmsearch.index import IndexStore
    from hmsearch.types import Episode, Passage, Sentence

    root = index_dir(n, distribution)
    shutil.rmtree(root, ignore_errors=True)
    store = IndexStore(root)
    dist = Distribution(distribution, n, seed)
    vocab, p = vocabulary(), zipf_p()
    per = [n // EPISODES + (1 if e < n % EPISODES else 0) for e in range(EPISODES)]
    gen_s = write_s = 0.0
    with store.writing():
        store.ensure(embedding_model=MODEL, dim=DIM, chunking=ChunkSettings().to_dict())
        for e, count in enumerate(per):
            t = time.perf_counter()
            rng = np.random.default_rng(seed * 1000 + e)
            vecs = dist.sample(rng, count)
            texts = sentences(rng, count, vocab, p)
            eid = f"synthetic-{e:02d}"
            passages = [
                Passage(start=i * 45.0, end=i * 45.0 + 60.0, sentences=(Sentence(i * 45.0, i * 45.0 + 60.0, text),))
                for i, text in enumerate(texts)
            ]
            ep = Episode(
                id=eid,
                title=f"Synthetic episode {e}",
                duration=count * 45.0 + 15,
                n_passages=count,
                source="synthetic",
                language="en",
                content_hash=f"{seed}-{n}-{e}",
            )
            gen_s += time.perf_counter() - t
            t = time.perf_counter()
            store.put_episode(ep, passages, vecs)
            write_s += time.perf_counter() - t
            del vecs, texts, passages
        t = time.perf_counter()
        store._sweep()
        store.dense()
        faiss_s = time.perf_counter() - t
        t = time.perf_counter()
        store.lexical()
        bm25_s = time.perf_counter() - t
    disk = {sub: sum(f.stat().st_size for f in (root / sub).rglob("*") if f.is_file()) for sub in ("segments", "cache")}
    return {
        "generate_s": round(gen_s, 2),
        "put_episode_s": round(write_s, 2),
        "faiss_cache_build_s": round(faiss_s, 2),
        "bm25_build_s": round(bm25_s, 2),
        "disk_mb": {k: round(v / 2**20, 1) for k, v in disk.items()},
        "build_peak_rss_mb": round(peak_rss_mb(), 1),
    }


# ---- child: query ------------------------------------------------------------------------
class FixedQueryEncoder:
    """Stands in for the query encoder in query.search: returns the pre-computed query vector."""

    name = MODEL

    def __init__(self) -> None:
        from hmsearch.embed import card_for

        self.card = card_for(MODEL)
        self.q = np.zeros(DIM, dtype=np.float32)

    def encode_queries(self, texts):
        return self.q.reshape(1, -1)


def timer(fn) -> float:
    t = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - t) / 1e6  # ms


def summary(ms: list[float]) -> dict:
    return {"p50_ms": round(median(ms), 3), "p95_ms": round(pct(ms, 95), 3), "n": len(ms)}


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[f >= 0].tolist()) & set(t.tolist())) / len(t) for f, t in zip(found, truth)]))


def child_query(n: int, seed: int, distribution: str, nq: int, rounds: int, ann: bool) -> dict:
    import faiss

    from hmsearch.index import IndexStore
    from hmsearch.query import Query, search
    from hmsearch.query.retrieve import CANDIDATES
    from hmsearch.text import analyze

    out: dict = {"faiss_omp_threads": faiss.omp_get_max_threads()}
    mem = {"after_imports": round(rss_mb(), 1)}
    root = index_dir(n, distribution)
    store = IndexStore(root)
    t = time.perf_counter()
    store.require()
    index = store.dense()
    t_faiss = time.perf_counter() - t
    t = time.perf_counter()
    lexical = store.lexical()
    t_bm25 = time.perf_counter() - t
    out["load_s"] = {"manifest_and_faiss": round(t_faiss, 3), "bm25": round(t_bm25, 3)}
    mem["after_store_load"] = round(rss_mb(), 1)
    assert index.size == n, (index.size, n)

    # The bare library. Since hmsearch switches to HNSW above a size (store.index_kind), "raw" is a
    # bare .search() on the very FAISS index object hmsearch searches (same work, same settings);
    # a separate exact IndexFlatIP over the same segment vectors gives the truth for recall and
    # the exact-search latency.
    kind = store.index_kind()
    out["hmsearch_index_kind"] = kind
    out["hmsearch_index_type"] = type(index.faiss).__name__
    raw = index.faiss
    t = time.perf_counter()
    exact = faiss.IndexFlatIP(DIM)
    for e in store.episodes():
        exact.add(np.ascontiguousarray(store.vectors(e.id)))
    out["raw_flat_build_s"] = round(time.perf_counter() - t, 3)
    mem["after_raw_flat"] = round(rss_mb(), 1)
    bm25 = lexical.retriever

    qv, qtexts = queries(n, nq, seed, distribution)
    qterms = [list(dict.fromkeys(analyze(q, "en"))) for q in qtexts]
    emb = FixedQueryEncoder()

    def q1(i: int) -> np.ndarray:
        return np.ascontiguousarray(qv[i : i + 1])

    def ours_vec(i: int):
        # What IndexStore.search_vectors did: FAISS on one thread, then (score, episode, passage).
        scores, rows = store.dense().search(qv[i], K)
        table = store.rows()
        return [(float(score), *table.location(int(row))) for score, row in zip(scores, rows)]

    def ours_sem(i: int):
        emb.q = qv[i]
        return search(store, emb, qtexts[i], k=K, mode="semantic")

    def ours_hyb(i: int):
        emb.q = qv[i]
        return search(store, emb, qtexts[i], k=K, mode="hybrid")

    nthreads = faiss.omp_get_max_threads()

    def one_thread(fn):
        faiss.omp_set_num_threads(1)
        try:
            return fn()
        finally:
            faiss.omp_set_num_threads(nthreads)

    paths = {
        "raw_faiss_k10": lambda i: raw.search(q1(i), K),
        "raw_faiss_k10_1thread": lambda i: one_thread(lambda: raw.search(q1(i), K)),
        "ours_search_vectors_k10": ours_vec,
        "raw_faiss_k100": lambda i: raw.search(q1(i), CANDIDATES),
        # hmsearch searches one query vector on one FAISS thread (DenseIndex.search): the same work
        "raw_faiss_k100_1thread": lambda i: one_thread(lambda: raw.search(q1(i), CANDIDATES)),
        **({} if kind == "flat" else {"exact_flat_k10": lambda i: exact.search(q1(i), K)}),
        "ours_search_semantic": ours_sem,
        "raw_bm25_get_scores": lambda i: bm25.get_scores(qterms[i]),
        "ours_lexical_scores": lambda i: lexical.scores(Query(qtexts[i], store).terms),
        "ours_search_hybrid": ours_hyb,
        "ours_search_hybrid_1thread": lambda i: one_thread(lambda: ours_hyb(i)),
    }
    # Warm: one pass over a few queries (loads the episode JSON into the chunk cache, FreeDict, ...).
    t = time.perf_counter()
    ours_hyb(0)
    out["first_hybrid_query_s"] = round(time.perf_counter() - t, 3)
    for i in range(min(3, nq)):
        for f in paths.values():
            f(i)
    times: dict[str, list[float]] = {k: [] for k in paths}
    per_query_hybrid_ratio = []
    names = list(paths)
    for r in range(rounds):
        for i in range(nq):
            order = names if (i + r) % 2 == 0 else names[::-1]
            got = {}
            for name in order:
                got[name] = timer(lambda: paths[name](i))  # noqa: B023  (called at once, in this iteration)
                times[name].append(got[name])
            per_query_hybrid_ratio.append(
                got["ours_search_hybrid"] / (got["raw_faiss_k100"] + got["raw_bm25_get_scores"])
            )
    mem["after_warm_queries"] = round(rss_mb(), 1)
    lat = {k: summary(v) for k, v in times.items()}
    m = {k: median(v) for k, v in times.items()}
    out["latency"] = lat
    out["ratios"] = {
        "search_vectors/faiss_k10": round(m["ours_search_vectors_k10"] / m["raw_faiss_k10"], 3),
        "search_semantic/faiss_k100": round(m["ours_search_semantic"] / m["raw_faiss_k100"], 3),
        "lexical_scores/bm25_get_scores": round(m["ours_lexical_scores"] / m["raw_bm25_get_scores"], 3),
        "search_hybrid/(faiss_k100+bm25)": round(
            m["ours_search_hybrid"] / (m["raw_faiss_k100"] + m["raw_bm25_get_scores"]), 3
        ),
        "search_hybrid/(faiss_k100+bm25)_per_query_median": round(median(per_query_hybrid_ratio), 3),
        "faiss_k10_default_threads/1thread": round(m["raw_faiss_k10"] / m["raw_faiss_k10_1thread"], 3),
        "search_hybrid_1thread/(faiss_k100+bm25)": round(
            m["ours_search_hybrid_1thread"] / (m["raw_faiss_k100"] + m["raw_bm25_get_scores"]), 3
        ),
        "search_hybrid/(faiss_k100_1thread+bm25)": round(
            m["ours_search_hybrid"] / (m["raw_faiss_k100_1thread"] + m["raw_bm25_get_scores"]), 3
        ),
    }
    out["load_during"] = load()
    # Sanity: our dense top-10 equals bare FAISS's.
    same = all(
        [(r[1], r[2]) for r in ours_vec(i)] == [store.rows().location(int(x)) for x in raw.search(q1(i), K)[1][0]]
        for i in range(min(5, nq))
    )
    out["search_vectors_matches_raw"] = same
    _, truth = exact.search(qv, K)
    got = np.array([[x for x in raw.search(q1(i), K)[1][0]] for i in range(nq)])
    out["hmsearch_dense_recall@10_vs_exact"] = round(recall(got, truth), 4)
    # Drop the store (the closures above hold these names, so they are emptied rather than deleted).
    store = index = raw = lexical = bm25 = None
    gc.collect()
    mem["after_dropping_store"] = round(rss_mb(), 1)

    if ann:
        out["ann"] = ann_section(exact, qv, n, mem)
    out["memory_mb"] = mem
    out["raw_flat_bytes_mb"] = round(n * DIM * 4 / 2**20, 1)
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return out


def ann_section(raw, qv: np.ndarray, n: int, mem: dict) -> dict:
    import faiss

    xb = faiss.rev_swig_ptr(raw.get_xb(), n * DIM).reshape(n, DIM)  # a view, no copy
    nlat = min(len(qv), 200)
    t = time.perf_counter()
    _, truth = raw.search(qv, K)
    flat_batch_s = time.perf_counter() - t
    res: dict = {
        "flat": {
            "recall@10": 1.0,
            "batch_search_s_per_query_ms": round(flat_batch_s / len(qv) * 1e3, 3),
            "bytes_mb": round(n * DIM * 4 / 2**20, 1),
        }
    }

    def single_latency(index) -> dict:
        ms = []
        for i in range(nlat):
            q = np.ascontiguousarray(qv[i : i + 1])
            ms.append(timer(lambda: index.search(q, K)))  # noqa: B023  (called at once)
        return summary(ms)

    res["flat"].update(single_latency(raw))

    # HNSW
    t = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = HNSW_EFC
    hnsw.add(xb)
    build = time.perf_counter() - t
    mem["with_hnsw"] = round(rss_mb(), 1)
    res["hnsw_M32"] = {
        "build_s": round(build, 2),
        "bytes_mb": round(len(faiss.serialize_index(hnsw)) / 2**20, 1),
        "efConstruction": HNSW_EFC,
    }
    for ef in EF_SEARCH:
        hnsw.hnsw.efSearch = ef
        _, found = hnsw.search(qv, K)
        res["hnsw_M32"][f"efSearch{ef}"] = {"recall@10": round(recall(found, truth), 4), **single_latency(hnsw)}
        log(f"  hnsw ef{ef}: {res['hnsw_M32'][f'efSearch{ef}']}")
    del hnsw
    gc.collect()
    if not NPROBES:
        return res

    # IVF-Flat
    nlist = round(4 * math.sqrt(n))
    ntrain = min(n, 39 * nlist)
    rng = np.random.default_rng(0)
    train = xb[np.sort(rng.choice(n, size=ntrain, replace=False))] if ntrain < n else xb
    t = time.perf_counter()
    quantizer = faiss.IndexFlatIP(DIM)
    ivf = faiss.IndexIVFFlat(quantizer, DIM, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.train(np.ascontiguousarray(train))
    train_s = time.perf_counter() - t
    del train
    t = time.perf_counter()
    ivf.add(xb)
    add_s = time.perf_counter() - t
    mem["with_ivf"] = round(rss_mb(), 1)
    res["ivf_flat"] = {
        "nlist": nlist,
        "train_points": ntrain,
        "train_s": round(train_s, 2),
        "add_s": round(add_s, 2),
        "build_s": round(train_s + add_s, 2),
        "bytes_mb": round(len(faiss.serialize_index(ivf)) / 2**20, 1),
    }
    for nprobe in NPROBES:
        ivf.nprobe = nprobe
        _, found = ivf.search(qv, K)
        res["ivf_flat"][f"nprobe{nprobe}"] = {"recall@10": round(recall(found, truth), 4), **single_latency(ivf)}
        log(f"  ivf nprobe{nprobe}: {res['ivf_flat'][f'nprobe{nprobe}']}")
    del ivf, quantizer
    gc.collect()
    return res


def real_vectors(folder: str, nq: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """All passage vectors of an existing hmsearch index (read only); nq random ones are held out
    as queries (a passage's neighbours are then other passages, as a question's would be)."""
    from hmsearch.index import IndexStore

    store = IndexStore(Path(folder))
    x = np.concatenate([np.asarray(store.vectors(e.id)) for e in store.episodes()])
    held = np.zeros(len(x), dtype=bool)
    held[np.random.default_rng(seed).choice(len(x), size=nq, replace=False)] = True
    return np.ascontiguousarray(x[~held]), np.ascontiguousarray(x[held])


def child_ann(n: int, seed: int, distribution: str, nq: int, vectors_from: str | None = None) -> dict:
    """Bare FAISS only (no hmsearch index): flat, HNSW and IVF over the same generated vectors."""
    import faiss

    mem = {"after_imports": round(rss_mb(), 1)}
    t = time.perf_counter()
    raw = faiss.IndexFlatIP(DIM)
    if vectors_from:
        base, qv = real_vectors(vectors_from, nq, seed)
        n = len(base)
        raw.add(base)
        del base
    else:
        dist = Distribution(distribution, n, seed)
        block = 100_000
        for e, start in enumerate(range(0, n, block)):
            raw.add(dist.sample(np.random.default_rng(seed * 1000 + e), min(block, n - start)))
        qv, _ = queries(n, nq, seed, distribution)
    out: dict = {
        "generate_and_flat_build_s": round(time.perf_counter() - t, 2),
        "faiss_omp_threads": faiss.omp_get_max_threads(),
        "n": n,
    }
    mem["after_flat"] = round(rss_mb(), 1)
    out["ann"] = ann_section(raw, qv, n, mem)
    out["memory_mb"] = mem
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    out["load_during"] = load()
    return out


# ---- parent ------------------------------------------------------------------------------
def run_child(args: list[str]) -> dict:
    ann = [
        "--hnsw-efc",
        str(HNSW_EFC),
        "--ef-search",
        ",".join(map(str, EF_SEARCH)),
        "--nprobe",
        ",".join(map(str, NPROBES)),
        "--episodes",
        str(EPISODES),
    ]
    proc = subprocess.run([PY, __file__, *args, *ann], stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    global HNSW_EFC, EF_SEARCH, NPROBES, EPISODES
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--distribution", choices=["clustered", "uniform", "realcov"], default="clustered")
    parser.add_argument(
        "--ann-only",
        action="store_true",
        help="only bare FAISS flat/HNSW/IVF (build, latency, recall); no hmsearch index",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--queries", type=int, default=0, help="timed queries per round (default: 200, 60 at 1M)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-ann", action="store_true", help="skip HNSW/IVF")
    parser.add_argument("--keep", action="store_true", help="keep the scratch indexes in benchmarks/.work")
    parser.add_argument("--tag", default="", help="suffix for the result files")
    parser.add_argument("--hnsw-efc", type=int, default=40, help="HNSW efConstruction (hmsearch itself uses 80)")
    parser.add_argument("--ef-search", default="64,128", help="HNSW efSearch values")
    parser.add_argument("--nprobe", default="8,16", help="IVF nprobe values ('' skips IVF)")
    parser.add_argument(
        "--vectors-from",
        metavar="INDEX_DIR",
        help="with --ann-only: real vectors of an existing hmsearch index (read only), "
        "200 held out as queries; --sizes is ignored",
    )
    parser.add_argument(
        "--episodes",
        type=int,
        default=EPISODES,
        help="fake episodes the passages are split into (a real archive has ~180 passages an episode)",
    )
    parser.add_argument("--child", choices=["build", "query", "ann"])
    parser.add_argument("--size", type=int)
    args = parser.parse_args()

    EPISODES = args.episodes
    HNSW_EFC = args.hnsw_efc
    EF_SEARCH = tuple(int(x) for x in args.ef_search.split(",") if x.strip())
    NPROBES = tuple(int(x) for x in args.nprobe.split(",") if x.strip())
    if args.child == "build":
        print(json.dumps(child_build(args.size, args.seed, args.distribution)))
        return
    if args.child == "ann":
        print(json.dumps(child_ann(args.size, args.seed, args.distribution, args.queries, args.vectors_from)))
        return
    if args.child == "query":
        print(
            json.dumps(child_query(args.size, args.seed, args.distribution, args.queries, args.rounds, not args.no_ann))
        )
        return

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.vectors_from:
        if not args.ann_only:
            raise SystemExit("--vectors-from needs --ann-only")
        sizes, args.distribution = [0], f"real vectors of {args.vectors_from}"
    results = {}
    name = "bench_query" + (f"_{args.tag}" if args.tag else "")
    data = {
        "distribution": args.distribution,
        "ann_only": args.ann_only,
        "hnsw_efConstruction": HNSW_EFC,
        "seed": args.seed,
        "episodes_per_index": EPISODES,
        "dim": DIM,
        "vocabulary": VOCAB,
        "words_per_passage": "8-16",
        "rounds": args.rounds,
        "load_at_start": load(),
        "sizes": results,
    }
    for n in sizes:
        nq = args.queries or (60 if n >= 1_000_000 else 200)
        if args.ann_only:
            log(f"N={n}: bare FAISS flat / HNSW / IVF on {args.distribution} vectors ...")
            child = run_child(
                [
                    "--child",
                    "ann",
                    "--size",
                    str(n),
                    "--seed",
                    str(args.seed),
                    "--queries",
                    str(max(nq, 200)),
                    *(
                        ["--vectors-from", args.vectors_from]
                        if args.vectors_from
                        else ["--distribution", args.distribution]
                    ),
                ]
            )
            results[str(child["n"])] = {**child, "queries": max(nq, 200)}
            write_results(name, data, markdown(data))
            continue
        log(f"N={n}: building the hmsearch index ...")
        build = run_child(
            ["--child", "build", "--size", str(n), "--seed", str(args.seed), "--distribution", args.distribution]
        )
        log(f"N={n}: {build}")
        log(f"N={n}: querying ({nq} queries x {args.rounds} rounds{'' if args.no_ann else ', then HNSW/IVF'}) ...")
        query = run_child(
            [
                "--child",
                "query",
                "--size",
                str(n),
                "--seed",
                str(args.seed),
                "--distribution",
                args.distribution,
                "--queries",
                str(nq),
                "--rounds",
                str(args.rounds),
                *(["--no-ann"] if args.no_ann else []),
            ]
        )
        results[str(n)] = {"build": build, **query, "queries": nq}
        log(f"N={n}: ratios {query['ratios']}")
        if not args.keep:
            shutil.rmtree(index_dir(n, args.distribution), ignore_errors=True)
        write_results(name, data, markdown(data))  # after each size, so a long run leaves partial results
    print(markdown(data))


def markdown(d: dict) -> str:
    if d.get("ann_only"):
        L = [
            f"# Approximate FAISS indexes on {d['distribution']} synthetic vectors (384-d, seeded; bare FAISS only)",
            "",
        ]
        return _ann_table(L, d)
    L = [
        f"# Query latency ({d['distribution']} synthetic vectors, 384-d; {d['episodes_per_index']} episodes per index; "
        f"short pseudo-word sentences, vocabulary {d['vocabulary']})",
        "",
        "Warm single queries, milliseconds, p50 / p95; the query vector is injected (no model time).",
        "",
        "| N | raw FAISS k10 | store.dense().search k10 + rows | raw FAISS k100 | search semantic | raw bm25s | lexical scores "
        "| search hybrid | hybrid / (FAISS k100 + bm25s) (target ≤ 1.5) | hybrid / (FAISS k100 on 1 thread, as hmsearch runs it, + bm25s) | load 1/5/15 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    keys1 = ["raw_faiss_k10", "raw_faiss_k10_1thread", "ours_search_hybrid", "ours_search_hybrid_1thread"]
    keys = [
        "raw_faiss_k10",
        "ours_search_vectors_k10",
        "raw_faiss_k100",
        "ours_search_semantic",
        "raw_bm25_get_scores",
        "ours_lexical_scores",
        "ours_search_hybrid",
    ]
    full = {n: r for n, r in d["sizes"].items() if "latency" in r}
    for n, r in full.items():
        lat = r["latency"]
        cells = [f"{lat[k]['p50_ms']:.2f} / {lat[k]['p95_ms']:.2f}" for k in keys]
        same = r["ratios"].get("search_hybrid/(faiss_k100_1thread+bm25)", "")
        L.append(
            f"| {int(n):,} | " + " | ".join(cells) + f" | **{r['ratios']['search_hybrid/(faiss_k100+bm25)']}** | "
            f"**{same}** | {' '.join(map(str, r['load_during']))} |"
        )
    L += [
        "",
        "FAISS OpenMP threads: default (all cores) against 1 (faiss.omp_set_num_threads(1)) for a single query, "
        "p50 / p95 ms:",
        "",
        "| N | raw FAISS k10 | raw FAISS k10, 1 thread | search hybrid | search hybrid, 1 thread "
        "| hybrid 1 thread / (FAISS k100 + bm25s) |",
        "|---|---|---|---|---|---|",
    ]
    for n, r in full.items():
        lat = r["latency"]
        if "raw_faiss_k10_1thread" not in lat:
            continue
        L.append(
            f"| {int(n):,} | "
            + " | ".join(f"{lat[k]['p50_ms']:.2f} / {lat[k]['p95_ms']:.2f}" for k in keys1)
            + f" | {r['ratios']['search_hybrid_1thread/(faiss_k100+bm25)']} |"
        )
    L += [
        "",
        "| N | hmsearch FAISS index | its recall@10 vs exact | exact flat k10 p50 ms | dense().search + rows / FAISS "
        "| semantic / FAISS k100 | lexical / bm25s | first hybrid query (cold caches) s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, r in full.items():
        x = r["ratios"]
        ex = r["latency"].get("exact_flat_k10", r["latency"]["raw_faiss_k10"])["p50_ms"]
        L.append(
            f"| {int(n):,} | {r.get('hmsearch_index_type', 'IndexFlatIP')} | {r.get('hmsearch_dense_recall@10_vs_exact', 1.0)} "
            f"| {ex:.2f} | {x['search_vectors/faiss_k10']} | {x['search_semantic/faiss_k100']} | "
            f"{x['lexical_scores/bm25_get_scores']} | {r['first_hybrid_query_s']} |"
        )
    L += [
        "",
        "Build and memory:",
        "",
        "| N | put_episode s | FAISS cache build s | BM25 build s | load FAISS / BM25 s | disk segments / cache MB "
        "| RSS after load MB | RSS after warm queries MB | build peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n, r in full.items():
        b, m = r["build"], r["memory_mb"]
        L.append(
            f"| {int(n):,} | {b['put_episode_s']} | {b['faiss_cache_build_s']} | {b['bm25_build_s']} | "
            f"{r['load_s']['manifest_and_faiss']} / {r['load_s']['bm25']} | {b['disk_mb']['segments']} / "
            f"{b['disk_mb']['cache']} | {m['after_store_load']} (imports {m['after_imports']}) | "
            f"{m['after_warm_queries']} | {b['build_peak_rss_mb']} |"
        )
    return _ann_table(L, d)


def _ann_table(L: list[str], d: dict) -> str:
    if any("ann" in r for r in d["sizes"].values()):
        L += [
            "",
            "Approximate indexes (bare FAISS, single-query latency p50 ms, recall@10 vs exact flat):",
            "",
            "| N | index | build s | bytes MB | setting | p50 ms | p95 ms | recall@10 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for n, r in d["sizes"].items():
            a = r.get("ann")
            if not a:
                continue
            f = a["flat"]
            L.append(
                f"| {int(n):,} | Flat (exact) | {r.get('raw_flat_build_s', r.get('generate_and_flat_build_s'))} | {f['bytes_mb']} | — | {f['p50_ms']} | {f['p95_ms']} | 1.0 |"
            )
            h = a["hnsw_M32"]
            for ef in sorted(int(key[8:]) for key in h if key.startswith("efSearch")):
                s = h[f"efSearch{ef}"]
                L.append(
                    f"| {int(n):,} | HNSW M=32 efC {h.get('efConstruction', 40)} | {h['build_s']} | {h['bytes_mb']} | efSearch {ef} | {s['p50_ms']} | "
                    f"{s['p95_ms']} | {s['recall@10']} |"
                )
            v = a.get("ivf_flat", {})
            for p in sorted(int(key[6:]) for key in v if key.startswith("nprobe")):
                s = v[f"nprobe{p}"]
                L.append(
                    f"| {int(n):,} | IVF-Flat nlist {v['nlist']} | {v['build_s']} (train {v['train_s']}) | "
                    f"{v['bytes_mb']} | nprobe {p} | {s['p50_ms']} | {s['p95_ms']} | {s['recall@10']} |"
                )
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()
