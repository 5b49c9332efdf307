"""Converting Whisper models between the two engines' formats, offline.

openai-whisper checkpoint -> CTranslate2 (:func:`convert_openai_checkpoint`): goes through
transformers' WhisperForConditionalGeneration (in a temporary folder) and ctranslate2's
TransformersConverter; the tokenizer is rebuilt from the tiktoken file bundled with openai-whisper,
with Whisper's exact token ids (tests check all three vocabularies).

CTranslate2 -> openai-whisper checkpoint (:func:`convert_ct2_model`): reads ``model.bin`` with
numpy alone (no ctranslate2) and maps its variables onto openai-whisper's state dict, so that a
faster-whisper model (e.g. one installed from a package) also runs in the torch engine.
"""

from __future__ import annotations

import json
import os
import re
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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
    if checkpoint.get("alignment_heads"):  # recorded by convert_ct2_model / hmsearch.asr.finetune
        align_heads = [[int(a), int(b)] for a, b in checkpoint["alignment_heads"]]
    elif alignment is not None:
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


# ----------------------------------------------------------------------------------------------
# CTranslate2 -> openai-whisper (the reverse): faster-whisper's model.bin read with numpy alone.
#
# The model.bin layout (CTranslate2 binary version 6, little-endian; it mirrors
# ctranslate2/specs/model_spec.py ModelSpec._serialize):
#
#   u32 binary_version | str spec_name | u32 spec_revision | u32 num_variables
#   num_variables x (str name | u8 rank | rank x u32 dim | u8 dtype_id | u32 num_bytes | raw data)
#   u32 num_aliases | num_aliases x (str alias | str target)
#   str = u16 length (with the trailing NUL) | utf-8 bytes | NUL
#
# Names map to openai-whisper's (d = n_state): encoder/conv{1,2} -> encoder.conv{1,2};
# */layer_N/self_attention/linear_0 [3d, d] -> attn.query | attn.key | attn.value (fused rows; the
# key rows' bias is CT2's zero filler, Whisper's key has none); self_attention/linear_1 -> attn.out;
# decoder/layer_N/attention/linear_0 -> cross_attn.query, linear_1 [2d, d] -> cross_attn.key |
# cross_attn.value, linear_2 -> cross_attn.out; ffn/linear_0, linear_1 -> mlp.0, mlp.2; layer norms
# (gamma, beta) -> weight, bias; encoder/layer_norm -> encoder.ln_post; decoder/layer_norm ->
# decoder.ln; decoder/embeddings -> decoder.token_embedding (decoder/projection is tied to it);
# */position_encodings/encodings -> *.positional_embedding. Weights are used as stored: both
# libraries keep the raw q/k matrices and scale by 1/sqrt(head_dim) at run time.

CT2_BINARY_VERSIONS = (6,)
# CTranslate2's dtype ids, in order; bfloat16 is read as raw uint16 and widened to float32.
_CT2_DTYPES: tuple[tuple[str, str], ...] = (
    ("float32", "<f4"),
    ("int8", "i1"),
    ("int16", "<i2"),
    ("int32", "<i4"),
    ("float16", "<f2"),
    ("bfloat16", "<u2"),
)
# Whisper's encoder positions are fixed sinusoids; a model whose stored ones differ by more than
# float16 rounding is not a Whisper encoder.
_SINUSOID_TOLERANCE = 2e-3


@dataclass(frozen=True)
class Ct2Model:
    """A parsed CTranslate2 ``model.bin``. ``variables`` are read-only views on a memory map of the
    file (aliases are the same array object as their target); bfloat16 arrays are float32 copies."""

    path: Path
    binary_version: int
    spec: str
    revision: int
    variables: dict[str, np.ndarray]


def read_ct2_model(path: str | os.PathLike[str]) -> Ct2Model:
    """Parse a CTranslate2 ``model.bin`` (one-line InputError when it is damaged or of another
    binary version)."""
    path = Path(path)
    try:
        raw = np.memmap(path, dtype=np.uint8, mode="r")
    except (OSError, ValueError) as exc:  # ValueError: an empty file cannot be mapped
        raise InputError(f"{path}: cannot read CTranslate2 model ({one_line(exc)})") from None
    pos = 0

    def take(n: int) -> np.ndarray:
        nonlocal pos
        if pos + n > len(raw):
            raise InputError(f"{path}: truncated CTranslate2 model (at byte {pos}, {n} more wanted)")
        out = raw[pos : pos + n]
        pos += n
        return out

    def num(fmt: str) -> int:
        size = struct.calcsize("<" + fmt)
        return int(struct.unpack("<" + fmt, take(size).tobytes())[0])

    def string() -> str:
        data = take(num("H")).tobytes()
        if not data.endswith(b"\0"):
            raise InputError(f"{path}: damaged CTranslate2 model (malformed name before byte {pos})")
        return data[:-1].decode("utf-8", errors="replace")

    version = num("I")
    if version not in CT2_BINARY_VERSIONS:
        raise InputError(
            f"{path}: CTranslate2 binary version {version} is not supported (this converter reads "
            f"version {', '.join(map(str, CT2_BINARY_VERSIONS))}): re-convert the model with ctranslate2 4.x"
        )
    spec, revision = string(), num("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(num("I")):
        name = string()
        shape = tuple(num("I") for _ in range(num("B")))
        type_id = num("B")
        if type_id >= len(_CT2_DTYPES):
            raise InputError(f"{path}: damaged CTranslate2 model ({name}: unknown dtype id {type_id})")
        dtype_name, code = _CT2_DTYPES[type_id]
        data = take(num("I"))
        dtype = np.dtype(code)
        count = int(np.prod(shape, dtype=np.int64))
        if len(data) != count * dtype.itemsize:
            raise InputError(f"{path}: damaged CTranslate2 model ({name}: {len(data)} bytes for shape {shape})")
        arr = data.view(dtype)
        if dtype_name == "bfloat16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        variables[name] = arr.reshape(shape)
    for _ in range(num("I")):
        alias, target = string(), string()
        if target not in variables:
            raise InputError(f"{path}: damaged CTranslate2 model (alias {alias} of a missing {target})")
        variables[alias] = variables[target]
    if pos != len(raw):
        raise InputError(f"{path}: damaged CTranslate2 model ({len(raw) - pos} trailing bytes)")
    return Ct2Model(path, version, spec, revision, variables)


def _float_weight(variables: dict[str, np.ndarray], scope: str) -> np.ndarray:
    """``scope/weight`` as floats: int8 (per-row scale) and int16 (one scale) are dequantised as
    CTranslate2 quantises them (q = rint(w * scale), so w ~ q / scale; lossy by the rounding)."""
    w = variables[f"{scope}/weight"]
    scale = variables.get(f"{scope}/weight_scale")
    if scale is not None:
        s = scale.astype(np.float32)
        if s.ndim:  # one scale per output row (conv weights too: [out, in, k])
            s = s.reshape(-1, *([1] * (w.ndim - 1)))
        return w.astype(np.float32) / s
    if w.dtype.kind != "f":
        raise InputError(f"{scope}/weight is {w.dtype} without a weight_scale: not a CTranslate2 Whisper model")
    return w


def _count_layers(variables: dict[str, np.ndarray], side: str) -> int:
    ids = {int(m.group(1)) for k in variables if (m := re.match(rf"^{side}/layer_(\d+)/", k))}
    if not ids or ids != set(range(len(ids))):
        raise InputError(f"{side} layers are not numbered 0..N-1 ({sorted(ids)[:5]}): not a Whisper model")
    return len(ids)


def ct2_whisper_state(model: Ct2Model, dtype: str = "float16") -> tuple[dict[str, int], dict[str, Any]]:
    """(dims, state dict) of openai-whisper's ``Whisper`` from a CTranslate2 WhisperSpec model;
    ``dtype`` "float16" (as OpenAI ships its checkpoints) or "float32"."""
    import torch

    if dtype not in ("float16", "float32"):
        raise InputError(f"unsupported checkpoint dtype '{dtype}': use float16 or float32")
    if model.spec != "WhisperSpec":
        raise InputError(f"{model.path}: a CTranslate2 {model.spec} model, not a Whisper one")
    target = np.dtype(dtype)
    v = model.variables
    used: set[str] = set()
    state: dict[str, Any] = {}

    def get(name: str) -> np.ndarray:
        if name not in v:
            raise InputError(f"{model.path}: no {name}: not a CTranslate2 Whisper model")
        used.add(name)
        return v[name]

    def put(key: str, arr: np.ndarray) -> None:
        state[key] = torch.from_numpy(np.array(arr, dtype=target))  # a writable copy off the memory map

    def linear(key: str, scope: str, rows: slice | None = None, *, bias: bool = True) -> None:
        get(f"{scope}/weight")
        used.add(f"{scope}/weight_scale")
        w = _float_weight(v, scope)
        put(f"{key}.weight", w if rows is None else w[rows])
        if bias:
            b = get(f"{scope}/bias")
            put(f"{key}.bias", b if rows is None else b[rows])

    def no_bias(scope: str, rows: slice) -> None:
        """Whisper's keys have no bias: CT2 stores zeros in their rows of a fused bias."""
        b = v.get(f"{scope}/bias")
        if b is not None and np.any(b[rows] != 0):
            raise InputError(f"{model.path}: {scope} has a key bias: not a Whisper model")

    def norm(key: str, scope: str) -> None:
        put(f"{key}.weight", get(f"{scope}/gamma"))
        put(f"{key}.bias", get(f"{scope}/beta"))

    def block(o: str, s: str, *, cross: bool) -> None:
        norm(f"{o}.attn_ln", f"{s}/self_attention/layer_norm")
        qkv = f"{s}/self_attention/linear_0"
        if get(f"{qkv}/weight").shape[0] != 3 * d:
            raise InputError(f"{model.path}: {qkv} is not a fused q/k/v of {3 * d} rows")
        linear(f"{o}.attn.query", qkv, slice(0, d))
        linear(f"{o}.attn.key", qkv, slice(d, 2 * d), bias=False)
        no_bias(qkv, slice(d, 2 * d))
        linear(f"{o}.attn.value", qkv, slice(2 * d, 3 * d))
        linear(f"{o}.attn.out", f"{s}/self_attention/linear_1")
        if cross:
            norm(f"{o}.cross_attn_ln", f"{s}/attention/layer_norm")
            linear(f"{o}.cross_attn.query", f"{s}/attention/linear_0")
            kv = f"{s}/attention/linear_1"
            linear(f"{o}.cross_attn.key", kv, slice(0, d), bias=False)
            no_bias(kv, slice(0, d))
            linear(f"{o}.cross_attn.value", kv, slice(d, 2 * d))
            linear(f"{o}.cross_attn.out", f"{s}/attention/linear_2")
        norm(f"{o}.mlp_ln", f"{s}/ffn/layer_norm")
        linear(f"{o}.mlp.0", f"{s}/ffn/linear_0")
        linear(f"{o}.mlp.2", f"{s}/ffn/linear_1")

    d = int(get("encoder/conv1/weight").shape[0])
    for i in (1, 2):
        linear(f"encoder.conv{i}", f"encoder/conv{i}")
    put("encoder.positional_embedding", get("encoder/position_encodings/encodings"))
    n_audio_layer = _count_layers(v, "encoder")
    for n in range(n_audio_layer):
        block(f"encoder.blocks.{n}", f"encoder/layer_{n}", cross=False)
    norm("encoder.ln_post", "encoder/layer_norm")

    get("decoder/embeddings/weight")
    used.update({"decoder/embeddings/weight_scale", "decoder/projection/weight", "decoder/projection/weight_scale"})
    embedding = _float_weight(v, "decoder/embeddings")
    put("decoder.token_embedding.weight", embedding)
    projection = v.get("decoder/projection/weight")
    untied = projection is not None and projection is not v["decoder/embeddings/weight"]  # not an alias
    if untied and not np.allclose(_float_weight(v, "decoder/projection"), embedding, atol=1e-2):
        raise InputError(f"{model.path}: the output projection is not tied to the token embedding (Whisper's is)")
    used.add("decoder/projection/bias")
    if "decoder/projection/bias" in v and np.any(v["decoder/projection/bias"] != 0):
        raise InputError(f"{model.path}: the output projection has a bias (Whisper's has none)")
    put("decoder.positional_embedding", get("decoder/position_encodings/encodings"))
    n_text_layer = _count_layers(v, "decoder")
    for n in range(n_text_layer):
        block(f"decoder.blocks.{n}", f"decoder/layer_{n}", cross=True)
    norm("decoder.ln", "decoder/layer_norm")

    # What is left must be scalar options (num_heads, activation, pre_norm, ...), never a tensor.
    leftovers = sorted(k for k in v if k not in used and v[k].ndim > 0)
    if leftovers:
        raise InputError(
            f"{model.path}: CTranslate2 variables with no openai-whisper place: {', '.join(leftovers[:3])}"
        )
    for flag in ("decoder/scale_embeddings", "decoder/start_from_zero_embedding"):
        if flag in v and int(v[flag]):
            raise InputError(f"{model.path}: {flag} is set: not a Whisper decoder")

    from whisper.model import sinusoids

    positions = state["encoder.positional_embedding"].float()
    if float((positions - sinusoids(*positions.shape)).abs().max()) > _SINUSOID_TOLERANCE:
        raise InputError(f"{model.path}: the encoder positions are not Whisper's sinusoids")
    dims = {
        "n_mels": int(v["encoder/conv1/weight"].shape[1]),
        "n_audio_ctx": int(v["encoder/position_encodings/encodings"].shape[0]),
        "n_audio_state": d,
        "n_audio_head": int(get("encoder/num_heads")),
        "n_audio_layer": n_audio_layer,
        "n_vocab": int(embedding.shape[0]),
        "n_text_ctx": int(v["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(embedding.shape[1]),
        "n_text_head": int(get("decoder/num_heads")),
        "n_text_layer": n_text_layer,
    }
    return dims, state


def alignment_heads_dump(heads: list[list[int]], n_text_layer: int, n_text_head: int) -> bytes:
    """[[layer, head], ...] in the form ``Whisper.set_alignment_heads`` takes (and
    ``whisper._ALIGNMENT_HEADS`` holds): base85 of a gzipped boolean [layers, heads] mask."""
    import base64
    import gzip

    mask = np.zeros((n_text_layer, n_text_head), dtype=bool)
    for layer, head in heads:
        if not (0 <= layer < n_text_layer and 0 <= head < n_text_head):
            raise InputError(f"alignment head [{layer}, {head}] is outside {n_text_layer} layers x {n_text_head} heads")
        mask[layer, head] = True
    return base64.b85encode(gzip.compress(mask.tobytes(), mtime=0))


def _config_alignment_heads(ct2_dir: Path) -> list[list[int]] | None:
    config = ct2_dir / "config.json"
    if not config.is_file():
        return None
    try:
        heads = json.loads(config.read_text(encoding="utf-8")).get("alignment_heads")
        return [[int(a), int(b)] for a, b in heads] if heads else None
    except (ValueError, TypeError, AttributeError) as exc:
        raise InputError(f"{config}: unreadable alignment_heads ({one_line(exc)})") from None


def convert_ct2_model(
    ct2: str | os.PathLike[str], out: str | os.PathLike[str], *, dtype: str = "float16", force: bool = False
) -> Path:
    """Convert a CTranslate2 Whisper model (a faster-whisper folder, or its ``model.bin``) into an
    openai-whisper checkpoint file that ``whisper.load_model`` reads, written atomically.

    The file is ``{"dims", "model_state_dict", "alignment_heads"}``: the last (the heads of the
    folder's ``config.json``, for word timestamps) is ignored by ``whisper.load_model``, which
    for a file falls back to all heads of the decoder's second half; :func:`apply_alignment_heads`
    sets them. float16 models round-trip bit-exactly into a float16 checkpoint; int8/int16 ones are
    dequantised (lossy). Needs numpy, torch and openai-whisper only; no network.
    """
    import torch

    from ..fsutil import atomic_file

    src, out_path = Path(ct2), Path(out)
    model_bin = src / "model.bin" if src.is_dir() else src
    if not model_bin.is_file():
        raise InputError(f"{model_bin}: no such CTranslate2 model file")
    if out_path.exists() and not force:
        raise InputError(f"{out_path}: exists (use force=True to overwrite)")
    model = read_ct2_model(model_bin)
    dims, state = ct2_whisper_state(model, dtype)
    del model  # the memory map
    checkpoint: dict[str, Any] = {"dims": dims, "model_state_dict": state}
    heads = _config_alignment_heads(model_bin.parent)
    if heads:
        alignment_heads_dump(heads, dims["n_text_layer"], dims["n_text_head"])  # in range
        checkpoint["alignment_heads"] = heads
    with atomic_file(out_path) as tmp, open(tmp, "wb") as fh:
        torch.save(checkpoint, fh)  # to a file object: the archive is named "archive", not after the temp file
        fh.flush()
        os.fsync(fh.fileno())
    return out_path


def checkpoint_alignment_heads(path: str | os.PathLike[str]) -> list[list[int]] | None:
    """The alignment heads :func:`convert_ct2_model` recorded in a checkpoint, or None (memory-mapped:
    the weights are not read)."""
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same problem for the user
        raise ModelUnavailableError(f"{path}: cannot read Whisper checkpoint ({one_line(exc)})") from None
    heads = checkpoint.get("alignment_heads") if isinstance(checkpoint, dict) else None
    return [[int(a), int(b)] for a, b in heads] if heads else None


def apply_alignment_heads(model: Any, heads: list[list[int]]) -> None:
    """Make a loaded openai-whisper model use ``heads`` for word timestamps."""
    model.set_alignment_heads(alignment_heads_dump(heads, model.dims.n_text_layer, model.dims.n_text_head))
