"""File-system helpers every stage shares: atomic writes of files and folders, file hashing.

Atomic means a reader (or a run killed at any moment) sees the old content or the new one,
never half: write into a temp name in the same folder, fsync, then one ``os.replace``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

HASH_BLOCK = 1 << 20  # bytes read at a time when hashing


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (not possible on every platform: then a no-op)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path, data: bytes, *, make_parents: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path = Path(path)
    if make_parents:
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
    fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_dir(final: Path, *, prefix: str = ".dir.") -> Iterator[Path]:
    """Build a folder in a temp folder beside ``final``; on success it replaces ``final`` whole.

    On an exception nothing of it is left behind and ``final`` is untouched."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        fsync_dir(final.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(final: Path) -> Iterator[Path]:
    """A temp path beside ``final`` for a library that writes files itself (FAISS); renamed to
    ``final`` on success, removed on an exception."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, final)
        fsync_dir(final.parent)
    finally:
        tmp.unlink(missing_ok=True)


def sha256_file(path: Path, *, block: int = HASH_BLOCK) -> str:
    """sha256 hex digest of a file's bytes (OSError when it cannot be read)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_files(paths: list[Path], *, block: int = HASH_BLOCK) -> str:
    """One sha256 over several files' bytes, in order (a model folder's identity)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            while chunk := fh.read(block):
                digest.update(chunk)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_limited(path: Path, limit: int) -> bytes:
    """A regular file's bytes, at most ``limit`` + 1 of them (more than ``limit``: the caller's "too
    large"). A device, FIFO or socket (``/dev/zero``, a named pipe, a symlink to one) is refused as
    OSError(EINVAL) before it is opened: reading one never ends or never starts."""
    st = os.stat(path)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, "not a regular file (a device, pipe or socket)", str(path))
    with open(path, "rb") as fh:
        return fh.read(limit + 1)
