"""The people a feed names (Podcasting 2.0 ``<podcast:person>``) and names for an episode's
speakers taken from them, with no manual step.

Spec: https://github.com/Podcastindex-org/podcast-namespace (docs/1.0.md, "person"): the tag's
text is the name; ``role`` (default "host") and ``group`` (default "cast") come from the
namespace's taxonomy, ``href`` and ``img`` are URLs. An item's persons override its channel's
role by role: an item that lists a guest keeps the channel's host, one that lists a host replaces it
(a feed names its host once, on the channel, and each episode's guest on the item).

Which speaker is whom (``names_from_persons``), in order:

1. a speaker the voice registry recognises as one of the feed's hosts or co-hosts gets that name
   (``voices.recognise``; only the feed's people, so an unrelated registered voice names nobody);
2. an episode with one speaker, and one host but no guest (a solo show): that speaker is the host;
3. with two speakers left, and one host (plus at most one guest): the host is the speaker who asks
   the most questions per second of speech ("?" in what they say), and on a tie (a transcript
   without punctuation) the one who speaks first; the other speaker is the guest.
   Interview hosts ask, guests answer. Measured on every two-voice episode of the Talk Python VTTs
   (real ``<v>`` names, 6 episodes) and the five scripted host/guest conversations of the repo
   (audio/hm-sample-001.json, benchmarks/data/da_dev): questions per second picks the named host in
   10 of 11, speaking first also 10 of 11, the most questions 10 of 11 (a different miss), the least
   speech 9 of 11. The one miss of the rule is an episode where the show's host is interviewed
   (Talk Python 531): the speaker it calls the host is the one who interviews;
4. anything else (two hosts, three voices, a guest but no host) is left for ``--name``.

Only diarization's ids (S1, S2, ...) are named: an imported transcript's own voices keep their
names, and a name already given (``hmsearch speakers --name``, or an earlier run) is never replaced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..text import one_line
from ..types import Sentence, is_clean_http_url
from .names import is_detected

MAX_PERSONS = 32  # per item (channel's or item's): a cast, not a phone book
MAX_NAME_CHARS = 128
MAX_FIELD_CHARS = 64  # role, group
MAX_URL_CHARS = 2048
HOST_ROLES = ("host", "co-host")
GUEST_ROLES = ("guest",)


@dataclass(frozen=True)
class Person:
    name: str
    role: str = "host"
    group: str = "cast"
    href: str | None = None
    img: str | None = None

    @property
    def is_host(self) -> bool:
        return self.role in HOST_ROLES

    @property
    def is_guest(self) -> bool:
        return self.role in GUEST_ROLES

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "group": self.group, "href": self.href, "img": self.img}


def _text(value: object, limit: int) -> str:
    if not isinstance(value, str):
        return ""
    text = one_line(value[: limit * 4])  # control characters out before the length is counted
    return text[:limit].rstrip()


def _url(value: object) -> str | None:
    url = _text(value, MAX_URL_CHARS)
    return url if is_clean_http_url(url) else None


def make_person(name: object, attrs: Mapping[str, object]) -> Person | None:
    """A person from a tag's text and attributes, cleaned and capped; None without a name."""
    clean = _text(name, MAX_NAME_CHARS)
    if not clean:
        return None
    role = _text(attrs.get("role"), MAX_FIELD_CHARS).lower() or "host"
    group = _text(attrs.get("group"), MAX_FIELD_CHARS).lower() or "cast"
    return Person(clean, role, group, _url(attrs.get("href")), _url(attrs.get("img")))


def item_persons(item: Sequence[Person], channel: Sequence[Person]) -> tuple[Person, ...]:
    """An item's cast: its own persons, and the channel's in the roles the item does not list."""
    roles = {p.role for p in item}
    return tuple([*item, *(p for p in channel if p.role not in roles)][:MAX_PERSONS])


def persons_from_dicts(data: object) -> tuple[Person, ...]:
    """Persons back from the manifest's record (``feed["persons"]``), anything malformed skipped."""
    if not isinstance(data, list):
        return ()
    out = []
    for d in data[:MAX_PERSONS]:
        if isinstance(d, dict):
            p = make_person(d.get("name"), d)
            if p is not None:
                out.append(p)
    return tuple(out)


def _questions_per_second(sentences: Sequence[Sentence], speaker: str) -> float:
    mine = [s for s in sentences if s.speaker == speaker]
    seconds = sum(max(0.0, s.end - s.start) for s in mine)
    return sum(s.text.count("?") for s in mine) / seconds if seconds > 0 else 0.0


def names_from_persons(
    sentences: Sequence[Sentence],
    persons: Sequence[Person],
    given: Mapping[str, str],
    recognised: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """{speaker id: name} for the episode's unnamed speakers, from the feed's ``persons`` (the
    rule in the module docstring); ``given``: names the episode has already, never replaced;
    ``recognised``: {speaker id: name} the voice registry heard."""
    speakers = list(dict.fromkeys(s.speaker for s in sentences if s.speaker))
    taken = {n.casefold() for n in given.values()} | {s.casefold() for s in speakers if not is_detected(s)}
    open_ = [s for s in speakers if is_detected(s) and s not in given]
    hosts = [p.name for p in persons if p.is_host and p.name.casefold() not in taken]
    guests = [p.name for p in persons if p.is_guest and p.name.casefold() not in taken]
    hosts, guests = list(dict.fromkeys(hosts)), list(dict.fromkeys(guests))
    out: dict[str, str] = {}
    for sid, name in (recognised or {}).items():
        if sid in open_ and name in hosts:
            out[sid] = name
            open_.remove(sid)
            hosts.remove(name)
    if out:  # the host heard: the one speaker left is the one guest
        if len(open_) == 1 and len(guests) == 1 and not hosts:
            out[open_[0]] = guests[0]
        return out
    if len(hosts) != 1 or len(guests) > 1:
        return out
    if len(open_) == 1 and len(speakers) == 1 and not guests:  # a solo show
        return {open_[0]: hosts[0]}
    if len(open_) == 2 and len(speakers) == 2:
        rate = {s: _questions_per_second(sentences, s) for s in open_}
        host = max(open_, key=lambda s: (rate[s], -open_.index(s)))
        out[host] = hosts[0]
        if guests:
            out[next(s for s in open_ if s != host)] = guests[0]
    return out
