"""Derived indexes: caches built from the episode files, named by a digest of what they were
built from, loaded when valid and rebuilt otherwise. A damaged or stale cache is never trusted;
one that cannot be saved (read-only folder, full disk) still answers from memory."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..fsutil import atomic_dir, atomic_file

log = logging.getLogger(__name__)

T = TypeVar("T")


def load_or_build(
    path: Path,
    *,
    load: Callable[[Path], T | None],
    build: Callable[[], T],
    save: Callable[[T, Path], None],
    folder: bool,
    what: str,
    force: bool = False,
) -> T:
    """``load(path)`` when it gives a valid value (None: stale), else ``build()`` and save it
    atomically at ``path`` (a folder when ``folder``), then return it. ``force``: build anew even
    when the cache loads (repair); the old cache is replaced only once the new one is saved."""
    if path.exists() and not force:
        try:
            value = load(path)
            if value is not None:
                return value
            log.info("%s cache %s is stale: rebuilding", what, path.name)
        except Exception as exc:  # noqa: BLE001  damaged cache (json, npz, FAISS, missing file): derived, rebuild it
            log.warning(
                "%s cache %s is damaged (%s): rebuilding",
                what,
                path.name,
                f"{type(exc).__name__}: {exc}".splitlines()[0],
            )
    value = build()
    try:
        if folder:
            with atomic_dir(path, prefix=f".{what}.") as tmp:
                save(value, tmp)
        else:
            with atomic_file(path) as tmp:
                save(value, tmp)
        log.info("built the %s cache %s", what, path.name)
    except (OSError, RuntimeError) as exc:  # FAISS reports a full disk as RuntimeError
        log.warning(
            "cannot save the %s cache %s (%s): answering from memory",
            what,
            path.name,
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        )
    return value
