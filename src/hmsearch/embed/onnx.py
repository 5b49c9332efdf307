"""A torch-free query encoder: the index's embedding model exported to ONNX, run by onnxruntime.

One `hmsearch ask` from the shell used to spend ~10 s importing torch, transformers and
sentence-transformers to embed one sentence. When an index is built, the model is exported once
into the index's cache folder (ONNX graph + tokenizer.json + meta.json, verified against the
torch model before it is kept); search and ask then embed with onnxruntime + tokenizers, which
import in a fraction of a second. Only models that are a plain transformer + mean pooling (+
normalisation) are exported (all-MiniLM-L6-v2 is); their query/passage prefixes are recorded in
meta.json and applied as text, as the torch engine does. For anything else, or when onnxruntime
is missing or the folder is damaged, the torch engine is used as before.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..fsutil import atomic_dir
from .batching import Progress, encode_by_length, with_prefix
from .cards import card_for
from .torch_st import TorchEncoder

log = logging.getLogger(__name__)

ENCODER_VERSION = "1"
CACHE_KIND = f"encoder-{ENCODER_VERSION}"  # the folder in the index's model cache
MIN_COSINE = 0.9999  # against the torch fp32 model, checked at export
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def eligible(model: Any) -> bool:
    """A sentence-transformers model this module reproduces exactly: Transformer, mean Pooling
    (over every token, prefix included), optionally Normalize."""
    kinds = [type(m).__name__ for m in model]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return False
    pooling = model[1]
    mode = getattr(pooling, "pooling_mode", None) or (
        "mean" if getattr(pooling, "pooling_mode_mean_tokens", False) else ""
    )
    return mode == "mean" and getattr(pooling, "include_prompt", True) is not False


def export(encoder: TorchEncoder, folder: Path) -> bool:
    """Write the ONNX query encoder of ``encoder`` (a torch engine) into ``folder``.

    Returns False, leaving nothing behind, when the model is not eligible or the exported graph
    does not reproduce the torch model on texts of many lengths."""
    model = encoder.model
    if folder.is_dir():
        return True
    if not eligible(model):
        log.info(
            "%s is not exportable to ONNX (modules %s): queries use torch",
            encoder.name,
            [type(m).__name__ for m in model],
        )
        return False
    import copy

    import torch

    transformer = copy.deepcopy(model[0].auto_model).float().eval()
    tokenizer = model.tokenizer
    max_length = int(model.max_seq_length)
    query_prefix, passage_prefix = encoder.prefixes()

    class Pooled(torch.nn.Module):
        def __init__(self, m: Any, names: tuple[str, ...]) -> None:
            super().__init__()
            self.m, self.names = m, names

        def forward(self, *args: Any) -> Any:
            feed = dict(zip(self.names, args))
            h = self.m(**feed).last_hidden_state
            mask = feed["attention_mask"].unsqueeze(-1).to(h.dtype)
            emb = (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(emb, p=2.0, dim=-1)

    sample = tokenizer(
        ["an example sentence", "another, longer example sentence to export"],
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    names = tuple(n for n in INPUTS if n in sample)
    # eval() on the wrapper too: the exporter restores the wrapper's mode recursively afterwards,
    # and a wrapper left in training mode would switch dropout on in the model it wraps.
    wrapped = Pooled(transformer, names).eval()
    try:
        with atomic_dir(folder, prefix=".encoder.") as tmp:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer chatter; the result is verified below instead
                # The TorchScript exporter (dynamo=False) keeps batch and sequence length dynamic.
                torch.onnx.export(
                    wrapped,
                    tuple(sample[n] for n in names),
                    str(tmp / "model.onnx"),
                    input_names=list(names),
                    output_names=["embedding"],
                    dynamic_axes={**{n: {0: "batch", 1: "seq"} for n in names}, "embedding": {0: "batch"}},
                    opset_version=17,
                    dynamo=False,
                )
            tokenizer.backend_tokenizer.save(str(tmp / "tokenizer.json"))
            meta = {
                "version": ENCODER_VERSION,
                "model": encoder.name,
                "max_length": max_length,
                "inputs": list(names),
                "dim": int(transformer.config.hidden_size),
                "query_prefix": query_prefix,
                "passage_prefix": passage_prefix,
            }
            (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
            probe = OnnxEncoder(tmp)
            texts = _probe_texts()
            with torch.no_grad():
                enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
                ref = wrapped(*(enc[n] for n in names)).numpy()
            got = encode_by_length(texts, probe.dim, probe.batch_size, probe._run)
            worst = float((ref * got).sum(axis=1).min())
            if worst < MIN_COSINE:
                raise _Refused(f"cosine {worst:.6f} < {MIN_COSINE} against torch")
    except _Refused as exc:
        log.warning("ONNX export of %s refused (%s): queries use torch", encoder.name, exc)
        return False
    log.info("exported %s to ONNX for torch-free queries in %s", encoder.name, folder)
    return True


class _Refused(Exception):
    pass


def _probe_texts() -> list[str]:
    words = [
        "podcast",
        "marketing",
        "salg",
        "kunder",
        "sociale",
        "medier",
        "strategi",
        "the",
        "of",
        "and",
        "a",
        "to",
        "in",
        "is",
        "you",
    ]
    return [
        "x",
        "Hvad skal salg gøre på sociale medier?",
        *(" ".join(words[i % len(words)] for i in range(n)) for n in (7, 31, 90, 400)),
    ]


class OnnxEncoder:
    """The query side of an index's model without torch: encode_queries / encode_documents / count_tokens."""

    engine = "onnx"

    def __init__(self, folder: Path, *, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        if meta.get("version") != ENCODER_VERSION:
            raise ValueError(f"encoder version {meta.get('version')}")
        self.name = str(meta["model"])
        self.card = card_for(self.name)
        self.dim = int(meta["dim"])
        self._inputs = tuple(meta["inputs"])
        self._max_length = int(meta["max_length"])
        self._prefixes = (str(meta.get("query_prefix", "")), str(meta.get("passage_prefix", "")))
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_padding()
        # Truncation inside the tokenizer leaves room for the special tokens, as transformers does.
        self._tokenizer.enable_truncation(self._max_length)
        # A second tokenizer without truncation counts tokens (toggling one shared tokenizer is
        # not safe once a server answers from several threads).
        self._counter = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._counter.no_padding()
        self._counter.no_truncation()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
        self._special = len(self._tokenizer.encode("x").ids) - len(
            self._tokenizer.encode("x", add_special_tokens=False).ids
        )
        self.batch_size = 32

    def prefixes(self) -> tuple[str, str]:
        return self._prefixes

    @property
    def max_tokens(self) -> int:
        prefix = self._prefixes[1]
        used = self.count_tokens([prefix])[0] if prefix else 0
        return self._max_length - self._special - used

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self._counter.encode_batch(list(texts), add_special_tokens=False)]

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        n = max(len(e.ids) for e in encodings)
        feed = {name: np.zeros((len(texts), n), dtype=np.int64) for name in self._inputs}
        for i, e in enumerate(encodings):
            feed["input_ids"][i, : len(e.ids)] = e.ids
            feed["attention_mask"][i, : len(e.ids)] = e.attention_mask
            if "token_type_ids" in feed:
                feed["token_type_ids"][i, : len(e.ids)] = e.type_ids
        return np.asarray(self._session.run(None, feed)[0], dtype=np.float32)

    def encode_documents(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        return encode_by_length(with_prefix(texts, self._prefixes[1]), self.dim, self.batch_size, self._run, progress)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return encode_by_length(with_prefix(texts, self._prefixes[0]), self.dim, self.batch_size, self._run)


def load(folder: Path, name: str) -> OnnxEncoder | None:
    """The exported encoder in ``folder`` for model ``name``, or None (missing, damaged, other
    model, onnxruntime not installed): the caller then uses the torch engine."""
    if not (folder / "meta.json").is_file():
        return None
    try:
        encoder = OnnxEncoder(folder)
    except Exception as exc:  # noqa: BLE001  ImportError, a damaged file (json, protobuf, tokenizer): derived
        log.warning(
            "the ONNX query encoder in %s cannot be used (%s): queries use torch",
            folder,
            f"{type(exc).__name__}: {exc}".splitlines()[0],
        )
        return None
    if encoder.name != name:
        log.info("the ONNX query encoder in %s is for %s, not %s", folder, encoder.name, name)
        return None
    return encoder
