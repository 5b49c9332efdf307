"""Folders of audio and transcripts -> Sources: one episode's input files, grouped by folder and stem.

An episode's id is its file's stem. An audio file with a transcript of the same stem beside it
(.json, .srt, .vtt) uses that transcript instead of running Whisper. A ``<stem>.meta.json`` beside
them is the episode's metadata sidecar (title, date, URLs: hmsearch.metadata), never a transcript.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..audio import AUDIO_SUFFIXES
from ..formats import TRANSCRIPT_SUFFIXES
from ..metadata import is_sidecar, sidecar_of


@dataclass
class Source:
    """One episode's input files: audio, a transcript, or both (same stem, same folder)."""

    id: str
    audio: Path | None = None
    transcript: Path | None = None
    # What a feed says about the episode (None for plain files).
    title: str | None = None
    published: str | None = None
    url: str | None = None  # the episode's page
    enclosure: str | None = None  # the audio's URL
    feed: dict[str, Any] | None = None  # feed URL and the item's fingerprint, recorded in the manifest
    sidecar: Path | None = None  # <stem>.meta.json beside a local file (hmsearch.metadata)

    @property
    def name(self) -> str:
        return str(self.transcript or self.audio) if (self.transcript or self.audio) else self.id


def _printable_name(f: Path) -> str:
    """A file name for a message: bytes that are not UTF-8 shown as escapes."""
    return os.fsencode(f).decode("utf-8", "backslashreplace")


def discover(paths: Iterable[Path], *, exclude: Iterable[Path] = ()) -> tuple[list[Source], list[tuple[str, str]]]:
    """Group the audio and transcript files under ``paths`` into Sources, by folder and stem.

    Returns the sources and (path, reason) for paths that do not exist or hold nothing usable.
    Folders in ``exclude`` (the index itself, when `hmsearch index .` walks the folder it is in)
    are not walked.
    """
    skip = {Path(p).resolve() for p in exclude}
    known = AUDIO_SUFFIXES + TRANSCRIPT_SUFFIXES
    groups: dict[tuple[Path, str], dict[str, Path]] = {}
    errors: list[tuple[str, str]] = []

    def consider(f: Path, explicit: bool) -> None:
        suffix = f.suffix.lower()
        if is_sidecar(f):  # read with its episode's files, never as a transcript of its own
            if explicit:
                errors.append((str(f), f"{f}: a metadata sidecar; index its transcript or audio and it is read"))
            return
        if suffix not in known:
            if explicit:
                errors.append((str(f), f"{f}: not an audio or transcript file (known: {' '.join(known)})"))
            return
        try:
            str(f).encode("utf-8")
        except UnicodeEncodeError:  # a name that is not UTF-8 cannot go into the manifest
            name = _printable_name(f)
            errors.append((name, f"{name}: file name is not valid UTF-8; rename the file"))
            return
        try:
            regular = stat.S_ISREG(f.stat().st_mode)  # follows a symlink to what it names
        except OSError:
            regular = False
        if not regular:  # /dev/zero, a FIFO, a socket, a dangling link: reading one never ends
            errors.append((str(f), f"{f}: not a regular file (a device, pipe, socket or broken link)"))
            return
        kind = "audio" if suffix in AUDIO_SUFFIXES else "transcript"
        slot = groups.setdefault((f.parent.resolve(), f.stem), {})
        if kind in slot and slot[kind] != f:
            # Two transcripts of one stem: prefer Whisper JSON (it has word times), then VTT, then SRT.
            rank = {".json": 0, ".vtt": 1, ".srt": 2}
            if kind == "transcript" and rank[suffix] < rank[slot[kind].suffix.lower()]:
                slot[kind] = f
            return
        slot[kind] = f

    for path in paths:
        path = Path(path)
        if not path.exists():
            errors.append((str(path), f"{path}: no such file or folder"))
        elif path.is_dir():
            if path.resolve() in skip:
                continue
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and Path(root, d).resolve() not in skip)
                for name in sorted(files):
                    if not name.startswith("."):
                        consider(Path(root) / name, explicit=False)
        else:
            consider(path, explicit=True)
            if path.suffix.lower() in known and not is_sidecar(path):  # an explicit file picks up its partner
                for suffix in known:
                    partner = path.with_suffix(suffix)
                    if partner != path and partner.is_file():
                        consider(partner, explicit=False)
    sources: list[Source] = []
    seen: dict[str, Source] = {}
    for (_folder, stem), slot in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        source = Source(id=stem, audio=slot.get("audio"), transcript=slot.get("transcript"))
        beside = sidecar_of(source.transcript or source.audio)  # type: ignore[arg-type]  # one is set
        source.sidecar = beside if beside.is_file() else None
        if stem in seen:
            errors.append((source.name, f"{source.name}: duplicate episode id '{stem}' (also {seen[stem].name})"))
            continue
        seen[stem] = source
        sources.append(source)
    return sources, errors
