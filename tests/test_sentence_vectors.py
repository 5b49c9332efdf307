"""Sentence vectors stored at index time (issue 23): `index` writes them per episode version, `ask`
reads them instead of embedding its candidate sentences, a missing or damaged file falls back to
embedding, and `reindex` and the writer's sweep keep them in step with the episodes. Real index
(the sample plus an SRT episode), the hashing stand-in encoder."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from hmsearch.chunk import sentences_from_passages
from hmsearch.index import IndexStore
from hmsearch.index import sentences as stored
from hmsearch.query.service import AskRequest, QueryService

from helpers import HashingEncoder, index_sample

EXTRA = {
    "ep-cards": [
        "What makes a loyalty card work?",
        "A loyalty card works when the reward is close enough to see.",
        "Nobody collects stamps for a reward that is a year away.",
        "Ten stamps is the most people will collect.",
    ]
}
QUESTION = "When does a loyalty card work?"
answer_module = importlib.import_module("hmsearch.query.answer")  # the package exports a function of that name


def files(store: IndexStore) -> list[Path]:
    folder = store.model_cache(stored.KIND)
    return sorted(folder.glob("*.npz")) if folder.is_dir() else []


def ask(store: IndexStore) -> tuple[list[str], int]:
    answer_module._STORED.clear()
    encoder = HashingEncoder()
    result = QueryService(store.root, encoder=encoder).ask(AskRequest(QUESTION, k=3))
    return [a.text for a in result.answer], encoder.calls


def test_index_stores_each_episodes_sentence_vectors(tmp_path: Path):
    store = index_sample(tmp_path, extra=EXTRA)
    assert len(files(store)) == len(store.episodes()) == 2
    for episode in store.episodes():
        said = sentences_from_passages(store.passages(episode.id))
        found = stored.load(stored.path_for(store, store.record(episode.id).segment), store.require().dim)
        assert found is not None and len(found) == len(said)
        expected = HashingEncoder().encode_documents([s.text for s in said])
        got = np.stack([found[round(s.start, 3)] for s in said])
        assert np.abs(got - expected).max() < 1e-3  # float16 of the same vectors


def test_ask_reads_stored_vectors_and_embeds_only_without_them(tmp_path: Path):
    store = index_sample(tmp_path, extra=EXTRA)
    answer, calls = ask(store)
    assert answer and answer[0] == "A loyalty card works when the reward is close enough to see."
    assert calls <= 2  # the question, and nothing else
    for f in files(store):
        f.unlink()
    again, calls_without = ask(store)
    assert again == answer and calls_without > calls + 2  # every candidate sentence embedded now
    for f in files(store):
        raise AssertionError(f"a reader wrote {f}")


def test_a_damaged_file_is_embedded_around(tmp_path: Path, caplog):
    store = index_sample(tmp_path, extra=EXTRA)
    answer, _ = ask(store)
    for f in files(store):
        f.write_bytes(b"not a numpy file")
    again, calls = ask(store)
    assert again == answer and calls > 2
    assert "damaged" in caplog.text


def test_reindex_writes_them_for_the_new_versions_and_the_sweep_drops_the_old(tmp_path: Path):
    from hmsearch.chunk import ChunkSettings
    from hmsearch.ingest.reindex import reindex

    store = index_sample(tmp_path, extra=EXTRA)
    before = {f.name for f in files(store)}
    with store.writing():
        reindex(store, HashingEncoder(), settings=ChunkSettings.from_dict(store.require().chunking) or ChunkSettings())
    store = IndexStore(store.root)
    with store.writing():  # the next writer sweeps
        pass
    after = {f.name for f in files(store)}
    assert len(after) == 2 and not (before & after)
    live = {store.record(e.id).segment for e in store.episodes()}
    assert {name.rsplit("-", 1)[0] for name in after} == live


def test_the_second_stage_reads_stored_vectors_and_stands_aside_without_them(tmp_path: Path):
    from hmsearch.query.rerank import rerank_hits
    from hmsearch.query.retrieve import Query
    from hmsearch.query.service import search

    store = index_sample(tmp_path, extra=EXTRA)
    encoder = HashingEncoder()
    query = Query("how many stamps", store, encoder.card)
    hits = search(store, encoder, query, k=10, second_stage=False)
    assert len(hits) >= 2
    qvec = query.vector(encoder)
    best = [max(float(encoder.encode_documents([s.text])[0] @ qvec) for s in h.sentences) for h in hits]
    ranked = rerank_hits(store, encoder, query, hits, weight=1.0)
    assert [h.start for h in ranked] == [hits[i].start for i in np.argsort(-np.array(best), kind="stable")]
    for f in files(store):
        f.unlink()
    answer_module._STORED.clear()
    assert rerank_hits(store, encoder, query, hits, weight=1.0) == hits  # no stored vectors: first stage
