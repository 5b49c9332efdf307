"""The manifest: what the index holds, as typed records (the disk format stays as it was).

``manifest.json`` names the schema, the embedding model and dimension, the chunk settings and one
record per episode; each record names the episode's files in ``segments/`` (its "segment" key)
and counts its passages ("chunks").
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, fields
from typing import Any

from .. import __version__
from ..errors import IndexStateError, one_line
from ..types import Episode

SCHEMA_VERSION = 1
_EPISODE_FIELDS = {f.name for f in fields(Episode)} - {"id", "n_passages"}
_RECORD_KEYS = {"episode", "chunks", "segment", "inputs", "feed", *_EPISODE_FIELDS}


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class EpisodeRecord:
    """One episode in the manifest: what is known of it, where its files are, what it came from."""

    episode: Episode
    segment: str  # the key of its files: segments/<segment>.npy and .json
    inputs: dict[str, Any] = field(default_factory=dict)  # fingerprints of its input files
    feed: dict[str, Any] | None = None  # feed URL and the item's fingerprint, for feed episodes
    extra: dict[str, Any] = field(default_factory=dict)  # keys a newer hmsearch wrote: kept as they are

    @property
    def id(self) -> str:
        return self.episode.id

    @property
    def n_passages(self) -> int:
        return self.episode.n_passages

    @property
    def content_hash(self) -> str:
        return self.episode.content_hash

    @property
    def language(self) -> str | None:
        return self.episode.language

    def to_dict(self) -> dict[str, Any]:
        out = {**self.episode.to_dict(), "segment": self.segment}
        if self.inputs:
            out["inputs"] = self.inputs
        if self.feed:
            out["feed"] = self.feed
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, rec: dict[str, Any]) -> EpisodeRecord:
        for key in ("episode", "segment", "chunks", "content_hash"):
            if key not in rec:
                raise ValueError(f"episode record without '{key}'")
        values = {k: rec[k] for k in _EPISODE_FIELDS if rec.get(k) is not None}
        episode = Episode(id=str(rec["episode"]), n_passages=int(rec["chunks"]), **values)
        return cls(
            episode=episode,
            segment=str(rec["segment"]),
            inputs=dict(rec.get("inputs") or {}),
            feed=rec.get("feed") or None,
            extra={k: v for k, v in rec.items() if k not in _RECORD_KEYS},
        )


@dataclass
class Manifest:
    embedding_model: str
    dim: int
    chunking: dict[str, Any]
    episodes: dict[str, EpisodeRecord] = field(default_factory=dict)  # id -> record, in row order
    generation: int = 0
    schema: int = SCHEMA_VERSION
    created: str = ""
    updated: str = ""

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "schema": self.schema,
                "hmsearch": __version__,
                "generation": self.generation,
                "created": self.created,
                "updated": self.updated,
                "embedding": {"model": self.embedding_model, "dim": self.dim},
                "chunking": self.chunking,
                "episodes": [r.to_dict() for r in self.episodes.values()],
            },
            ensure_ascii=False,
            indent=1,
        ).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, *, name: str) -> Manifest:
        try:
            obj = json.loads(data.decode("utf-8"))
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
            schema = int(obj["schema"])
            if schema > SCHEMA_VERSION:
                raise IndexStateError(f"{name}: written by a newer hmsearch (schema {schema}); upgrade hmsearch")
            episodes = {}
            for raw in obj["episodes"]:
                record = EpisodeRecord.from_dict(raw)
                episodes[record.id] = record
            return cls(
                embedding_model=str(obj["embedding"]["model"]),
                dim=int(obj["embedding"]["dim"]),
                chunking=dict(obj["chunking"]),
                episodes=episodes,
                generation=int(obj["generation"]),
                schema=schema,
                created=str(obj.get("created", "")),
                updated=str(obj.get("updated", "")),
            )
        except IndexStateError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError, RecursionError) as exc:
            raise IndexStateError(
                f"{name}: damaged index manifest ({one_line(exc)}); "
                f"run `hmsearch repair` to restore the previous version"
            ) from None
