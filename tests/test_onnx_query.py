"""The torch-free query path: the index's model exported to ONNX at index time, used by search and
ask through onnxruntime; anything wrong with it falls back to the torch model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from hmsearch.embed import load_encoder
from hmsearch.embed.onnx import CACHE_KIND, OnnxEncoder, eligible, export, load

from helpers import REPO, nearest, passages_of

TEXTS = [
    "Hvad skal salg gøre på sociale medier?",
    "what should sales do on social media",
    "a",
    "En længere dansk tekst om markedsføring og salg. " * 30,  # past the 256-token limit
    "Podcast " * 3,
]


@pytest.fixture(autouse=True)
def onnx_on(monkeypatch):
    monkeypatch.setenv("HMSEARCH_QUERY_ENGINE", "auto")  # conftest turns it off for the other tests


@pytest.fixture(scope="module")
def fp32():
    return load_encoder("all-MiniLM-L6-v2", role="index", precision="fp32")


@pytest.fixture(scope="module")
def exported(fp32, tmp_path_factory):
    folder = tmp_path_factory.mktemp("enc") / "encoder"
    assert export(fp32, folder)
    return folder


def test_export_reproduces_the_torch_model(fp32, exported):
    onnx = OnnxEncoder(exported)
    assert (onnx.name, onnx.dim, onnx.max_tokens) == (fp32.name, fp32.dim, fp32.max_tokens)
    assert onnx.count_tokens(TEXTS) == fp32.count_tokens(TEXTS)
    for got, ref in (
        (onnx.encode_queries(TEXTS), fp32.encode_queries(TEXTS)),
        (onnx.encode_documents(TEXTS[::-1]), fp32.encode_documents(TEXTS[::-1])),
    ):
        assert got.dtype == np.float32 and got.shape == ref.shape
        assert (got * ref).sum(axis=1).min() > 0.9999


def test_damaged_or_foreign_exports_are_not_used(exported, tmp_path, fp32):
    assert load(exported, fp32.name) is not None
    assert load(exported, "some/other-model") is None
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in exported.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "model.onnx").write_bytes(b"not a graph")
    assert load(broken, fp32.name) is None


def test_a_model_with_prefixes_is_exported_and_applies_them(fp32, tmp_path):
    """Prefixes are text, applied by every engine alike: an E5-style card exports and agrees."""
    from dataclasses import replace

    from hmsearch.embed.torch_st import TorchEncoder

    prompted = TorchEncoder(replace(fp32.card, query_prefix="query: ", passage_prefix="passage: "), precision="fp32")
    prompted._model = fp32.model
    assert eligible(prompted.model)
    assert export(prompted, tmp_path / "enc")
    onnx = OnnxEncoder(tmp_path / "enc")
    assert onnx.prefixes() == ("query: ", "passage: ") and onnx.max_tokens == prompted.max_tokens
    assert (onnx.encode_queries(TEXTS) * prompted.encode_queries(TEXTS)).sum(axis=1).min() > 0.9999
    assert (onnx.encode_documents(TEXTS) * prompted.encode_documents(TEXTS)).sum(axis=1).min() > 0.9999
    # ...and the prefix matters: without it the query vectors differ.
    assert (onnx.encode_queries(TEXTS[:2]) * fp32.encode_queries(TEXTS[:2])).sum(axis=1).min() < 0.999


def test_a_model_that_is_not_mean_pooled_is_not_exported(fp32, tmp_path):
    pooling = fp32.model[1]
    saved = pooling.pooling_mode if hasattr(pooling, "pooling_mode") else None
    try:
        if saved is not None:
            pooling.pooling_mode = "cls"
        else:
            pooling.pooling_mode_mean_tokens, pooling.pooling_mode_cls_token = False, True
        assert not eligible(fp32.model)
        assert not export(fp32, tmp_path / "enc")
        assert not (tmp_path / "enc").exists()
    finally:
        if saved is not None:
            pooling.pooling_mode = saved
        else:
            pooling.pooling_mode_mean_tokens, pooling.pooling_mode_cls_token = True, False


@pytest.mark.slow
def test_ask_from_the_shell_runs_without_torch_and_agrees_with_torch(hermetic):
    sample_dir = hermetic / "audio"
    sample_dir.mkdir()
    for f in ("hm-sample-001.mp3", "hm-sample-001.json"):
        shutil.copy(REPO / "audio" / f, sample_dir)
    exe = Path(sys.executable).with_name("hmsearch")
    index = hermetic / "index"
    env = {**os.environ, "HMSEARCH_NO_SERVER": "1"}
    assert (
        subprocess.run(
            [str(exe), "--index-dir", str(index), "index", str(sample_dir), "--embedding-model", "all-MiniLM-L6-v2"],
            env=env,
            capture_output=True,
            text=True,
        ).returncode
        == 0
    )
    assert len(list((index / "cache").glob("encoder-*"))) == 1
    question = "hvad skal salg gøre på sociale medier"
    code = (
        "import sys; from hmsearch.cli import cli\n"
        f"sys.argv = ['hmsearch', '--index-dir', {str(index)!r}, 'ask', {question!r}, '--json']\n"
        "try:\n    cli(prog_name='hmsearch')\nexcept SystemExit: pass\n"
        "print('torch' in sys.modules, 'sentence_transformers' in sys.modules, file=sys.stderr)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.stderr.strip().endswith("False False"), res.stderr
    fast = json.loads(res.stdout)
    slow = json.loads(
        subprocess.run(
            [str(exe), "--index-dir", str(index), "ask", question, "--json"],
            capture_output=True,
            text=True,
            env={**env, "HMSEARCH_QUERY_ENGINE": "torch"},
            timeout=300,
        ).stdout
    )
    key = lambda out: [(a["episode"], a["start"]) for a in out["answer"]]
    assert fast["answer"] and key(fast) == key(slow)
    assert [(h["episode"], h["start"]) for h in fast["hits"]] == [(h["episode"], h["start"]) for h in slow["hits"]]


def test_repair_keeps_a_good_encoder_and_drops_a_damaged_one(exported, fp32, tmp_path):
    from hmsearch.embed import model_cache_sound
    from hmsearch.index.store import IndexStore
    from hmsearch.types import Episode

    store = IndexStore(tmp_path / "ix")
    texts = ["Hvad skal salg gøre på sociale medier?", "Svar inden for to timer på hverdage."]
    with store.writing():
        store.ensure(embedding_model=fp32.name, dim=fp32.dim, chunking={})
        store.put_episode(
            Episode(id="e", title="", duration=20, n_passages=2, source="", content_hash="1"),
            passages_of(texts),
            fp32.encode_documents(texts),
        )
        store.finish()
    encoder = store.model_cache(CACHE_KIND)
    assert encoder.name.startswith("encoder-1-")  # the name indexes written before the seams use
    shutil.copytree(exported, encoder)
    with store.writing():
        store.repair(model_cache_ok=model_cache_sound)
    assert load(encoder, fp32.name) is not None and (store.root / "cache").is_dir()
    (encoder / "model.onnx").write_bytes(b"damaged")
    with store.writing():
        store.repair(model_cache_ok=model_cache_sound)
    assert not encoder.exists()
    assert len(nearest(IndexStore(store.root), fp32.encode_queries(texts[:1])[0], 1)) == 1
