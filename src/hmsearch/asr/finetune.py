"""Local Hugging Face Whisper checkpoints (``--whisper-model PATH``), converted once for the engine.

Danish fine-tunes of Whisper (hviske, CoRal's models) publish in the transformers format: a
folder with ``config.json`` (``"model_type": "whisper"``), the weights (``model.safetensors``,
sharded safetensors with an index, or ``pytorch_model.bin``) and usually ``tokenizer.json``,
``preprocessor_config.json`` and ``generation_config.json``. Such a folder is converted offline:

- for openai-whisper into a checkpoint file (:func:`transformers_to_openai`: the weights renamed
  back onto openai-whisper's state dict, the inverse of :func:`convert._hf_key`; the alignment
  heads of ``generation_config.json`` recorded for word timestamps);
- for faster-whisper into a CTranslate2 folder with ctranslate2's own TransformersConverter
  (float16 on disk; the compute type is chosen at load, as for the packaged base).

Each conversion is kept in hmsearch's model folder under the digest of the folder's config and
weights, so it runs once per checkpoint and a changed checkpoint is converted again.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ModelUnavailableError, one_line
from ..fsutil import atomic_file, sha256_files
from ..models import model_dir, scoped_env

log = logging.getLogger(__name__)

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
CT2_QUANTIZATION = "float16"


def is_transformers_whisper(path: Path) -> bool:
    """A folder holding a transformers Whisper model (config.json says model_type whisper)."""
    config = path / "config.json"
    if not (path.is_dir() and config.is_file()) or (path / "model.bin").is_file():
        return False  # model.bin: a CTranslate2 folder
    try:
        return bool(json.loads(config.read_text(encoding="utf-8")).get("model_type") == "whisper")
    except (OSError, ValueError, AttributeError):
        return False


def _weights(path: Path) -> list[Path]:
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelUnavailableError(f"{index}: unreadable shard index ({one_line(exc)})") from None
        files = [path / s for s in shards]
    else:
        files = [path / f for f in WEIGHT_FILES if (path / f).is_file()][:1]
    if not files:
        raise ModelUnavailableError(
            f"{path}: a transformers Whisper folder without weights (no {', '.join(WEIGHT_FILES)})"
        )
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise ModelUnavailableError(f"{path}: weight shard {missing[0]} is missing")
    return files


def digest(path: Path) -> str:
    """The checkpoint's identity: config and weights (what the transcript store is keyed by)."""
    return sha256_files([path / "config.json", *_weights(path)])[:16]


def _config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        if not isinstance(config, dict):
            raise ValueError("not an object")
        return config
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"{path / 'config.json'}: unreadable ({one_line(exc)})") from None


def dims_of(config: dict[str, Any]) -> dict[str, int]:
    """openai-whisper's ModelDimensions from a transformers WhisperConfig."""
    try:
        d = int(config["d_model"])
        return {
            "n_mels": int(config.get("num_mel_bins", 80)),
            "n_audio_ctx": int(config.get("max_source_positions", 1500)),
            "n_audio_state": d,
            "n_audio_head": int(config["encoder_attention_heads"]),
            "n_audio_layer": int(config["encoder_layers"]),
            "n_vocab": int(config["vocab_size"]),
            "n_text_ctx": int(config.get("max_target_positions", 448)),
            "n_text_state": d,
            "n_text_head": int(config["decoder_attention_heads"]),
            "n_text_layer": int(config["decoder_layers"]),
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelUnavailableError(f"not a Whisper config: {one_line(exc)} missing or wrong") from None


def _load_weights(files: list[Path]) -> dict[str, Any]:
    import torch

    state: dict[str, Any] = {}
    for f in files:
        try:
            if f.suffix == ".safetensors":
                from safetensors.torch import load_file

                state.update(load_file(str(f)))
            else:
                state.update(torch.load(f, map_location="cpu", weights_only=True))
        except Exception as exc:  # noqa: BLE001 - any unreadable weights file is the same problem
            raise ModelUnavailableError(f"{f}: cannot read the weights ({one_line(exc)})") from None
    return state


def _alignment_heads(path: Path, dims: dict[str, int]) -> list[list[int]] | None:
    gen = path / "generation_config.json"
    if not gen.is_file():
        return None
    try:
        heads = json.loads(gen.read_text(encoding="utf-8")).get("alignment_heads")
        out = [[int(a), int(b)] for a, b in heads] if heads else None
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise ModelUnavailableError(f"{gen}: unreadable alignment_heads ({one_line(exc)})") from None
    if out and not all(0 <= a < dims["n_text_layer"] and 0 <= b < dims["n_text_head"] for a, b in out):
        raise ModelUnavailableError(f"{gen}: alignment heads outside the decoder's layers and heads")
    return out


_BLOCK = (
    "attn.query.weight", "attn.query.bias", "attn.key.weight", "attn.value.weight", "attn.value.bias",
    "attn.out.weight", "attn.out.bias", "attn_ln.weight", "attn_ln.bias",
)  # fmt: skip
_CROSS = tuple(f"cross_{k}" for k in _BLOCK)
_MLP = ("mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias", "mlp_ln.weight", "mlp_ln.bias")


def openai_keys(dims: dict[str, int]) -> list[str]:
    """The names in an openai-whisper model's state dict (whisper/model.py), for these dimensions."""
    keys = ["encoder.conv1.weight", "encoder.conv1.bias", "encoder.conv2.weight", "encoder.conv2.bias"]
    keys.append("encoder.positional_embedding")
    keys += [f"encoder.blocks.{i}.{k}" for i in range(dims["n_audio_layer"]) for k in (*_BLOCK, *_MLP)]
    keys += ["encoder.ln_post.weight", "encoder.ln_post.bias"]
    keys += ["decoder.token_embedding.weight", "decoder.positional_embedding"]
    keys += [f"decoder.blocks.{i}.{k}" for i in range(dims["n_text_layer"]) for k in (*_BLOCK, *_CROSS, *_MLP)]
    keys += ["decoder.ln.weight", "decoder.ln.bias"]
    return keys


def transformers_to_openai(path: Path) -> dict[str, Any]:
    """An openai-whisper checkpoint dict ({"dims", "model_state_dict"[, "alignment_heads"]}) from a
    transformers Whisper folder."""
    from .convert import _hf_key

    dims = dims_of(_config(path))
    keys = openai_keys(dims)
    hf = _load_weights(_weights(path))
    hf = {k if k.startswith(("model.", "proj_out")) else f"model.{k}": v for k, v in hf.items()}  # WhisperModel
    state, missing = {}, []
    for key in keys:
        name = _hf_key(key)
        if name in hf:
            state[key] = hf[name]
        else:
            missing.append(name)
    if missing:
        raise ModelUnavailableError(
            f"{path}: not a Whisper checkpoint that openai-whisper can run: {len(missing)} weights missing "
            f"(first: {missing[0]})"
        )
    checkpoint: dict[str, Any] = {"dims": dims, "model_state_dict": state}
    heads = _alignment_heads(path, dims)
    if heads:
        checkpoint["alignment_heads"] = heads
    return checkpoint


def openai_checkpoint(path: Path) -> tuple[Path, str]:
    """The folder as an openai-whisper checkpoint file (converted once), and its digest."""
    import torch

    from .packaged import _build_lock

    sha = digest(path)
    final = model_dir("whisper") / f"hf-{sha}.pt"
    if final.is_file():
        return final, sha
    try:
        with _build_lock(final):
            if final.is_file():
                return final, sha
            log.info("converting the transformers Whisper model %s into %s (once)", path, final)
            checkpoint = transformers_to_openai(path)
            with atomic_file(final) as tmp, open(tmp, "wb") as fh:
                torch.save(checkpoint, fh)
                fh.flush()
                os.fsync(fh.fileno())
    except OSError as exc:
        raise ModelUnavailableError(f"{final}: cannot convert {path} ({one_line(exc)})") from None
    return final, sha


def ct2_folder(path: Path) -> tuple[Path, str]:
    """The folder as a CTranslate2 model folder for faster-whisper (converted once), and its digest."""
    from .convert import build_tokenizer
    from .packaged import _build_lock

    sha = digest(path)
    final = model_dir("whisper-ct2") / f"hf-{sha}"
    if (final / "model.bin").is_file():
        return final, sha
    try:
        from ctranslate2.converters import TransformersConverter
    except ImportError:
        raise ModelUnavailableError(
            "converting a transformers Whisper model for faster-whisper needs ctranslate2: "
            "pip install 'hmsearch[faster-whisper]'"
        ) from None
    try:
        with _build_lock(final):
            if (final / "model.bin").is_file():
                return final, sha
            log.info("converting the transformers Whisper model %s into %s (once)", path, final)
            copy = [f for f in ("tokenizer.json", "preprocessor_config.json") if (path / f).is_file()]
            with (
                scoped_env(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"),
                tempfile.TemporaryDirectory(prefix=".converting-", dir=final.parent) as tmp,
            ):
                out = Path(tmp) / "model"
                try:
                    TransformersConverter(str(path), copy_files=copy).convert(
                        str(out), quantization=CT2_QUANTIZATION, force=True
                    )
                except Exception as exc:  # noqa: BLE001 - the converter raises whatever transformers does
                    raise ModelUnavailableError(
                        f"{path}: cannot convert for faster-whisper ({one_line(exc)})"
                    ) from None
                if "tokenizer.json" not in copy:  # Whisper's own vocabulary, rebuilt exactly
                    build_tokenizer(dims_of(_config(path))["n_vocab"]).save(str(out / "tokenizer.json"))
                if final.exists():  # a folder without model.bin: not ours to trust
                    shutil.rmtree(final)
                os.replace(out, final)
    except OSError as exc:
        raise ModelUnavailableError(f"{final}: cannot convert {path} ({one_line(exc)})") from None
    return final, sha
