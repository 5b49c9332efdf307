"""Answers: the sentences within the top passages that say what was asked, each with its own time.

``answer_from_hits`` reads the question against each sentence with its neighbours through the
answer model (answer_model.py) and abstains when nothing is close. The answer encoder
(answer_encoder.py) can read the best candidates together with the question (``read_together``);
its blend weight is 0, as it did not win on the dev sets (scripts/train_answer_encoder.py). ``score_sentences`` and
``pick_answers`` are the earlier similarity scorer, kept for comparison (benchmarks/answer_quality.py)."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..chunk import sentences_from_passages
from ..embed import Encoder
from ..index import IndexStore
from ..index import sentences as stored_sentences
from ..text import analyze
from ..types import AnswerSentence, Hit, Sentence
from .answer_encoder import PairScorer, load_answer_encoder, standardised
from .answer_model import (
    FEATURES,
    FOLLOW_WINDOW,
    AnswerModel,
    EpisodeText,
    boilerplate,
    episode_text,
    feature_matrix,
    filler,
    load_model,
    prompts,
)
from .fusion import minmax
from .links import LinkFn, playback_link
from .names import name_spans
from .retrieve import Query

# A sentence's score: SENTENCE_WEIGHT of its own match to the question (dense and lexical, weighted
# by how far the model is trusted for the language pair), the rest its passage's score.
SENTENCE_WEIGHT = 0.7
QUESTION_HANDOFF = 0.02  # a question sentence hands the sentence after it its score, less this
QUESTION_PENALTY = 1.0  # ...and drops below any answer itself
ANSWER_MARGIN = 0.08  # further answer sentences must score within this of the best
REPLY_SPILL = 3  # sentences after a passage that may still belong to its reply
MODEL_MARGIN = 0.06  # further answer sentences must score within this of the best
MIN_WORDS = 3  # shorter sentences ("Ja.", "Præcis.") are not answers, unless nothing else is
_WORD = re.compile(r"\w+", re.UNICODE)


def score_sentences(store: IndexStore, encoder: Encoder, query: Query, candidates: list[tuple[Hit, int]]) -> np.ndarray:
    """The score of each (hit, sentence index) candidate as the answer to ``query``."""
    sentences = [hit.sentences[i] for hit, i in candidates]
    qvec = query.vector(encoder)
    dense = encoder.encode_documents([s.text for s in sentences]) @ qvec
    langs = {e.id: e.language for e in store.episodes()}
    # Lexical match of each sentence, weighted by how rare a query term is among the candidate
    # sentences: the words of the episode's topic are everywhere, the answer's are not.
    qterms = set(query.terms)
    sterms = [qterms & set(analyze(s.text, langs.get(h.episode))) for (h, _), s in zip(candidates, sentences)]
    n = len(candidates)
    sf = {t: sum(t in st for st in sterms) for t in qterms}
    idf = {t: float(np.log(1 + (n - f + 0.5) / (f + 0.5))) for t, f in sf.items() if f}
    lex = np.array([sum(idf[t] for t in st) for st in sterms], dtype=np.float32)
    trust = encoder.card.trust
    w = np.array([trust.weight(query.language, langs.get(h.episode)) for h, _ in candidates], dtype=np.float32)
    passage = minmax(np.array([h.score for h, _ in candidates], dtype=np.float32))
    scores = SENTENCE_WEIGHT * (w * minmax(dense) + (1 - w) * minmax(lex)) + (1 - SENTENCE_WEIGHT) * passage
    # In conversation the answer follows the question.
    for j, (hit, _) in enumerate(candidates):
        if sentences[j].text.rstrip().endswith("?"):
            if j + 1 < n and candidates[j + 1][0] is hit:
                scores[j + 1] = max(scores[j + 1], scores[j] - QUESTION_HANDOFF)
            scores[j] -= QUESTION_PENALTY
    return np.asarray(scores, dtype=np.float32)


def pick_answers(
    store: IndexStore,
    candidates: list[tuple[Hit, int]],
    scores: np.ndarray,
    *,
    max_sentences: int,
    link: LinkFn = playback_link,
) -> list[AnswerSentence]:
    """The best-scoring sentences, as long as they stay within ANSWER_MARGIN of the best."""
    order = np.argsort(-scores, kind="stable")
    best = float(scores[order[0]])
    picked: list[AnswerSentence] = []
    for j in order:
        hit, i = candidates[int(j)]
        sentence = hit.sentences[i]
        if len(picked) >= max_sentences or (picked and float(scores[j]) < best - ANSWER_MARGIN):
            break
        if any(p.episode == hit.episode and abs(p.start - sentence.start) < 1e-6 for p in picked):
            continue
        picked.append(_answer(store, hit, sentence, float(scores[j]), link))
    return picked


def _answer(store: IndexStore, hit: Hit, sentence: Sentence, score: float, link: LinkFn) -> AnswerSentence:
    """``sentence`` of ``hit`` as an answer: its own time, and a link that plays from there."""
    return AnswerSentence(
        text=sentence.text,
        episode=hit.episode,
        title=hit.title,
        start=sentence.start,
        end=sentence.end,
        score=score,
        link=link(store.episode(hit.episode), sentence.start),
    )


def answerable(text: EpisodeText, i: int) -> bool:
    """Whether sentence ``i`` may be an answer at all: not boilerplate, not filler, not a question
    or a "let's talk about ..." (what the next turn answers)."""
    said = text.sentences[i].text
    return not (boilerplate(text, i) or filler(said) or prompts(said))


def without_names(question: str, texts: list[EpisodeText], titles: list[str]) -> str:
    """``question`` less the names (two or more capitalised words, names.py's ``name_spans``) that
    the episodes' titles or introductions say: a guest's name finds the episode, not the answer
    inside it (the intro says it)."""
    known = " ".join([*titles, *(" ".join(s.text for s in t.sentences[: max(t.intro_end, 5)]) for t in texts)])
    known = known.lower()
    out = question
    for spans in name_spans(question):
        for name in spans:
            if name.lower() in known:
                out = re.sub(rf"(,?\s*according to\s+)?{re.escape(name)}(['’]s?)?,?", " ", out)
                break
    out = re.sub(r"\s+([?.!,])", r"\1", re.sub(r"\s+", " ", out)).strip()
    return out if len(out.split()) >= 2 else question


def _episode_texts(store: IndexStore, hits: list[Hit]) -> dict[str, EpisodeText]:
    out: dict[str, EpisodeText] = {}
    for h in hits:
        if h.episode not in out:
            # the one way back from passages to sentences (chunk.py), as every reader takes it
            sentences = sentences_from_passages(store.passages(h.episode))
            out[h.episode] = episode_text(sentences, store.episode(h.episode).duration)
    return out


@dataclass(frozen=True)
class Candidates:
    """The sentences that may answer a question, with their features and where they were said."""

    features: np.ndarray  # one row of FEATURES per candidate
    passage: np.ndarray  # each candidate's passage score, min-max over the candidates
    spoken: list[tuple[Hit, Sentence]]  # each candidate's passage and sentence
    model: str  # the embedding model that measured the similarities
    coverage: float = 1.0  # share of the question's term weight (IDF) that the passages say
    same_language: bool = True  # the closest candidate is in the question's language
    question: str = ""  # the question as the answer stage reads it (names that found the episode left out)
    before: tuple[str, ...] = ()  # each candidate's preceding sentence in its run ("" at a run's start)

    @property
    def best_similarity(self) -> float:
        """The highest e5 similarity of a candidate to the question."""
        return float(self.features[:, FEATURES.index("dense")].max())

    @property
    def evidence(self) -> float:
        """What abstention looks at: the best similarity, plus a little for the question's rare
        words said in the passages (an unanswerable question finds a sentence as close, but its
        own words, "knitting", "sourdough", are said nowhere near)."""
        return self.best_similarity + COVERAGE_WEIGHT * self.coverage

    @property
    def floor_key(self) -> str:
        """The answer model's floor for this: per embedding model, and apart for a question in
        another language than the passages (cross-lingual similarities run lower)."""
        return self.model if self.same_language else f"{self.model} cross-lingual"


COVERAGE_WEIGHT = 0.05  # chosen on the dev parts (benchmarks/results/answers.md)


def coverage(store: IndexStore, terms: tuple[str, ...], said: list[set[str]]) -> float:
    """Share of the IDF of ``terms`` (over the whole index) that occurs in one of ``said``."""
    if not terms:
        return 1.0
    lexical = store.lexical()
    n = store.rows().total
    present = set().union(*said) if said else set()
    idf = {t: float(np.log(1 + (n - df + 0.5) / (df + 0.5))) for t in terms for df in [lexical.document_frequency(t)]}
    total = sum(idf.values())
    return sum(v for t, v in idf.items() if t in present) / total if total else 1.0


_STORED: OrderedDict[tuple[Path, int], dict[float, np.ndarray]] = OrderedDict()
_STORED_LOCK = threading.Lock()
_STORED_EPISODES = 64  # episodes' sentence vectors kept in memory (~1 MB for two hours)


def _stored(path: Path, dim: int) -> dict[float, np.ndarray] | None:
    """One episode version's stored sentence vectors (a file's name changes with its version);
    a file not there yet is looked for again next time (the writer adds it just after a commit)."""
    key = (path, dim)
    with _STORED_LOCK:  # the web server answers from several threads
        if key in _STORED:
            _STORED.move_to_end(key)
            return _STORED[key]
    found = stored_sentences.load(path, dim)
    if found is not None:
        with _STORED_LOCK:
            _STORED[key] = found
            while len(_STORED) > _STORED_EPISODES:
                _STORED.popitem(last=False)
    return found


def _read_stored(store: IndexStore, where: list[tuple[Hit, Sentence]]) -> tuple[np.ndarray, list[int]]:
    """The stored unit vectors of the sentences ``where`` says (each episode's file looked up
    once), and the positions of those that have none."""
    dim = store.require().dim
    out = np.zeros((len(where), dim), dtype=np.float32)
    missing = []
    of_episode: dict[str, dict[float, np.ndarray] | None] = {}
    for j, (hit, sentence) in enumerate(where):
        if hit.episode not in of_episode:
            path = stored_sentences.path_for(store, store.record(hit.episode).segment)
            of_episode[hit.episode] = _stored(path, dim)
        found = of_episode[hit.episode]
        vector = found.get(round(sentence.start, 3)) if found else None
        if vector is None:
            missing.append(j)
        else:
            out[j] = vector
    return out, missing


def stored_vectors(store: IndexStore, where: list[tuple[Hit, Sentence]]) -> np.ndarray | None:
    """The stored unit vectors of the sentences ``where`` says, or None when one is not stored."""
    out, missing = _read_stored(store, where)
    return None if missing else out


def sentence_vectors(
    store: IndexStore, encoder: Encoder, texts: list[str], where: list[tuple[Hit, Sentence]]
) -> np.ndarray:
    """The unit vectors of ``texts`` (each the sentence ``where`` says): read from the index's
    sentence vectors (index/sentences.py) where they were stored, embedded now where not (an
    episode indexed before they were, or a damaged file)."""
    out, missing = _read_stored(store, where)
    if missing:
        out[missing] = encoder.encode_documents([texts[j] for j in missing])
    return out


def answer_candidates(store: IndexStore, encoder: Encoder, query: Query, hits: list[Hit]) -> Candidates | None:
    """The candidate answers in ``hits``: each passage's sentences and the few after it (a reply
    may run on past a passage), minus boilerplate and filler; None when there are none."""
    texts_of = _episode_texts(store, hits)
    langs = {e.id: e.language for e in store.episodes()}
    texts: list[str] = []
    runs: list[int] = []
    rows: list[int] = []
    where: list[tuple[Hit, Sentence]] = []
    passage: list[float] = []
    taken: set[tuple[str, int]] = set()
    for r, hit in enumerate(hits):
        if not hit.sentences:
            continue
        text = texts_of[hit.episode]
        a, b = text.index_of(hit.sentences[0].start), text.index_of(hit.sentences[-1].start)
        for i in range(max(0, a - FOLLOW_WINDOW), min(len(text.sentences), b + 1 + REPLY_SPILL)):
            sentence = text.sentences[i]
            if i >= a and (hit.episode, i) not in taken and answerable(text, i):
                taken.add((hit.episode, i))
                rows.append(len(texts))
                passage.append(hit.score)
            texts.append(sentence.text)
            runs.append(r)
            where.append((hit, sentence))
    if not rows:
        return None
    asked = without_names(query.text, list(texts_of.values()), [h.title for h in hits])
    # the question as retrieval read it, unless a name was taken out of it
    reading = query if asked == query.text else Query(asked, store, encoder.card)
    qvec = reading.vector(encoder)
    vecs = sentence_vectors(store, encoder, texts, where)
    # the question's terms in every language of the index (dictionary translations included)
    qterms = set(reading.terms)
    term_sets = [set(analyze(t, langs.get(h.episode))) for t, (h, _) in zip(texts, where)]
    x = feature_matrix(qvec, qterms, texts, vecs, rows, term_sets=term_sets, runs=runs)
    spoken = [where[j] for j in rows]
    before = tuple(texts[j - 1] if j > 0 and runs[j - 1] == runs[j] else "" for j in rows)
    closest = spoken[int(np.argmax(x[:, FEATURES.index("dense")]))][0]
    exact = reading.exact_terms
    said = [set(analyze(h.text, langs.get(h.episode))) for h in hits]
    return Candidates(
        x,
        minmax(np.array(passage, dtype=np.float32)),
        spoken,
        encoder.card.id,
        coverage=coverage(store, exact, said),
        same_language=(query.language or "") == (langs.get(closest.episode) or query.language or ""),
        question=asked,
        before=before,
    )


def choose_answers(
    store: IndexStore,
    candidates: Candidates,
    model: AnswerModel,
    *,
    max_sentences: int = 3,
    link: LinkFn = playback_link,
    floor: float | None = None,
    encoder: PairScorer | None = None,
) -> list[AnswerSentence]:
    """The best candidates by the answer model plus their passage's score (and the answer
    encoder's reading of the best of them, when the model blends it in); none when even the
    closest is below the model's floor (or ``floor``). ``encoder``: another than the shipped one."""
    if floor is None:
        floor = model.floors.get(candidates.floor_key, model.floors.get(candidates.model, -1.0))
    if candidates.evidence < floor:
        return []
    scores = read_together(candidates, model.score(candidates.features, candidates.passage), model, encoder)
    order = np.argsort(-scores, kind="stable")
    best = float(scores[order[0]])
    picked: list[AnswerSentence] = []
    for j in order:
        if len(picked) >= max_sentences or (picked and float(scores[j]) < best - MODEL_MARGIN):
            break
        hit, sentence = candidates.spoken[int(j)]
        picked.append(_answer(store, hit, sentence, float(scores[j]), link))
    return picked


def read_together(
    candidates: Candidates, scores: np.ndarray, model: AnswerModel, encoder: PairScorer | None = None
) -> np.ndarray:
    """``scores`` with the answer encoder's reading of the ``encoder_top`` best candidates added
    (standardised among them, times the blend's ``encoder`` weight); the candidates it does not read
    count as its worst reading. Unchanged when the blend leaves it out or it cannot run here."""
    weight = model.blend.get("encoder", 0.0)
    if not weight or len(scores) < 2:
        return scores
    encoder = encoder or load_answer_encoder()
    if encoder is None:
        return scores
    top = np.argsort(-scores, kind="stable")[: max(2, int(model.blend.get("encoder_top", 0.0)))]
    before = candidates.before or ("",) * len(scores)
    read = encoder.score(candidates.question, [candidates.spoken[j][1].text for j in top], [before[j] for j in top])
    z = standardised(read)
    out = np.asarray(scores + weight * z.min(), dtype=np.float32)
    out[top] = scores[top] + weight * z
    return out


def answer_from_hits(
    store: IndexStore,
    encoder: Encoder,
    query: Query,
    hits: list[Hit],
    *,
    max_sentences: int = 3,
    link: LinkFn = playback_link,
    model: AnswerModel | None = None,
    abstain: bool = True,
) -> list[AnswerSentence]:
    """The sentences of ``hits`` (and the few after each, where a reply may run on) that best
    answer ``query``, by the answer model; none (abstain) when nothing is close enough.

    An introduction, outro, sponsor read, announcement or filler is never an answer."""
    candidates = answer_candidates(store, encoder, query, hits) if hits else None
    if candidates is None:
        return []
    model = model or load_model()
    return choose_answers(
        store, candidates, model, max_sentences=max_sentences, link=link, floor=None if abstain else -1.0
    )
