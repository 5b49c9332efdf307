"""Hostile conditions for the index (issue 12): foreign folders, a lost or damaged manifest,
damaged episode files, NaN vectors, full and read-only disks, and the query server under idle,
dying or oddly placed sockets. Each test names the finding it guards; each failed before its fix.
Model-free: episodes are written through the store directly or indexed with the HashingEncoder
stand-in, so these prove storage and plumbing, not search quality."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hmsearch.errors import HmsearchError, IndexStateError
from hmsearch.index.store import MANIFEST, PREV_MANIFEST, IndexStore
from hmsearch.types import Episode, Passage, Sentence

DIM = 8


def put(store: IndexStore, eid: str, n: int = 3, *, vecs: np.ndarray | None = None) -> None:
    rng = np.random.default_rng(len(eid) * 7 + n)
    if vecs is None:
        vecs = rng.normal(size=(n, DIM)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    chunks = [
        Passage(i * 10.0, i * 10.0 + 12, (Sentence(i * 10.0, i * 10.0 + 12, f"{eid} talks about topic {i}"),))
        for i in range(n)
    ]
    ep = Episode(id=eid, title=eid.upper(), duration=n * 10.0, n_passages=n, source=f"/x/{eid}.vtt", content_hash=eid)
    store.ensure(embedding_model="m", dim=DIM, chunking={"c": 1})
    store.put_episode(ep, chunks, vecs)


def ids(root: Path) -> list[str]:
    return [e.id for e in IndexStore(root).episodes()]


def segment_files(root: Path, eid: str) -> tuple[Path, Path]:
    rec = IndexStore(root).record(eid)
    return root / "segments" / f"{rec.segment}.npy", root / "segments" / f"{rec.segment}.json"


@pytest.fixture
def index(tmp_path) -> Path:
    store = IndexStore(tmp_path / "ix")
    with store.writing():
        put(store, "a")
        put(store, "b")
        store.finish()
    return tmp_path / "ix"


# ---- 4: foreign files ---------------------------------------------------------------------------
def test_4_refuses_to_create_an_index_in_a_folder_that_is_not_one(tmp_path):
    folder = tmp_path / "mine"
    (folder / "cache").mkdir(parents=True)
    (folder / "segments").mkdir()
    (folder / "cache" / "photo.jpg").write_bytes(b"jpeg")
    (folder / "segments" / "thesis.txt").write_text("chapter 1")
    (folder / "notes.txt").write_text("mine")
    store = IndexStore(folder)
    with pytest.raises(IndexStateError, match="not an hmsearch index") as err, store.writing():
        put(store, "a")
    assert err.value.exit_code == 4
    assert sorted(p.name for p in folder.rglob("*")) == ["cache", "notes.txt", "photo.jpg", "segments", "thesis.txt"]


def test_4_an_empty_folder_or_a_fresh_one_is_fine(tmp_path):
    (tmp_path / "empty").mkdir()
    for root in (tmp_path / "empty", tmp_path / "new"):
        store = IndexStore(root)
        with store.writing():
            put(store, "a")
        assert ids(root) == ["a"]


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_4_sweep_deletes_only_names_hmsearch_writes(index, kind):
    keep = [index / "segments" / "README.txt", index / "cache" / "mine.txt", index / "notes.txt"]
    for f in keep:
        f.write_text("user's")
    orphan_npy = index / "segments" / "zombie-0123456789ab.npy"
    orphan_npy.write_bytes(b"half")
    stale_cache = index / "cache" / f"{kind}-0123456789abcdef.faiss"
    stale_cache.write_bytes(b"old")
    store = IndexStore(index)
    with store.writing():
        pass
    assert all(f.exists() for f in keep)
    assert not orphan_npy.exists() and not stale_cache.exists()


def test_4_sweep_prunes_per_episode_caches_by_name_only(index):
    """Per-episode caches (cache/chapters-<model>/<segment>-<digest>.json) of episode versions the
    index no longer holds are deleted by the writer; other names, and other kinds, are left."""
    store = IndexStore(index)
    chapters, other = store.model_cache("chapters"), store.model_cache("encoder-3")
    live, gone = (chapters / f"{IndexStore(index).record(e).segment}-0123456789.json" for e in ("a", "b"))
    old_version = chapters / "a-0123456789ab-0123456789.json"
    temp = chapters / ".a-0123456789ab-0123456789.json.x1y2.tmp"
    mine = [chapters / "README.txt", other / "a-0123456789ab-0123456789.json"]
    for f in (live, gone, old_version, temp, *mine):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("{}")
    with store.writing():
        store.remove_episode("b")
        store.finish()
    assert live.exists() and all(f.exists() for f in mine)
    assert not gone.exists() and not old_version.exists() and not temp.exists()


# ---- 5: a missing manifest.json -----------------------------------------------------------------
@pytest.mark.parametrize("prev", [True, False])
def test_5_missing_manifest_makes_writers_refuse_and_repair_rebuild(index, cli, prev):
    store = IndexStore(index)
    with store.writing():  # one more commit, so manifest.prev.json exists
        put(store, "c")
    (index / MANIFEST).unlink()
    if not prev:
        (index / PREV_MANIFEST).unlink()
    before = sorted(p.name for p in (index / "segments").iterdir())
    store = IndexStore(index)
    with pytest.raises(IndexStateError, match="repair") as err, store.writing():
        put(store, "d")
    assert err.value.exit_code == 4
    with pytest.raises(IndexStateError, match="repair"):
        IndexStore(index).require()
    assert sorted(p.name for p in (index / "segments").iterdir()) == before  # nothing swept
    result = cli("--index-dir", str(index), "remove", "a")
    assert result.exit_code == 4 and "repair" in result.output
    result = cli("--index-dir", str(index), "repair")
    assert result.exit_code == 0, result.output
    assert sorted(ids(index)) == ["a", "b", "c"]


# ---- 6: repair keeps every intact episode --------------------------------------------------------
def test_6_repair_of_a_damaged_manifest_keeps_the_newest_episode(index):
    store = IndexStore(index)
    with store.writing():
        put(store, "c")
    (index / MANIFEST).write_bytes(b'{"schema": 1, "episodes": [tru')
    with store.writing():
        done = store.repair()
    assert sorted(ids(index)) == ["a", "b", "c"], done
    # ...and the next writer keeps c's files (they are named by the repaired manifest).
    with store.writing():
        put(store, "d")
    assert sorted(ids(index)) == ["a", "b", "c", "d"]


def test_6_repair_lists_what_it_could_not_keep(index):
    store = IndexStore(index)
    with store.writing():
        put(store, "c")
    npy, _ = segment_files(index, "c")
    npy.write_bytes(b"")
    (index / MANIFEST).write_bytes(b"garbage")
    with store.writing():
        done = store.repair()
    assert sorted(ids(index)) == ["a", "b"]
    assert any("'c'" in d and "index it again" in d for d in done), done


# ---- 9: NaN vectors --------------------------------------------------------------------------------
def test_9_nan_vectors_are_refused_on_load_and_dropped_by_repair(index):
    npy, _ = segment_files(index, "b")
    arr = np.load(npy)
    arr[1, 3] = np.nan
    with open(npy, "wb") as fh:
        np.save(fh, arr)
    with pytest.raises(IndexStateError, match="not finite"):
        IndexStore(index).vectors("b")
    store = IndexStore(index)
    with store.writing():
        done = store.repair()
    assert ids(index) == ["a"] and any("'b'" in d for d in done)


def test_9_a_vector_of_inf_is_refused_when_written(tmp_path):
    store = IndexStore(tmp_path / "ix")
    bad = np.full((2, DIM), np.inf, dtype=np.float32)
    with store.writing(), pytest.raises(ValueError, match="finite"):
        put(store, "a", 2, vecs=bad)


# ---- 16: zero-length or structurally wrong episode files -------------------------------------------
@pytest.mark.parametrize(
    "which,body",
    [
        ("json", b""),
        ("npy", b""),
        ("json", b"[]"),
        ("json", b'{"chunks": 5}'),
        ("json", b'{"chunks": [{"start": 0}]}'),
        ("json", b'{"chunks": [{"start": 0, "end": 1, "sentences": [[0]]}]}'),
        ("json", b'{"chunks": [{"start": 0, "end": 1, "sentences": 7}, 1, 2]}'),
        ("json", b"[" * 100_000),
    ],
)
def test_16_broken_episode_file_is_a_repair_hint_and_repair_fixes_it(index, which, body):
    npy, meta = segment_files(index, "b")
    (npy if which == "npy" else meta).write_bytes(body)
    store = IndexStore(index)
    with pytest.raises(IndexStateError, match="repair"):
        store._drop_caches()
        store.passages("b") if which == "json" else store.vectors("b")
    with store.writing():
        store.repair()
    assert ids(index) == ["a"]
    fresh = IndexStore(index)
    assert fresh.dense().size == 3 and fresh.lexical().size == 3


def test_16_indexing_goes_on_beside_a_broken_episode_file(index):
    npy, _ = segment_files(index, "b")
    npy.write_bytes(b"")
    store = IndexStore(index)
    with store.writing():
        put(store, "c")
        with pytest.raises(IndexStateError, match="repair"):
            store.finish()  # the caches cannot be built over b: said, not a crash
    assert sorted(ids(index)) == ["a", "b", "c"]


# ---- 15: a full disk ----------------------------------------------------------------------------------
@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """A small tmpfs at ``path`` (root only); skips the test where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> None:
    """Fill the disk that ``folder`` is on to the last byte."""
    with open(folder / "filler", "wb", buffering=0) as fh, contextlib.suppress(OSError):
        while True:
            fh.write(b"\0" * 65536)
    with open(folder / "filler2", "wb", buffering=0) as fh, contextlib.suppress(OSError):
        while True:
            fh.write(b"\0")


def test_15_a_full_disk_still_answers_cleans_temp_files_and_repair_keeps_caches(tmp_path):
    with tmpfs(tmp_path / "disk", "2m") as disk:
        root = disk / "ix"
        store = IndexStore(root)
        with store.writing():
            for eid in ("a", "b", "c"):
                put(store, eid, 20)
            store.finish()
        caches = sorted(p.name for p in (root / "cache").iterdir())
        for f in (root / "cache").iterdir():
            if f.is_file():
                f.unlink()  # the FAISS cache is gone, and the disk is full: it cannot be saved again
        fill(disk)
        reader = IndexStore(root)
        assert reader.dense().size == 60 and reader.lexical().size == 60  # answered from memory
        assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")]
        (disk / "filler").unlink()
        (disk / "filler2").unlink()
        with store.writing():
            store.finish()  # the caches saved again
        assert sorted(p.name for p in (root / "cache").iterdir()) == caches
        fill(disk)
        with store.writing(), contextlib.suppress(HmsearchError):
            store.repair()
        # repair on a full disk: what it could not save again, it did not delete first
        assert sorted(p.name for p in (root / "cache").iterdir()) == caches
        assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")]
        assert sorted(ids(root)) == ["a", "b", "c"]
        assert IndexStore(root).dense().size == 60


# ---- 18: a read-only index folder ------------------------------------------------------------------
def test_18_write_commands_on_a_read_only_index_are_one_line_errors(tmp_path, cli):
    with tmpfs(tmp_path / "disk", "4m") as disk:
        root = disk / "ix"
        store = IndexStore(root)
        with store.writing():
            put(store, "a")
            store.finish()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        with pytest.raises(IndexStateError, match="read-only|cannot write"), IndexStore(root).writing():
            pass
        for args in (["remove", "a"], ["repair"]):
            result = cli("--index-dir", str(root), *args)
            assert result.exit_code == 4, result.output
            assert "Error:" in result.output and "internal error" not in result.output
        assert ids(root) == ["a"]  # reading still works


# ---- 19: remove X X ---------------------------------------------------------------------------------
def test_19_remove_the_same_episode_twice_in_one_command(index, cli):
    result = cli("--index-dir", str(index), "remove", "a", "a")
    assert result.exit_code == 0, result.output
    assert ids(index) == ["b"]


# ---- 12 and 18: the query server -----------------------------------------------------------------------
@pytest.fixture
def lexical_index(tmp_path):
    from hmsearch.asr import TranscriberSpec
    from hmsearch.ingest import IndexOptions, index_paths

    from helpers import HashingEncoder, write_srt

    folder = tmp_path / "eps"
    folder.mkdir()
    write_srt(folder / "ep.srt", ["We talk about newsletters today.", "Newsletters once a week."])

    def build(root: Path) -> Path:
        store = IndexStore(root)
        with store.writing():
            index_paths([folder], store, encoder=HashingEncoder(), options=IndexOptions(TranscriberSpec("turbo")))
        return root

    return build


def _start_server(root: Path, monkeypatch) -> threading.Thread:
    import hmsearch.query.service as service
    from hmsearch.serve import serve

    from helpers import HashingEncoder

    monkeypatch.setattr(service, "load_encoder", lambda *a, **k: HashingEncoder())
    ready = threading.Event()
    thread = threading.Thread(target=serve, args=(root,), kwargs={"on_ready": lambda p: ready.set()}, daemon=True)
    thread.start()
    assert ready.wait(30)
    return thread


def test_12_an_idle_client_does_not_hold_up_the_others(lexical_index, tmp_path, monkeypatch):
    from hmsearch.serve import ask_server, socket_path

    root = lexical_index(tmp_path / "ix")
    _start_server(root, monkeypatch)
    idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    idle.connect(str(socket_path(root)))  # connects and says nothing
    try:
        start = time.monotonic()
        reply = ask_server(root, {"op": "search", "query": "newsletters", "mode": "lexical", "k": 3})
        assert reply is not None and reply["hits"]
        assert time.monotonic() - start < 5  # not the idle client's 10 s timeout
    finally:
        idle.close()


def test_18_a_server_dying_mid_reply_falls_back_to_searching_in_process(lexical_index, tmp_path):
    from hmsearch.serve import ask_server, socket_path

    root = lexical_index(tmp_path / "ix")
    for reply in (b'{"ok": true, "res', b"[1, 2]\n", b'{"ok": true}\n', b"\xff\xfe\n"):
        path = socket_path(root)
        path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(1)

        def answer_badly(listener=listener, reply=reply):
            conn, _ = listener.accept()
            conn.recv(65536)
            conn.sendall(reply)
            conn.close()

        threading.Thread(target=answer_badly, daemon=True).start()
        assert ask_server(root, {"op": "search", "query": "x", "k": 1}) is None, reply
        listener.close()


def test_18_serve_on_an_index_path_too_long_for_a_socket_is_a_one_line_error(lexical_index, tmp_path, monkeypatch):
    from hmsearch.serve import serve

    deep = tmp_path
    while len(str(deep)) < 120:
        deep = deep / "a-rather-long-folder-name"
    root = lexical_index(deep / "ix")
    import hmsearch.query.service as service

    from helpers import HashingEncoder

    monkeypatch.setattr(service, "load_encoder", lambda *a, **k: HashingEncoder())
    with pytest.raises(HmsearchError, match="too long") as err:
        serve(root)
    assert "\n" not in str(err.value)


def test_9_json_output_is_valid_json(index, cli):
    result = cli("--index-dir", str(index), "episodes", "--json")
    assert result.exit_code == 0
    json.loads(result.output)
