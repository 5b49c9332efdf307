"""A torch-free query encoder: the index's embedding model exported to ONNX, run by onnxruntime.

One `hmsearch ask` from the shell used to spend ~10 s importing torch, transformers and
sentence-transformers to embed one sentence. When an index is built, the model is exported once
into the index's cache folder (ONNX graph + tokenizer.json + meta.json, verified against the
torch model before it is kept); search and ask then embed with onnxruntime + tokenizers, which
import in a fraction of a second. Only models that are a plain transformer + mean pooling (+
normalisation) without prompts are exported (all-MiniLM-L6-v2 is); for anything else, or when
onnxruntime is missing or the folder is damaged, the torch path is used as before.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .embed import encode_by_length

ENCODER_VERSION = "1"
MIN_COSINE = 0.9999  # against the torch fp32 model, checked at export
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def eligible(model: Any) -> bool:
    """A sentence-transformers model this module reproduces exactly: Transformer, mean Pooling,
    optionally Normalize, and no query/document prompts."""
    kinds = [type(m).__name__ for m in model]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return False
    pooling = model[1]
    mode = getattr(pooling, "pooling_mode", None) or ("mean" if getattr(pooling, "pooling_mode_mean_tokens", False) else "")
    if mode != "mean" or getattr(pooling, "include_prompt", True) is False:
        return False
    return not any(str(p).strip() for p in (getattr(model, "prompts", None) or {}).values())


def export(model: Any, name: str, folder: Path) -> bool:
    """Write the ONNX query encoder of ``model`` (a loaded SentenceTransformer) into ``folder``.

    Returns False, leaving nothing behind, when the model is not eligible or the exported graph
    does not reproduce the torch model on texts of many lengths."""
    if folder.is_dir() or not eligible(model):
        return folder.is_dir()
    import copy

    import torch

    transformer = copy.deepcopy(model[0].auto_model).float().eval()
    tokenizer = model.tokenizer
    max_length = int(model.max_seq_length)

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

    sample = tokenizer(["an example sentence", "another, longer example sentence to export"], padding=True,
                       truncation=True, max_length=max_length, return_tensors="pt")
    names = tuple(n for n in INPUTS if n in sample)
    # eval() on the wrapper too: the exporter restores the wrapper's mode recursively afterwards,
    # and a wrapper left in training mode would switch dropout on in the model it wraps.
    wrapped = Pooled(transformer, names).eval()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".encoder.", suffix=".tmp", dir=folder.parent))
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer chatter; the result is verified below instead
            # The TorchScript exporter (dynamo=False) keeps batch and sequence length dynamic.
            torch.onnx.export(wrapped, tuple(sample[n] for n in names), str(tmp / "model.onnx"),
                              input_names=list(names), output_names=["embedding"],
                              dynamic_axes={**{n: {0: "batch", 1: "seq"} for n in names}, "embedding": {0: "batch"}},
                              opset_version=17, dynamo=False)
        tokenizer.backend_tokenizer.save(str(tmp / "tokenizer.json"))
        meta = {"version": ENCODER_VERSION, "model": name, "max_length": max_length, "inputs": list(names),
                "dim": int(transformer.config.hidden_size)}
        (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        probe = OnnxEmbedder(tmp)
        texts = _probe_texts()
        with torch.no_grad():
            enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            ref = wrapped(*(enc[n] for n in names)).numpy()
        got = probe.encode_documents(texts)
        if float((ref * got).sum(axis=1).min()) < MIN_COSINE:
            return False
        os.replace(tmp, folder)
        return True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _probe_texts() -> list[str]:
    words = "podcast marketing salg kunder sociale medier strategi the of and a to in is you".split()
    return ["x", "Hvad skal salg gøre på sociale medier?", *(" ".join(words[i % len(words)] for i in range(n))
                                                       for n in (7, 31, 90, 400))]


class OnnxEmbedder:
    """The query side of Embedder, without torch: encode_queries / encode_documents / count_tokens."""

    def __init__(self, folder: Path, *, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        if meta.get("version") != ENCODER_VERSION:
            raise ValueError(f"encoder version {meta.get('version')}")
        self.name = str(meta["model"])
        self.dim = int(meta["dim"])
        self._inputs = tuple(meta["inputs"])
        self._max_length = int(meta["max_length"])
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_padding()
        # Truncation inside the tokenizer leaves room for the special tokens, as transformers does.
        self._tokenizer.enable_truncation(self._max_length)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
        self._special = len(self._tokenizer.encode("x").ids) - len(self._tokenizer.encode("x", add_special_tokens=False).ids)
        self.batch_size = 32

    @property
    def max_tokens(self) -> int:
        return self._max_length - self._special

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        self._tokenizer.no_truncation()
        try:
            return [len(e.ids) for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=False)]
        finally:
            self._tokenizer.enable_truncation(self._max_length)

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        n = max(len(e.ids) for e in encodings)
        feed = {name: np.zeros((len(texts), n), dtype=np.int64) for name in self._inputs}
        for i, e in enumerate(encodings):
            feed["input_ids"][i, :len(e.ids)] = e.ids
            feed["attention_mask"][i, :len(e.ids)] = e.attention_mask
            if "token_type_ids" in feed:
                feed["token_type_ids"][i, :len(e.ids)] = e.type_ids
        return self._session.run(None, feed)[0]

    def encode_documents(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None) -> np.ndarray:
        return encode_by_length(texts, self.dim, self.batch_size, self._run, progress)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode_documents(texts)


def enabled() -> bool:
    """HMSEARCH_QUERY_ENGINE=torch turns the ONNX query path off (no export, no use)."""
    return os.environ.get("HMSEARCH_QUERY_ENGINE", "auto") != "torch"


def load(folder: Path, name: str) -> OnnxEmbedder | None:
    """The exported encoder in ``folder`` for model ``name``, or None (missing, damaged, other
    model, onnxruntime not installed): the caller then uses the torch model."""
    if not enabled() or not (folder / "meta.json").is_file():
        return None
    try:
        embedder = OnnxEmbedder(folder)
    except Exception:  # ImportError, a damaged file (json, protobuf, tokenizer): derived, so fall back
        return None
    return embedder if embedder.name == name else None
