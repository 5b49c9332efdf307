"""Chapters: where an episode's topic changes, each with a start time and a short extractive title.

How the boundaries are found: change-point detection over the episode's passage vectors, the ones
indexing already computed with the index's own embedding model (so no model is loaded and a
chapter list costs milliseconds). The vectors are centred on the episode's mean direction, then
cut where the squared distance of each vector to its segment's mean, plus a penalty per segment,
is smallest (exact dynamic programming, as ruptures' Dynp with the L2 cost), with segments of at
least ``min_seconds``; the penalty is raised while there are more than ``max_per_hour`` changes,
and lowered for a long episode with fewer than ``min_per_hour`` chapters. A change is put at the
sentence start nearest to where the passage before it and the one after it meet.

Measured on joins of excerpts of different real episodes (benchmarks/bench_chapters.py, README
"Host tools"): F1 0.85 at ±30 s on the test joins, where TextTiling depth scores over the same
(uncentred) vectors, tried first, reached 0.39 and a fixed interval 0.17.

A title is a phrase of 2-6 words said in the chapter (``chapter_titles``): runs of content words
with connectors such as "of" only inside, scored by their stems' weight in this chapter against the
other chapters (sublinear tf-idf, chapters as documents), by how often the phrase was said and how
much of its use falls in this chapter, starting and ending on words said as nouns rather than verbs
(judged by the words before them: "the", "a" vs "I", "to"). On ten long real episodes every title is
such a phrase; YAKE, measured beside it, named its own chapter less often (benchmarks/results/chapter_titles.md).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..chunk import sentences_from_passages
from ..errors import IndexStateError
from ..types import Passage, Sentence

CHAPTERS_VERSION = 3  # bump when boundaries or titles are made differently: cached chapters are made again
SHORT_MIN_SECONDS = 45.0


@dataclass(frozen=True)
class ChapterSettings:
    penalty: float = 2.5  # the cost of one more chapter, in units of one passage's squared distance
    min_seconds: float = 150.0  # the shortest chapter (a fifth of a short episode, at least 45 s)
    max_per_hour: float = 12.0  # at most this many topic changes an hour
    min_per_hour: float = 4.0  # and at least this many chapters an hour, when the episode is long enough

    def digest(self) -> str:
        import hashlib

        raw = json.dumps({"v": CHAPTERS_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Chapter:
    start: float
    end: float
    title: str
    keywords: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "title": self.title,
            "keywords": list(self.keywords),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Chapter:
        """A chapter read back (from a derived cache): ValueError unless its times are finite and in
        order and its title is text, so a damaged cache is made again instead of reaching --json."""
        start, end, title = float(d["start"]), float(d["end"]), d["title"]
        if not (math.isfinite(start) and math.isfinite(end) and 0 <= start <= end) or not isinstance(title, str):
            raise ValueError(f"not a chapter: {str(d)[:80]}")
        return cls(start=start, end=end, title=title, keywords=tuple(str(k) for k in d.get("keywords") or ()))


# ---------------------------------------------------------------------------------- boundaries


def centred(vectors: np.ndarray) -> np.ndarray:
    """Unit vectors minus the episode's mean direction, made unit again: what every passage of an
    episode shares (its voice, register, the show's own words) is taken out, what sets a stretch
    apart is left. (Without it the e5 passages of one episode all lie within cos 0.85-0.97.)"""
    v = np.asarray(vectors, dtype=np.float64)
    v = v - v.mean(axis=0)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    out: np.ndarray = v / np.where(norms > 0, norms, 1.0)
    return out


def segment(vectors: np.ndarray, *, penalty: float, min_len: int) -> list[int]:
    """Optimal change points of a vector sequence (dynamic programming, as ruptures' Dynp/Pelt with
    the L2 cost): the cut indices that minimise, over segments, the squared distance of each vector
    to its segment's mean, plus ``penalty`` per segment; segments of at least ``min_len`` vectors."""
    n = len(vectors)
    if n < 2 * min_len:
        return []
    csum = np.vstack([np.zeros(vectors.shape[1]), np.cumsum(vectors, axis=0)])
    sq = np.concatenate([[0.0], np.cumsum(np.einsum("ij,ij->i", vectors, vectors))])
    best = np.full(n + 1, np.inf)
    best[0] = 0.0
    prev = np.zeros(n + 1, dtype=np.int64)
    for b in range(min_len, n + 1):
        a = np.arange(0, b - min_len + 1)
        a = a[np.isfinite(best[a])]
        if not len(a):
            continue
        sums = csum[b] - csum[a]
        cost = (sq[b] - sq[a]) - np.einsum("ij,ij->i", sums, sums) / (b - a)
        total = best[a] + cost + penalty
        i = int(np.argmin(total))
        best[b], prev[b] = total[i], a[i]
    cuts, b = [], n
    while b > 0:
        b = int(prev[b])
        if b > 0:
            cuts.append(b)
    return sorted(cuts)


def find_boundaries(
    passages: Sequence[Passage],
    vectors: np.ndarray,
    sentences: Sequence[Sentence],
    *,
    duration: float,
    settings: ChapterSettings = ChapterSettings(),
) -> list[float]:
    """Chapter start times after the first (which is 0): sentence starts where the topic changes."""
    min_seconds = min(settings.min_seconds, max(SHORT_MIN_SECONDS, duration / 5))
    if len(passages) < 2 or duration < 2 * min_seconds:
        return []
    steps = np.diff([p.start for p in passages])
    step = float(np.median(steps)) if len(steps) else duration
    min_len = max(1, math.ceil(min_seconds / max(step, 1.0) - 1e-9))
    limit = max(0, math.floor(settings.max_per_hour * duration / 3600.0 + 1e-9))
    v = centred(vectors)
    penalty = settings.penalty
    cuts = segment(v, penalty=penalty, min_len=min_len)
    while len(cuts) > limit:  # more than a sensible number an hour: demand more of each change
        penalty *= 1.25
        cuts = segment(v, penalty=penalty, min_len=min_len)
    # A long episode that drifts rather than jumps still gets a few chapters: its strongest changes.
    least = math.floor(settings.min_per_hour * duration / 3600.0 + 1e-9) - 1
    for _ in range(40):
        if len(cuts) >= least or penalty < 1e-3:
            break
        penalty /= 1.25
        more = segment(v, penalty=penalty, min_len=min_len)
        if len(more) > limit:
            break
        cuts = more
    starts = [s.start for s in sentences]
    out: list[float] = []
    for b in cuts:
        # The change lies where passage b-1 (mostly before it) and passage b (mostly after) meet.
        t = (passages[b - 1].end + passages[b].start) / 2
        snapped = min(starts, key=lambda s: abs(s - t)) if starts else t
        if min_seconds / 2 <= snapped <= duration - min_seconds / 2 and (not out or snapped - out[-1] >= step):
            out.append(snapped)
    return out


# ---------------------------------------------------------------------------------- titles


def stem_language(language: str | None) -> str:
    from ..text import STEMMERS

    return language if language in STEMMERS else "en"


# Words of talk that the stopword lists (written for text) miss: never title words.
_EN_FILLERS = (
    "yeah okay gonna wanna gotta kind sort thing things stuff lot lots really like cool right use used "
    "using year years know knew think thought get gets got getting going go goes went one ones mean means "
    "actually pretty maybe want wants say says said saying see look looking time times way ways good great "
    "well sure make makes made need needs much many even still little bit guess totally definitely "
    "absolutely basically literally probably exactly interesting different work works working done "
    "come comes came take takes took talk talking tell told feel lots able yes also something someone "
    "anything everything nothing everybody somebody kinds whole course mhm hmm huh wow awesome nice "
    "start started let lets put give back first last new old big long part parts point "
    "people person today day days thanks thank welcome show episode podcast another other every "
    "enough com slash dot org www http https without within away super vs versus via"
)
_DA_FILLERS = (
    "altså ja nej okay ok jo nok bare lige sådan også godt rigtig faktisk egentlig synes tror får gør "
    "sige siger sagt helt altid gerne måske tit hele kan skal vil ting lidt meget mange nogle noget "
    "hvordan hvorfor fordi første andre anden nye gang gange tid dag dage tak velkommen episode"
)
_FILLERS = {"en": set(_EN_FILLERS.split()), "da": set(_DA_FILLERS.split())}


def content_terms(text: str, lang: str) -> list[tuple[str, str] | None]:
    """(stem, surface word) for each content word of ``text``; None marks a stopword (a phrase gap)."""
    from ..text import _stemmer, stopwords, words

    stop = stopwords(lang) | _FILLERS.get(lang, set())
    toks = words(text)
    stemmer = _stemmer(lang)
    stems = stemmer.stemWords(toks) if stemmer else toks
    out: list[tuple[str, str] | None] = []
    for tok, stem in zip(toks, stems):
        keep = tok not in stop and len(tok) > 2 and not tok.isdigit()
        out.append((stem, tok) if keep else None)
    return out


def key_terms(texts: Sequence[str], language: str | None, *, k: int = 3) -> list[list[str]]:
    """For each text (a chapter), its ``k`` key phrases: tf-idf over the texts' stems (a phrase
    is a said-together pair of key words when the pair recurs), shown in their commonest surface form."""
    lang = stem_language(language)
    docs = [content_terms(t, lang) for t in texts]
    df: Counter[str] = Counter()
    for doc in docs:
        df.update({t[0] for t in doc if t})
    n = len(docs)
    out: list[list[str]] = []
    for doc in docs:
        tf: Counter[str] = Counter(t[0] for t in doc if t)
        surface: dict[str, Counter[str]] = {}
        for t in doc:
            if t:
                surface.setdefault(t[0], Counter())[t[1]] += 1
        pairs: Counter[tuple[str, str]] = Counter(
            (a[0], b[0]) for a, b in itertools.pairwise(doc) if a and b and a[0] != b[0]
        )

        def score(stem: str, tf: Counter[str] = tf) -> float:
            # sublinear tf: a word said often everywhere must not outweigh the chapter's own words
            return (1 + math.log(tf[stem])) * math.log((n + 1) / df[stem]) * (1.0 if tf[stem] > 1 else 0.3)

        ranked = sorted(tf, key=lambda s: (-score(s), s))
        phrases: list[str] = []
        used: set[str] = set()
        for stem in ranked:
            if len(phrases) >= k or score(stem) <= 0:
                break
            if stem in used:
                continue
            # a recurring pair with this stem whose other word is itself a key word
            best_pair = max(
                (p for p in pairs if stem in p and pairs[p] >= 2 and not (set(p) & used)),
                key=lambda p: (pairs[p], score(p[0]) + score(p[1])),
                default=None,
            )
            if best_pair and min(score(best_pair[0]), score(best_pair[1])) >= 0.5 * score(stem):
                phrases.append(" ".join(surface[s].most_common(1)[0][0] for s in best_pair))
                used.update(best_pair)
            else:
                phrases.append(surface[stem].most_common(1)[0][0])
                used.add(stem)
        out.append(phrases)
    return out


# Words that may stand inside a title phrase ("history of Python", "state of the art"), never at its ends.
_CONNECTORS = {
    "en": {"of", "and", "for", "in", "on", "the", "with"},
    "da": {"og", "af", "for", "i", "på", "med"},
}
# Without a part-of-speech tagger: a word said after a determiner is taken for a noun (or its
# adjective), one said after a pronoun, "to" or a modal for a verb. A title neither starts nor ends
# on a word said mostly as a verb, and ends on one said as a noun at least sometimes.
_NOUN_BEFORE = {
    "en": set(
        [
            "the",
            "a",
            "an",
            "this",
            "that",
            "these",
            "those",
            "his",
            "her",
            "my",
            "our",
            "your",
            "their",
            "its",
            "some",
            "any",
            "every",
            "each",
            "no",
        ]
    ),
    "da": set(
        [
            "en",
            "et",
            "den",
            "det",
            "de",
            "min",
            "mit",
            "mine",
            "din",
            "dit",
            "sin",
            "sit",
            "vores",
            "jeres",
            "deres",
            "hans",
            "hendes",
            "nogle",
        ]
    ),
}
_VERB_BEFORE = {
    "en": set(
        [
            "i",
            "you",
            "we",
            "they",
            "he",
            "she",
            "to",
            "will",
            "would",
            "can",
            "could",
            "should",
            "must",
            "might",
            "don't",
            "didn't",
            "doesn't",
            "can't",
            "won't",
            "i'll",
            "we'll",
            "you'll",
            "they'll",
            "i'd",
            "we'd",
            "just",
            "never",
        ]
    ),
    "da": set(
        [
            "jeg",
            "du",
            "vi",
            "de",
            "han",
            "hun",
            "at",
            "vil",
            "kan",
            "skal",
            "må",
            "skulle",
            "kunne",
            "ville",
            "har",
            "havde",
        ]
    ),
}
MAX_TITLE_WORDS = 6
_PUNCTUATION = re.compile(r"[.,;:!?()\[\]\"“”…–—]")
MIN_TITLE_WORDS = 2


@dataclass(frozen=True)
class _Candidate:
    stems: tuple[str, ...]  # the stems of the phrase's words (connectors too), in order
    count: int  # how often it was said in the chapter
    surface: str  # as it was said (its commonest form)


def _candidates(text: str, lang: str, stop: set[str] | frozenset[str]) -> dict[tuple[str, ...], _Candidate]:
    """Phrases of 2-6 words said in ``text``: runs of content words, connectors only inside."""
    from ..text import _TOKEN, _stemmer

    found = list(_TOKEN.finditer(text))
    toks = [m.group(0) for m in found]
    # a phrase never runs over punctuation ("perception system. Output" is two)
    broken = [False] + [bool(_PUNCTUATION.search(text, a.end(), b.start())) for a, b in itertools.pairwise(found)]
    low = [t.lower() for t in toks]
    stemmer = _stemmer(lang)
    stems = stemmer.stemWords(low) if stemmer else low
    connectors = _CONNECTORS.get(lang, set())
    content = [_content_word(t, lang, stop) for t in low]
    counts: Counter[tuple[str, ...]] = Counter()
    forms: dict[tuple[str, ...], Counter[str]] = {}
    for i in range(len(toks)):
        if not content[i]:
            continue
        for j in range(i + 1, min(len(toks), i + MAX_TITLE_WORDS)):
            if broken[j] or (not content[j] and low[j] not in connectors):
                break
            if not content[j]:
                continue
            key = tuple(stems[x] for x in range(i, j + 1))  # connectors' stems too: "state of art" != "state art"
            counts[key] += 1
            forms.setdefault(key, Counter())[" ".join(toks[i : j + 1])] += 1
    return {k: _Candidate(k, c, _commonest_form(forms[k])) for k, c in counts.items()}


def _content_word(token: str, lang: str, stop: set[str] | frozenset[str]) -> bool:
    """A word a title may hold: not a stopword or filler, no digits, no contraction ("I'm",
    "that's"; a possessive "Cousin's" is kept), in English no adverb in -ly."""
    base = token[:-2] if token.endswith(("'s", "’s")) else token
    if "'" in base or "’" in base or base in stop or token in stop:
        return False
    if lang == "en" and len(base) >= 7 and base.endswith("ly"):
        return False
    return len(base) > 2 and not any(c.isdigit() for c in base)


def word_roles(texts: Sequence[str], lang: str) -> dict[str, tuple[int, int]]:
    """For each word of ``texts``: how often it follows a determiner (a noun's place) and how often
    a pronoun, "to" or a modal (a verb's place)."""
    from ..text import words

    nouns, verbs = _NOUN_BEFORE.get(lang, set()), _VERB_BEFORE.get(lang, set())
    roles: dict[str, list[int]] = {}
    for text in texts:
        toks = words(text)
        for a, b in itertools.pairwise(toks):
            if a in nouns:
                roles.setdefault(b, [0, 0])[0] += 1
            elif a in verbs:
                roles.setdefault(b, [0, 0])[1] += 1
    return {w: (n, v) for w, (n, v) in roles.items()}


_ADJECTIVE_ENDINGS = ("ed", "al", "ous", "ive", "ble", "ful", "less", "ic", "ing", "ble", "ish")


def _nounish(word: str, roles: dict[str, tuple[int, int]], *, head: bool) -> float:
    """How likely ``word`` is a noun (or, not as the head, its adjective): 0 for a word said
    mostly as a verb, up to 1 for one said after determiners; names (capitals) count as nouns."""
    if word[:1].isupper():
        return 1.0
    n, v = roles.get(word.lower(), (0, 0))
    if v > n + 1:
        return 0.0
    if head and n == 0:
        return 0.4
    share = (n + 1) / (n + v + 2)
    if head and word.endswith(_ADJECTIVE_ENDINGS) and n < 3:  # "two dimensional", "passed away" are no names
        share *= 0.3
    return share


def _commonest_form(forms: Counter[str]) -> str:
    """The phrase as said most often; lower case where it was said both ways (a sentence start)."""
    by_lower: Counter[str] = Counter()
    for f, c in forms.items():
        by_lower[f.lower()] += c
    best = by_lower.most_common(1)[0][0]
    variants = [f for f in forms if f.lower() == best]
    # a name keeps its capitals ("Python"); a word capitalised only at a sentence start does not
    return min(variants, key=lambda f: (sum(ch.isupper() for ch in f[:1]), -forms[f]))


def _longest(c: _Candidate, cands: dict[tuple[str, ...], _Candidate]) -> _Candidate:
    """``c`` or a longer phrase holding it that was said nearly as often ("rotating black" ->
    "rotating black hole")."""
    best = c
    for other in cands.values():
        k = len(c.stems)
        longer = len(other.stems) > len(best.stems) and other.count >= max(2, 0.7 * c.count)
        if longer and any(other.stems[i : i + k] == c.stems for i in range(len(other.stems) - k + 1)):
            best = other
    return best


def chapter_titles(texts: Sequence[str], language: str | None) -> list[tuple[str, list[str]]]:
    """For each text (a chapter), a title of 2-6 words said in it and its key phrases.

    A title is a phrase said in the chapter (content words, connectors such as "of" only inside),
    scored by its words' weight in this chapter against the episode's other chapters (sublinear
    tf-idf over stems, chapters as documents), by how often the phrase itself was said, and by how
    much of its use falls in this chapter; phrases of 2-3 content words are preferred, a title
    used by an earlier chapter is not repeated. The key phrases are the next best, non-overlapping.
    """
    lang = stem_language(language)
    from ..text import stopwords

    stop = stopwords(lang) | _FILLERS.get(lang, set())
    docs = [content_terms(t, lang) for t in texts]
    tfs = [Counter(t[0] for t in doc if t) for doc in docs]
    df: Counter[str] = Counter()
    for tf in tfs:
        df.update(tf.keys())
    n = len(texts)
    cands = [_candidates(t, lang, stop) for t in texts]
    roles = word_roles(texts, lang)
    total: Counter[tuple[str, ...]] = Counter()
    for found in cands:
        total.update({k: v.count for k, v in found.items()})
    out: list[tuple[str, list[str]]] = []
    used_titles: set[str] = set()
    for i, (tf, cand) in enumerate(zip(tfs, cands)):

        def weight(stem: str, tf: Counter[str] = tf) -> float:
            if not tf[stem]:
                return 0.0
            return (1 + math.log(tf[stem])) * math.log((n + 1) / df[stem])

        def score(c: _Candidate) -> float:
            content = [s for s in c.stems if weight(s) > 0]
            if not content or len(set(c.stems)) < len(c.stems):  # "money money money"
                return 0.0
            said_words = c.surface.split()
            first, last = _nounish(said_words[0], roles, head=False), _nounish(said_words[-1], roles, head=True)
            if min(first, last) == 0.0:
                return 0.0
            words = sorted((weight(s) for s in content), reverse=True)
            base = words[0] + 0.5 * sum(words[1:3])  # the phrase's best words, a long phrase not summed up
            said = (1 + math.log(c.count)) * (1.0 if c.count >= 2 else 0.35)
            own = c.count / total[c.stems]  # how much of the phrase's use is in this chapter
            size = {1: 0.0, 2: 1.0, 3: 1.0, 4: 0.8}.get(len(content), 0.6)
            return base * said * (0.5 + own) * size * (0.5 + last) * (0.75 + 0.25 * first)

        ranked = sorted(cand.values(), key=lambda c: (-score(c), c.surface))
        ranked = [_longest(c, cand) for c in ranked if score(c) > 0]
        title = next((c.surface for c in ranked if c.surface.lower() not in used_titles), None)
        keys: list[str] = []
        seen: set[str] = set()
        for c in ranked:
            if len(keys) >= 3:
                break
            if set(c.stems) & seen:
                continue
            keys.append(c.surface)
            seen.update(c.stems)
        if title is None:
            title = ("Del" if language == "da" else "Part") + f" {i + 1}"
        else:
            used_titles.add(title.lower())
        out.append((title[:1].upper() + title[1:], keys))
    return out


# ---------------------------------------------------------------------------------- chapters


def make_chapters(
    passages: Sequence[Passage],
    vectors: np.ndarray,
    *,
    duration: float,
    language: str | None,
    settings: ChapterSettings = ChapterSettings(),
) -> list[Chapter]:
    """An episode's chapters from its passages and their vectors (as the index holds them)."""
    if not passages:
        return []
    if len(vectors) != len(passages):
        raise IndexStateError(f"{len(vectors)} vectors for {len(passages)} passages: run `hmsearch repair`")
    sentences = sentences_from_passages(passages)
    end = max(duration, passages[-1].end)
    bounds = find_boundaries(passages, vectors, sentences, duration=end, settings=settings)
    starts = [0.0, *bounds]
    ends = [*bounds, end]
    texts = [" ".join(s.text for s in sentences if a <= s.start < b) for a, b in zip(starts, ends)]
    titled = chapter_titles(texts, language)
    return [
        Chapter(start=a, end=b, title=title, keywords=tuple(keys)) for a, b, (title, keys) in zip(starts, ends, titled)
    ]


def chapter_of(chapters: Sequence[Chapter], start: float, end: float) -> Chapter | None:
    """The chapter a span (a hit) lies in most."""
    if end <= start:
        return chapter_at(chapters, start)
    best = max(chapters, key=lambda c: min(c.end, end) - max(c.start, start), default=None)
    return best if best is not None and min(best.end, end) > max(best.start, start) else chapter_at(chapters, start)


def chapter_at(chapters: Sequence[Chapter], t: float) -> Chapter | None:
    """The chapter that time ``t`` falls in."""
    for c in reversed(chapters):
        if c.start <= t + 1e-6:
            return c
    return chapters[0] if chapters else None


# ---------------------------------------------------------------------------------- formats


def _clock(seconds: float, *, hours: bool) -> str:
    s = int(max(0.0, seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if hours else f"{s // 60:02d}:{s % 60:02d}"


def format_show_notes(chapters: Sequence[Chapter]) -> str:
    """``00:00 Title`` lines: the form YouTube turns into chapters (the first at 00:00, times
    ascending; H:MM:SS once the episode passes an hour)."""
    hours = bool(chapters) and chapters[-1].end >= 3600
    return "".join(f"{_clock(c.start, hours=hours)} {_one_line(c.title)}\n" for c in chapters)


def _one_line(text: str) -> str:
    from ..text import one_line

    return one_line(text)


def podcast_chapters(chapters: Sequence[Chapter], *, title: str | None = None) -> dict[str, Any]:
    """The Podcasting 2.0 JSON chapters document (``<podcast:chapters type="application/json+chapters">``)."""
    doc: dict[str, Any] = {"version": "1.2.0"}
    if title:
        doc["title"] = title
    doc["chapters"] = [
        {"startTime": round(c.start, 3), "endTime": round(c.end, 3), "title": _one_line(c.title)} for c in chapters
    ]
    return doc


# A publisher's chapters document (a feed's <podcast:chapters>): what is read of it at most.
MAX_FEED_CHAPTERS = 500
MAX_FEED_CHAPTER_TITLE = 200  # characters
MAX_CHAPTERS_BYTES = 512 * 1024


def read_podcast_chapters(data: bytes, duration: float | None = None) -> list[Chapter]:
    """A Podcasting 2.0 JSON chapters document (the inverse of ``podcast_chapters``; what a feed's
    ``<podcast:chapters type="application/json+chapters">`` points at) as chapters, in time order:
    entries marked ``"toc": false`` (silent markers), without a finite ``startTime`` >= 0, or
    starting past ``duration`` are left out, as is a second entry at the same time; titles are made
    one line and capped, an untitled chapter is "Chapter N"; a chapter ends at its own ``endTime``
    when that lies before the next one's start, else where the next starts (the last at
    ``duration``; without one, at its own ``endTime`` or, lacking that, where it starts). At most
    MAX_FEED_CHAPTERS. ValueError (its reason) when nothing usable is in it."""
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"not a JSON chapters document ({type(exc).__name__})") from None
    entries = doc.get("chapters") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise ValueError('not a JSON chapters document (no "chapters" list)')

    def seconds(value: object) -> float | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        try:
            t = float(value)
        except OverflowError:  # an integer of 400 digits
            return None
        return t if math.isfinite(t) and t >= 0 and (not duration or t < duration) else None

    found: dict[float, tuple[str, float | None]] = {}
    for entry in entries[: MAX_FEED_CHAPTERS * 4]:
        if not isinstance(entry, dict) or entry.get("toc") is False:
            continue
        start = seconds(entry.get("startTime"))
        if start is None:
            continue
        title = entry.get("title")
        title = (
            _one_line(title[: MAX_FEED_CHAPTER_TITLE * 4])[:MAX_FEED_CHAPTER_TITLE].rstrip()
            if isinstance(title, str)
            else ""
        )
        found.setdefault(round(start, 3), (title, seconds(entry.get("endTime"))))
    starts = sorted(found)[:MAX_FEED_CHAPTERS]
    if not starts:
        raise ValueError("no chapter with a start time in it")
    out = []
    for i, start in enumerate(starts):
        title, end = found[start]
        after = starts[i + 1] if i + 1 < len(starts) else (duration or max(start, end or start))
        out.append(
            Chapter(start, end if end is not None and start < end <= after else after, title or f"Chapter {i + 1}")
        )
    return out


def format_webvtt_chapters(chapters: Sequence[Chapter]) -> str:
    """WebVTT chapters (``<track kind="chapters">``): one cue per chapter, its title as the text."""
    from ..formats import format_timestamp

    parts = ["WEBVTT\n"]
    for i, c in enumerate(chapters, 1):
        text = _one_line(c.title).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        parts.append(
            f"chapter-{i}\n{format_timestamp(c.start, decimal_marker='.')} --> "
            f"{format_timestamp(c.end, decimal_marker='.')}\n{text}\n"
        )
    return "\n".join(parts)


# ---------------------------------------------------------------------------------- the index's copy

CACHE_KIND = "chapters"  # cache/chapters-<model digest>/ (query/episodes.py): kept while the model is the index's
