"""Converting openai-whisper checkpoints into CTranslate2 Whisper models, offline.

Goes through transformers' WhisperForConditionalGeneration (in a temporary folder) and
ctranslate2's TransformersConverter; the tokenizer is rebuilt from the tiktoken file bundled with
openai-whisper, with Whisper's exact token ids (tests check all three vocabularies).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from ..errors import InputError, ModelUnavailableError, one_line
from ..models import scoped_env

# openai-whisper's non-language special tokens, in their id order after the language tokens.
_TASK_SPECIALS = (
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nospeech|>",
    "<|notimestamps|>",
)
# Whisper's pre-tokenizer pattern (whisper/tokenizer.py get_encoding).
_WHISPER_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def whisper_special_tokens(n_vocab: int) -> tuple[str, list[str], int]:
    """(encoding name, special tokens in id order, number of languages) for a model's n_vocab,
    exactly as openai-whisper's get_encoding/get_tokenizer lay them out."""
    from whisper.tokenizer import LANGUAGES

    multilingual = n_vocab >= 51865
    num_languages = n_vocab - 51765 - int(multilingual)
    specials = [
        "<|endoftext|>",
        "<|startoftranscript|>",
        *[f"<|{lang}|>" for lang in list(LANGUAGES)[:num_languages]],
        *_TASK_SPECIALS,
        *[f"<|{i * 0.02:.2f}|>" for i in range(1501)],
    ]
    return ("multilingual" if multilingual else "gpt2"), specials, num_languages


def build_tokenizer(n_vocab: int = 51865) -> Any:
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
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_WHISPER_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in specials])
    for i, t in enumerate(specials):
        if tok.token_to_id(t) != len(vocab) + i:
            raise ModelUnavailableError(f"special token {t} got id {tok.token_to_id(t)}, not {len(vocab) + i}")
    return tok


_BLOCK_RENAMES = (
    ("attn.query", "self_attn.q_proj"),
    ("attn.key", "self_attn.k_proj"),
    ("attn.value", "self_attn.v_proj"),
    ("attn.out", "self_attn.out_proj"),
    ("attn_ln", "self_attn_layer_norm"),
    ("cross_attn.query", "encoder_attn.q_proj"),
    ("cross_attn.key", "encoder_attn.k_proj"),
    ("cross_attn.value", "encoder_attn.v_proj"),
    ("cross_attn.out", "encoder_attn.out_proj"),
    ("cross_attn_ln", "encoder_attn_layer_norm"),
    ("mlp.0", "fc1"),
    ("mlp.2", "fc2"),
    ("mlp_ln", "final_layer_norm"),
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
                return f"model.{side}.layers.{i}.{new}{rest[len(old) :]}"
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
    translate, transcribe_, _, sot_prev, _no_speech, no_timestamps = range(
        sot + 1 + num_languages, sot + 1 + num_languages + 6
    )
    d = dims["n_audio_state"]
    config = WhisperConfig(
        vocab_size=n_vocab,
        num_mel_bins=dims["n_mels"],
        d_model=d,
        encoder_layers=dims["n_audio_layer"],
        encoder_attention_heads=dims["n_audio_head"],
        decoder_layers=dims["n_text_layer"],
        decoder_attention_heads=dims["n_text_head"],
        encoder_ffn_dim=4 * d,
        decoder_ffn_dim=4 * d,
        max_source_positions=dims["n_audio_ctx"],
        max_target_positions=dims["n_text_ctx"],
        activation_function="gelu",
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        decoder_start_token_id=sot,
        tie_word_embeddings=True,
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
    import whisper.audio as wa
    from whisper.tokenizer import LANGUAGES, get_tokenizer

    wtok = get_tokenizer(n_vocab >= 51865, num_languages=num_languages)
    if alignment is not None:
        heads = alignment.to_dense() if alignment.is_sparse else alignment
        align_heads = [[int(a), int(b)] for a, b in torch.nonzero(heads).tolist()]
    else:  # openai-whisper's default: all heads of the second half of the decoder layers
        align_heads = [
            [layer, head]
            for layer in range(dims["n_text_layer"] // 2, dims["n_text_layer"])
            for head in range(dims["n_text_head"])
        ]
    gen = GenerationConfig(
        decoder_start_token_id=sot,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        max_length=dims["n_text_ctx"],
        suppress_tokens=sorted(wtok.non_speech_tokens),
        begin_suppress_tokens=[wtok.encode(" ")[0], eot],
        alignment_heads=align_heads,
        lang_to_id={f"<|{lang}|>": i for lang, i in zip(list(LANGUAGES)[:num_languages], lang_ids)},
        task_to_id={"translate": translate, "transcribe": transcribe_},
        no_timestamps_token_id=no_timestamps,
        prev_sot_token_id=sot_prev,
        is_multilingual=n_vocab >= 51865,
    )
    gen.save_pretrained(out_dir)

    tok = build_tokenizer(n_vocab)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    fast.save_pretrained(out_dir)
    tok.save(str(out_dir / "tokenizer.json"))  # the exact tokenizers object faster-whisper will load
    (out_dir / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "feature_extractor_type": "WhisperFeatureExtractor",
                "feature_size": dims["n_mels"],
                "sampling_rate": wa.SAMPLE_RATE,
                "hop_length": wa.HOP_LENGTH,
                "chunk_length": wa.CHUNK_LENGTH,
                "n_fft": wa.N_FFT,
                "n_samples": wa.N_SAMPLES,
                "nb_max_frames": wa.N_FRAMES,
                "padding_side": "right",
                "padding_value": 0.0,
                "return_attention_mask": False,
            },
            indent=2,
        )
        + "\n"
    )
    return out_dir


def convert_openai_checkpoint(
    pt_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    quantization: str | None = "int8",
    *,
    force: bool = False,
) -> Path:
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
        checkpoint["dims"], checkpoint["model_state_dict"]
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same problem for the user
        reason = one_line(exc)
        raise InputError(f"{pt_path}: not an openai-whisper checkpoint ({reason})") from None
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # "Loading weights" bars for a temporary folder are noise
    try:
        # everything here is local
        with (
            scoped_env(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"),
            tempfile.TemporaryDirectory(prefix="hmsearch-ct2-") as tmp,
        ):
            hf_dir = openai_to_transformers(checkpoint, Path(tmp) / "hf")
            del checkpoint
            converter = TransformersConverter(str(hf_dir), copy_files=["tokenizer.json", "preprocessor_config.json"])
            converter.convert(str(out), quantization=quantization, force=True)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    return out
