"""What an indexing run reports: typed progress events as they happen, and the report at the end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

EventKind = Literal[
    "plan",
    "notice",
    "unchanged",
    "work",
    "loading",
    "download",
    "start",
    "progress",
    "added",
    "replaced",
    "failed",
    "pruned",
    "warning",
    "updated",
]


@dataclass(frozen=True)
class IndexEvent:
    """One step of a run ("notice": something to say once per run, in ``detail``). ``count``:
    episodes planned ("plan"), episodes Whisper will hear ("work") or passages written ("added",
    "replaced"); ``seconds``: the audio Whisper will hear in all ("work"), in this episode
    ("start"), heard so far in it ("progress"), or how long the episode took ("added",
    "replaced"), with ``phases`` splitting it up (decode, transcribe, chunk, embed, commit).
    "loading": the Whisper model named in ``detail`` is being loaded. "warning": something the run
    went on without (a sidecar it could not use), in ``detail``; "updated": an unchanged episode's
    metadata changed (from its sidecar), nothing embedded."""

    kind: EventKind
    episode: str = ""
    detail: str = ""
    count: int = 0
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)


EventFn = Callable[[IndexEvent], None]


def no_events(event: IndexEvent) -> None:
    """The default listener."""


@dataclass
class IndexReport:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file, one-line reason)
    passages: int = 0
    updated: list[str] = field(default_factory=list)  # unchanged episodes whose metadata changed
    warnings: list[str] = field(default_factory=list)  # one line each; the run went on

    def summary(self) -> str:
        parts = [f"{len(self.added)} added", f"{len(self.replaced)} replaced", f"{len(self.unchanged)} unchanged"]
        if self.updated:
            parts.append(f"{len(self.updated)} metadata updated")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        return ", ".join(parts)

    def fail(self, name: str, reason: str, emit: EventFn, episode: str | None = None) -> None:
        self.failed.append((name, reason))
        emit(IndexEvent("failed", episode if episode is not None else name, reason))

    def warn(self, message: str, emit: EventFn, episode: str = "") -> None:
        self.warnings.append(message)
        emit(IndexEvent("warning", episode, message))

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "replaced": self.replaced,
            "unchanged": self.unchanged,
            "failed": [{"file": f, "error": e} for f, e in self.failed],
            "passages": self.passages,
            "updated": self.updated,
            "warnings": self.warnings,
        }
