"""The index on disk: per-episode files, a manifest that names them, and derived search caches.

Layout of an index folder::

    manifest.json        schema, embedding model and dimension, chunk settings, episodes
    manifest.prev.json   the manifest before the last commit (kept for recovery)
    segments/<key>.npy   one episode's passage vectors (float32, L2-normalised)
    segments/<key>.json  one episode's passages: start, end and their timed sentences
    transcripts/         Whisper transcripts, keyed by audio content hash and model
    cache/               derived: FAISS (<kind>-<digest>.faiss), BM25 (bm25-<v>-<digest>/),
                         per-model caches such as the exported query encoder (<kind>-<model digest>/),
                         and per-episode ones such as chapters (<kind>-<model digest>/<key>-<digest>.json)
    .lock                held by the one job allowed to write

Why this shape: episode files are immutable and written before the manifest names them, and the
manifest is replaced by one atomic rename. A run killed at any moment leaves either the old or
the new manifest, both complete; files no manifest names are swept up by the next writer. The
caches are derived from the episode files, so a damaged or stale one is rebuilt, not trusted.
The store persists; it knows no embedding or query engine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import io
import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

import numpy as np

from ..config import setting
from ..errors import IndexLockedError, IndexStateError, NotFoundError, one_line
from ..fsutil import atomic_write, sha256_text
from ..types import Episode, Passage, Sentence
from .dense import CACHE_PATTERN, DenseIndex, cache_name, index_kind
from .derived import load_or_build
from .lexical import LEXICAL_VERSION, LexicalIndex
from .manifest import EpisodeRecord, Manifest, now
from .rows import RowTable

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
PREV_MANIFEST = "manifest.prev.json"
LOCK_FILE = ".lock"
# What hmsearch itself writes in an index folder: only these are ever swept (issue 12, finding 4).
# downloads/: `update`'s default audio folder; failures.json: its record of failed feed items
# (both can exist before the first episode is committed, when every item of a first run failed).
_OWN_ROOT = {
    MANIFEST,
    PREV_MANIFEST,
    LOCK_FILE,
    ".serve.sock",
    "segments",
    "transcripts",
    "cache",
    "downloads",
    "failures.json",
}
_SEGMENT_NAME = re.compile(r"[A-Za-z0-9_-]*-[0-9a-f]{12}\.(?:npy|json)")
# The caches' names: dense (from index/dense.py's KINDS), BM25, and per-model folders.
_CACHE_NAME = re.compile(
    "|".join((CACHE_PATTERN, r"bm25-\d+-[0-9a-f]{16}", r"[A-Za-z0-9_.][A-Za-z0-9_.-]*-[0-9a-f]{12}"))
)
_TEMP_NAME = re.compile(r"\..+\.tmp")  # fsutil's atomic writes: .<name>.<random>.tmp
# A per-episode cache file: <segment key>-<hex digest of its settings>.<ext> (the key ends in 12 hex).
_EPISODE_CACHE_FILE = re.compile(r"[A-Za-z0-9_-]*-[0-9a-f]{12}-[0-9a-f]+\.[a-z]+")

# Model-cache kinds (``model_cache(kind)``) that hold one file per episode version, named
# ``<record.segment>-<digest>.<ext>``: readers only add files there, and the writer's sweep deletes
# those of episode versions the index no longer holds. Chapters are one (made by the read side).
EPISODE_CACHE_KINDS: set[str] = {"chapters"}


def register_episode_cache(kind: str) -> None:
    """Have the writer's sweep prune ``model_cache(kind)`` per episode (see EPISODE_CACHE_KINDS)."""
    EPISODE_CACHE_KINDS.add(kind)


def _own_temp(name: str) -> bool:
    """A temp file or folder of hmsearch's atomic writes."""
    return bool(_TEMP_NAME.fullmatch(name))


def segment_key(episode_id: str, content_hash: str) -> str:
    """The name of an episode's files in segments/ (one immutable pair per episode version)."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", episode_id)[:48].strip("_") or "episode"
    return f"{slug}-{hashlib.sha256((episode_id + content_hash).encode()).hexdigest()[:12]}"


def _passages_from_json(raw: list[Any]) -> list[Passage]:
    return [
        Passage(
            start=float(c["start"]),
            end=float(c["end"]),
            sentences=tuple(
                Sentence(
                    float(s[0]),
                    float(s[1]),
                    str(s[2]),
                    tuple(float(w) for w in s[3]) if len(s) > 3 else (),
                    speaker=str(s[4]) if len(s) > 4 and s[4] is not None else None,  # absent before speakers
                )
                for s in c["sentences"]
            ),
        )
        for c in raw
    ]


def _passages_to_json(passages: list[Passage]) -> list[dict[str, Any]]:
    return [
        {
            "start": round(p.start, 3),
            "end": round(p.end, 3),
            "sentences": [
                [
                    round(s.start, 3),
                    round(s.end, 3),
                    s.text,
                    *([[round(w, 3) for w in s.word_times]] if s.word_times or s.speaker else []),
                    *([s.speaker] if s.speaker else []),
                ]
                for s in p.sentences
            ],
        }
        for p in passages
    ]


class IndexStore:
    """An index folder. Reading needs no lock; writing happens inside ``with store.writing():``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._manifest: Manifest | None = None
        self._loaded = False
        self._passages: dict[str, list[Passage]] = {}
        self._dense: DenseIndex | None = None
        self._lexical: LexicalIndex | None = None
        self._rows: RowTable | None = None
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
            raise IndexStateError(f"{self.root}: is a file, not an index folder")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise IndexStateError(f"{path}: cannot read ({exc.strerror})") from None
        return Manifest.from_json(data, name=str(path))

    def require(self) -> Manifest:
        """The manifest; a clear error when there is no index here yet."""
        manifest = self.manifest
        if manifest is None:
            self._refuse_lost_manifest()
            raise IndexStateError(
                f"no index in {self.root}: build one with `hmsearch index AUDIO_OR_TRANSCRIPTS` (or pass --index-dir)"
            )
        return manifest

    def episodes(self) -> list[Episode]:
        manifest = self.manifest
        return [] if manifest is None else [r.episode for r in manifest.episodes.values()]

    def record(self, episode_id: str) -> EpisodeRecord:
        rec = self.require().episodes.get(episode_id)
        if rec is None:
            raise NotFoundError(f"episode '{episode_id}' is not in the index {self.root}")
        return rec

    def episode(self, episode_id: str) -> Episode:
        return self.record(episode_id).episode

    def _has_episode_files(self) -> bool:
        """Traces of an index whose manifest.json is gone: a previous manifest or episode files."""
        if (self.root / PREV_MANIFEST).exists():
            return True
        folder = self.root / "segments"
        return folder.is_dir() and any(_SEGMENT_NAME.fullmatch(f.name) for f in folder.iterdir())

    def _refuse_lost_manifest(self) -> None:
        """No manifest.json, but episode files: taking that for "no index yet" would sweep every
        episode on the next write (issue 12, finding 5)."""
        if self._has_episode_files():
            raise IndexStateError(
                f"{self.manifest_path}: missing, but {self.root} holds episode files "
                f"(segments/ or {PREV_MANIFEST}); run `hmsearch repair` to rebuild it"
            )

    def _refuse_foreign_folder(self) -> None:
        """A new index goes into an empty folder (or one of hmsearch's own): never into a folder of
        the user's files, whose cache/ or segments/ the sweep would empty (finding 4)."""
        try:
            entries = list(self.root.iterdir())
        except FileNotFoundError:
            return
        except OSError as exc:
            raise IndexStateError(f"{self.root}: cannot read the index folder ({exc.strerror})") from None
        foreign = []
        for f in entries:
            if f.name not in _OWN_ROOT and not _own_temp(f.name):
                foreign.append(f.name)
            elif f.name in ("segments", "cache") and f.is_dir() and any(f.iterdir()):
                foreign.append(f"{f.name}/")
            elif f.name in ("segments", "cache", "transcripts") and not f.is_dir():
                foreign.append(f.name)
        if foreign:
            shown = ", ".join(sorted(foreign)[:3]) + (" ..." if len(foreign) > 3 else "")
            raise IndexStateError(
                f"{self.root}: not empty and not an hmsearch index (it holds {shown}); "
                f"pass an empty or new folder as --index-dir"
            )

    def _segment_paths(self, key: str) -> tuple[Path, Path]:
        folder = self.root / "segments"  # not with_suffix: an id may contain dots ("python-3.7")
        return folder / f"{key}.npy", folder / f"{key}.json"

    def passages(self, episode_id: str) -> list[Passage]:
        """An episode's passages with their timed sentences, in time order."""
        if episode_id not in self._passages:
            rec = self.record(episode_id)
            _, meta_path = self._segment_paths(rec.segment)
            try:
                obj = json.loads(meta_path.read_bytes())
                passages = _passages_from_json(obj["chunks"])
                if len(passages) != rec.n_passages:
                    raise ValueError(f"{len(passages)} passages where the manifest says {rec.n_passages}")
            except FileNotFoundError:
                raise IndexStateError(
                    f"{meta_path}: missing segment file of episode '{episode_id}'; run `hmsearch repair`"
                ) from None
            except (ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as exc:
                raise IndexStateError(
                    f"{meta_path}: damaged segment file of episode '{episode_id}' "
                    f"({one_line(exc)}); run `hmsearch repair`"
                ) from None
            self._passages[episode_id] = passages
        return self._passages[episode_id]

    def vectors(self, episode_id: str) -> np.ndarray:
        rec = self.record(episode_id)
        dim = self.require().dim
        npy_path, _ = self._segment_paths(rec.segment)
        try:
            arr = np.load(npy_path, mmap_mode="r", allow_pickle=False)
            if arr.ndim != 2 or arr.shape != (rec.n_passages, dim) or arr.dtype != np.float32:
                raise ValueError(f"shape {arr.shape} {arr.dtype}, expected ({rec.n_passages}, {dim}) float32")
            out = np.asarray(arr)
            if not np.isfinite(out).all():  # a NaN would silently drop the episode from dense search
                raise ValueError("vectors that are not finite (NaN or inf)")
            return out
        except FileNotFoundError:
            raise IndexStateError(
                f"{npy_path}: missing segment file of episode '{episode_id}'; run `hmsearch repair`"
            ) from None
        except (ValueError, OSError, EOFError, TypeError, AttributeError) as exc:
            raise IndexStateError(
                f"{npy_path}: damaged segment file of episode '{episode_id}' ({one_line(exc)}); run `hmsearch repair`"
            ) from None

    def passage_texts(self) -> Iterator[tuple[str, str]]:
        """(text, episode language) of every passage, in row order."""
        for episode_id, rec in self.require().episodes.items():
            for passage in self.passages(episode_id):
                yield passage.text, rec.language or ""

    # ---- derived indexes -----------------------------------------------------------------
    def rows(self) -> RowTable:
        """Row <-> (episode, passage) over the whole index, in manifest order."""
        if self._rows is None:
            self._rows = RowTable.of(self.require())
        return self._rows

    def _cache_digest(self) -> str:
        segments = "\n".join(r.segment for r in self.require().episodes.values())
        return hashlib.sha256(segments.encode()).hexdigest()[:16]

    def index_kind(self) -> str:
        """Exact search while it is fast enough, HNSW above (setting exact_search_max), IVF-PQ
        beyond what HNSW holds in memory (setting hnsw_max)."""
        return index_kind(self.rows().total, setting("exact_search_max"), setting("hnsw_max"))

    def _dense_path(self) -> Path:
        return self.root / "cache" / cache_name(self.index_kind(), self._cache_digest())

    def _lexical_path(self) -> Path:
        return self.root / "cache" / f"bm25-{LEXICAL_VERSION}-{self._cache_digest()}"

    def _model_digest(self) -> str:
        return sha256_text(self.require().embedding_model)[:12]

    def model_cache(self, kind: str, *, model: str | None = None) -> Path:
        """A cache folder that depends on the index's model only (``<kind>-<model digest>``), such as
        the exported query encoder; kept while the model is the index's. ``model``: the folder for
        that model instead (``reindex`` writes for the model it is moving to)."""
        digest = sha256_text(model)[:12] if model else self._model_digest()
        return self.root / "cache" / f"{kind}-{digest}"

    def dense(self) -> DenseIndex:
        """The FAISS index over every passage, loaded from the cache or rebuilt from episode files."""
        if self._dense is None:
            self._dense = self._build_dense()
        return self._dense

    def _build_dense(self, *, force: bool = False) -> DenseIndex:
        manifest, rows = self.require(), self.rows()

        def load(path: Path) -> DenseIndex | None:
            index = DenseIndex.load(path)
            return index if index.size == rows.total and index.dim == manifest.dim else None

        return load_or_build(
            self._dense_path(),
            load=load,
            save=DenseIndex.save,
            folder=False,
            what="FAISS",
            build=lambda: DenseIndex.build(
                self.index_kind(), manifest.dim, lambda: (self.vectors(i) for i in rows.ids), total=rows.total
            ),
            force=force,
        )

    def lexical(self) -> LexicalIndex:
        """The BM25 index over every passage, loaded from the cache or rebuilt from episode files."""
        if self._lexical is None:
            self._lexical = self._build_lexical()
        return self._lexical

    def _build_lexical(self, *, force: bool = False) -> LexicalIndex:
        total = self.rows().total

        def load(path: Path) -> LexicalIndex | None:
            index = LexicalIndex.load(path)
            return index if index.size == total else None

        def build() -> LexicalIndex:
            texts = list(self.passage_texts())
            return LexicalIndex.build((t for t, _ in texts), (lang for _, lang in texts))

        return load_or_build(
            self._lexical_path(),
            load=load,
            build=build,
            save=LexicalIndex.save,
            folder=True,
            what="BM25",
            force=force,
        )

    # ---- writing -------------------------------------------------------------------------
    @contextlib.contextmanager
    def writing(self, *, wait: bool = False, repair: bool = False) -> Iterator[IndexStore]:
        """Hold the index's write lock (one writer at a time; readers never block).

        A folder with no manifest must be empty (or hmsearch's own, empty); one whose manifest is
        lost but whose episode files are there is refused until repaired (``repair=True`` is the
        repair itself)."""
        if not repair:
            self.check_writable()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise IndexStateError(
                f"{self.root}: cannot write the index ({exc.strerror or exc}); is the folder read-only?"
            ) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                raise IndexLockedError(
                    f"{self.root}: another hmsearch job is writing this index; wait for it to finish (or pass --wait)"
                ) from None
            self._lock_fd = fd
            self._loaded = False  # re-read under the lock: another job may have committed
            self._drop_caches()
            self._sweep()
            yield self
        finally:
            self._lock_fd = None
            os.close(fd)  # closing releases the flock (so does the kernel if we are killed)

    def check_unlocked(self) -> None:
        """IndexLockedError now when another job holds the write lock: a job that would be refused
        once it came to write (``update`` downloads first) stops before doing any work."""
        try:
            fd = os.open(self.root / LOCK_FILE, os.O_RDONLY)
        except OSError:
            return  # no lock file: no writer yet
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise IndexLockedError(
                    f"{self.root}: another hmsearch job is writing this index; wait for it to finish (or pass --wait)"
                ) from None
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def check_writable(self) -> None:
        """Refuse, before any work, to write where a writer would lose data: a folder that is not an
        index, or an index whose manifest.json is lost (run repair)."""
        if self.root.exists() and not self.root.is_dir():
            raise IndexStateError(f"{self.root}: is a file, not an index folder")
        if not (self.root / MANIFEST).exists():
            self._refuse_lost_manifest()
            self._refuse_foreign_folder()

    def _require_lock(self) -> None:
        if self._lock_fd is None:
            raise RuntimeError("index writes must happen inside IndexStore.writing()")

    def check_settings(self, *, embedding_model: str, dim: int | None, chunking: dict[str, Any]) -> None:
        """An existing index takes only episodes built like its own (before any work is done)."""
        manifest = self.manifest
        if manifest is None:
            return
        if manifest.embedding_model != embedding_model or (dim is not None and manifest.dim != dim):
            raise IndexStateError(
                f"{self.root} was built with embedding model '{manifest.embedding_model}' ({manifest.dim} dims), "
                f"not '{embedding_model}': pass --embedding-model {manifest.embedding_model} or use another --index-dir"
            )
        if manifest.chunking != chunking:
            raise IndexStateError(
                f"{self.root} was built with other chunk settings ({manifest.chunking}); "
                f"use the same settings or another --index-dir"
            )

    def ensure(self, *, embedding_model: str, dim: int, chunking: dict[str, Any]) -> Manifest:
        """The manifest to write into; a new index takes these settings, an old one must match."""
        self._require_lock()
        self.check_settings(embedding_model=embedding_model, dim=dim, chunking=chunking)
        if self.manifest is None:
            self._manifest = Manifest(embedding_model=embedding_model, dim=dim, chunking=chunking, created=now())
        return self._manifest  # type: ignore[return-value]  # set above or read

    def put_episode(
        self,
        episode: Episode,
        passages: list[Passage],
        vectors: np.ndarray,
        *,
        inputs: dict[str, Any] | None = None,
        feed: dict[str, Any] | None = None,
    ) -> None:
        """Add or replace one episode and commit. Episode files first, then the manifest."""
        self._require_lock()
        manifest = self.require()
        record = EpisodeRecord(
            episode=episode, segment=segment_key(episode.id, episode.content_hash), inputs=inputs or {}, feed=feed
        )
        self.write_episode_files(manifest, record, passages, vectors)
        manifest.episodes.pop(episode.id, None)  # a replaced episode moves to the end
        manifest.episodes[episode.id] = record
        self._commit(manifest)

    def update_episode(
        self,
        episode_id: str,
        changes: dict[str, Any],
        *,
        inputs: dict[str, Any] | None = None,
        feed: dict[str, Any] | None = None,
    ) -> Episode:
        """Change an episode's metadata (title, published, url, enclosure; None clears one but the
        title; ``feed``: its feed record, e.g. new ``<podcast:person>`` tags) in the manifest alone,
        and commit. Its files hold passages and vectors, which stay as they are, and so do the search
        caches (keyed by the episode files)."""
        self._require_lock()
        manifest = self.require()
        record = manifest.episodes.get(episode_id)
        if record is None:
            raise NotFoundError(f"episode '{episode_id}' is not in the index {self.root}")
        unknown = set(changes) - {"title", "published", "url", "enclosure"}
        if unknown or changes.get("title", "") is None:
            raise ValueError(f"not episode metadata: {sorted(unknown) or 'an empty title'}")
        record.episode = dataclasses.replace(record.episode, **changes)
        if inputs is not None:
            record.inputs = inputs
        if feed is not None:
            record.feed = feed
        self._commit(manifest)
        return record.episode

    def write_episode_files(
        self, manifest: Manifest, record: EpisodeRecord, passages: list[Passage], vectors: np.ndarray
    ) -> None:
        """Write one episode's immutable file pair for ``manifest`` (not committed: until a manifest
        names them they are invisible, and the next writer sweeps them)."""
        self._require_lock()
        if vectors.shape != (len(passages), manifest.dim):
            raise ValueError(f"vectors {vectors.shape} do not match {len(passages)} passages of dim {manifest.dim}")
        if not np.isfinite(vectors).all():
            raise ValueError("vectors that are not finite (NaN or inf): the encoder failed")
        try:
            self._write_episode_files(manifest, record, passages, vectors)
        except OSError as exc:
            raise IndexStateError(f"{self.root}: cannot write episode '{record.id}' ({exc.strerror or exc})") from None

    def _write_episode_files(
        self, manifest: Manifest, record: EpisodeRecord, passages: list[Passage], vectors: np.ndarray
    ) -> None:
        npy_path, meta_path = self._segment_paths(record.segment)
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
        atomic_write(npy_path, buf.getvalue())
        # The episode file describes itself too, so a lost manifest can be rebuilt from them alone.
        meta = {
            "episode": record.id,
            "record": record.to_dict(),
            "index": {"embedding_model": manifest.embedding_model, "dim": manifest.dim, "chunking": manifest.chunking},
            "chunks": _passages_to_json(passages),
        }
        atomic_write(meta_path, json.dumps(meta, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))

    def replace_all(self, manifest: Manifest) -> None:
        """Commit a whole new manifest at once (``reindex``: every episode rebuilt with another model,
        its files written first with write_episode_files). Readers see the old index until the rename."""
        self._require_lock()
        old = self.manifest
        if old is not None:
            manifest.generation, manifest.created = old.generation, old.created or manifest.created
        self._commit(manifest)

    def remove_episode(self, episode_id: str) -> Episode:
        self._require_lock()
        manifest = self.require()
        if episode_id not in manifest.episodes:
            raise NotFoundError(f"episode '{episode_id}' is not in the index {self.root}")
        removed = manifest.episodes.pop(episode_id).episode
        self._commit(manifest)
        return removed

    def _commit(self, manifest: Manifest) -> None:
        try:
            self._write_manifest(manifest)
        except OSError as exc:  # a full disk: the old manifest stands (atomic writes)
            self._loaded = False
            raise IndexStateError(f"{self.root}: cannot write the index ({exc.strerror or exc})") from None
        self._drop_caches()

    def _write_manifest(self, manifest: Manifest) -> None:
        manifest.generation += 1
        manifest.updated = now()
        current = self.manifest_path
        if current.exists():
            atomic_write(self.root / PREV_MANIFEST, current.read_bytes())
        atomic_write(current, manifest.to_json())
        self._manifest, self._loaded = manifest, True

    def _drop_caches(self) -> None:
        """Forget what was loaded from the last manifest (FAISS, BM25, row table, passages)."""
        self._dense, self._lexical, self._rows = None, None, None
        self._passages.clear()

    def _sweep(self) -> None:
        """Delete what no manifest names: episode files of killed runs, temp files, stale caches, and
        per-episode cache files of episode versions the manifest no longer holds."""
        if not (self.root / MANIFEST).exists():
            return  # no index yet, or a lost manifest: nothing is known to be unused
        keep: set[str] = set()
        for path in (self.root / MANIFEST, self.root / PREV_MANIFEST):
            try:
                keep.update(r.segment for r in Manifest.from_json(path.read_bytes(), name=str(path)).episodes.values())
            except FileNotFoundError:
                continue
            except IndexStateError:
                return  # a damaged manifest: delete nothing until it is repaired
        # Only names hmsearch writes: episode files no manifest names and temp files of killed runs.
        segments = self.root / "segments"
        for f in segments.iterdir() if segments.is_dir() else []:
            if (_SEGMENT_NAME.fullmatch(f.name) and f.stem not in keep) or _own_temp(f.name):
                f.unlink(missing_ok=True)
        transcripts = self.root / "transcripts"
        for f in transcripts.iterdir() if transcripts.is_dir() else []:
            if _own_temp(f.name) and f.is_file():
                f.unlink(missing_ok=True)
        for f in self.root.iterdir():
            if f.is_file() and _own_temp(f.name) and f.name.split(".")[1] == "manifest":
                f.unlink(missing_ok=True)
        if self.manifest is not None:
            self._clear_cache(
                keep=lambda name: (
                    name in (self._dense_path().name, self._lexical_path().name) or self._is_model_cache(name)
                )
            )
            for kind in sorted(EPISODE_CACHE_KINDS):
                self._prune_episode_cache(kind)

    def prune_episode_cache(self, kind: str) -> int:
        """Delete the files in ``model_cache(kind)`` of episode versions the manifest no longer names
        (and temp files of killed writes); returns how many went. Only names of the per-episode
        pattern are touched. The writer's sweep does this for every kind in EPISODE_CACHE_KINDS."""
        self._require_lock()
        return self._prune_episode_cache(kind)

    def _prune_episode_cache(self, kind: str) -> int:
        folder = self.model_cache(kind)
        live = {r.segment for r in self.require().episodes.values()}
        gone = 0
        for f in folder.iterdir() if folder.is_dir() else []:
            if not f.is_file():
                continue
            stale = _EPISODE_CACHE_FILE.fullmatch(f.name) and f.name.rsplit("-", 1)[0] not in live
            if stale or _own_temp(f.name):
                f.unlink(missing_ok=True)
                gone += 1
        return gone

    def _is_model_cache(self, name: str) -> bool:
        return name.endswith(f"-{self._model_digest()}") and not name.startswith(".")

    def _clear_cache(self, *, keep: Callable[[str], bool]) -> None:
        """Delete everything in cache/ but the entries ``keep`` names."""
        cache = self.root / "cache"
        for f in cache.iterdir() if cache.is_dir() else []:
            if keep(f.name) or not (_CACHE_NAME.fullmatch(f.name) or _own_temp(f.name)):
                continue
            if f.is_dir():
                shutil.rmtree(f, ignore_errors=True)
            else:
                f.unlink(missing_ok=True)

    def finish(self) -> None:
        """After a batch of writes: build the search caches so the next search starts fast."""
        if self.manifest is not None:
            self._sweep()
            self.dense()
            self.lexical()

    def _segment_records(
        self, skip: AbstractSet[str] = frozenset()
    ) -> dict[str, tuple[float, EpisodeRecord, dict[str, Any]]]:
        """id -> (mtime, record, index info) of the newest intact, self-describing episode file pair
        per episode in segments/, leaving out the segment keys in ``skip``."""
        newest: dict[str, tuple[float, EpisodeRecord, dict[str, Any]]] = {}
        folder = self.root / "segments"
        for meta_path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            if meta_path.stem in skip or not _SEGMENT_NAME.fullmatch(meta_path.name):
                continue
            try:
                obj = json.loads(meta_path.read_bytes())
                record, info = EpisodeRecord.from_dict(obj["record"]), dict(obj["index"])
                str(info["embedding_model"]), int(info["dim"]), dict(info["chunking"])
                if not meta_path.with_suffix(".npy").is_file() or record.segment != meta_path.stem:
                    continue
                mtime = meta_path.stat().st_mtime
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError, OSError):
                continue
            if record.id not in newest or mtime > newest[record.id][0]:
                newest[record.id] = (mtime, record, info)
        return newest

    def _recovered_manifest(self) -> tuple[Manifest, str]:
        """A manifest for a lost or damaged manifest.json: the previous manifest, plus every episode
        whose self-describing files it does not name (those of the last commit, which the lost
        manifest named: issue 12, finding 6); without a previous one, every episode file."""
        prev_path = self.root / PREV_MANIFEST
        prev = None
        with contextlib.suppress(FileNotFoundError, IndexStateError, OSError):
            prev = Manifest.from_json(prev_path.read_bytes(), name=str(prev_path))
        found = self._segment_records(skip={r.segment for r in prev.episodes.values()} if prev else set())
        if prev is None:
            if not found:
                raise IndexStateError(
                    f"{self.manifest_path}: damaged or missing, with no previous manifest and no segment "
                    f"files to rebuild from; index your episodes again"
                )
            ordered = sorted(found.values(), key=lambda t: t[0])
            info = ordered[-1][2]
            manifest = Manifest(
                embedding_model=str(info["embedding_model"]),
                dim=int(info["dim"]),
                chunking=dict(info["chunking"]),
                episodes={r.id: r for _, r, i in ordered if i["embedding_model"] == info["embedding_model"]},
                created=now(),
            )
            n = len(manifest.episodes)
            return manifest, f"rebuilt {MANIFEST} from {n} episode file{'' if n == 1 else 's'}"
        added = []
        for _, record, info in sorted(found.values(), key=lambda t: t[0]):
            if info["embedding_model"] == prev.embedding_model and int(info["dim"]) == prev.dim:
                prev.episodes.pop(record.id, None)
                prev.episodes[record.id] = record
                added.append(record.id)
        note = f"restored {MANIFEST} from {PREV_MANIFEST}" + (
            f" and the newer episode files of {', '.join(added)}" if added else ""
        )
        return prev, note

    def repair(self, *, model_cache_ok: Callable[[Path, str], bool] | None = None) -> list[str]:
        """Bring a damaged index back to its last good state; returns what was done.

        A damaged or lost manifest is rebuilt from the previous one and the episode files; an
        episode whose files are damaged is dropped (and listed). The search caches are rebuilt
        beside the old ones, which are replaced only when the new ones are saved.
        ``model_cache_ok(folder, model)`` says whether a per-model cache (the exported query
        encoder) is sound; one that is not is dropped (the next indexing run exports it again)."""
        self._require_lock()
        try:
            return self._repair(model_cache_ok)
        except OSError as exc:
            raise IndexStateError(f"{self.root}: repair cannot write ({exc.strerror or exc})") from None

    def _repair(self, model_cache_ok: Callable[[Path, str], bool] | None) -> list[str]:
        done: list[str] = []
        problem = None
        try:
            manifest = self._read_manifest(self.manifest_path)
            if manifest is None and self._has_episode_files():
                problem = f"{MANIFEST} was missing"
        except IndexStateError as exc:
            manifest, problem = None, str(exc).split(";")[0]
        if problem:
            manifest, how = self._recovered_manifest()
            atomic_write(self.manifest_path, manifest.to_json())
            done.append(f"{how} ({problem})")
        if manifest is None:
            return done
        self._manifest, self._loaded = manifest, True
        bad = []
        for episode_id in list(manifest.episodes):
            try:
                self.vectors(episode_id)
                self.passages(episode_id)
            except IndexStateError as exc:
                bad.append(episode_id)
                done.append(f"dropped episode '{episode_id}' ({exc}); index it again")
        if bad:
            for episode_id in bad:
                manifest.episodes.pop(episode_id)
            self._commit(manifest)
        # The derived caches are rebuilt from the episode files; per-model caches are kept when
        # sound (re-exporting the query encoder needs the model loaded).
        model = manifest.embedding_model

        def keep(name: str) -> bool:
            return self._is_model_cache(name) and (
                model_cache_ok is None or model_cache_ok(self.root / "cache" / name, model)
            )

        # Rebuilt beside the old caches: a cache that cannot be saved (full disk) leaves the old one.
        self._drop_caches()
        self._dense = self._build_dense(force=True)
        self._lexical = self._build_lexical(force=True)
        current = {self._dense_path().name, self._lexical_path().name}
        self._clear_cache(keep=lambda name: name in current or keep(name))
        for kind in sorted(EPISODE_CACHE_KINDS):  # of dropped episodes
            self._prune_episode_cache(kind)
        done.append("rebuilt the search cache")
        return done
