"""An optional Whisper engine: faster-whisper (CTranslate2), int8 on the CPU, no torch at run time.

Install with ``pip install faster-whisper`` (adds ctranslate2 and faster-whisper, ~150 MB; it does
not touch torch). A model is

- a CTranslate2 Whisper directory (``model.bin``, ``config.json``, ``vocabulary.*``,
  ``tokenizer.json``), e.g. one made from a local openai-whisper checkpoint with
  :func:`convert_openai_checkpoint` (``python -m hmsearch.ct2_whisper convert in.pt out_dir``), or
- a faster-whisper size name ("small", "large-v3", "turbo", ...) or a Hugging Face repo id of a
  converted model, downloaded to the Hugging Face cache on first use.

``resolve`` checks that the model can be had without loading it and fails fast, in one line,
when it cannot (an uncached hub model on an offline machine). ``transcribe_samples`` gives the
same ``Transcript`` as :func:`hmsearch.transcribe.transcribe_samples`, with the same anti-loop
settings, tagged ``faster-whisper:<model id>``.

Everything heavy (ctranslate2, faster_whisper, torch, transformers) is imported lazily.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, ModelUnavailableError, one_line
from .transcribe import (ANTI_LOOP_OPTIONS, FALLBACK_TEMPERATURES, NETWORK_PROBE_TIMEOUT, _reachable,
                         transcript_from_whisper)
from .types import Transcript

COMPUTE_TYPES = ("int8", "int8_float32", "int8_bfloat16", "float32", "bfloat16", "float16", "default")
DEFAULT_COMPUTE_TYPE = "int8"
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")
# What faster-whisper fetches of a converted model on the hub (faster_whisper.utils.download_model).
HUB_PATTERNS = ["config.json", "preprocessor_config.json", "model.bin", "tokenizer.json", "vocabulary.*"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

# openai-whisper's ANTI_LOOP_OPTIONS under faster-whisper's names (all of them exist there).
FW_ANTI_LOOP_OPTIONS: dict[str, Any] = {
    "condition_on_previous_text": ANTI_LOOP_OPTIONS["condition_on_previous_text"],
    "compression_ratio_threshold": ANTI_LOOP_OPTIONS["compression_ratio_threshold"],
    "log_prob_threshold": ANTI_LOOP_OPTIONS["logprob_threshold"],
    "no_speech_threshold": ANTI_LOOP_OPTIONS["no_speech_threshold"],
    "hallucination_silence_threshold": ANTI_LOOP_OPTIONS["hallucination_silence_threshold"],
}
# openai-whisper's transcribe() decodes greedily (one sample per fallback temperature) unless told
# otherwise; faster-whisper defaults to beam 5 / best of 5. Match openai-whisper.
FW_DECODE_OPTIONS: dict[str, Any] = {"beam_size": 1, "best_of": 1}


# ----------------------------------------------------------------------------------------------
# Resolving and loading


@dataclass(frozen=True)
class Ct2Spec:
    """A resolved faster-whisper model: what to pass to WhisperModel and a stable id for caching."""

    name: str  # as the user gave it
    load_arg: str  # a local CTranslate2 model directory (hub models: their cached snapshot), or a hub name
    model_id: str  # "small@int8", or "dir:<sha256 prefix>@int8" for a local directory
    compute_type: str = DEFAULT_COMPUTE_TYPE


def _hub_repo(name: str) -> str | None:
    """The hub repo id for a faster-whisper size name or a repo id, else None."""
    from faster_whisper.utils import _MODELS

    if name in _MODELS:
        return _MODELS[name]
    if _REPO_ID.match(name) and not Path(name).expanduser().exists():
        return name
    return None


def _hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _cached_snapshot(repo: str) -> str | None:
    """The local snapshot of ``repo`` in the Hugging Face cache, or None; never touches the network."""
    import huggingface_hub

    try:
        path = huggingface_hub.snapshot_download(repo, allow_patterns=HUB_PATTERNS, local_files_only=True)
    except Exception:  # LocalEntryNotFoundError and friends: not cached (or half cached)
        return None
    return path if all((Path(path) / f).is_file() for f in MODEL_FILES) else None


def _dir_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for name in ("config.json", "model.bin"):
        with open(path / name, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()[:16]


def _check_compute_type(compute_type: str) -> None:
    if compute_type not in COMPUTE_TYPES:
        raise InputError(f"unknown compute type '{compute_type}'; use one of {', '.join(COMPUTE_TYPES)}")


def resolve(name_or_path: str, *, compute_type: str = DEFAULT_COMPUTE_TYPE) -> Ct2Spec:
    """Check that a faster-whisper model can be loaded, without loading it; raise a clear error if not.

    A hub model that is cached resolves to its local snapshot (so loading never touches the
    network); one that is not cached needs the hub: when ``HF_HUB_OFFLINE`` is set or the hub
    cannot be reached, this raises ModelUnavailableError at once instead of letting the hub client
    retry for a minute.
    """
    _check_compute_type(compute_type)
    try:
        import faster_whisper  # noqa: F401
    except ImportError:
        raise ModelUnavailableError(
            "the faster-whisper engine is not installed: pip install faster-whisper "
            "(or pip install 'hmsearch[faster-whisper]')") from None
    name = name_or_path
    path = Path(name).expanduser()
    if path.is_dir():
        missing = [f for f in MODEL_FILES if not (path / f).is_file()]
        if missing:
            hint = ("convert a checkpoint with `python -m hmsearch.ct2_whisper convert CHECKPOINT DIR`"
                    if "model.bin" in missing else "copy it from the model's source or re-convert")
            raise ModelUnavailableError(
                f"{path}: not a CTranslate2 Whisper model directory (no {', '.join(missing)}): {hint}")
        return Ct2Spec(name, str(path), f"dir:{_dir_digest(path)}@{compute_type}", compute_type)
    if path.is_file():
        raise ModelUnavailableError(
            f"{path}: faster-whisper needs a CTranslate2 model directory, not a file: convert it with "
            f"`python -m hmsearch.ct2_whisper convert {path} DIR`")
    repo = _hub_repo(name)
    if repo is None:
        from faster_whisper.utils import available_models

        if path.suffix or os.sep in name:
            raise ModelUnavailableError(f"{name}: no such CTranslate2 model directory")
        raise ModelUnavailableError(
            f"unknown faster-whisper model '{name}'; use one of {', '.join(available_models())}, "
            f"a Hugging Face repo id or a CTranslate2 model directory")
    model_id = f"{name}@{compute_type}"
    snapshot = _cached_snapshot(repo)
    if snapshot is not None:
        return Ct2Spec(name, snapshot, model_id, compute_type)
    if _hub_offline() or not _reachable(_hub_endpoint(), timeout=NETWORK_PROBE_TIMEOUT):
        why = "HF_HUB_OFFLINE is set" if _hub_offline() else "no network"
        raise ModelUnavailableError(
            f"faster-whisper model '{name}' ({repo}) is not in the Hugging Face cache and cannot be "
            f"downloaded ({why}): connect once to download it, or pass a CTranslate2 model directory")
    return Ct2Spec(name, name, model_id, compute_type)


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def load(spec: Ct2Spec, *, cpu_threads: int | None = None):
    """Load a faster-whisper model on the CPU (downloading a hub model on first use)."""
    from faster_whisper import WhisperModel

    threads = cpu_threads or default_threads()
    local = os.path.isdir(spec.load_arg)
    try:
        return WhisperModel(spec.load_arg, device="cpu", compute_type=spec.compute_type, cpu_threads=threads,
                            local_files_only=local)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        reason = one_line(exc)
        raise ModelUnavailableError(f"{spec.name}: cannot load faster-whisper model ({reason})") from None


# ----------------------------------------------------------------------------------------------
# Transcribing


def transcribe_samples(
    model: Any,
    samples: np.ndarray,
    *,
    language: str | None = None,
    greedy: bool = False,
    show_progress: bool = False,
    model_id: str = "",
    vad_filter: bool = False,
) -> Transcript:
    """Transcribe 16 kHz mono float32 samples with word timestamps (like transcribe.transcribe_samples).

    ``vad_filter`` turns on faster-whisper's Silero VAD (its ONNX model ships in the wheel);
    off by default so that both engines see the same audio.
    """
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    segments, info = model.transcribe(
        samples,
        language=language,
        task="transcribe",
        temperature=0.0 if greedy else list(FALLBACK_TEMPERATURES),
        word_timestamps=True,
        vad_filter=vad_filter,
        log_progress=show_progress,
        **FW_DECODE_OPTIONS,
        **FW_ANTI_LOOP_OPTIONS,
    )
    result = {
        "language": info.language,
        "segments": [
            {"start": s.start, "end": s.end, "text": s.text,
             "words": [{"start": w.start, "end": w.end, "word": w.word, "probability": w.probability}
                       for w in (s.words or [])]}
            for s in segments  # a generator: decoding happens here
        ],
    }
    # openai-whisper's result layout, so that both engines share one conversion (empty segments dropped)
    return transcript_from_whisper(result, source=f"faster-whisper:{model_id}" if model_id else "faster-whisper",
                                   duration=len(samples) / 16_000)


# ----------------------------------------------------------------------------------------------
# Converting openai-whisper checkpoints (offline)

# openai-whisper's non-language special tokens, in their id order after the language tokens.
_TASK_SPECIALS = ("<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>",
                  "<|notimestamps|>")
# Whisper's pre-tokenizer pattern (whisper/tokenizer.py get_encoding).
_WHISPER_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def whisper_special_tokens(n_vocab: int) -> tuple[str, list[str], int]:
    """(encoding name, special tokens in id order, number of languages) for a model's n_vocab,
    exactly as openai-whisper's get_encoding/get_tokenizer lay them out."""
    from whisper.tokenizer import LANGUAGES

    multilingual = n_vocab >= 51865
    num_languages = n_vocab - 51765 - int(multilingual)
    specials = ["<|endoftext|>", "<|startoftranscript|>",
                *[f"<|{lang}|>" for lang in list(LANGUAGES)[:num_languages]],
                *_TASK_SPECIALS,
                *[f"<|{i * 0.02:.2f}|>" for i in range(1501)]]
    return ("multilingual" if multilingual else "gpt2"), specials, num_languages


def build_tokenizer(n_vocab: int = 51865):
    """A Hugging Face ``tokenizers.Tokenizer`` with openai-whisper's ids, built offline from the
    tiktoken file bundled with openai-whisper (byte-level BPE + Whisper's special tokens)."""
    import whisper
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import BPE
    from transformers.convert_slow_tokenizer import TikTokenConverter

    name, specials, _ = whisper_special_tokens(n_vocab)
    tiktoken_file = Path(whisper.__file__).parent / "assets" / f"{name}.tiktoken"
    converter = TikTokenConverter(vocab_file=str(tiktoken_file), pattern=_WHISPER_PATTERN)
    vocab, merges = converter.extract_vocab_merges_from_model(str(tiktoken_file))
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise ModelUnavailableError(f"{tiktoken_file}: ranks are not contiguous")
    if len(vocab) + len(specials) != n_vocab:
        raise ModelUnavailableError(f"n_vocab {n_vocab} does not match Whisper's {len(vocab)} + {len(specials)} tokens")
    tok = Tokenizer(BPE(vocab, merges, fuse_unk=False))
    tok.model.ignore_merges = True  # like tiktoken: a word that is itself a token is not split
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_WHISPER_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in specials])
    for i, t in enumerate(specials):
        if tok.token_to_id(t) != len(vocab) + i:
            raise ModelUnavailableError(f"special token {t} got id {tok.token_to_id(t)}, not {len(vocab) + i}")
    return tok


_BLOCK_RENAMES = (
    ("attn.query", "self_attn.q_proj"), ("attn.key", "self_attn.k_proj"), ("attn.value", "self_attn.v_proj"),
    ("attn.out", "self_attn.out_proj"), ("attn_ln", "self_attn_layer_norm"),
    ("cross_attn.query", "encoder_attn.q_proj"), ("cross_attn.key", "encoder_attn.k_proj"),
    ("cross_attn.value", "encoder_attn.v_proj"), ("cross_attn.out", "encoder_attn.out_proj"),
    ("cross_attn_ln", "encoder_attn_layer_norm"),
    ("mlp.0", "fc1"), ("mlp.2", "fc2"), ("mlp_ln", "final_layer_norm"),
)


def _hf_key(key: str) -> str:
    """openai-whisper state-dict key -> transformers WhisperForConditionalGeneration key."""
    fixed = {
        "encoder.positional_embedding": "model.encoder.embed_positions.weight",
        "encoder.ln_post.weight": "model.encoder.layer_norm.weight",
        "encoder.ln_post.bias": "model.encoder.layer_norm.bias",
        "decoder.token_embedding.weight": "model.decoder.embed_tokens.weight",
        "decoder.positional_embedding": "model.decoder.embed_positions.weight",
        "decoder.ln.weight": "model.decoder.layer_norm.weight",
        "decoder.ln.bias": "model.decoder.layer_norm.bias",
    }
    if key in fixed:
        return fixed[key]
    m = re.match(r"^(encoder|decoder)\.blocks\.(\d+)\.(.+)$", key)
    if m:
        side, i, rest = m.groups()
        for old, new in _BLOCK_RENAMES:  # cross_attn.* before attn.* is not needed: prefixes differ
            if rest.startswith(old + "."):
                return f"model.{side}.layers.{i}.{new}{rest[len(old):]}"
        raise KeyError(key)
    if key.startswith("encoder.conv"):
        return "model." + key
    raise KeyError(key)


def openai_to_transformers(checkpoint: dict[str, Any], out_dir: Path) -> Path:
    """Save an openai-whisper checkpoint dict as a transformers Whisper model + tokenizer in out_dir."""
    import torch
    from transformers import GenerationConfig, PreTrainedTokenizerFast, WhisperConfig, WhisperForConditionalGeneration

    dims = checkpoint["dims"]
    state = checkpoint["model_state_dict"]
    if dims["n_audio_state"] != dims["n_text_state"]:
        raise ModelUnavailableError("cannot convert: encoder and decoder widths differ")
    n_vocab = dims["n_vocab"]
    _, specials, num_languages = whisper_special_tokens(n_vocab)
    n_text = n_vocab - len(specials)
    eot, sot = n_text, n_text + 1
    lang_ids = list(range(sot + 1, sot + 1 + num_languages))
    translate, transcribe_, _, sot_prev, no_speech, no_timestamps = range(sot + 1 + num_languages,
                                                                         sot + 1 + num_languages + 6)
    d = dims["n_audio_state"]
    config = WhisperConfig(
        vocab_size=n_vocab, num_mel_bins=dims["n_mels"], d_model=d,
        encoder_layers=dims["n_audio_layer"], encoder_attention_heads=dims["n_audio_head"],
        decoder_layers=dims["n_text_layer"], decoder_attention_heads=dims["n_text_head"],
        encoder_ffn_dim=4 * d, decoder_ffn_dim=4 * d,
        max_source_positions=dims["n_audio_ctx"], max_target_positions=dims["n_text_ctx"],
        activation_function="gelu", bos_token_id=eot, eos_token_id=eot, pad_token_id=eot,
        decoder_start_token_id=sot, tie_word_embeddings=True,
    )
    model = WhisperForConditionalGeneration(config)
    alignment = state.get("alignment_heads")
    new_state = {}
    for key, value in state.items():
        if key == "alignment_heads":
            continue
        new_state[_hf_key(key)] = value.detach().to(torch.float32)
    new_state["proj_out.weight"] = new_state["model.decoder.embed_tokens.weight"]
    missing, unexpected = model.load_state_dict(new_state, strict=False)
    if unexpected or set(missing) - {"proj_out.weight"}:
        raise ModelUnavailableError(f"cannot convert: unmatched weights {sorted(missing)[:3]} {sorted(unexpected)[:3]}")
    model.save_pretrained(out_dir, safe_serialization=True)

    # Generation settings the CTranslate2 converter copies: alignment heads for word timestamps,
    # tokens suppressed by default and at the start, language ids.
    from whisper.tokenizer import LANGUAGES, get_tokenizer

    wtok = get_tokenizer(n_vocab >= 51865, num_languages=num_languages)
    if alignment is not None:
        heads = alignment.to_dense() if alignment.is_sparse else alignment
        align_heads = [[int(a), int(b)] for a, b in torch.nonzero(heads).tolist()]
    else:  # openai-whisper's default: all heads of the second half of the decoder layers
        align_heads = [[layer, head] for layer in range(dims["n_text_layer"] // 2, dims["n_text_layer"])
                       for head in range(dims["n_text_head"])]
    gen = GenerationConfig(
        decoder_start_token_id=sot, bos_token_id=eot, eos_token_id=eot, pad_token_id=eot,
        max_length=dims["n_text_ctx"], suppress_tokens=sorted(wtok.non_speech_tokens),
        begin_suppress_tokens=[wtok.encode(" ")[0], eot], alignment_heads=align_heads,
        lang_to_id={f"<|{lang}|>": i for lang, i in zip(list(LANGUAGES)[:num_languages], lang_ids)},
        task_to_id={"translate": translate, "transcribe": transcribe_},
        no_timestamps_token_id=no_timestamps, prev_sot_token_id=sot_prev, is_multilingual=n_vocab >= 51865,
    )
    gen.save_pretrained(out_dir)

    tok = build_tokenizer(n_vocab)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   unk_token="<|endoftext|>", pad_token="<|endoftext|>")
    fast.save_pretrained(out_dir)
    tok.save(str(out_dir / "tokenizer.json"))  # the exact tokenizers object faster-whisper will load
    (out_dir / "preprocessor_config.json").write_text(json.dumps({
        "feature_extractor_type": "WhisperFeatureExtractor", "feature_size": dims["n_mels"],
        "sampling_rate": 16000, "hop_length": 160, "chunk_length": 30, "n_fft": 400,
        "n_samples": 480000, "nb_max_frames": 3000, "padding_side": "right", "padding_value": 0.0,
        "return_attention_mask": False,
    }, indent=2) + "\n")
    return out_dir


def convert_openai_checkpoint(pt_path: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                              quantization: str | None = "int8", *, force: bool = False) -> Path:
    """Convert an openai-whisper checkpoint file (``{"dims", "model_state_dict"}``, as whisper.load_model
    reads) into a CTranslate2 Whisper model directory that faster-whisper loads offline.

    ``quantization`` is how the weights are stored ("int8", "float16", "float32", None = as is);
    the compute type chosen at load time may differ (CTranslate2 converts on load).
    Goes through transformers' WhisperForConditionalGeneration and ctranslate2's
    TransformersConverter in a temporary folder; needs torch and transformers, no network.
    """
    import torch
    from ctranslate2.converters import TransformersConverter

    pt_path, out = Path(pt_path), Path(out_dir)
    if not pt_path.is_file():
        raise InputError(f"{pt_path}: no such Whisper checkpoint file")
    if out.exists() and any(out.iterdir()) and not force:
        raise InputError(f"{out}: exists and is not empty (use force=True / --force to overwrite)")
    try:
        checkpoint = torch.load(pt_path, map_location="cpu", weights_only=True)
        checkpoint["dims"], checkpoint["model_state_dict"]  # noqa: B018
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same problem for the user
        reason = one_line(exc)
        raise InputError(f"{pt_path}: not an openai-whisper checkpoint ({reason})") from None
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # "Loading weights" bars for a temporary folder are noise
    env = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")  # everything here is local
    try:
        with tempfile.TemporaryDirectory(prefix="hmsearch-ct2-") as tmp:
            hf_dir = openai_to_transformers(checkpoint, Path(tmp) / "hf")
            del checkpoint
            converter = TransformersConverter(str(hf_dir), copy_files=["tokenizer.json", "preprocessor_config.json"])
            converter.convert(str(out), quantization=quantization, force=True)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m hmsearch.ct2_whisper convert CHECKPOINT OUT_DIR [--quantization int8] [--force]``"""
    import argparse
    import sys

    from .errors import HmsearchError

    parser = argparse.ArgumentParser(prog="python -m hmsearch.ct2_whisper")
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="openai-whisper checkpoint (.pt) -> CTranslate2 model directory")
    conv.add_argument("checkpoint")
    conv.add_argument("out_dir")
    conv.add_argument("--quantization", default="int8", help="int8 (default), float16, float32 or none")
    conv.add_argument("--force", action="store_true", help="overwrite a non-empty OUT_DIR")
    args = parser.parse_args(argv)
    try:
        q = None if args.quantization.lower() == "none" else args.quantization
        out = convert_openai_checkpoint(args.checkpoint, args.out_dir, q, force=args.force)
    except HmsearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    size = sum(f.stat().st_size for f in out.iterdir()) / 1e6
    print(f"{out}: CTranslate2 Whisper model, {size:.0f} MB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
