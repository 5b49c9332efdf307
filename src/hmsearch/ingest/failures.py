"""Feed items that keep failing: a small per-index record (``failures.json``) so that a dead item
(a 404 enclosure, audio that does not decode) stops failing a nightly run after a few tries.

An item that failed is tried again on later runs once its backoff has passed (RETRY_FIRST,
doubling, at most RETRY_MAX); after ``max_tries`` failed tries it is "failing": skipped, and no
longer a failed run, until ``update --retry-failed`` or a change of the item in the feed. The
record is advisory: a damaged file is a warning and an empty record, never a stopped run.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import one_line
from ..fsutil import atomic_write

FAILURES_FILE = "failures.json"  # in the index folder
RECORD_VERSION = 1
RETRY_FIRST = 3600.0  # seconds before the first retry; doubling after each failed try
RETRY_MAX = 24 * 3600.0  # the longest wait between tries


@dataclass
class Failure:
    """One feed item's failed tries. Times are epoch seconds."""

    feed: str
    guid: str
    title: str
    first: float
    last: float
    tries: int
    reason: str  # the last one, one line
    fingerprint: str = ""  # the item as the feed listed it: a changed item is tried at once
    gave_up: bool = False  # tries reached max_tries at the last failure

    @property
    def key(self) -> tuple[str, str]:
        return (self.feed, self.guid)

    def next_try(self) -> float:
        """When backoff lets the item be tried again."""
        wait: float = min(RETRY_FIRST * 2 ** min(max(self.tries - 1, 0), 16), RETRY_MAX)
        return float(self.last) + wait

    def to_dict(self) -> dict[str, Any]:
        return {
            "feed": self.feed,
            "guid": self.guid,
            "title": self.title,
            "tries": self.tries,
            "first_failed": iso(self.first),
            "last_failed": iso(self.last),
            "reason": self.reason,
            "failing": self.gave_up,
            "next_retry": None if self.gave_up else iso(self.next_try()),
            "status": (
                f"failing (gave up after {self.tries} tries; `hmsearch update --retry-failed` tries again)"
                if self.gave_up
                else f"retried from {iso(self.next_try())}"
            ),
        }


@dataclass
class FailureRecord:
    """The failed items of every feed of one index, by (feed, GUID)."""

    path: Path
    items: dict[tuple[str, str], Failure] = field(default_factory=dict)
    warning: str | None = None  # why the file on disk was not read (then the record starts empty)

    def get(self, feed: str, guid: str) -> Failure | None:
        return self.items.get((feed, guid))

    def fail(
        self, feed: str, guid: str, *, title: str, reason: str, now: float, fingerprint: str, max_tries: int
    ) -> Failure:
        """Count one more failed try (a first one when the item changed in the feed since)."""
        old = self.items.get((feed, guid))
        if old is not None and old.fingerprint != fingerprint:
            old = None
        entry = Failure(
            feed=feed,
            guid=guid,
            title=title,
            first=old.first if old else now,
            last=now,
            tries=(old.tries if old else 0) + 1,
            reason=_first_line(reason)[:500],
            fingerprint=fingerprint,
        )
        entry.gave_up = entry.tries >= max_tries
        self.items[entry.key] = entry
        return entry

    def forget(self, feed: str, guid: str) -> bool:
        return self.items.pop((feed, guid), None) is not None

    def save(self) -> None:
        """Write the record atomically (the file is removed when nothing is left in it)."""
        if not self.items:
            self.path.unlink(missing_ok=True)
            return
        rows = [asdict(f) for f in sorted(self.items.values(), key=lambda f: f.key)]
        data = json.dumps({"version": RECORD_VERSION, "items": rows}, indent=1, ensure_ascii=False)
        atomic_write(self.path, data.encode("utf-8") + b"\n")


def load_failures(index_root: Path) -> FailureRecord:
    """The record of ``index_root``; a missing file is an empty record, a damaged one too, with a
    one-line ``warning`` (the next run that saves writes a sound file)."""
    path = Path(index_root) / FAILURES_FILE
    record = FailureRecord(path)
    try:
        data = json.loads(path.read_bytes())
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            raise ValueError("not a failures record")
        names = {f.name for f in fields(Failure)}
        for row in data["items"]:
            entry = Failure(**{k: v for k, v in row.items() if k in names})
            if not (isinstance(entry.tries, int) and isinstance(entry.last, (int, float))):
                raise ValueError("a damaged entry")
            record.items[entry.key] = entry
    except FileNotFoundError:
        pass
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        record.items.clear()
        record.warning = f"{path}: damaged ({one_line(exc)[:100]}); ignored: failed feed items are counted afresh"
    return record


def fingerprint_key(fingerprint: dict[str, Any]) -> str:
    """A short stable key for a feed item's fingerprint."""
    import hashlib

    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0].strip() if lines else ""


def iso(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
