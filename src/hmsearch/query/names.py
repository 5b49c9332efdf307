"""Names in a question steer which episodes are searched (issue 23).

"Does Elon Musk think a human watching over self-driving cars makes them safer?" names the guest to
say *which* episode, not *what* is said: searched as it is, the name pulls every passage that says
it (the introduction first, "The following is a conversation with Elon Musk") above the answer.
So a name of two or more capitalised words that an episode's title, introduction (its first
passages), named speakers or feed persons (``<podcast:person>``) say restricts the search to the episodes that say it, and the rest of
the question is what is matched in the text. A name that many episodes say (a show's name, a
company every introduction mentions) does not steer.

Names are looked up through the BM25 index the search already has (one posting list per word), so
steering costs no extra files and no pass over the episodes' texts.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ..index import IndexStore
from ..speakers.persons import persons_from_dicts
from ..text import analyze

INTRO_PASSAGES = 3  # an episode's first passages, where its introduction names the guest
MAX_SHARE = 0.25  # a name said by more than this share of the episodes (and by more than one) does not steer

# Two or more capitalised words in a row ("Elon Musk", "Tom Brands'", "Does Elon Musk").
_CAPITALISED = re.compile(r"\b[A-ZÆØÅ][\w'’-]*(?:\s+[A-ZÆØÅ][\w'’-]*)+")
_POSSESSIVE = re.compile(r"['’]s?$")


@dataclass(frozen=True)
class Steer:
    """Where a question's names point: the question without them, and the episodes that say them."""

    text: str
    episodes: tuple[str, ...]
    names: tuple[str, ...]


def name_spans(question: str) -> list[list[str]]:
    """For each run of capitalised words in ``question``, its spans of two or more words, longest
    (then leftmost) first, possessives dropped: the candidates for a name."""
    out = []
    for run in _CAPITALISED.findall(question):
        words = [_POSSESSIVE.sub("", w) for w in run.split()]
        spans = sorted(
            ((i, j) for i in range(len(words)) for j in range(i + 2, len(words) + 1)), key=lambda s: (s[0] - s[1], s[0])
        )
        out.append([" ".join(words[i:j]) for i, j in spans])
    return out


class NameLookup:
    """Which episodes say a word in their title, their first passages or a speaker's given name."""

    def __init__(self, store: IndexStore, speaker_names: dict[str, dict[str, str]] | None = None) -> None:
        self.store = store
        self.table = store.rows()
        self.langs = store.lexical().langs or ["en"]
        rows = np.arange(self.table.total, dtype=np.int64)
        first = self.table.starts[self.table.positions(rows)]  # each row's episode's first row
        self.intro = rows - first < INTRO_PASSAGES
        # episode -> terms of its title, speakers' and feed persons' names
        self.own = _own_terms(store, self.table.ids, self.langs, speaker_names or {})

    def word_terms(self, word: str) -> set[str]:
        return {t for lang in self.langs for t in analyze(word, lang)}

    def episodes_saying(self, word: str) -> set[str]:
        terms = self.word_terms(word)
        if not terms:
            return set()
        found = {ep for ep, own in self.own.items() if own & terms}
        rows = self.store.lexical().rows_with(sorted(terms))
        rows = rows[self.intro[rows]]
        found |= {self.table.ids[int(p)] for p in np.unique(self.table.positions(rows))}
        return found

    def episodes_naming(self, name: str) -> set[str]:
        """The episodes that say every word of ``name`` (none when a word is a stopword)."""
        words = name.split()
        if any(not self.word_terms(w) for w in words):
            return set()
        found: set[str] | None = None
        for w in words:
            found = self.episodes_saying(w) if found is None else found & self.episodes_saying(w)
            if not found:
                return set()
        return found or set()


# Each index version's title/speaker/person terms, analysed once rather than once per question
# (thousands of episodes): keyed by the index folder, its manifest's generation and creation, and
# the speaker names given.
_OWN: OrderedDict[tuple[str, int, str, tuple[str, ...], str], dict[str, set[str]]] = OrderedDict()
_OWN_LOCK = threading.Lock()
_OWN_KEPT = 4


def _own_terms(
    store: IndexStore, episodes: list[str], langs: list[str], named: dict[str, dict[str, str]]
) -> dict[str, set[str]]:
    manifest = store.require()
    key = (str(store.root), manifest.generation, str(manifest.created), tuple(langs), json.dumps(named, sort_keys=True))
    with _OWN_LOCK:
        if key in _OWN:
            _OWN.move_to_end(key)
            return _OWN[key]
    own: dict[str, set[str]] = {}
    for ep in episodes:
        record = store.record(ep)
        feed = record.feed if isinstance(record.feed, dict) else {}
        persons = [p.name for p in persons_from_dicts(feed.get("persons"))]
        said = " ".join([record.episode.title, *named.get(ep, {}).values(), *persons])
        own[ep] = {t for lang in langs for t in analyze(said, lang)}
    with _OWN_LOCK:
        _OWN[key] = own
        while len(_OWN) > _OWN_KEPT:
            _OWN.popitem(last=False)
    return own


def steer(store: IndexStore, question: str, *, speaker_names: dict[str, dict[str, str]] | None = None) -> Steer | None:
    """Where the names in ``question`` point, or None when it names nothing that a few episodes say
    (or when the question would be empty without its names)."""
    spans = name_spans(question)
    if not spans:
        return None
    lookup = NameLookup(store, speaker_names)
    n = len(lookup.table.ids)
    limit = max(1, int(MAX_SHARE * n))
    votes: dict[str, int] = {}
    names: list[str] = []
    for candidates in spans:
        for name in candidates:
            eps = lookup.episodes_naming(name)
            if eps and len(eps) <= limit:
                names.append(name)
                for ep in eps:
                    votes[ep] = votes.get(ep, 0) + 1
                break
    if not names or len(votes) >= n > 1:
        return None
    best = max(votes.values())
    text = question
    for name in names:
        words = [re.escape(w) for w in name.split()]
        pattern = r"(,?\s*according to\s+)?" + r"\s+".join(words) + r"(['’]s?)?,?"
        text = re.sub(pattern, " ", text, flags=re.IGNORECASE)
    text = re.sub(r"\s+", " ", text).strip()
    if len(text.split()) < 2:
        return None
    return Steer(text, tuple(ep for ep in lookup.table.ids if votes.get(ep) == best), tuple(names))
