"""Answers: the sentences within the top passages that say what was asked, each with its own time."""

from __future__ import annotations

import re

import numpy as np

from ..embed import Encoder
from ..index import IndexStore
from ..text import analyze
from ..types import AnswerSentence, Hit
from .fusion import minmax
from .links import LinkFn, playback_link
from .retrieve import Query

# A sentence's score: SENTENCE_WEIGHT of its own match to the question (dense and lexical, weighted
# by how far the model is trusted for the language pair), the rest its passage's score.
SENTENCE_WEIGHT = 0.7
QUESTION_HANDOFF = 0.02  # a question sentence hands the sentence after it its score, less this
QUESTION_PENALTY = 1.0  # ...and drops below any answer itself
ANSWER_MARGIN = 0.08  # further answer sentences must score within this of the best
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
        ep = store.episode(hit.episode)
        picked.append(
            AnswerSentence(
                text=sentence.text,
                episode=hit.episode,
                title=hit.title,
                start=sentence.start,
                end=sentence.end,
                score=float(scores[j]),
                link=link(ep, sentence.start),
            )
        )
    return picked


def answer_from_hits(
    store: IndexStore,
    encoder: Encoder,
    query: Query,
    hits: list[Hit],
    *,
    max_sentences: int = 3,
    link: LinkFn = playback_link,
) -> list[AnswerSentence]:
    """The sentences of ``hits`` that best answer ``query``."""
    candidates = [(h, i) for h in hits for i, s in enumerate(h.sentences) if len(_WORD.findall(s.text)) >= MIN_WORDS]
    if not candidates:
        candidates = [(h, i) for h in hits for i in range(len(h.sentences))]
    if not candidates:
        return []
    scores = score_sentences(store, encoder, query, candidates)
    return pick_answers(store, candidates, scores, max_sentences=max_sentences, link=link)
