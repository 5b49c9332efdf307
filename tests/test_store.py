"""The index on disk: add/replace/remove, atomic commits, damage, locks, model mismatch."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from hmsearch.errors import IndexLockedError, IndexStateError, NotFoundError
from hmsearch.index.store import PREV_MANIFEST, IndexStore
from hmsearch.types import Episode, Passage, Sentence

from helpers import nearest

DIM = 8


def make_episode(eid: str, n: int, h: str = "h1") -> tuple[Episode, list[Passage], np.ndarray]:
    rng = np.random.default_rng(abs(hash((eid, h))) % 2**32)
    vecs = rng.normal(size=(n, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    chunks = [
        Passage(i * 10.0, i * 10.0 + 12, (Sentence(i * 10.0, i * 10.0 + 12, f"{eid} passage {i}"),)) for i in range(n)
    ]
    ep = Episode(id=eid, title=eid.upper(), duration=n * 10.0, n_passages=n, source=f"/x/{eid}.vtt", content_hash=h)
    return ep, chunks, vecs


def put(store: IndexStore, eid: str, n: int, h: str = "h1") -> np.ndarray:
    ep, chunks, vecs = make_episode(eid, n, h)
    store.ensure(embedding_model="m", dim=DIM, chunking={"c": 1})
    store.put_episode(ep, chunks, vecs)
    return vecs


def test_add_search_replace_remove(tmp_path):
    store = IndexStore(tmp_path / "ix")
    with store.writing():
        a = put(store, "a", 3)
        b = put(store, "b", 4)
    fresh = IndexStore(tmp_path / "ix")
    assert [e.id for e in fresh.episodes()] == ["a", "b"]
    score, eid, idx = nearest(fresh, b[2], k=1)[0]
    assert (eid, idx) == ("b", 2) and score == pytest.approx(1.0, abs=1e-5)
    assert nearest(fresh, a[0], k=1)[0][1:] == ("a", 0)
    with store.writing():
        put(store, "a", 2, h="h2")  # replaced: new content, fewer passages
        store.remove_episode("b")
    fresh = IndexStore(tmp_path / "ix")
    assert [(e.id, e.n_passages, e.content_hash) for e in fresh.episodes()] == [("a", 2, "h2")]
    assert fresh.dense().size == 2
    segments = sorted(p.name for p in (tmp_path / "ix" / "segments").iterdir())
    with store.writing():
        pass  # the next writer sweeps files no manifest names
    assert len(list((tmp_path / "ix" / "segments").iterdir())) <= len(segments)
    with pytest.raises(NotFoundError):
        fresh.episode("b")


def test_orphans_of_a_killed_write_are_swept_and_never_visible(tmp_path):
    store = IndexStore(tmp_path / "ix")
    with store.writing():
        put(store, "a", 3)
    # A run killed after writing segment files but before the manifest: files nobody names.
    seg = tmp_path / "ix" / "segments"
    (seg / "zombie-0123456789ab.npy").write_bytes(b"half")
    (seg / ".zombie-0123456789ab.json.tmp").write_bytes(b"half")
    assert [e.id for e in IndexStore(tmp_path / "ix").episodes()] == ["a"]
    with store.writing():
        pass
    assert not (seg / "zombie-0123456789ab.npy").exists() and not (seg / ".zombie-0123456789ab.json.tmp").exists()


def test_damaged_manifest_is_a_one_line_error_and_repair_restores_previous(tmp_path):
    store = IndexStore(tmp_path / "ix")
    with store.writing():
        put(store, "a", 3)
        put(store, "b", 2)
    (tmp_path / "ix" / "manifest.json").write_bytes(b'{"schema": 1, "episodes": [tru')
    with pytest.raises(IndexStateError) as err:
        IndexStore(tmp_path / "ix").episodes()
    msg = str(err.value)
    assert "manifest.json" in msg and "damaged" in msg and "\n" not in msg
    # Nothing is swept while the manifest is damaged, so the previous version is whole.
    with store.writing():
        done = store.repair()
    assert any("restored" in d for d in done)
    assert [e.id for e in IndexStore(tmp_path / "ix").episodes()] == ["a", "b"]  # b's files are intact: kept


def test_damaged_faiss_cache_is_rebuilt(tmp_path):
    store = IndexStore(tmp_path / "ix")
    with store.writing():
        vecs = put(store, "a", 5)
        store.finish()
    cache = next((tmp_path / "ix" / "cache").glob("*.faiss"))
    cache.write_bytes(cache.read_bytes()[:50])
    assert nearest(IndexStore(tmp_path / "ix"), vecs[4], k=1)[0][1:] == ("a", 4)


def test_damaged_segment_names_the_file_and_repair_drops_only_that_episode(tmp_path):
    store = IndexStore(tmp_path / "ix")
    with store.writing():
        put(store, "a", 3)
        vb = put(store, "b", 3)
    rec = json.loads((tmp_path / "ix" / "manifest.json").read_text())["episodes"][0]
    npy = tmp_path / "ix" / "segments" / f"{rec['segment']}.npy"
    npy.write_bytes(b"garbage")
    with pytest.raises(IndexStateError) as err:
        nearest(IndexStore(tmp_path / "ix"), vb[0], k=1)
    assert npy.name in str(err.value) and "\n" not in str(err.value)
    with store.writing():
        store.repair()
    fresh = IndexStore(tmp_path / "ix")
    assert [e.id for e in fresh.episodes()] == ["b"]
    assert nearest(fresh, vb[0], k=1)[0][1:] == ("b", 0)


def test_second_writer_is_refused_while_first_holds_the_lock(tmp_path):
    first, second = IndexStore(tmp_path / "ix"), IndexStore(tmp_path / "ix")
    with first.writing():
        with pytest.raises(IndexLockedError) as err, second.writing():
            pass
        assert "another hmsearch job" in str(err.value)
    with second.writing():  # free again once the first is done
        pass


def test_model_or_dimension_mismatch_is_refused(tmp_path):
    store = IndexStore(tmp_path / "ix")
    with store.writing():
        put(store, "a", 2)
        with pytest.raises(IndexStateError, match="embedding model 'm'"):
            store.ensure(embedding_model="other", dim=DIM, chunking={"c": 1})
        with pytest.raises(IndexStateError, match="chunk settings"):
            store.ensure(embedding_model="m", dim=DIM, chunking={"c": 2})


def test_previous_manifest_is_kept(tmp_path):
    store = IndexStore(tmp_path / "ix")
    with store.writing():
        put(store, "a", 2)
        put(store, "b", 2)
    prev = json.loads((tmp_path / "ix" / PREV_MANIFEST).read_text())
    assert [e["episode"] for e in prev["episodes"]] == ["a"]
    assert not [p for p in os.listdir(tmp_path / "ix") if p.endswith(".tmp")]


def test_episode_ids_with_dots_and_odd_characters(tmp_path):
    """Regression: 'python-3.7-and-beyond' once lost its files to Path.with_suffix."""
    store = IndexStore(tmp_path / "ix")
    ids = ["180-whats-new-in-python-3.7-and-beyond", "ep 1: ø/å?", "https://example.com/feed/guid?id=7"]
    with store.writing():
        vecs = {eid: put(store, eid, 2) for eid in ids}
        store.finish()
    fresh = IndexStore(tmp_path / "ix")
    for eid in ids:
        assert nearest(fresh, vecs[eid][1], k=1)[0][1:] == (eid, 1)
        assert len(fresh.passages(eid)) == 2


def test_index_kind_switches_to_hnsw_by_size_without_a_manual_rebuild(tmp_path, monkeypatch):
    store = IndexStore(tmp_path / "ix")
    with store.writing():
        vecs = np.concatenate([put(store, f"e{i}", 200, h=str(i)) for i in range(5)])
        store.finish()
    assert IndexStore(tmp_path / "ix").index_kind() == "flat"
    monkeypatch.setenv("HMSEARCH_EXACT_SEARCH_MAX", "500")  # as if the archive had grown past the limit
    big = IndexStore(tmp_path / "ix")
    assert big.index_kind() == "hnsw"
    index = big.dense().faiss
    assert hasattr(index, "hnsw") and index.ntotal == 1000
    # Recall@10 against exact search on these random vectors stays high.
    rows = [(f"e{i}", j) for i in range(5) for j in range(200)]
    hits = total = 0
    for q in vecs[:20]:
        exact = {rows[r] for r in np.argsort(-(vecs @ q))[:10]}
        hits += len(exact & {tuple(r[1:]) for r in nearest(big, q, 10)})
        total += 10
    assert hits / total >= 0.9
    assert nearest(big, vecs[123], 1)[0][1:] == ("e0", 123)


def test_index_kind_switches_to_ivfpq_beyond_hnsw_max(tmp_path, monkeypatch):
    """Past hnsw_max the cache is rebuilt as IVF-PQ (OPQ, ~sqrt(N) lists, re-ranked from 8-bit
    vectors), trained on a sample spread over every episode; saved and loaded like the others."""
    from hmsearch.index.dense import DenseIndex, training_sample

    store = IndexStore(tmp_path / "ix")
    with store.writing():
        vecs = np.concatenate([put(store, f"e{i}", 1000, h=str(i)) for i in range(6)])
        store.finish()
    monkeypatch.setenv("HMSEARCH_EXACT_SEARCH_MAX", "500")
    monkeypatch.setenv("HMSEARCH_HNSW_MAX", "5000")
    big = IndexStore(tmp_path / "ix")
    assert big.index_kind() == "ivfpq"
    assert big.dense().kind == "ivfpq" and big.dense().size == 6000
    assert big._dense_path().name.startswith("ivfpq-") and big._dense_path().is_file()
    reloaded = IndexStore(tmp_path / "ix").dense()  # from the saved cache, with its search settings
    assert reloaded.kind == "ivfpq" and reloaded.faiss.k_factor == 16
    rows = [(f"e{i}", j) for i in range(6) for j in range(1000)]
    found = sum(nearest(big, vecs[r], 1)[0][1:] == rows[r] for r in range(0, 6000, 97))
    assert found >= 0.9 * len(range(0, 6000, 97))  # a stored vector finds itself
    # the training sample strides over every batch, not only the first ones
    batches = [np.full((1000, 4), i, dtype=np.float32) for i in range(6)]
    sample = training_sample(iter(batches), 6000, 600)
    assert len(sample) == 600 and set(sample[:, 0]) == set(range(6))
    with pytest.raises(ValueError, match="unknown index kind"):
        DenseIndex.build("lsh", 4, lambda: iter(batches))


@pytest.mark.parametrize(("hnsw_max", "kind"), [(None, "hnsw"), (500, "ivfpq")])
def test_a_commit_leaves_one_dense_cache_of_any_kind(tmp_path, monkeypatch, hnsw_max, kind):
    """Review 2026-12b section 6: each commit past hnsw_max left the previous ivfpq-*.faiss behind
    (the sweep's pattern knew flat and hnsw only)."""
    monkeypatch.setenv("HMSEARCH_EXACT_SEARCH_MAX", "100")
    if hnsw_max is not None:
        monkeypatch.setenv("HMSEARCH_HNSW_MAX", str(hnsw_max))
    store = IndexStore(tmp_path / "ix")
    with store.writing():
        for i in range(6):
            put(store, f"e{i}", 100, h=str(i))
        store.finish()
    with store.writing():
        put(store, "e6", 100, h="6")
        store.finish()
    faiss_files = sorted(p.name for p in (tmp_path / "ix" / "cache").glob("*.faiss"))
    assert faiss_files == [store._dense_path().name] and faiss_files[0].startswith(f"{kind}-")
