"""The index on disk: per-episode segment files, a manifest that names them, and a FAISS cache.

Layout of an index folder::

    manifest.json        schema, embedding model and dimension, chunk settings, episodes
    manifest.prev.json   the manifest before the last commit (kept for recovery)
    segments/<key>.npy   one episode's passage vectors (float32, L2-normalised)
    segments/<key>.json  one episode's passages: start, end and their timed sentences
    transcripts/         Whisper transcripts, keyed by audio content hash and model
    cache/flat-<d>.faiss FAISS index over all segments in manifest order (derived, rebuildable)
    .lock                held by the one job allowed to write

Why this shape: segment files are immutable and written before the manifest names them, and the
manifest is replaced by one atomic rename. A run killed at any moment leaves either the old or
the new manifest, both complete; files no manifest names are swept up by the next writer. The
FAISS file is only a cache of the segments, so a damaged or stale one is rebuilt, not trusted.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import IndexError_, IndexLockedError, NotFoundError
from .types import Chunk, Episode

SCHEMA_VERSION = 1
# Exact (flat) search reads every vector per query: ~14 ms per 100k passages here, so past
# ~250k passages an HNSW graph (M=32, efSearch=128: recall@10 ~0.99 vs exact) takes over. The
# switch is automatic: the cache is derived from the segments and rebuilt in the right kind.
EXACT_SEARCH_MAX = 250_000
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 80, 128
LEXICAL_VERSION = 1  # bump when analysis (tokens, stemming) changes: old BM25 caches are rebuilt
MANIFEST = "manifest.json"
PREV_MANIFEST = "manifest.prev.json"
LOCK_FILE = ".lock"


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def search_one(index: Any, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """FAISS search for one query vector on one thread: for a single query OpenMP's start-up
    costs more than it saves (measured: flat 100k, 16 ms on 1 thread against 41 ms on 2)."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k)
    finally:
        faiss.omp_set_num_threads(threads)


def segment_key(episode_id: str, content_hash: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", episode_id)[:48].strip("_") or "episode"
    return f"{slug}-{hashlib.sha256((episode_id + content_hash).encode()).hexdigest()[:12]}"


@dataclass
class Manifest:
    embedding_model: str
    dim: int
    chunking: dict[str, Any]
    episodes: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> record, in insertion order
    generation: int = 0
    schema: int = SCHEMA_VERSION
    created: str = ""
    updated: str = ""

    def to_json(self) -> bytes:
        return json.dumps({
            "schema": self.schema, "hmsearch": __version__, "generation": self.generation,
            "created": self.created, "updated": self.updated,
            "embedding": {"model": self.embedding_model, "dim": self.dim},
            "chunking": self.chunking,
            "episodes": list(self.episodes.values()),
        }, ensure_ascii=False, indent=1).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, *, name: str) -> Manifest:
        try:
            obj = json.loads(data.decode("utf-8"))
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
            schema = int(obj["schema"])
            if schema > SCHEMA_VERSION:
                raise IndexError_(f"{name}: written by a newer hmsearch (schema {schema}); upgrade hmsearch")
            episodes = {}
            for rec in obj["episodes"]:
                for key in ("episode", "segment", "chunks", "content_hash"):
                    if key not in rec:
                        raise ValueError(f"episode record without '{key}'")
                episodes[rec["episode"]] = rec
            return cls(embedding_model=str(obj["embedding"]["model"]), dim=int(obj["embedding"]["dim"]),
                       chunking=dict(obj["chunking"]), episodes=episodes, generation=int(obj["generation"]),
                       schema=schema, created=str(obj.get("created", "")), updated=str(obj.get("updated", "")))
        except IndexError_:
            raise
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise IndexError_(f"{name}: damaged index manifest ({str(exc).splitlines()[0]}); "
                              f"run `hmsearch repair` to restore the previous version") from None


def _episode_from_record(rec: dict[str, Any]) -> Episode:
    fields = {k: rec.get(k) for k in ("title", "duration", "chunks", "source", "audio", "url", "enclosure",
                                      "published", "language", "content_hash", "transcript_source")}
    fields = {k: v for k, v in fields.items() if v is not None}
    return Episode(id=rec["episode"], **fields)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class IndexStore:
    """An index folder. Reading needs no lock; writing happens inside ``with store.writing():``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._manifest: Manifest | None = None
        self._loaded = False
        self._chunk_cache: dict[str, list[dict[str, Any]]] = {}
        self._faiss: Any = None
        self._lexical: Any = None
        self._rows: tuple[list[str], np.ndarray] | None = None
        self._langs: np.ndarray | None = None
        self._lock_fd: int | None = None

    # ---- reading -------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    @property
    def manifest(self) -> Manifest | None:
        """The committed manifest, or None for a folder with no index yet."""
        if not self._loaded:
            self._manifest = self._read_manifest(self.manifest_path)
            self._loaded = True
        return self._manifest

    def _read_manifest(self, path: Path) -> Manifest | None:
        if self.root.exists() and not self.root.is_dir():
            raise IndexError_(f"{self.root}: is a file, not an index folder")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise IndexError_(f"{path}: cannot read ({exc.strerror})") from None
        return Manifest.from_json(data, name=str(path))

    def require(self) -> Manifest:
        """The manifest; a clear error when there is no index here yet."""
        manifest = self.manifest
        if manifest is None:
            raise IndexError_(f"no index in {self.root}: build one with `hmsearch index AUDIO_OR_TRANSCRIPTS` "
                              f"(or pass --index-dir)")
        return manifest

    def episodes(self) -> list[Episode]:
        manifest = self.manifest
        return [] if manifest is None else [_episode_from_record(r) for r in manifest.episodes.values()]

    def episode(self, episode_id: str) -> Episode:
        rec = self.require().episodes.get(episode_id)
        if rec is None:
            raise NotFoundError(f"episode '{episode_id}' is not in the index {self.root}")
        return _episode_from_record(rec)

    def _segment_paths(self, key: str) -> tuple[Path, Path]:
        folder = self.root / "segments"  # not with_suffix: an id may contain dots ("python-3.7")
        return folder / f"{key}.npy", folder / f"{key}.json"

    def chunks(self, episode_id: str) -> list[dict[str, Any]]:
        """An episode's passages as stored: {"start", "end", "sentences": [[start, end, text(, word_starts)], ...]}."""
        if episode_id not in self._chunk_cache:
            rec = self.require().episodes.get(episode_id)
            if rec is None:
                raise NotFoundError(f"episode '{episode_id}' is not in the index {self.root}")
            _, meta_path = self._segment_paths(rec["segment"])
            try:
                obj = json.loads(meta_path.read_bytes())
                chunks = obj["chunks"]
                if len(chunks) != rec["chunks"]:
                    raise ValueError(f"{len(chunks)} passages where the manifest says {rec['chunks']}")
            except FileNotFoundError:
                raise IndexError_(f"{meta_path}: missing segment file of episode '{episode_id}'; "
                                  f"run `hmsearch repair`") from None
            except (ValueError, KeyError, TypeError) as exc:
                raise IndexError_(f"{meta_path}: damaged segment file of episode '{episode_id}' "
                                  f"({str(exc).splitlines()[0]}); run `hmsearch repair`") from None
            self._chunk_cache[episode_id] = chunks
        return self._chunk_cache[episode_id]

    def vectors(self, episode_id: str) -> np.ndarray:
        rec = self.require().episodes[episode_id]
        npy_path, _ = self._segment_paths(rec["segment"])
        try:
            arr = np.load(npy_path, mmap_mode="r", allow_pickle=False)
            if arr.ndim != 2 or arr.shape != (rec["chunks"], self.require().dim) or arr.dtype != np.float32:
                raise ValueError(f"shape {arr.shape} {arr.dtype}, expected ({rec['chunks']}, {self.require().dim}) float32")
            return arr
        except FileNotFoundError:
            raise IndexError_(f"{npy_path}: missing segment file of episode '{episode_id}'; "
                              f"run `hmsearch repair`") from None
        except (ValueError, OSError) as exc:
            raise IndexError_(f"{npy_path}: damaged segment file of episode '{episode_id}' "
                              f"({str(exc).splitlines()[0]}); run `hmsearch repair`") from None

    # ---- the FAISS cache -----------------------------------------------------------------
    def _cache_digest(self) -> str:
        manifest = self.require()
        return hashlib.sha256("\n".join(r["segment"] for r in manifest.episodes.values()).encode()).hexdigest()[:16]

    def index_kind(self) -> str:
        """Exact search while it is fast enough, HNSW above (see EXACT_SEARCH_MAX)."""
        limit = int(os.environ.get("HMSEARCH_EXACT_SEARCH_MAX", EXACT_SEARCH_MAX))
        return "flat" if self.total_rows() <= limit else "hnsw"

    def _cache_path(self) -> Path:
        return self.root / "cache" / f"{self.index_kind()}-{self._cache_digest()}.faiss"

    def encoder_dir(self) -> Path:
        """Where the index's query encoder is exported for onnxruntime (see onnx_query)."""
        from .onnx_query import ENCODER_VERSION

        model = self.require().embedding_model
        return self.root / "cache" / f"encoder-{ENCODER_VERSION}-{hashlib.sha256(model.encode()).hexdigest()[:12]}"

    def _lexical_path(self) -> Path:
        return self.root / "cache" / f"bm25-{LEXICAL_VERSION}-{self._cache_digest()}"

    def row_location(self, row: int) -> tuple[str, int]:
        """FAISS/BM25 row -> (episode id, passage index)."""
        ids, starts = self._row_table()
        e = int(np.searchsorted(starts, row, side="right") - 1)
        return ids[e], int(row - starts[e])

    def row_episodes(self, rows: np.ndarray) -> np.ndarray:
        """FAISS/BM25 rows -> positions of their episodes in manifest order (vectorised row_location)."""
        return np.searchsorted(self._row_table()[1], np.asarray(rows, dtype=np.int64), side="right") - 1

    def episode_ids(self) -> list[str]:
        """Episode ids in manifest (= row) order."""
        return self._row_table()[0]

    def episode_languages(self) -> np.ndarray:
        """Each episode's language code ("" when unknown), aligned with episode_ids()."""
        if self._langs is None:
            episodes = self.require().episodes
            self._langs = np.array([episodes[i].get("language") or "" for i in self.episode_ids()], dtype=object)
        return self._langs

    def episode_starts(self) -> np.ndarray:
        """The first row of each episode in manifest order, then the total."""
        return self._row_table()[1]

    def total_rows(self) -> int:
        return int(self._row_table()[1][-1])

    def episode_rows(self, episode_id: str) -> range:
        ids, starts = self._row_table()
        e = ids.index(episode_id)
        return range(int(starts[e]), int(starts[e + 1]))

    def passage_texts(self) -> Iterator[tuple[str, str]]:
        """(text, episode language) of every passage, in row order."""
        for episode_id, rec in self.require().episodes.items():
            for chunk in self.chunks(episode_id):
                yield " ".join(s[2] for s in chunk["sentences"]), rec.get("language") or ""

    def lexical_index(self) -> Any:
        """The BM25 index over every passage, loaded from the cache or rebuilt from segments."""
        if self._lexical is not None:
            return self._lexical
        from .lexical import LexicalIndex

        path = self._lexical_path()
        total = self.total_rows()
        lexical = None
        if path.is_dir():
            try:
                lexical = LexicalIndex.load(path)
                if lexical.size != total:
                    lexical = None
            except Exception:  # damaged cache (json, npz, missing file): it is derived, rebuild it
                lexical = None
        if lexical is None:
            texts = list(self.passage_texts())
            lexical = LexicalIndex.build((t for t, _ in texts), (lang for _, lang in texts))
            with contextlib.suppress(OSError):
                tmp = Path(tempfile.mkdtemp(prefix=".bm25.", suffix=".tmp", dir=self._ensure_cache_dir()))
                lexical.save(tmp)
                if path.exists():
                    shutil.rmtree(path, ignore_errors=True)
                os.replace(tmp, path)
        self._lexical = lexical
        return lexical

    def _ensure_cache_dir(self) -> Path:
        folder = self.root / "cache"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _row_table(self) -> tuple[list[str], np.ndarray]:
        """Episode ids in manifest order and the first FAISS row of each."""
        if self._rows is None:
            manifest = self.require()
            ids = list(manifest.episodes)
            counts = np.array([manifest.episodes[i]["chunks"] for i in ids], dtype=np.int64)
            starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
            self._rows = (ids, starts)
        return self._rows

    def faiss_index(self) -> Any:
        """The FAISS index over every passage, loaded from the cache or rebuilt from segments."""
        if self._faiss is not None:
            return self._faiss
        import faiss

        manifest = self.require()
        ids, starts = self._row_table()
        path = self._cache_path()
        index = None
        if path.is_file():
            try:
                index = faiss.read_index(str(path))
                if index.ntotal != int(starts[-1]) or index.d != manifest.dim:
                    index = None
            except RuntimeError:  # damaged cache: it is derived, so rebuild it
                index = None
        if index is None:
            # Inner product over L2-normalised vectors is cosine similarity.
            if self.index_kind() == "flat":
                index = faiss.IndexFlatIP(manifest.dim)
            else:
                index = faiss.IndexHNSWFlat(manifest.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
                index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            for episode_id in ids:
                vecs = self.vectors(episode_id)
                if len(vecs):
                    index.add(np.ascontiguousarray(vecs, dtype=np.float32))
            with contextlib.suppress(OSError):  # a read-only index still searches
                path.parent.mkdir(exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=".flat.", suffix=".tmp", dir=path.parent)
                os.close(fd)
                faiss.write_index(index, tmp)
                os.replace(tmp, path)
        if hasattr(index, "hnsw"):
            index.hnsw.efSearch = HNSW_EF_SEARCH
        self._faiss = index
        return index

    def search_vectors(self, query: np.ndarray, k: int) -> list[tuple[float, str, int]]:
        """Nearest passages to one query vector: (score, episode id, passage index), best first."""
        manifest = self.require()
        if query.shape[-1] != manifest.dim:
            raise IndexError_(f"{self.root}: query has dimension {query.shape[-1]}, the index {manifest.dim}")
        index = self.faiss_index()
        if index.ntotal == 0:
            return []
        scores, rows = search_one(index, query, min(k, index.ntotal))
        return [(float(score), *self.row_location(int(row))) for score, row in zip(scores[0], rows[0]) if row >= 0]

    def dense_scores(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Exact cosine of ``query`` with the passages at ``rows``."""
        if len(rows) == 0:
            return np.zeros(0, dtype=np.float32)
        vecs = self.faiss_index().reconstruct_batch(np.asarray(rows, dtype=np.int64))
        return vecs @ query.reshape(-1).astype(np.float32)

    # ---- writing -------------------------------------------------------------------------
    @contextlib.contextmanager
    def writing(self, *, wait: bool = False) -> Iterator[IndexStore]:
        """Hold the index's write lock (one writer at a time; readers never block)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                raise IndexLockedError(f"{self.root}: another hmsearch job is writing this index; "
                                       f"wait for it to finish (or pass --wait)") from None
            self._lock_fd = fd
            self._loaded = False  # re-read under the lock: another job may have committed
            self._drop_caches()
            self._sweep()
            yield self
        finally:
            self._lock_fd = None
            os.close(fd)  # closing releases the flock (so does the kernel if we are killed)

    def _require_lock(self) -> None:
        if self._lock_fd is None:
            raise RuntimeError("index writes must happen inside IndexStore.writing()")

    def ensure(self, *, embedding_model: str, dim: int, chunking: dict[str, Any]) -> Manifest:
        """The manifest to write into; a new index takes these settings, an old one must match."""
        self._require_lock()
        manifest = self.manifest
        if manifest is None:
            manifest = Manifest(embedding_model=embedding_model, dim=dim, chunking=chunking, created=_now())
            self._manifest = manifest
            return manifest
        if manifest.embedding_model != embedding_model or manifest.dim != dim:
            raise IndexError_(
                f"{self.root} was built with embedding model '{manifest.embedding_model}' ({manifest.dim} dims), "
                f"not '{embedding_model}': pass --embedding-model {manifest.embedding_model} or use another --index-dir")
        if manifest.chunking != chunking:
            raise IndexError_(
                f"{self.root} was built with other chunk settings ({manifest.chunking}); "
                f"use the same settings or another --index-dir")
        return manifest

    def put_episode(self, episode: Episode, chunks: list[Chunk], vectors: np.ndarray, *,
                    extra: dict[str, Any] | None = None) -> None:
        """Add or replace one episode and commit. Segment files first, then the manifest."""
        self._require_lock()
        manifest = self.require()
        if vectors.shape != (len(chunks), manifest.dim):
            raise ValueError(f"vectors {vectors.shape} do not match {len(chunks)} passages of dim {manifest.dim}")
        key = segment_key(episode.id, episode.content_hash)
        npy_path, meta_path = self._segment_paths(key)
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
        atomic_write(npy_path, buf.getvalue())
        record = {**episode.to_dict(), "chunks": len(chunks), "segment": key, **(extra or {})}
        # The segment describes itself too, so a lost manifest can be rebuilt from segments alone.
        meta = {"episode": episode.id, "record": record,
                "index": {"embedding_model": manifest.embedding_model, "dim": manifest.dim,
                          "chunking": manifest.chunking},
                "chunks": [
            {"start": round(c.start, 3), "end": round(c.end, 3),
             "sentences": [[round(s.start, 3), round(s.end, 3), s.text,
                            *([[round(w, 3) for w in s.word_times]] if s.word_times else [])]
                           for s in c.sentences]}
            for c in chunks]}
        atomic_write(meta_path, json.dumps(meta, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        manifest.episodes.pop(episode.id, None)  # a replaced episode moves to the end
        manifest.episodes[episode.id] = record
        self._commit(manifest)

    def remove_episode(self, episode_id: str) -> Episode:
        self._require_lock()
        manifest = self.require()
        if episode_id not in manifest.episodes:
            raise NotFoundError(f"episode '{episode_id}' is not in the index {self.root}")
        removed = _episode_from_record(manifest.episodes.pop(episode_id))
        self._commit(manifest)
        return removed

    def _commit(self, manifest: Manifest) -> None:
        manifest.generation += 1
        manifest.updated = _now()
        current = self.manifest_path
        if current.exists():
            atomic_write(self.root / PREV_MANIFEST, current.read_bytes())
        atomic_write(current, manifest.to_json())
        self._manifest, self._loaded = manifest, True
        self._drop_caches()

    def _drop_caches(self) -> None:
        """Forget what was loaded from the last manifest (FAISS, BM25, row table, passages)."""
        self._faiss, self._lexical, self._rows, self._langs = None, None, None, None
        self._chunk_cache.clear()

    def _sweep(self) -> None:
        """Delete what no manifest names: segments of killed runs, temp files, stale caches."""
        keep: set[str] = set()
        for path in (self.root / MANIFEST, self.root / PREV_MANIFEST):
            try:
                keep.update(r["segment"] for r in Manifest.from_json(path.read_bytes(), name=str(path)).episodes.values())
            except FileNotFoundError:
                continue
            except IndexError_:
                return  # a damaged manifest: delete nothing until it is repaired
        for folder in (self.root / "segments", self.root / "transcripts", self.root):
            if not folder.is_dir():
                continue
            for f in folder.iterdir():
                if f.name.endswith(".tmp") and f.name.startswith("."):
                    f.unlink(missing_ok=True)
                elif folder.name == "segments" and f.stem not in keep:
                    f.unlink(missing_ok=True)
        if self.manifest is not None:
            self._clear_cache(keep={self._cache_path().name, self._lexical_path().name, self.encoder_dir().name})

    def _clear_cache(self, *, keep: set[str]) -> None:
        """Delete everything in cache/ but the entries named in ``keep``."""
        cache = self.root / "cache"
        for f in cache.iterdir() if cache.is_dir() else []:
            if f.name in keep:
                continue
            if f.is_dir():
                shutil.rmtree(f, ignore_errors=True)
            else:
                f.unlink(missing_ok=True)

    def finish(self) -> None:
        """After a batch of writes: build the search caches so the next search starts fast."""
        if self.manifest is not None:
            self._sweep()
            self.faiss_index()
            self.lexical_index()

    def _manifest_from_segments(self) -> Manifest:
        """A manifest rebuilt from self-describing segment files (newest per episode wins)."""
        newest: dict[str, tuple[float, dict[str, Any], dict[str, Any]]] = {}
        folder = self.root / "segments"
        for meta_path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                obj = json.loads(meta_path.read_bytes())
                record, info = obj["record"], obj["index"]
                if not meta_path.with_suffix(".npy").is_file() or record["segment"] != meta_path.stem:
                    continue
            except (ValueError, KeyError, TypeError):
                continue
            mtime = meta_path.stat().st_mtime
            if record["episode"] not in newest or mtime > newest[record["episode"]][0]:
                newest[record["episode"]] = (mtime, record, info)
        if not newest:
            raise IndexError_(f"{self.manifest_path}: damaged, with no previous manifest and no segment "
                              f"files to rebuild from; index your episodes again")
        ordered = sorted(newest.values(), key=lambda t: t[0])
        info = ordered[-1][2]
        return Manifest(embedding_model=info["embedding_model"], dim=int(info["dim"]), chunking=info["chunking"],
                        episodes={r["episode"]: r for _, r, i in ordered if i["embedding_model"] == info["embedding_model"]},
                        created=_now())

    def repair(self) -> list[str]:
        """Bring a damaged index back to its last good state; returns what was done."""
        self._require_lock()
        done: list[str] = []
        try:
            manifest = self._read_manifest(self.manifest_path)
        except IndexError_ as exc:
            prev = self.root / PREV_MANIFEST
            try:
                manifest = Manifest.from_json(prev.read_bytes(), name=str(prev))
                atomic_write(self.manifest_path, prev.read_bytes())
                done.append(f"restored {MANIFEST} from {PREV_MANIFEST} ({exc})")
            except (FileNotFoundError, IndexError_):
                manifest = self._manifest_from_segments()
                atomic_write(self.manifest_path, manifest.to_json())
                done.append(f"rebuilt {MANIFEST} from {len(manifest.episodes)} segment files ({exc})")
        if manifest is None:
            return done
        self._manifest, self._loaded = manifest, True
        bad = []
        for episode_id in list(manifest.episodes):
            try:
                self.vectors(episode_id)
                self.chunks(episode_id)
            except IndexError_ as exc:
                bad.append(episode_id)
                done.append(f"dropped episode '{episode_id}' ({exc}); index it again")
        if bad:
            for episode_id in bad:
                manifest.episodes.pop(episode_id)
            self._commit(manifest)
        # The derived caches are rebuilt from the segments; the query encoder is kept if it loads
        # (it depends on the model only, and re-exporting it needs the model loaded).
        from .onnx_query import load as load_encoder

        encoder = self.encoder_dir()
        good = encoder.is_dir() and load_encoder(encoder, manifest.embedding_model) is not None
        self._clear_cache(keep={encoder.name} if good else set())
        self._faiss = self._lexical = None
        self.faiss_index()
        self.lexical_index()
        done.append("rebuilt the search cache")
        return done
